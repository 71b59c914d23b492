"""Every error is an answer: JSON `{"error": {"code", "message"}}` with the right status.

Routes raise `ApiError` (or let werkzeug raise its HTTP errors); this module turns
all of them, and Redis outages, into the same JSON shape.
"""

from __future__ import annotations

import json
import logging
import threading
import time

import redis
from flask import Flask, Response, request
from redis.exceptions import ClusterDownError
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from membership.core import metrics

log = logging.getLogger(__name__)

# Errors that mean "Redis is not there right now" (answer 503, serve stale, retry later).
# MasterNotFoundError (Sentinel: no primary known, e.g. mid-failover) is a ConnectionError.
UNAVAILABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, ClusterDownError)
REFUSES_WRITES = "Redis refuses writes it cannot persist (is its disk full?)"

MAX_BODY_BYTES = 1024 * 1024
RETRY_AFTER_SECONDS = 5
# A full disk is freed by a person, not in seconds.
DISK_RETRY_AFTER_SECONDS = 60
# Redis trouble by kind: (error code, the sentence, what the log says, its level, Retry-After).
_STORE_ERRORS = {
    "unavailable": (
        "redis_unavailable",
        "the data store is unreachable; try again shortly",
        "is unreachable",
        logging.WARNING,
        RETRY_AFTER_SECONDS,
    ),
    "disk": (
        "writes_refused",
        "the data store cannot write to its disk (it may be full); reads go on; try again later",
        "refused a write it cannot persist (is its disk full?)",
        logging.ERROR,
        DISK_RETRY_AFTER_SECONDS,
    ),
    "refused": (
        "redis_error",
        "the data store refused the operation; try again shortly",
        "refused the operation",
        logging.ERROR,
        RETRY_AFTER_SECONDS,
    ),
}


class _Every:
    """True at most once every `seconds` (per process)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.last = -seconds
        self.lock = threading.Lock()

    def allow(self) -> bool:
        now = time.monotonic()
        with self.lock:
            if now - self.last < self.seconds:
                return False
            self.last = now
            return True


_disk_lines = _Every(10.0)


def refuses_writes(exc: BaseException) -> bool:
    """Redis refuses writes because it cannot persist them (`MISCONF`: its disk is full or
    failing); it still answers reads (PING included: it is refused too). In a transaction
    redis-py names the refused command first ("Command # 1 (...) of pipeline caused error:
    MISCONF ..."); in a script Redis wraps it ("Error running script ...: -MISCONF ...")."""
    if not isinstance(exc, redis.exceptions.ResponseError):
        return False
    reply = str(exc).rpartition("caused error: ")[2]
    return reply.startswith("MISCONF") or (
        reply.startswith("Error running script") and ": -MISCONF " in reply
    )


def store_kind(exc: redis.exceptions.RedisError) -> str:
    """`unavailable` (down, timing out), `disk` (MISCONF: it cannot persist writes, a full
    disk) or `refused` (READONLY after a failover, OOM, anything else it answered)."""
    if isinstance(exc, UNAVAILABLE):
        return "unavailable"
    return "disk" if refuses_writes(exc) else "refused"


def store_error_response(exc: redis.exceptions.RedisError):
    """Down or timing out; refusing writes it cannot persist (MISCONF); or refusing otherwise
    (READONLY after a failover, OOM). Either way the store, not the request, is at fault: 503
    with Retry-After, counted and logged."""
    return store_error(exc, request.method, request.path).response()


def store_error(exc: redis.exceptions.RedisError, method: str, path: str) -> ApiError:
    """`store_error_response` for any door: the 503 to answer, counted and logged."""
    kind = store_kind(exc)
    code, sentence, what, level, retry_after = _STORE_ERRORS[kind]
    metrics.redis_error(kind)
    if kind == "disk" and not _disk_lines.allow():
        level = logging.DEBUG  # the same cause on every write: once in a while is enough
    log.log(level, "Redis %s during %s %s: %s", what, method, path, exc)
    return ApiError(503, code, sentence, headers={"Retry-After": str(retry_after)})


def unexpected_error(method: str, path: str) -> ApiError:
    """The 500 for an error nobody expected, logged with its traceback (call it in an
    `except` block): nothing internal in the answer."""
    log.exception("unhandled error during %s %s", method, path)
    return ApiError(500, "internal_error", "an unexpected error occurred")


class ApiError(Exception):
    """An error a client should see: status, a stable machine code and a sentence."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: dict | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def response(self) -> Response:
        return error_response(self.status, self.code, self.message, self.headers)


def too_large(limit: int) -> ApiError:
    """The 413 of a body over `limit` bytes."""
    return ApiError(413, "request_entity_too_large", f"request body is larger than {limit} bytes")


def error_body(code: str, message: str) -> bytes:
    """The JSON of every error answer: `{"error": {"code", "message"}}` and a newline."""
    text = json.dumps({"error": {"code": code, "message": message}}, separators=(",", ":"))
    return text.encode("ascii") + b"\n"


def status_line(status: int) -> str:
    """A WSGI status line, as werkzeug writes it (`413 REQUEST ENTITY TOO LARGE`)."""
    return f"{status} {HTTP_STATUS_CODES.get(status, 'UNKNOWN').upper()}"


def error_response(status: int, code: str, message: str, headers: dict | None = None):
    response = Response(error_body(code, message), status=status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _shown(text: str, limit: int = 200) -> str:
    """What a client sent, echoed in an error: bounded (a 64 KB path is not echoed whole)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _code_for(exc: HTTPException) -> str:
    return (exc.name or "error").lower().replace(" ", "_").replace("'", "")


def http_error(exc: HTTPException, method: str, path: str) -> ApiError:
    """A werkzeug HTTP error (404, 405, a client gone mid-body...) as the answer we give."""
    messages = {
        404: f"no such endpoint: {_shown(path)}",
        405: f"{_shown(method)} is not allowed on {_shown(path)}",
        413: f"request body is larger than {MAX_BODY_BYTES} bytes",
    }
    status = exc.code or 500
    # A 5xx's description may have been written with internals in it (abort(500, str(e))):
    # answer with its class's stock sentence instead.
    described = type(exc).description if status >= 500 else exc.description
    headers = {}
    if exc.code == 405 and exc.valid_methods:
        headers["Allow"] = ", ".join(exc.valid_methods)
    return ApiError(
        status, _code_for(exc), messages.get(status, described or exc.name), headers=headers
    )


def init_app(app: Flask) -> None:
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES

    app.register_error_handler(ApiError, ApiError.response)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        return http_error(exc, request.method, request.path).response()

    app.register_error_handler(redis.exceptions.RedisError, store_error_response)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        return unexpected_error(request.method, request.path).response()
