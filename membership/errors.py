"""Every error is an answer: JSON `{"error": {"code", "message"}}` with the right status.

Routes raise `ApiError` (or let werkzeug raise its HTTP errors); this module turns
all of them, and Redis outages, into the same JSON shape.
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from membership import metrics
from membership.store import UNAVAILABLE, refuses_writes

log = logging.getLogger(__name__)

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
    kind = store_kind(exc)
    code, sentence, what, level, retry_after = _STORE_ERRORS[kind]
    metrics.redis_error(kind)
    if kind == "disk" and not _disk_lines.allow():
        level = logging.DEBUG  # the same cause on every write: once in a while is enough
    log.log(level, "Redis %s during %s %s: %s", what, request.method, request.path, exc)
    return error_response(503, code, sentence, {"Retry-After": str(retry_after)})


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


def error_response(status: int, code: str, message: str, headers: dict | None = None):
    response = jsonify(error={"code": code, "message": message})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _shown(text: str, limit: int = 200) -> str:
    """What a client sent, echoed in an error: bounded (a 64 KB path is not echoed whole)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _code_for(exc: HTTPException) -> str:
    return (exc.name or "error").lower().replace(" ", "_").replace("'", "")


def init_app(app: Flask) -> None:
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES

    @app.before_request
    def _refuse_large_bodies():
        # Refuse by the declared length before any handler runs; werkzeug's
        # MAX_CONTENT_LENGTH still guards chunked bodies that declare none.
        if "CONTENT_LENGTH" not in request.environ:  # GETs: nothing to parse, on the hot path
            return
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            raise RequestEntityTooLarge()

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        messages = {
            404: f"no such endpoint: {_shown(request.path)}",
            405: f"{_shown(request.method)} is not allowed on {_shown(request.path)}",
            413: f"request body is larger than {MAX_BODY_BYTES} bytes",
        }
        status = exc.code or 500
        # A 5xx's description may have been written with internals in it (abort(500, str(e))):
        # answer with its class's stock sentence instead.
        described = type(exc).description if status >= 500 else exc.description
        response = error_response(
            status, _code_for(exc), messages.get(status, described or exc.name)
        )
        if exc.code == 405 and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    app.register_error_handler(redis.exceptions.RedisError, store_error_response)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        if isinstance(exc, HTTPException):  # pragma: no cover - handled above
            return _http_error(exc)
        log.exception("unhandled error during %s %s", request.method, request.path)
        return error_response(500, "internal_error", "an unexpected error occurred")
