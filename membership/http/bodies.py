"""JSON bodies of the public POST endpoints: read within a limit, of a JSON type, parsed.

A chunked body has already been read whole by the outer layer (membership.http.outer),
which also refuses a declared length over 1 MiB; these add each endpoint's own limit.
"""

from __future__ import annotations

import json

from flask import request
from werkzeug.http import parse_options_header
from werkzeug.wsgi import get_content_length, get_input_stream

from membership.core.errors import ApiError, too_large


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
    """The Flask request's body: `read_environ_limited` of its environ."""
    return read_environ_limited(request.environ, limit, types)


def read_environ_limited(
    environ: dict, limit: int, types: tuple[str, ...] = ("application/json",)
) -> bytes:
    """A WSGI request's body, at most `limit` bytes (413 past it, whatever the length header
    says), sent as one of `types` (415 otherwise), read as werkzeug reads a request's stream.
    Errors are the service's JSON errors."""
    mimetype = environ.get("CONTENT_TYPE", "")
    if mimetype not in types:  # as the widgets send it: nothing to parse
        mimetype = parse_options_header(mimetype)[0].lower()
    if mimetype not in types:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Content-Type: expected {' or '.join(types)}, got {mimetype[:60] or 'none'}",
        )
    if (get_content_length(environ) or 0) > limit:
        raise too_large(limit)
    raw = get_input_stream(environ).read(limit + 1)  # a body without a length is bounded too
    if len(raw) > limit:
        raise too_large(limit)
    return raw


def json_body(limit: int, types: tuple[str, ...] = ("application/json",)) -> object:
    """`read_limited`, parsed as JSON: a 400 `invalid_json` that says what is wrong."""
    try:
        return parse_json(read_limited(limit, types))
    except BodyError as exc:
        raise ApiError(400, "invalid_json", str(exc)) from None
