"""app: a GPT-2 served by FastAPI, its weights acquired through modelcached.

    MODEL=org/name MODELCACHE_SOCKET=... MODELCACHE_STORE=... \\
        python3 -m uvicorn app:app --port 8000        # or ./run

At startup the app asks the daemon for MODEL with the Python client
(modelcache.acquire: it waits while the model is pulled and holds a lease
that keeps its files in the store, taken again after a restart of the
daemon), loads it once with the numpy reference
(../gpt2/reference.py), and releases the lease at shutdown.  Started by
modelcache-preload, which holds the lease itself, it loads
MODELCACHE_MODEL_DIR instead and acquires nothing.

    GET /healthz                          {"ok": true, "model": ..., ...}
    GET /generate?prompt=...&max_tokens=N greedy: {"text": ..., "tokens": N,
                                          "token_ids": [...], "ms": ...}

No request reads the model's files: the weights are in memory (fp32
safetensors stay mapped).
"""

import os
import sys
import threading
import time

from fastapi import FastAPI, HTTPException, Query

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "gpt2"))
import reference  # noqa: E402

try:
    import modelcache
except ImportError:     # not installed: the client in this source tree
    sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
    import modelcache

app = FastAPI(title="modelcache GPT-2 example")
state = {"model": None, "lease": None, "name": None, "dir": None,
         "loaded_ms": None}
# numpy's matrix products use every core already; one request at a time.
lock = threading.Lock()


def say(fmt, *args):
    sys.stderr.write("app: " + fmt % args + "\n")
    sys.stderr.flush()


@app.on_event("startup")
def startup():
    t0 = time.monotonic()
    d = os.environ.get("MODELCACHE_MODEL_DIR")
    if d:
        name = os.environ.get("MODEL", d)
        say("loading %s from MODELCACHE_MODEL_DIR=%s (the lease is "
            "modelcache-preload's)", name, d)
    else:
        name = os.environ.get("MODEL")
        if not name:
            raise RuntimeError("set MODEL (org/name[@revision]), or start "
                               "under modelcache-preload")
        # keep: the lease is taken again if the daemon restarts.
        lease = modelcache.acquire(name, keep=True)
        state["lease"] = lease
        d = lease.dir
        say("acquired %s at %s (lease %s)", name, d, lease.lease)
    try:
        state["model"] = reference.load(d)
    except BaseException:
        shutdown()
        raise
    state["name"], state["dir"] = name, d
    state["loaded_ms"] = round((time.monotonic() - t0) * 1000, 1)
    say("model loaded in %s ms", state["loaded_ms"])


@app.on_event("shutdown")
def shutdown():
    lease, state["lease"] = state["lease"], None
    state["model"] = None
    if lease is not None:
        lease.release()
        say("released %s", lease.lease)


@app.get("/healthz")
def healthz():
    m = state["model"]
    if m is None:
        raise HTTPException(503, "no model loaded")
    lease = state["lease"]
    return {"ok": True, "model": state["name"], "dir": state["dir"],
            "lease": lease.lease if lease is not None else None,
            "commit": lease.commit if lease is not None else None,
            "n_layer": m.n_layer, "n_embd": m.n_embd,
            "vocab_size": m.vocab_size, "dtype": m.dtype,
            "load_ms": state["loaded_ms"]}


@app.get("/generate")
def generate(prompt: str = "", max_tokens: int = Query(16, ge=0)):
    m = state["model"]
    if m is None:
        raise HTTPException(503, "no model loaded")
    t0 = time.monotonic()
    ids = m.tokenizer.encode(prompt)
    try:
        with lock:
            out = m.generate(ids, max_tokens)
    except ValueError as e:
        raise HTTPException(400, str(e)) from None
    return {"prompt": prompt, "text": m.tokenizer.decode(out),
            "tokens": len(out), "token_ids": out, "prompt_tokens": len(ids),
            "ms": round((time.monotonic() - t0) * 1000, 3)}
