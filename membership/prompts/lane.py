"""The common case of `POST /v1/prompt`, answered in front of Flask.

Every article page view asks for a decision, and Flask's own per-request work (a request
context, routing, before and after hooks, a Response object) costs about as much as the
decision itself. So the plain case is answered here, as a WSGI layer around the app:

- POST to exactly /v1/prompt, no query string, a JSON Content-Type, a declared length of
  at most 16 KiB, and a body that `wire.decode` takes as valid;
- the decision is the route's own (`http.answer`: same snapshot, filters, copy, tokens,
  headers), plus what the app's hooks add to every answer: `nosniff`, the request id, and
  the request's count and time in /metrics (`metrics.count`).

Anything else goes on to the Flask route, with the body the lane read put back: a
`?debug`, an OPTIONS, another type, a chunked or oversized body, a body to refuse (the
route names the field), and any error on the way (the route answers it as it always has,
503s and logging included). tests/test_prompt_lane.py checks that both doors answer alike.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable

from flask import Flask

from membership import logs, metrics
from membership.http.security import NOSNIFF
from membership.prompts import http, wire

PATH = "/v1/prompt"
# Exactly what the widget and most clients send; any other spelling takes the route, whose
# Content-Type check is werkzeug's.
JSON_TYPES = frozenset(
    ("application/json", "application/json; charset=utf-8", "application/json;charset=utf-8")
)


class PromptLane:
    """WSGI middleware: answers the plain valid `POST /v1/prompt`, passes on the rest."""

    def __init__(self, app: Flask, wsgi_app: Callable) -> None:
        self.endpoint = app.extensions[http.ENDPOINT_EXTENSION]
        self.app = wsgi_app  # the rest of the stack: what answers everything else

    def __call__(self, environ: dict, start_response):
        if (
            environ.get("PATH_INFO") != PATH
            or environ.get("REQUEST_METHOD") != "POST"
            or environ.get("QUERY_STRING")
            or environ.get("CONTENT_TYPE", "").lower() not in JSON_TYPES
        ):
            return self.app(environ, start_response)
        started = time.perf_counter()
        declared = environ.get("CONTENT_LENGTH", "")
        length = int(declared) if declared.isdigit() else 0
        if not 0 < length <= http.MAX_BODY_BYTES:
            return self.app(environ, start_response)
        try:
            raw = environ["wsgi.input"].read(length)
        except Exception:  # the client went away mid-body: the route says so
            raw = b""
        answered = self._answer(raw, environ) if len(raw) == length else None
        if answered is None:
            environ["wsgi.input"] = io.BytesIO(raw)
            return self.app(environ, start_response)
        data, headers = answered
        headers.append(NOSNIFF)
        headers.append((logs.REQUEST_ID_HEADER, logs.request_id_of(environ)))
        start_response("200 OK", headers)
        metrics.count(PATH, "POST", 200, time.perf_counter() - started)
        return [data]

    def _answer(self, raw: bytes, environ: dict) -> tuple[bytes, list] | None:
        """The decision, or None for the route to answer (an invalid body, or an error: the
        route runs the same code and answers it with its error handling)."""
        req = wire.decode(raw)
        if req is None:
            return None
        try:
            return http.answer(self.endpoint, req, environ, debug=False)
        except Exception:
            return None
