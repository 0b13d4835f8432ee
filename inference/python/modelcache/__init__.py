"""modelcache: the Python client of modelcached's handshake.

Standard library only.  In a server's startup hook:

    import modelcache

    model = modelcache.acquire("org/name")     # waits while it is pulled
    load_weights(model.dir)                    # verified, leased files
    ...
    model.release()                            # or: with acquire(...) as m

The lease lives as long as the connection (or until release()), so a
model in use is never evicted.  Errors are ModelcacheError subclasses named
after the protocol's error codes (modelcache-protocol(7)).
"""

import json
import os
import socket

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
        while True:
            answer = self._line()
            if answer.get("event") != "progress":
                break
            if progress is not None:
                # Bytes in place: fetched, and found in the store.
                progress(answer.get("done_bytes", 0) +
                         answer.get("reused_bytes", 0),
                         answer.get("total_bytes", 0))
        if answer.get("ok") is True:
            return answer
        err = answer.get("error")
        if not isinstance(err, dict):
            err = {}
        code = err.get("code", "internal")
        raise _ERRORS.get(code, InternalError)(
            str(err.get("message", "")), code)

    def close(self):
        self.sock.close()


class Model:
    """A ready model: where it is, its files, and the lease that holds it."""

    def __init__(self, conn, answer, store):
        self._conn = conn
        try:
            self.name = answer["model"]
            self.repo = answer["repo"]
            self.commit = answer["commit"]
            self.lease = answer["lease"]
            self.stale = bool(answer.get("stale"))
            self.relative_dir = answer["dir"]
            self.files = [dict(f) for f in answer["files"]]
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
        if self._conn is None:
            return
        try:
            self._conn.ask({"op": "release", "lease": self.lease})
        except ModelcacheError:
            pass  # the connection's end ends the lease anyway
        finally:
            self._conn.close()
            self._conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
        return False

    def __repr__(self):
        return "<modelcache.Model %s@%s %d files>" % (
            self.repo, self.commit[:12], len(self.files))


def acquire(model, socket_path=None, store=None, timeout=None,
            progress=None, client="modelcache-python/" + __version__):
    """Acquires model and returns a Model holding its lease.

    socket_path defaults to $MODELCACHE_SOCKET, then the standard path;
    store (where this process sees the store) to $MODELCACHE_STORE, and
    Model.dir is absolute when it is known.  timeout is in seconds (None
    or 0: wait as long as the pull takes); the daemon answers Timeout when
    it passes, and the pull goes on without this client.  progress(done,
    total) is called while the model is pulled.
    """
    path = socket_path or os.environ.get("MODELCACHE_SOCKET") or \
        SOCKET_DEFAULT
    store = store or os.environ.get("MODELCACHE_STORE")
    timeout = timeout if timeout and timeout > 0 else None
    conn = _Connection(path, timeout)
    try:
        conn.ask({"op": "hello", "protocol": 1, "client": client},
                 doing="saying hello")
        req = {"op": "acquire", "model": model, "wait": True}
        if timeout is not None:
            req["timeout_ms"] = max(1, int(timeout * 1000))
            # The daemon's own timeout answers first, with its words;
            # this one is for a daemon that hangs.
            conn.sock.settimeout(timeout + GRACE_S)
        answer = conn.ask(req, progress, doing="acquiring %s" % model)
        # A release is answered at once; never hang on one.
        conn.sock.settimeout(GRACE_S)
        return Model(conn, answer, store)
    except BaseException:
        conn.close()
        raise
