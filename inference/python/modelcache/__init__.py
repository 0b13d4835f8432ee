"""modelcache: the Python client of modelcached's handshake.

Standard library only.  In a server's startup hook:

    import modelcache

    model = modelcache.acquire("org/name")     # waits while it is pulled
    load_weights(model.dir)                    # verified, leased files
    ...
    model.release()                            # or: with acquire(...) as m

The lease lives as long as the connection (or until release()), so a
model in use is never evicted.  The daemon's end (a sidecar restarted)
ends it too: with acquire(..., keep=True) a thread takes it again, on the
same commit, whenever that happens.  Errors are ModelcacheError subclasses
named after the protocol's error codes (modelcache-protocol(7)).
"""

import json
import logging
import os
import select
import socket
import threading
import time

__all__ = [
    "acquire", "Model", "ModelcacheError", "DaemonUnreachable",
    "ConnectionLost", "ProtocolError", "BadRequest", "UnsupportedProtocol", "NotFound",
    "Unauthorized", "Forbidden", "OriginUnavailable", "IntegrityError",
    "NoSpace", "Timeout", "Busy", "ShuttingDown", "InternalError",
]

__version__ = "0.1.0"

SOCKET_DEFAULT = "/run/modelcache/modelcache.sock"
LINE_MAX = 1024 * 1024
# Seconds past its own timeout that a silent daemon is given.
GRACE_S = 10
# keep=True: seconds between tries to take the lease again, growing.
BACKOFF_MIN_S = 0.1
BACKOFF_MAX_S = 2.0
# ... and between two log records of its failures.
SAY_EVERY_S = 60
# The longest a keeper thread waits before it looks at its model again.
KEEP_POLL_S = 5

log = logging.getLogger("modelcache")


class ModelcacheError(Exception):
    """A failure, with the protocol's error code and the daemon's words."""

    code = "internal"

    def __init__(self, message, code=None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class DaemonUnreachable(ModelcacheError):
    code = "unreachable"


class ConnectionLost(ModelcacheError):
    """The daemon went away (restarted, killed) in the middle."""
    code = "connection_lost"


class ProtocolError(ModelcacheError):
    """The daemon answered something that is not protocol 1."""
    code = "protocol"


class BadRequest(ModelcacheError):
    code = "bad_request"


class UnsupportedProtocol(ModelcacheError):
    code = "unsupported_protocol"


class NotFound(ModelcacheError):
    code = "not_found"


class Unauthorized(ModelcacheError):
    code = "unauthorized"


class Forbidden(ModelcacheError):
    code = "forbidden"


class OriginUnavailable(ModelcacheError):
    code = "origin_unavailable"


class IntegrityError(ModelcacheError):
    code = "integrity"


class NoSpace(ModelcacheError):
    code = "no_space"


class Timeout(ModelcacheError):
    code = "timeout"


class Busy(ModelcacheError):
    code = "busy"


class ShuttingDown(ModelcacheError):
    code = "shutting_down"


class InternalError(ModelcacheError):
    code = "internal"


_ERRORS = {cls.code: cls for cls in (
    BadRequest, UnsupportedProtocol, NotFound, Unauthorized, Forbidden,
    OriginUnavailable, IntegrityError, NoSpace, Timeout, Busy, ShuttingDown,
    InternalError)}


class _Connection:
    def __init__(self, path, timeout):
        self.path = path
        self.doing = "connecting"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
        except socket.timeout:
            self.sock.close()
            raise DaemonUnreachable(
                "the daemon at %s did not answer in time" % path) from None
        except OSError as e:
            self.sock.close()
            raise DaemonUnreachable(
                "cannot reach the daemon at %s: %s" % (path, e)) from None
        self.buf = b""

    def _gone(self, why):
        return ConnectionLost("the daemon at %s went away while %s: %s" %
                              (self.path, self.doing, why))

    def _line(self):
        while b"\n" not in self.buf:
            if len(self.buf) > LINE_MAX:
                raise ProtocolError("the daemon at %s sent a line over 1 MiB"
                                    % self.path)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise Timeout("no answer from the daemon at %s in time "
                              "while %s" % (self.path, self.doing)) from None
            except OSError as e:
                raise self._gone(e.strerror or e) from None
            if not chunk:
                raise self._gone("it closed the connection (was it "
                                 "restarted?)")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        try:
            answer = json.loads(line)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise ProtocolError("the daemon at %s answered a line that is "
                                "not a JSON object" % self.path)
        return answer

    def ask(self, request, progress=None, doing=None):
        self.doing = doing or "answering %s" % request.get("op")
        try:
            self.sock.sendall(json.dumps(request).encode() + b"\n")
        except socket.timeout:
            raise Timeout("the daemon at %s took no request in time" %
                          self.path) from None
        except OSError as e:
            raise self._gone(e.strerror or e) from None
        files = None
        while True:
            answer = self._line()
            if answer.get("event") == "files":
                # A chunked ready answer: its files come first.
                files = (files or []) + list(answer.get("files") or [])
                continue
            if answer.get("event") != "progress":
                break
            if progress is not None:
                # Bytes in place: fetched, and found in the store.
                progress(answer.get("done_bytes", 0) +
                         answer.get("reused_bytes", 0),
                         answer.get("total_bytes", 0))
        if files is not None and isinstance(answer.get("files"), list):
            answer["files"] = files + answer["files"]
        if answer.get("ok") is True:
            return answer
        err = answer.get("error")
        if not isinstance(err, dict):
            err = {}
        code = err.get("code", "internal")
        raise _ERRORS.get(code, InternalError)(
            str(err.get("message", "")), code)

    def close(self):
        try:
            # Wakes a keeper thread waiting on the socket, which close()
            # alone may not.
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def _pinned(model, commit):
    """The reference naming model's commit: an hf:// one (or the bare
    org/name) gets @commit for its revision; any other names its content
    already."""
    if not model.startswith("hf://") and "://" in model:
        return model
    return model.split("@", 1)[0] + "@" + commit


def _take(path, client, model, timeout, progress=None):
    """A new connection holding a lease on model: (connection, answer)."""
    conn = _Connection(path, timeout)
    try:
        # "chunked": a model of any number of files (see ask()).
        conn.ask({"op": "hello", "protocol": 1, "client": client,
                  "chunked": True}, doing="saying hello")
        req = {"op": "acquire", "model": model, "wait": True}
        if timeout is not None:
            req["timeout_ms"] = max(1, int(timeout * 1000))
            # The daemon's own timeout answers first, with its words;
            # this one is for a daemon that hangs.
            conn.sock.settimeout(timeout + GRACE_S)
        answer = conn.ask(req, progress, doing="acquiring %s" % model)
        # A release is answered at once; never hang on one.
        conn.sock.settimeout(GRACE_S)
        return conn, answer
    except BaseException:
        conn.close()
        raise


class Model:
    """A ready model: where it is, its files, and the lease that holds it."""

    def __init__(self, conn, answer, store):
        self._conn = conn
        self._lock = threading.Lock()  # _conn, lease: keeper vs release
        self._released = False
        try:
            self.name = answer["model"]
            self.repo = answer["repo"]
            self.commit = answer["commit"]
            self.lease = answer["lease"]
            self.stale = bool(answer.get("stale"))
            self.relative_dir = answer["dir"]
            self.files = [dict(f) for f in answer["files"]]
            if "nfiles" in answer and answer["nfiles"] != len(self.files):
                raise ValueError("nfiles")
        except (KeyError, TypeError, ValueError):
            raise ProtocolError("the daemon's ready answer lacks a field: "
                                "%s" % json.dumps(answer)[:200]) from None
        self.store = store
        self.dir = (os.path.join(store, self.relative_dir)
                    if store else self.relative_dir)

    def path(self, name):
        """The path of one of the model's files."""
        return os.path.join(self.dir, name)

    def release(self):
        """Ends the lease and closes the connection; idempotent."""
        with self._lock:
            self._released = True
            conn, self._conn = self._conn, None
            if conn is None:
                return
            try:
                conn.ask({"op": "release", "lease": self.lease})
            except ModelcacheError:
                pass  # the connection's end ends the lease anyway
            finally:
                conn.close()

    def _keep(self, ref, path, client, timeout):
        """The keeper thread: waits for the connection's end, then takes
        the lease on ref again, until release()."""
        while True:
            conn = self._conn
            if conn is None:
                return
            try:
                # Bounded: a socket closed by release() while this waits
                # may not wake it.
                select.select([conn.sock], [], [], KEEP_POLL_S)
            except (OSError, ValueError):
                pass  # closed by release()
            with self._lock:
                if self._conn is not conn:
                    return
                try:
                    data = conn.sock.recv(
                        65536, socket.MSG_PEEK | socket.MSG_DONTWAIT)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if data:  # nothing asked: the daemon's, unasked; dropped
                    conn.sock.recv(len(data))
                    continue
                conn.close()
                self._conn = None
            log.warning("the daemon closed the connection, ending the lease "
                        "on %s (commit %.12s); taking it again",
                        self.name, self.commit)
            if not self._retake(ref, path, client, timeout):
                return

    def _retake(self, ref, path, client, timeout):
        """Tries until the lease is taken again (True) or the model is
        released meanwhile (False)."""
        wait, said = BACKOFF_MIN_S, None
        while True:
            try:
                conn, answer = _take(path, client, ref, timeout)
                if answer.get("commit") != self.commit:
                    conn.close()
                    raise ModelcacheError("the reference names another "
                                          "commit now")
                with self._lock:
                    if self._released:
                        conn.close()
                        return False
                    self._conn, self.lease = conn, answer.get("lease")
                log.warning("lease taken again: %s, commit %.12s, lease %s",
                            ref, self.commit, self.lease)
                return True
            except ModelcacheError as e:
                if said is None or time.monotonic() - said >= SAY_EVERY_S:
                    said = time.monotonic()
                    log.warning("cannot take the lease again yet (%s); "
                                "trying on", e)
            if self._released:
                return False
            time.sleep(wait)
            wait = min(wait * 2, BACKOFF_MAX_S)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
        return False

    def __repr__(self):
        return "<modelcache.Model %s@%s %d files>" % (
            self.repo, self.commit[:12], len(self.files))


def acquire(model, socket_path=None, store=None, timeout=None,
            progress=None, client="modelcache-python/" + __version__,
            keep=False):
    """Acquires model and returns a Model holding its lease.

    socket_path defaults to $MODELCACHE_SOCKET, then the standard path;
    store (where this process sees the store) to $MODELCACHE_STORE, and
    Model.dir is absolute when it is known.  timeout is in seconds (None
    or 0: wait as long as the pull takes); the daemon answers Timeout when
    it passes, and the pull goes on without this client.  progress(done,
    total) is called while the model is pulled.  With keep, a daemon
    thread takes the lease again, on the same commit, each time the
    daemon's end ends it, until release(); it logs to the "modelcache"
    logger.
    """
    path = socket_path or os.environ.get("MODELCACHE_SOCKET") or \
        SOCKET_DEFAULT
    store = store or os.environ.get("MODELCACHE_STORE")
    timeout = timeout if timeout and timeout > 0 else None
    conn, answer = _take(path, client, model, timeout, progress)
    try:
        m = Model(conn, answer, store)
    except BaseException:
        conn.close()
        raise
    if keep:
        threading.Thread(target=m._keep, daemon=True,
                         name="modelcache-keeper",
                         args=(_pinned(model, m.commit), path, client,
                               timeout)).start()
    return m
