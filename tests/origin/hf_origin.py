#!/usr/bin/env python3
"""hf_origin.py: a local stand-in for the Hugging Face Hub HTTP API.

Serves the subset of the Hub a downloader uses (shared/reference/hf-hub.md
section 1) from plain directories, so the libcurl client can be tested with
no network: revision -> commit, the paginated recursive tree, HEAD/GET
/resolve (302 to a second host name for LFS files), a pre-signed "CDN"
endpoint honouring Range, Hub-style auth and error headers, and injected
faults.  Standard library only.

Usage:
  hf_origin.py --repo ORG/NAME=DIR [--repo ...] [--dataset ORG/NAME=DIR ...]
               --port-file FILE [--host 127.0.0.1] [--cdn-host localhost]
               [--revision main] [--tag NAME=main ...] [--token TOKEN]
               [--gated auto|manual|ORG/NAME=auto|ORG/NAME=manual ...]
               [--page-size N] [--fault SPEC ...] [--relative-redirects]
               [--tls-cert FILE --tls-key FILE] [--verbose]

--relative-redirects makes /resolve/ answer an LFS file with a Location
that is a path only (/cdn/SHA256?expires=...&sig=...), without scheme or
host, so the bytes come from this same server on the host the client
asked; without it the Location is absolute, on --cdn-host.

Fault SPEC: KIND[:ARG][@MATCH][*COUNT]; KIND is one of truncate:N,
status:CODE, ratelimit:SECS, retryafter:SECS (503 with Retry-After:
SECS), stall:SECS, corrupt, norange, badrange, slow:BYTES_PER_SEC,
longlink:BYTES (a tree page's Link: rel="next" URL made BYTES longer by
a pad parameter the next page ignores; give it @/tree/), tohttp:PORT (a
307 to the same path and query over plain http on this host name and
PORT), and the hostile ones: extra:N, extraclose:N, short:N,
longrange:N, mutate, endless[:BYTES_PER_SEC].  Without @MATCH a spec
applies to GETs of /cdn/ and /resolve/ paths; with it, to GETs and HEADs
whose path contains MATCH.

The hostile faults (a HEAD still tells the truth):
  extra:N        the body asked for, then N bytes of junk, with a
                 Content-Length that counts them (a 206's Content-Range
                 still names the range asked for)
  extraclose:N   the same junk, with no Content-Length: the body ends when
                 the connection closes (Connection: close)
  short:N        only the first N bytes of the body asked for, and says so:
                 Content-Length N, a 206's Content-Range ending there
  longrange:N    a 206 whose Content-Range and body run N bytes past the
                 end asked for (badrange moves the start instead)
  mutate         the right length, but every byte changed, differently on
                 each request it fires on (XOR with the request's count):
                 the file changes between two requests
  endless[:BPS]  no Content-Length, Connection: close, the body asked for,
                 then junk for ever at BPS bytes a second (default 65536),
                 until the client hangs up
Each request gets at most one fault: the first spec, in command-line
order, that matches, still has count left, and can apply to the response
(a body fault never fires on a 302, a 416 or a HEAD).  status:404 answers
as the Hub does for a missing file: X-Error-Code: EntryNotFound and
X-Error-Message: Entry not found; other status codes carry no X-Error-*
headers.

Absolute form: a request whose target is a whole URL (RFC 9112 section
3.2.2, "GET http://HOST:PORT/PATH HTTP/1.1"), as a client sends it to a
forward proxy, is served as if it had come to HOST:PORT: the scheme and
authority are stripped before routing, the authority stands for the Host
header (in Link headers, error messages and the per-host counts), and
redirects name the hosts they name without a proxy (--cdn-host and this
port for LFS files).  So
this origin can be the proxy a client is told to use with http_proxy while
the host names in its URLs resolve nowhere.  Such requests are counted in
/_stats as "proxied" and per host name as "proxied_hosts".  CONNECT (the
tunnel a client asks a proxy for to reach an https:// URL) is not served.

Control endpoints (never faulted, never counted): GET /_stats, POST /_reset.
"""

import argparse
import hashlib
import hmac
import json
import os
import re
import select
import signal
import socket
import ssl
import sys
import threading
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf", ".onnx", ".h5",
                ".msgpack")
LFS_MIN_SIZE = 10 * 1024 * 1024
CHUNK = 1024 * 1024
HEX40 = re.compile(r"^[0-9a-f]{40}$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
# A request target in absolute form (RFC 9112 3.2.2): scheme, authority,
# then the path and query.
ABSOLUTE_FORM = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)(.*)$",
                           re.S)
DISCONNECT_ERRORS = (BrokenPipeError, ConnectionResetError,
                     ConnectionAbortedError, TimeoutError, socket.timeout,
                     ssl.SSLError, ssl.SSLEOFError)


def log(msg):
    try:
        sys.stderr.write("hf_origin: %s\n" % msg)
        sys.stderr.flush()
    except Exception:
        pass


def git_sha1(data):
    h = hashlib.sha1(b"blob %d\0" % len(data))
    h.update(data)
    return h.hexdigest()


def lfs_pointer(sha256, size):
    return ("version https://git-lfs.github.com/spec/v1\n"
            "oid sha256:%s\nsize %d\n" % (sha256, size)).encode()


def header_safe(value):
    """Header values go out as latin-1 and must not contain CR/LF."""
    s = str(value).replace("\r", " ").replace("\n", " ")
    try:
        s.encode("latin-1")
        return s
    except UnicodeEncodeError:
        return urllib.parse.quote(s, safe=" /:;,=\"'()<>@*!?&#%")


# --------------------------------------------------------------------------
# Files, hashes, repos


class FileEntry:
    """One file of a repo; hashes are computed once, on first need."""

    def __init__(self, rpath, apath, size):
        self.rpath = rpath          # repo-relative, '/'-separated
        self.apath = apath          # absolute path on disk
        self.size = size
        base = rpath.rsplit("/", 1)[-1]
        self.lfs = base.endswith(LFS_SUFFIXES) or size >= LFS_MIN_SIZE
        self.sha256 = None
        self.blob_sha1 = None       # git sha1 of the content
        self.pointer = None         # LFS pointer text (LFS only)
        self.pointer_sha1 = None    # git sha1 of the pointer (LFS only)
        self._lock = threading.Lock()

    def ensure_hashed(self):
        if self.sha256 is not None:
            return
        with self._lock:
            if self.sha256 is not None:
                return
            s256 = hashlib.sha256()
            s1 = hashlib.sha1(b"blob %d\0" % self.size)
            n = 0
            with open(self.apath, "rb") as f:
                while True:
                    buf = f.read(CHUNK)
                    if not buf:
                        break
                    n += len(buf)
                    s256.update(buf)
                    s1.update(buf)
            if n != self.size:
                raise RuntimeError("%s changed size while hashing" %
                                   self.apath)
            self.blob_sha1 = s1.hexdigest()
            if self.lfs:
                self.pointer = lfs_pointer(s256.hexdigest(), self.size)
                self.pointer_sha1 = git_sha1(self.pointer)
            self.sha256 = s256.hexdigest()

    @property
    def oid(self):
        """The tree 'oid' / blobId: git sha1 of the blob stored in git."""
        return self.pointer_sha1 if self.lfs else self.blob_sha1


class Repo:
    def __init__(self, kind, repo_id, directory):
        self.kind = kind            # "model" or "dataset"
        self.repo_id = repo_id
        self.directory = os.path.abspath(directory)
        if not os.path.isdir(self.directory):
            raise SystemExit("hf_origin: %s: not a directory" % directory)
        self.files = {}
        for root, dirs, names in os.walk(self.directory):
            dirs.sort()
            for name in sorted(names):
                ap = os.path.join(root, name)
                if not os.path.isfile(ap):
                    continue
                rp = os.path.relpath(ap, self.directory).replace(os.sep, "/")
                self.files[rp] = FileEntry(rp, ap, os.path.getsize(ap))
        self.paths = sorted(self.files)
        dirs = set()
        for p in self.paths:
            parts = p.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                dirs.add("/".join(parts[:i]))
        self.dirs = dirs
        self.commit = None
        self.tree = None
        self._lock = threading.Lock()

    def ensure_hashed(self):
        """Hash every file and derive the commit (once)."""
        if self.commit is not None:
            return
        with self._lock:
            if self.commit is not None:
                return
            lines = []
            for p in self.paths:
                fe = self.files[p]
                fe.ensure_hashed()
                lines.append("%s %d %s\n" % (p, fe.size, fe.sha256))
            tree = [{"type": "directory",
                     "oid": hashlib.sha1(d.encode()).hexdigest(),
                     "size": 0, "path": d} for d in self.dirs]
            for p in self.paths:
                tree.append(file_json(self.files[p]))
            tree.sort(key=lambda e: e["path"])
            self.tree = tree
            self.commit = hashlib.sha1("".join(lines).encode()).hexdigest()


def file_json(fe):
    e = {"type": "file", "oid": fe.oid, "size": fe.size, "path": fe.rpath}
    if fe.lfs:
        e["lfs"] = {"oid": fe.sha256, "size": fe.size,
                    "pointerSize": len(fe.pointer)}
    return e


# --------------------------------------------------------------------------
# Faults


FAULT_KINDS = {"truncate": "int", "status": "int", "ratelimit": "int",
               "stall": "float", "corrupt": None, "norange": None,
               "badrange": None, "slow": "int", "retryafter": "int",
               "longlink": "int", "tohttp": "int", "extra": "int",
               "extraclose": "int", "short": "int", "longrange": "int",
               "mutate": None, "endless": "optint"}
BODY_FAULTS = ("truncate", "stall", "corrupt", "norange", "badrange", "slow",
               "extra", "extraclose", "short", "longrange", "mutate",
               "endless")
JUNK = b"junk after the body " * 64
PRE_FAULTS = ("status", "ratelimit", "retryafter", "tohttp")


class Fault:
    def __init__(self, spec):
        self.spec = spec
        s = spec
        self.count = None
        m = re.match(r"^(.*)\*(\d+)$", s, re.S)
        if m:
            s, self.count = m.group(1), int(m.group(2))
        self.match = None
        if "@" in s:
            s, self.match = s.split("@", 1)
        kind, _, arg = s.partition(":")
        if kind not in FAULT_KINDS:
            raise ValueError("unknown fault kind %r in %r" % (kind, spec))
        want = FAULT_KINDS[kind]
        if want is None or (want == "optint" and not arg):
            if arg:
                raise ValueError("fault %r takes no argument" % kind)
            self.arg = None
        else:
            try:
                self.arg = float(arg) if want == "float" else int(arg)
            except ValueError:
                raise ValueError("fault %r needs a number: %r" % (kind, spec))
            if self.arg < 0 or (kind in ("slow", "endless", "extra",
                                         "extraclose", "longrange") and
                                self.arg == 0):
                raise ValueError("bad fault argument in %r" % spec)
        self.kind = kind
        self.fired = 0
        self._lock = threading.Lock()

    def matches(self, method, raw_path, dec_path):
        if self.match is None:
            return method == "GET" and (raw_path.startswith("/cdn/") or
                                        "/resolve/" in raw_path)
        return method in ("GET", "HEAD") and (self.match in raw_path or
                                               self.match in dec_path)

    def take(self):
        """Consume one use; False when the count is spent."""
        with self._lock:
            if self.count is not None and self.fired >= self.count:
                return False
            self.fired += 1
            return self.fired


# --------------------------------------------------------------------------
# Shared state


class State:
    def __init__(self, args):
        self.args = args
        self.port = 0
        self.scheme = "https" if args.tls_cert else "http"
        self.repos = {"model": {}, "dataset": {}}
        for kind, specs in (("model", args.repo or []),
                            ("dataset", args.dataset or [])):
            for spec in specs:
                rid, sep, d = spec.partition("=")
                if not sep or not rid or not d:
                    raise SystemExit("hf_origin: bad repo spec %r "
                                     "(want ORG/NAME=DIR)" % spec)
                self.repos[kind][rid] = Repo(kind, rid, d)
        if not self.repos["model"] and not self.repos["dataset"]:
            raise SystemExit("hf_origin: no --repo or --dataset given")
        self.revision = args.revision
        self.tags = {}
        for spec in args.tag or []:
            name, sep, target = spec.partition("=")
            if not sep or not name:
                raise SystemExit("hf_origin: bad tag %r (want NAME=%s)" %
                                 (spec, self.revision))
            if target != self.revision and not HEX40.match(target):
                raise SystemExit("hf_origin: tag %r must point at %r" %
                                 (spec, self.revision))
            self.tags[name] = target
        self.gated_all = False
        self.gated = {}
        for g in args.gated or []:
            rid, sep, mode = g.rpartition("=")
            if mode not in ("auto", "manual"):
                raise SystemExit("hf_origin: bad --gated %r" % g)
            if sep:
                self.gated[rid] = mode
            else:
                self.gated_all = mode
        self.faults = []
        for spec in args.fault or []:
            try:
                self.faults.append(Fault(spec))
            except ValueError as e:
                raise SystemExit("hf_origin: %s" % e)
        self.secret = os.urandom(16)
        self.stats_lock = threading.Lock()
        self.reset_stats()
        self.cdn = {}
        self.cdn_lock = threading.Lock()

    def gated_mode(self, repo):
        return self.gated.get(repo.repo_id, self.gated_all)

    def reset_stats(self):
        with self.stats_lock:
            self.bytes = 0
            self.bytes_by_sha = {}
            self.requests = {}
            self.auth_seen = {}
            self.proxied = 0
            self.proxied_hosts = {}

    def count_request(self, key, host, has_auth, proxied):
        with self.stats_lock:
            self.requests[key] = self.requests.get(key, 0) + 1
            if has_auth:
                self.auth_seen[host] = self.auth_seen.get(host, 0) + 1
            if proxied:
                self.proxied += 1
                self.proxied_hosts[host] = self.proxied_hosts.get(host,
                                                                  0) + 1

    def add_bytes(self, sha, n):
        if n <= 0:
            return
        with self.stats_lock:
            self.bytes += n
            self.bytes_by_sha[sha] = self.bytes_by_sha.get(sha, 0) + n

    def stats_json(self):
        with self.stats_lock:
            return {"bytes": self.bytes,
                    "bytes_by_sha256": dict(self.bytes_by_sha),
                    "requests": dict(self.requests),
                    "auth_seen": dict(self.auth_seen),
                    "proxied": self.proxied,
                    "proxied_hosts": dict(self.proxied_hosts),
                    "faults": {f.spec: f.fired for f in self.faults}}

    def repo_hashed(self, repo):
        repo.ensure_hashed()
        with self.cdn_lock:
            for fe in repo.files.values():
                self.cdn.setdefault(fe.sha256, fe)

    def cdn_lookup(self, sha):
        with self.cdn_lock:
            fe = self.cdn.get(sha)
        if fe is not None:
            return fe
        for kind in ("model", "dataset"):
            for repo in self.repos[kind].values():
                self.repo_hashed(repo)
        with self.cdn_lock:
            return self.cdn.get(sha)

    def resolve_rev(self, repo, rev):
        """The commit for rev, or None."""
        self.repo_hashed(repo)
        if rev == self.revision or rev == repo.commit:
            return repo.commit
        if rev in self.tags:
            return repo.commit
        return None

    def known_rev(self, rev):
        return rev == self.revision or rev in self.tags or bool(
            HEX40.match(rev))

    def sign(self, sha, expires):
        return hmac.new(self.secret, ("%s:%d" % (sha, expires)).encode(),
                        hashlib.sha256).hexdigest()[:32]


# --------------------------------------------------------------------------
# HTTP


class HTTPError(Exception):
    def __init__(self, code, message, error_code=None, headers=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.error_code = error_code
        self.headers = headers or []


def parse_range(value, total):
    """None (ignore the header), "unsat", or (first, last) inclusive."""
    v = value.strip()
    if not v.lower().startswith("bytes="):
        return None
    spec = v[6:].strip()
    if "," in spec:
        return None
    a, sep, b = spec.partition("-")
    if not sep:
        return None
    a, b = a.strip(), b.strip()
    if a == "":
        if not b.isdigit():
            return None
        n = int(b)
        if n == 0 or total == 0:
            return "unsat"
        return (max(0, total - n), total - 1)
    if not a.isdigit():
        return None
    first = int(a)
    if b == "":
        last = total - 1
    else:
        if not b.isdigit():
            return None
        last = int(b)
        if last < first:
            return None
        last = min(last, total - 1)
    if first >= total:
        return "unsat"
    return (first, last)


def split_repo(segs, keyword, known):
    """segs: raw path segments after the type prefix.  Find the repo id
    (one or two segments) followed by `keyword` (or by nothing when
    keyword is None).  Returns (repo_id, rest) or None."""
    for n in (2, 1):
        if len(segs) < n:
            continue
        rid = "/".join(urllib.parse.unquote(s) for s in segs[:n])
        rest = segs[n:]
        if keyword is None:
            if rest:
                continue
        elif not rest or rest[0] != keyword:
            continue
        else:
            rest = rest[1:]
        if rid in known or n == 2:
            return rid, rest
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "hf-origin/1.0"
    timeout = 120
    # The authority of an absolute-form request target, else None; the
    # request target in origin form (path and query).
    target_authority = None
    target = "/"
    fault_n = 0         # the count of the body fault firing on this request

    def version_string(self):
        return self.server_version

    # -- plumbing -------------------------------------------------------

    def setup(self):
        ctx = self.server.ssl_ctx
        if ctx is not None:
            self.request.settimeout(self.timeout)
            self.request = ctx.wrap_socket(self.request, server_side=True)
        super().setup()

    def log_message(self, fmt, *args):
        if self.server.state.args.verbose:
            log("%s %s" % (self.address_string(), fmt % args))

    def do_GET(self):
        self.dispatch()

    def do_HEAD(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_PUT(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    def drain_body(self):
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True    # chunked uploads: unsupported
            return b""
        n = self.headers.get("Content-Length")
        if not n:
            return b""
        try:
            n = int(n)
        except ValueError:
            self.close_connection = True
            return b""
        return self.rfile.read(n) if n > 0 else b""

    def host_header(self):
        # RFC 9112 3.2.2: an absolute-form target's authority overrides
        # the Host header.
        if self.target_authority:
            return self.target_authority
        h = self.headers.get("Host")
        if not h:
            h = "%s:%d" % (self.server.state.args.host, self.server.state.port)
        return h

    def host_name(self):
        h = self.host_header()
        if h.startswith("["):
            return h[1:h.find("]")] if "]" in h else h
        return h.rsplit(":", 1)[0] if ":" in h else h

    def send_simple(self, code, headers=(), body=b"", ctype=None):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, header_safe(v))
        if body and ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def send_json(self, code, obj, headers=()):
        body = (json.dumps(obj, indent=None) + "\n").encode()
        self.send_simple(code, headers, body, "application/json; "
                                              "charset=utf-8")

    def send_hf_error(self, e):
        hdrs = list(e.headers)
        if e.error_code:
            hdrs.append(("X-Error-Code", e.error_code))
        hdrs.append(("X-Error-Message", e.message))
        self.send_json(e.code, {"error": e.message}, hdrs)

    def dispatch(self):
        st = self.server.state
        self.target_authority = None
        self.target = raw = self.path
        m = ABSOLUTE_FORM.match(raw)
        if m is not None:               # as to a forward proxy
            self.target_authority = m.group(1).rpartition("@")[2]
            raw = m.group(2)
            if not raw.startswith("/"):
                raw = "/" + raw
            self.target = raw
        try:
            body = self.drain_body()
            raw_path, _, query = raw.partition("?")
            self.raw_path = raw_path
            self.query = urllib.parse.parse_qs(query, keep_blank_values=True)
            if raw_path in ("/_stats", "/_reset"):
                return self.control(raw_path)
            st.count_request("%s %s" % (self.command, raw_path),
                             self.host_name(),
                             self.headers.get("Authorization") is not None,
                             m is not None)
            dec_path = urllib.parse.unquote(raw_path)
            if self.command in ("GET", "HEAD"):
                f = self.pick_fault(raw_path, dec_path, PRE_FAULTS, None)
                if f is not None:
                    return self.send_pre_fault(f)
            self.route(raw_path, body)
        except HTTPError as e:
            self.send_hf_error(e)
        except DISCONNECT_ERRORS:
            self.close_connection = True
        except Exception:
            self.close_connection = True
            log("internal error on %s %s:\n%s" %
                (self.command, self.path, traceback.format_exc()))
            try:
                self.send_json(500, {"error": "internal origin error"})
            except Exception:
                pass

    # -- faults ---------------------------------------------------------

    def pick_fault(self, raw_path, dec_path, kinds, applicable):
        for f in self.server.state.faults:
            if f.kind not in kinds:
                continue
            if not f.matches(self.command, raw_path, dec_path):
                continue
            if applicable is not None and not applicable(f):
                continue
            n = f.take()
            if not n:
                continue
            self.fault_n = n
            log("fault %s (%d%s) on %s %s" %
                (f.spec, n, "/%d" % f.count if f.count is not None else "",
                 self.command, raw_path))
            return f
        return None

    def send_pre_fault(self, f):
        if f.kind == "status" and f.arg == 404:
            self.send_hf_error(HTTPError(404, "Entry not found",
                                         "EntryNotFound"))
        elif f.kind == "status":
            self.send_json(f.arg, {"error": "injected fault: status %d" %
                                            f.arg})
        elif f.kind == "tohttp":
            q = self.target.partition("?")[2]
            self.send_simple(307, [("Location", "http://%s:%d%s%s" % (
                self.host_name(), f.arg, self.raw_path,
                "?" + q if q else ""))])
        elif f.kind == "retryafter":
            self.send_json(503, {"error": "injected fault: unavailable"},
                           [("Retry-After", str(f.arg))])
        else:
            secs = f.arg
            self.send_json(429, {"error": "injected fault: rate limited"}, [
                ("Retry-After", str(secs)),
                ("RateLimit", '"resolvers";r=0;t=%d' % secs),
                ("RateLimit-Policy",
                 '"fixed window";"resolvers";q=3000;w=300')])

    # -- control --------------------------------------------------------

    def control(self, path):
        st = self.server.state
        if path == "/_stats" and self.command in ("GET", "HEAD"):
            return self.send_json(200, st.stats_json())
        if path == "/_reset" and self.command == "POST":
            st.reset_stats()
            return self.send_json(200, {"ok": True})
        self.send_json(405, {"error": "method not allowed"},
                       [("Allow", "GET" if path == "/_stats" else "POST")])

    # -- routing --------------------------------------------------------

    def route(self, raw_path, body):
        st = self.server.state
        segs = raw_path.split("/")[1:]
        if not segs or segs == [""]:
            raise HTTPError(404, "Not Found")
        if segs[0] == "cdn" and len(segs) == 2:
            if self.command not in ("GET", "HEAD"):
                raise HTTPError(405, "Method not allowed")
            return self.cdn(segs[1])
        if segs[0] == "api" and len(segs) >= 2 and segs[1] in ("models",
                                                              "datasets"):
            kind = "model" if segs[1] == "models" else "dataset"
            return self.api(kind, segs[2:], body)
        kind = "model"
        if segs[0] == "datasets":
            kind, segs = "dataset", segs[1:]
        known = st.repos[kind]
        for keyword in ("resolve", "raw"):
            r = split_repo(segs, keyword, known)
            if r is not None:
                if self.command not in ("GET", "HEAD"):
                    raise HTTPError(405, "Method not allowed")
                return self.resolve(kind, r[0], r[1], keyword == "raw")
        raise HTTPError(404, "Not Found")

    def repo_url(self):
        return "%s://%s%s" % (self.server.state.scheme, self.host_header(),
                              self.target)

    def check_auth(self, kind, rid, for_files):
        """Hub-like auth; returns the Repo."""
        st = self.server.state
        hdr = self.headers.get("Authorization")
        valid = False
        if hdr is not None:
            m = re.match(r"^\s*Bearer\s+(\S+)\s*$", hdr)
            if m is None or (st.args.token is not None and
                             m.group(1) != st.args.token):
                raise HTTPError(401, "Invalid credentials in Authorization "
                                     "header")
            valid = True
        repo = st.repos[kind].get(rid)
        if repo is None:
            raise HTTPError(401, "Repository Not Found for url: %s." %
                            self.repo_url(), "RepoNotFound")
        gated = st.gated_mode(repo)
        if st.args.token is not None and not valid and not gated:
            raise HTTPError(401, "Repository Not Found for url: %s." %
                            self.repo_url(), "RepoNotFound")
        if gated and for_files:
            if not valid:
                raise HTTPError(401, "Access to %s %s is restricted. You must "
                                "have access to it and be authenticated to "
                                "access it. Please log in." % (kind, rid),
                                "GatedRepo")
            if gated == "manual":
                raise HTTPError(403, "Access to %s %s is restricted and you "
                                "are not in the authorized list." %
                                (kind, rid), "GatedRepo")
        return repo

    def take_rev(self, rest):
        """Split the revision off rest (raw segments): the shortest prefix
        naming a known revision, else the first segment."""
        st = self.server.state
        for k in range(1, len(rest) + 1):
            rev = urllib.parse.unquote("/".join(rest[:k]))
            if st.known_rev(rev):
                return rev, rest[k:]
        if not rest:
            return "", []
        return urllib.parse.unquote(rest[0]), rest[1:]

    def commit_for(self, repo, rev):
        c = self.server.state.resolve_rev(repo, rev)
        if c is None:
            raise HTTPError(404, "Invalid rev id: %s" % rev,
                            "RevisionNotFound")
        return c

    # -- /api -----------------------------------------------------------

    def api(self, kind, segs, body):
        st = self.server.state
        known = st.repos[kind]
        r = split_repo(segs, None, known)
        if r is not None:               # /api/models/{repo}: default branch
            if self.command not in ("GET", "HEAD"):
                raise HTTPError(405, "Method not allowed")
            repo = self.check_auth(kind, r[0], False)
            return self.api_info(repo, self.commit_for(repo, st.revision))
        for keyword in ("revision", "tree", "refs", "paths-info"):
            r = split_repo(segs, keyword, known)
            if r is not None:
                break
        else:
            raise HTTPError(404, "Not Found")
        rid, rest = r
        want = "POST" if keyword == "paths-info" else "GET"
        if self.command not in (want, "HEAD" if want == "GET" else want):
            raise HTTPError(405, "Method not allowed")
        repo = self.check_auth(kind, rid, False)
        if keyword == "refs":
            return self.api_refs(repo)
        if keyword == "revision":
            if not rest:
                raise HTTPError(404, "Not Found")
            rev = urllib.parse.unquote("/".join(rest))
            return self.api_info(repo, self.commit_for(repo, rev))
        rev, rest = self.take_rev(rest)
        commit = self.commit_for(repo, rev)
        if keyword == "tree":
            return self.api_tree(repo, commit, rest)
        return self.api_paths_info(repo, body)

    def api_info(self, repo, commit):
        blobs = self.query.get("blobs", ["false"])[-1].lower() in ("true",
                                                                   "1")
        sibs = []
        for p in repo.paths:
            if not blobs:
                sibs.append({"rfilename": p})
                continue
            fe = repo.files[p]
            s = {"rfilename": p, "size": fe.size, "blobId": fe.oid}
            if fe.lfs:
                s["lfs"] = {"sha256": fe.sha256, "size": fe.size,
                            "pointerSize": len(fe.pointer)}
            sibs.append(s)
        self.send_json(200, {
            "id": repo.repo_id, "sha": commit, "private": False,
            "gated": self.server.state.gated_mode(repo), "disabled": False,
            "siblings": sibs})

    def api_refs(self, repo):
        st = self.server.state
        st.repo_hashed(repo)
        c = repo.commit
        out = {"branches": [{"name": st.revision,
                             "ref": "refs/heads/" + st.revision,
                             "targetCommit": c}],
               "tags": [{"name": t, "ref": "refs/tags/" + t,
                         "targetCommit": c} for t in sorted(st.tags)],
               "converts": []}
        if self.query.get("include_prs"):
            out["pullRequests"] = []
        self.send_json(200, out)

    def api_tree(self, repo, commit, rest):
        st = self.server.state
        sub = urllib.parse.unquote("/".join(rest)).strip("/")
        recursive = self.query.get("recursive", ["false"])[-1].lower() in (
            "true", "1")
        if sub and sub not in repo.dirs:
            raise HTTPError(404, "Entry not found", "EntryNotFound",
                            [("X-Repo-Commit", commit)])
        prefix = sub + "/" if sub else ""
        entries = []
        for e in repo.tree:
            p = e["path"]
            if not p.startswith(prefix):
                continue
            if not recursive and "/" in p[len(prefix):]:
                continue
            entries.append(e)
        try:
            cursor = max(0, int(self.query.get("cursor", ["0"])[-1]))
        except ValueError:
            raise HTTPError(400, "Invalid cursor")
        size = st.args.page_size
        page = entries[cursor:cursor + size]
        hdrs = []
        if cursor + size < len(entries):
            q = "recursive=%s&expand=%s&cursor=%d" % (
                "true" if recursive else "false",
                self.query.get("expand", ["false"])[-1], cursor + size)
            f = self.pick_fault(self.raw_path,
                                urllib.parse.unquote(self.raw_path),
                                ("longlink",), None)
            if f is not None:       # a cursor of f.arg more bytes
                q += "&pad=" + "p" * f.arg
            link = "%s://%s%s?%s" % (st.scheme, self.host_header(),
                                     self.raw_path, q)
            hdrs.append(("Link", '<%s>; rel="next"' % link))
        self.send_json(200, page, hdrs)

    def api_paths_info(self, repo, body):
        ctype = self.headers.get("Content-Type", "")
        paths = []
        try:
            if "json" in ctype:
                paths = json.loads(body.decode() or "{}").get("paths", [])
            else:
                paths = urllib.parse.parse_qs(body.decode()).get("paths", [])
        except (ValueError, AttributeError):
            raise HTTPError(400, "Bad request body")
        if isinstance(paths, str):
            paths = [paths]
        out = []
        for p in paths:
            p = str(p).strip("/")
            if p in repo.files:
                out.append(file_json(repo.files[p]))
            elif p in repo.dirs:
                out.append({"type": "directory",
                            "oid": hashlib.sha1(p.encode()).hexdigest(),
                            "size": 0, "path": p})
        self.send_json(200, out)

    # -- /resolve, /raw ---------------------------------------------------

    def resolve(self, kind, rid, rest, raw):
        st = self.server.state
        repo = self.check_auth(kind, rid, True)
        rev, rest = self.take_rev(rest)
        commit = self.commit_for(repo, rev)
        path = urllib.parse.unquote("/".join(rest))
        fe = repo.files.get(path)
        hc = [("X-Repo-Commit", commit)]
        if fe is None:
            raise HTTPError(404, "Entry not found", "EntryNotFound", hc)
        if raw:
            if fe.lfs:
                data = fe.pointer
                return self.send_simple(200, hc + [
                    ("ETag", '"%s"' % fe.oid)], data, "text/plain")
            return self.serve_file(fe, hc + [("ETag", '"%s"' % fe.oid)])
        if not fe.lfs:
            return self.serve_file(fe, hc + [("ETag", '"%s"' % fe.oid),
                                             ("Accept-Ranges", "bytes")])
        expires = int(time.time()) + 3600
        loc = "/cdn/%s?expires=%d&sig=%s" % (fe.sha256, expires,
                                             st.sign(fe.sha256, expires))
        if not st.args.relative_redirects:
            loc = "%s://%s:%d%s" % (st.scheme, st.args.cdn_host, st.port,
                                    loc)
        self.send_simple(302, hc + [
            ("Location", loc),
            ("X-Linked-Etag", '"%s"' % fe.sha256),
            ("X-Linked-Size", str(fe.size))])

    # -- /cdn -------------------------------------------------------------

    def cdn(self, sha_seg):
        sha = urllib.parse.unquote(sha_seg).lower()
        fe = self.server.state.cdn_lookup(sha) if HEX64.match(sha) else None
        if fe is None:
            return self.send_json(404, {"error": "NoSuchKey"})
        # A CDN's own ETag is not the content hash (hf-hub.md 1.5).
        etag = '"%s"' % hashlib.md5(sha.encode()).hexdigest()
        self.serve_file(fe, [("ETag", etag), ("Accept-Ranges", "bytes"),
                             ("Cache-Control", "public, max-age=604800")])

    # -- bodies -------------------------------------------------------------

    def serve_file(self, fe, headers):
        fe.ensure_hashed()
        total = fe.size
        rh = self.headers.get("Range")
        rng = parse_range(rh, total) if rh is not None else None
        dec = urllib.parse.unquote(self.raw_path)
        is_get = self.command == "GET"

        def shifted(first, last):
            shift = -4096 if first >= 4096 else 4096
            a, b = first + shift, min(last + shift, total - 1)
            return (a, b) if a <= b and a < total else None

        def length_if(f):
            if f.kind == "norange" or rng is None or rng == "unsat":
                return total
            return rng[1] - rng[0] + 1

        def applicable(f):
            k = f.kind
            if k == "norange":
                return rng is not None
            if k == "badrange":
                return isinstance(rng, tuple) and shifted(*rng) is not None
            if k == "longrange":
                return isinstance(rng, tuple) and rng[1] + 1 < total
            if not is_get or rng == "unsat":
                return False
            n = length_if(f)
            if k in ("truncate", "short"):
                return n > f.arg
            if k == "stall":
                return n >= 2
            return n > 0   # corrupt, slow, extra, extraclose, mutate, endless

        fault = self.pick_fault(self.raw_path, dec, BODY_FAULTS, applicable)
        kind = fault.kind if fault is not None else None
        if fault is not None and fault.kind == "norange":
            rng = None
        if rng == "unsat":
            return self.send_simple(416, headers + [
                ("Content-Range", "bytes */%d" % total)])
        if rng is None:
            code, first, last = 200, 0, total - 1
        else:
            code, (first, last) = 206, rng
            if kind == "badrange":
                first, last = shifted(first, last)
            elif kind == "longrange":
                last = min(last + fault.arg, total - 1)
        length = last - first + 1 if total else 0
        said = length       # what the headers announce
        if kind == "short":
            length = said = fault.arg
            last = first + length - 1
        elif kind == "extra":
            said = length + fault.arg
        elif kind in ("extraclose", "endless"):
            said = None
            self.close_connection = True
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, header_safe(v))
        self.send_header("Content-Type", "application/octet-stream")
        if code == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" %
                             (first, last, total))
        if said is None:
            self.send_header("Connection", "close")
        else:
            self.send_header("Content-Length", str(said))
        self.end_headers()
        if not is_get or length == 0:
            return
        self.send_body(fe, first, length, fault)

    def send_body(self, fe, first, length, fault):
        st = self.server.state
        kind = fault.kind if fault is not None else None
        limit = length
        if kind == "truncate":
            limit = fault.arg
        with open(fe.apath, "rb") as f:
            if kind in (None, "norange", "badrange", "longrange", "short",
                        "extra", "extraclose", "endless") and \
                    self.server.ssl_ctx is None:
                self.sendfile(f, fe.sha256, first, length)
                self.send_junk(fault)
                return
            f.seek(first)
            sent = 0
            flip_at = length // 2
            half = length // 2
            bps = fault.arg if kind == "slow" else 0
            chunk = CHUNK if not bps else max(1, min(CHUNK, int(bps) // 20))
            t0 = time.monotonic()
            stalled = False
            while sent < limit:
                n = min(chunk, limit - sent)
                if kind == "stall" and not stalled:
                    if sent == half:
                        stalled = True
                        if not self.wait_client(fault.arg):
                            self.close_connection = True
                            return
                    else:
                        n = min(n, half - sent)
                buf = f.read(n)
                if not buf:
                    raise RuntimeError("%s shrank" % fe.apath)
                if kind == "corrupt" and sent <= flip_at < sent + len(buf):
                    i = flip_at - sent
                    buf = buf[:i] + bytes([buf[i] ^ 0xFF]) + buf[i + 1:]
                if kind == "mutate":
                    x = self.fault_n % 255 + 1
                    buf = buf.translate(bytes(b ^ x for b in range(256)))
                self.wfile.write(buf)
                sent += len(buf)
                st.add_bytes(fe.sha256, len(buf))
                if bps:
                    ahead = sent / bps - (time.monotonic() - t0)
                    if ahead > 0:
                        time.sleep(ahead)
        self.send_junk(fault)
        if kind == "truncate":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def send_junk(self, fault):
        """What extra, extraclose and endless send after the body."""
        kind = fault.kind if fault is not None else None
        if kind in ("extra", "extraclose"):
            left = fault.arg
            while left > 0:
                n = min(left, len(JUNK))
                self.wfile.write(JUNK[:n])
                left -= n
        elif kind == "endless":
            bps = fault.arg or 65536
            n = max(1, bps // 20)
            while True:     # until the client hangs up (a write fails)
                self.wfile.write((JUNK * (n // len(JUNK) + 1))[:n])
                self.wfile.flush()
                time.sleep(n / bps)

    def sendfile(self, f, sha, first, length):
        st = self.server.state
        sock = self.connection
        sent = 0
        try:
            while sent < length:
                n = min(64 * CHUNK, length - sent)
                k = sock.sendfile(f, first + sent, n)
                if k <= 0:
                    raise BrokenPipeError("sendfile sent nothing")
                sent += k
                st.add_bytes(sha, k)
        except DISCONNECT_ERRORS:
            # Partial progress of the failed call is in the file position.
            try:
                extra = f.tell() - (first + sent)
                st.add_bytes(sha, extra)
            except (OSError, ValueError):
                pass
            raise

    def wait_client(self, secs):
        """Sleep secs, or until the client goes away (False then)."""
        deadline = time.monotonic() + secs
        sock = self.connection
        tls = self.server.ssl_ctx is not None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            try:
                r, _, _ = select.select([sock], [], [], min(left, 0.2))
            except (OSError, ValueError):
                return False
            if r and not tls:
                try:
                    if sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) \
                            == b"":
                        return False
                except BlockingIOError:
                    pass
                except OSError:
                    return False
                time.sleep(min(left, 0.2))  # readable but alive: pipelined


class OriginServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(self, addr, handler, state, ssl_ctx):
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        self.state = state
        self.ssl_ctx = ssl_ctx
        super().__init__(addr, handler)

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, DISCONNECT_ERRORS) or isinstance(exc, OSError):
            return
        log("error serving %s:\n%s" % (client_address,
                                        traceback.format_exc()))


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Local Hugging Face Hub origin for tests.")
    ap.add_argument("--repo", action="append", metavar="ORG/NAME=DIR")
    ap.add_argument("--dataset", action="append", metavar="ORG/NAME=DIR")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--cdn-host", default="localhost")
    ap.add_argument("--revision", default="main")
    ap.add_argument("--tag", action="append", metavar="NAME=REV")
    ap.add_argument("--token")
    ap.add_argument("--gated", action="append",
                    metavar="auto|manual|ORG/NAME=MODE")
    ap.add_argument("--page-size", type=int, default=1000)
    ap.add_argument("--fault", action="append", metavar="SPEC")
    ap.add_argument("--relative-redirects", action="store_true",
                    help="LFS Location without scheme and host")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    if args.page_size < 1:
        ap.error("--page-size must be at least 1")
    if bool(args.tls_cert) != bool(args.tls_key):
        ap.error("--tls-cert and --tls-key go together")

    state = State(args)
    ctx = None
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        ctx.set_alpn_protocols(["http/1.1"])
    server = OriginServer((args.host, 0), Handler, state, ctx)
    state.port = server.server_address[1]

    stop = threading.Event()

    def on_signal(signum, frame):
        if not stop.is_set():
            log("signal %d: shutting down" % signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    t = threading.Thread(target=server.serve_forever,
                         kwargs={"poll_interval": 0.1}, daemon=True)
    t.start()

    tmp = "%s.tmp.%d" % (args.port_file, os.getpid())
    with open(tmp, "w") as f:
        f.write("%d\n" % state.port)
    os.replace(tmp, args.port_file)
    if args.verbose:
        log("listening on %s://%s:%d" % (state.scheme, args.host,
                                          state.port))
    while not stop.wait(0.5):
        pass
    # A handler or a TLS handshake stuck on a silent client must not keep
    # the process alive: shut down for at most two seconds, then leave.
    closer = threading.Thread(target=server.shutdown, daemon=True)
    closer.start()
    closer.join(2)
    server.server_close()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
