#!/usr/bin/env python3
"""mcclient.py: a scriptable client of modelcached's socket, for tests.

Usage:
  mcclient.py SOCKET [--no-hello] [--chunked] [--hold] [--raw LINE ...]
              [JSON ...]

Connects to SOCKET, says hello (unless --no-hello), then sends each JSON
request in turn and prints every line the daemon answers, as it comes, one
per line on stdout.  An acquire waits through progress events for its
final answer.  --raw LINE sends LINE as it is (no JSON check), answered by
one line.  --hold keeps the connection (and so its leases) open after the
last answer until stdin reaches its end or the process gets SIGTERM.
--chunked says hello with "chunked":true; the "files" events of a chunked
ready answer are then printed as they come, like progress events.
Exits 0 when every final answer was {"ok":true,...}, 1 otherwise, 2 when
the daemon cannot be reached or hangs up.  Standard library only.
"""

import json
import signal
import socket
import sys


def main(argv):
    args = argv[1:]
    if not args:
        sys.stderr.write(__doc__)
        return 2
    path, rest = args[0], args[1:]
    hello, hold, chunked, reqs = True, False, False, []
    i = 0
    while i < len(rest):
        a = rest[i]
        if a == "--no-hello":
            hello = False
        elif a == "--hold":
            hold = True
        elif a == "--chunked":
            chunked = True
        elif a == "--raw":
            i += 1
            reqs.append(("raw", rest[i]))
        else:
            reqs.append(("json", a))
        i += 1
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError as e:
        sys.stderr.write("mcclient: cannot connect to %s: %s\n" % (path, e))
        return 2
    f = s.makefile("rwb")
    if hello:
        h = {"op": "hello", "protocol": 1, "client": "mcclient/1"}
        if chunked:
            h["chunked"] = True
        reqs.insert(0, ("json", json.dumps(h)))
    ok = True
    for kind, text in reqs:
        if kind == "json":
            json.loads(text)  # a test's own typo fails loudly
        f.write(text.encode() + b"\n")
        f.flush()
        while True:
            line = f.readline()
            if not line:
                sys.stderr.write("mcclient: the daemon hung up\n")
                return 2
            sys.stdout.write(line.decode())
            sys.stdout.flush()
            answer = json.loads(line)
            if answer.get("event") not in ("progress", "files"):
                break
        ok = ok and answer.get("ok") is True
    if hold:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0 if ok else 1))
        sys.stdin.read()
    s.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
