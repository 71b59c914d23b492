"""Chunked request bodies, read whole before Flask sees them.

A chunked body declares no length, so werkzeug would cut it at MAX_CONTENT_LENGTH
and hand the view a truncated body (a webhook then fails its signature check).
`BufferedBody` reads it first, up to the 1 MiB limit: over the limit is a 413,
and a body the server could not decode is a 400, both with the service's JSON
error body. Bodies with a Content-Length, and GETs, pass through untouched.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable

from flask import request

from membership.errors import ApiError


class BufferedBody:
    """WSGI middleware: a chunked body is read whole (at most `limit` bytes) before the app."""

    def __init__(self, app: Callable, limit: int) -> None:
        self.app = app
        self.limit = limit

    def __call__(self, environ, start_response):
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not environ.get("CONTENT_LENGTH"):
            try:
                body = self._read(environ["wsgi.input"])
            except Exception:  # the server's parser refused a chunk (gunicorn: InvalidChunkSize)
                return _error(
                    start_response, 400, "bad_request", "the chunked request body is malformed"
                )
            if len(body) > self.limit:
                return _error(
                    start_response,
                    413,
                    "request_entity_too_large",
                    f"request body is larger than {self.limit} bytes",
                )
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            del environ["HTTP_TRANSFER_ENCODING"]
        return self.app(environ, start_response)

    def _read(self, stream) -> bytes:
        parts, size = [], 0
        while size <= self.limit:
            chunk = stream.read(min(65536, self.limit + 1 - size))
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
        return b"".join(parts)


def _error(start_response, status: int, code: str, message: str):
    reason = {400: "BAD REQUEST", 413: "REQUEST ENTITY TOO LARGE"}[status]
    body = json.dumps({"error": {"code": code, "message": message}}, separators=(",", ":"))
    body = body.encode() + b"\n"
    start_response(
        f"{status} {reason}",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("X-Content-Type-Options", "nosniff"),
            ("Connection", "close"),  # the rest of the body is never read
        ],
    )
    return [body]


# --- JSON bodies of the public POST endpoints ------------------------------------------------


class BodyError(ValueError):
    """A body that is not UTF-8 JSON; the message says how (`body: not JSON (...)`)."""


def parse_json(raw: bytes) -> object:
    """UTF-8 JSON text -> a value; BodyError otherwise."""
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BodyError("body: not UTF-8 text") from None
    except ValueError as exc:
        where = (
            f" ({exc.msg} at character {exc.pos})" if isinstance(exc, json.JSONDecodeError) else ""
        )
        raise BodyError(f"body: not JSON{where}") from None
    except RecursionError:  # thousands of nested brackets
        raise BodyError("body: nested too deeply") from None


def read_limited(limit: int, types: tuple[str, ...] = ("application/json",)) -> bytes:
    """The request's body, at most `limit` bytes (413 past it, whatever the length header
    says), sent as one of `types` (415 otherwise). Errors are the service's JSON errors."""
    if request.mimetype not in types:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Content-Type: expected {' or '.join(types)}, got {request.mimetype[:60] or 'none'}",
        )
    too_large = ApiError(
        413, "request_entity_too_large", f"request body is larger than {limit} bytes"
    )
    if (request.content_length or 0) > limit:
        raise too_large
    raw = request.stream.read(limit + 1)  # a body without a length is bounded too
    if len(raw) > limit:
        raise too_large
    return raw


def json_body(limit: int, types: tuple[str, ...] = ("application/json",)) -> object:
    """`read_limited`, parsed as JSON: a 400 `invalid_json` that says what is wrong."""
    try:
        return parse_json(read_limited(limit, types))
    except BodyError as exc:
        raise ApiError(400, "invalid_json", str(exc)) from None
