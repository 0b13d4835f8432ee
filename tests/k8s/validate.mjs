// validate.mjs: check Kubernetes objects against the API's schemas.
//
//   node validate.mjs --modules DIR [--json OUT] FILE...
//
// Each FILE holds YAML documents (kubectl kustomize's output, say).  Each
// object is checked against the OpenAPI schema of its apiVersion and kind,
// as the npm package kubernetes-models (installed under DIR, a
// node_modules directory) compiles them with ajv: types, enums, formats,
// required fields.  The schemas leave objects open, so a misspelt field
// (readOnlyRootFileSystem) would pass them: each object is therefore also
// checked strictly, as `kubectl apply --validate=strict` would, and a
// field that its schema does not name is an error.  To find those, the
// validator runs on a view of the object that records every field it
// looks at; it looks at every field its schema names, and at every entry
// of a map, so a field it never looked at is one the schema does not
// know.
//
// Prints one line per object, "ok KIND/NAME" or "invalid KIND/NAME: PATH
// REASON" (one line per error); --json writes every object, as a JSON
// array, to OUT.  Exits 0 when every object is valid, 1 when one is not,
// 2 when a file cannot be read or parsed, or a kind is unknown.
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

function usage(msg) {
	process.stderr.write(`validate.mjs: ${msg}\n` +
	    "usage: node validate.mjs --modules DIR [--json OUT] FILE...\n");
	process.exit(2);
}

const args = process.argv.slice(2);
let modules = null;
let jsonOut = null;
const files = [];
while (args.length > 0) {
	const a = args.shift();
	if (a === "--modules")
		modules = args.shift();
	else if (a === "--json")
		jsonOut = args.shift();
	else if (a.startsWith("--"))
		usage(`unknown option '${a}'`);
	else
		files.push(a);
}
if (!modules)
	usage("no --modules");
if (files.length === 0)
	usage("no file");

const { parseAllDocuments } = await import(
    pathToFileURL(join(modules, "yaml", "dist", "index.js")).href);

// The compiled validator of apiVersion/kind, found through the model
// class that kubernetes-models generates for it.
const validators = new Map();
async function validatorOf(apiVersion, kind) {
	const key = `${apiVersion}/${kind}`;
	if (validators.has(key))
		return validators.get(key);
	if (!/^[a-z0-9.]+(\/[a-z0-9]+)?$/.test(apiVersion) ||
	    !/^[A-Za-z0-9]+$/.test(kind))
		throw new Error(`unknown apiVersion '${apiVersion}' or kind '${kind}'`);
	const model = join(modules, "kubernetes-models", apiVersion,
	    `${kind}.js`);
	let text;
	try {
		text = await readFile(model, "utf8");
	} catch {
		throw new Error(`no schema for ${apiVersion} ${kind}`);
	}
	const m = /_schemas\/(IoK8s[A-Za-z0-9]+)\.js/.exec(text);
	if (!m)
		throw new Error(`no schema named in ${model}`);
	const { validate } = await import(pathToFileURL(join(modules,
	    "kubernetes-models", "_schemas", `${m[1]}.js`)).href);
	validators.set(key, validate);
	return validate;
}

const esc = (k) => String(k).replace(/~/g, "~0").replace(/\//g, "~1");

// A view of VALUE that adds to SEEN the path of every field read or
// tested through it, at any depth.
function watched(value, path, seen) {
	if (value === null || typeof value !== "object")
		return value;
	return new Proxy(value, {
		get(target, key, receiver) {
			const v = Reflect.get(target, key, receiver);
			if (typeof key !== "string")
				return v;
			seen.add(`${path}/${esc(key)}`);
			return watched(v, `${path}/${esc(key)}`, seen);
		},
		has(target, key) {
			if (typeof key === "string")
				seen.add(`${path}/${esc(key)}`);
			return Reflect.has(target, key);
		},
	});
}

// The fields of OBJ that the validator never looked at, in an object
// whose other fields it did look at (an object it did not look into at
// all is one its schema leaves free, such as an IntOrString).
function unknownFields(obj, path, seen, out) {
	if (obj === null || typeof obj !== "object")
		return;
	if (Array.isArray(obj)) {
		obj.forEach((v, i) => unknownFields(v, `${path}/${i}`, seen, out));
		return;
	}
	const prefix = `${path}/`;
	let looked = false;
	for (const p of seen) {
		if (p.startsWith(prefix) && !p.includes("/", prefix.length)) {
			looked = true;
			break;
		}
	}
	for (const [k, v] of Object.entries(obj)) {
		const p = `${path}/${esc(k)}`;
		if (looked && !seen.has(p))
			out.push({ instancePath: p,
			    message: "is not a field of this object" });
		else
			unknownFields(v, p, seen, out);
	}
}

// The compiled validators carry no messages: one from the error's keyword.
function explain(e) {
	const p = e.params ?? {};
	if (e.message)
		return e.message;
	switch (e.keyword) {
	case "type":
		return `must be of type ${p.type}`;
	case "enum":
		return `must be one of: ${(p.allowedValues ?? []).join(", ")}`;
	case "required":
		return `must have the field ${p.missingProperty}`;
	case "format":
		return `must be of format ${p.format}`;
	default:
		return `fails ${e.keyword} ${JSON.stringify(p)}`;
	}
}

let invalid = 0;
const all = [];
for (const file of files) {
	let text;
	try {
		text = await readFile(file === "-" ? 0 : file, "utf8");
	} catch (e) {
		process.stderr.write(`validate.mjs: ${file}: ${e.message}\n`);
		process.exit(2);
	}
	for (const doc of parseAllDocuments(text)) {
		if (doc.errors.length > 0) {
			process.stderr.write(`validate.mjs: ${file}: ` +
			    `${doc.errors[0].message}\n`);
			process.exit(2);
		}
		const obj = doc.toJS();
		if (obj === null)
			continue;
		all.push(obj);
		const name = `${obj.kind}/${obj.metadata?.name ?? "?"}`;
		let validate;
		try {
			validate = await validatorOf(String(obj.apiVersion),
			    String(obj.kind));
		} catch (e) {
			process.stderr.write(`validate.mjs: ${file}: ${name}: ` +
			    `${e.message}\n`);
			process.exit(2);
		}
		const seen = new Set();
		const errors = [];
		if (!validate(watched(obj, "", seen)))
			errors.push(...validate.errors);
		else
			unknownFields(obj, "", seen, errors);
		if (errors.length === 0) {
			console.log(`ok ${name}`);
			continue;
		}
		invalid++;
		const lines = new Set(errors.map((e) =>
		    `invalid ${name}: ${e.instancePath || "/"} ${explain(e)}`));
		for (const l of lines)
			console.log(l);
	}
}
if (jsonOut)
	await writeFile(jsonOut, JSON.stringify(all, null, 1) + "\n");
process.exit(invalid > 0 ? 1 : 0);
