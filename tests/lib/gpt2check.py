"""gpt2check.py: gpt2-server's answers against the numpy reference.

usage: gpt2check.py GPT2-DIR MODE MODEL-DIR URL ARG PROMPT...

GPT2-DIR holds reference.py; MODE is
  logits    /logits of each prompt within ARG of the reference's logits
  ids       /logits' ids equal to the reference tokenizer's
  generate  /generate of ARG tokens equal to the reference's greedy ids
            and text
One line per prompt on stdout, "0 TEXT" (agrees) or "1 TEXT" (differs),
and "# ..." lines with the details of a difference; tests/lib/gpt2.sh's
check turns them into TAP.
"""
import json, sys, urllib.parse, urllib.request
sys.path.insert(0, sys.argv[1])
import reference
mode, d, url, arg = sys.argv[2:6]
prompts = sys.argv[6:]
m = reference.load(d)

def server(path, **q):
    with urllib.request.urlopen(url + path + "?" +
                                urllib.parse.urlencode(q), timeout=60) as r:
        return json.loads(r.read().decode())

for p in prompts:
    ids = m.tokenizer.encode(p)
    # A TAP description: one line, no backslash (sh's echo reads them).
    name = "".join(c if c.isprintable() and c != "\\" else "?"
                   for c in p)
    name = "'" + (name if len(name) <= 40 else name[:37] + "...") + "'"
    if mode == "logits":
        got = server("/logits", prompt=p)
        # An empty prompt starts from bos_token_id, in both.
        ids = m.start_ids(ids)
        ref = m.logits(ids)
        diff = max(abs(float(a) - float(b))
                   for a, b in zip(got["logits"], ref))
        good = (got["ids"] == ids and len(got["logits"]) == len(ref) and
                diff <= float(arg))
        print(int(not good), "%s: %d ids, logits within %s (max %.3g)" %
              (name, len(ids), arg, diff))
        if not good:
            print("# ids server %s reference %s" % (got["ids"], ids))
    elif mode == "ids":
        got = server("/logits", prompt=p)["ids"]
        print(int(got != ids), "%s: the reference's %d ids" % (name, len(ids)))
        if got != ids:
            print("# server    %s\n# reference %s" % (got, ids))
    elif mode == "generate":
        got = server("/generate", prompt=p, max_tokens=arg)
        ref = m.generate(ids, int(arg))
        text = m.tokenizer.decode(ref)
        good = got["ids"] == ref and got["text"] == text and \
            got["tokens"] == len(ref)
        print(int(not good), "%s: the reference's %d greedy ids and text"
              % (name, len(ref)))
        if not good:
            print("# server    %r %s\n# reference %r %s" %
                  (got["text"], got["ids"], text, ref))
