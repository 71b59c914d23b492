"""The outer WSGI layer: what every request gets, whoever answers it (the Flask app or a plain
WSGI endpoint beside it, such as `POST /v1/prompt`), done once:

- the request id (`logs.request_id_of`), bound for the request's log records and returned
  in `X-Request-ID` (but by a script: the same file for every request, light on the wire);
- the security headers (`security.py`), each unless the answer set its own;
- the body limit: a declared length over `limit` is a 413 before anyone reads it; a chunked
  body is read whole first (at most `limit` bytes) and handed on with its length, so no view
  sees a body cut short (werkzeug would cut it, failing a webhook's signature);
- the metrics: each request counted and timed by its endpoint (`metrics.count`).

A declared length over the limit is refused by whoever the request was for (a plain
endpoint's `refuse`, else Flask's error handler and the route's hooks), with their headers;
a chunked body's refusal is answered here, with `Connection: close`.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable, Mapping

import redis
from flask import Flask
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from membership.core import errors, logs, metrics
from membership.http.security import NOSNIFF

# Where an answer's endpoint label is left for the metrics by a plain endpoint.
ENDPOINT_KEY = "membership.endpoint"
_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
_READ_CHUNK = 65536
# A script is the same file for every request, cached for long, and logs nothing: its answer
# carries no request id, whose bytes would count in every article page's weight on the wire.
_SCRIPT = "text/javascript"


class Endpoint:
    """A plain WSGI endpoint the outer layer dispatches to by its exact path, answered without
    a Flask request. A subclass names its `path` and `methods` and gives `handle` (a request
    of one of those methods, but OPTIONS -> its body and headers) and `preflight` (OPTIONS);
    `own_headers` adds what its every answer carries. Every refusal is a JSON error built by
    core.errors, as the Flask app's: an ApiError as it says, a client gone mid-body as
    werkzeug's, a Redis error a 503, anything else a logged 500; a method it does not have a
    405 naming those it has, counted as `unmatched` (as a path without a route is)."""

    path: str
    methods: tuple[str, ...] = ("POST", "OPTIONS")

    def handle(self, environ: dict) -> tuple[bytes, list]:
        raise NotImplementedError

    def preflight(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        raise NotImplementedError

    def own_headers(self, environ: dict, headers: list) -> list:
        return headers

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "").upper()
        if method not in self.methods:
            error = errors.http_error(MethodNotAllowed(self.methods), method, self.path)
            return self.refuse(environ, start_response, error)
        environ[ENDPOINT_KEY] = self.path
        if method == "OPTIONS":
            return self.preflight(environ, start_response)
        try:
            data, headers = self.handle(environ)
        except errors.ApiError as exc:
            return self.refuse(environ, start_response, exc)
        except HTTPException as exc:  # a client gone mid-body (werkzeug's ClientDisconnected)
            error = errors.http_error(exc, method, self.path)
            return self.refuse(environ, start_response, error)
        except redis.RedisError as exc:
            return self.refuse(environ, start_response, errors.store_error(exc, method, self.path))
        except Exception:
            return self.refuse(environ, start_response, errors.unexpected_error(method, self.path))
        start_response("200 OK", self.own_headers(environ, headers))
        return [data]

    def refuse(
        self, environ: dict, start_response: Callable, error: errors.ApiError
    ) -> Iterable[bytes]:
        """An error answer (also the outer layer's: a body over the limit)."""
        body = errors.error_body(error.code, error.message)
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            *error.headers.items(),
        ]
        method = environ.get("REQUEST_METHOD", "").upper()
        if method in self.methods:
            environ[ENDPOINT_KEY] = self.path
            self.own_headers(environ, headers)
        start_response(errors.status_line(error.status), headers)
        return [] if method == "HEAD" else [body]


class Outer:
    """WSGI middleware around the whole service (see the module's docstring)."""

    def __init__(
        self,
        app: Flask,
        *,
        limit: int,
        html_headers: Mapping[str, str],
        endpoints: Mapping[str, Endpoint] | None = None,
    ) -> None:
        self.flask = app
        self.app = app.wsgi_app  # Flask's own WSGI callable, behind this layer
        self.limit = limit
        self.html = tuple(html_headers.items())
        self.endpoints = dict(endpoints or {})

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = time.perf_counter()
        request_id = logs.request_id_of(environ)
        bound = logs.bound_request_id.set(request_id)
        answered: list[int] = []

        def respond(status: str, headers: list, exc_info=None):
            answered.append(int(status[:3]))
            if ENDPOINT_KEY not in environ:  # Flask answers: its request is still current
                environ[ENDPOINT_KEY] = _rule_of(environ.get("werkzeug.request"))
            self._headers(headers, request_id)
            return start_response(status, headers, exc_info)

        try:
            endpoint = self.endpoints.get(environ.get("PATH_INFO", ""))
            refusal = self._body(environ)
            if refusal is not None and "Connection" in refusal.headers:
                result = _answer_error(respond, refusal)  # a chunked body: nobody's headers
            elif refusal is not None and endpoint is not None:
                result = endpoint.refuse(environ, respond, refusal)
            elif refusal is not None:
                result = self._refuse_in_flask(environ, respond, refusal)
            elif endpoint is not None:
                result = endpoint(environ, respond)
            else:
                result = self.app(environ, respond)
        finally:
            logs.bound_request_id.reset(bound)
        method = environ.get("REQUEST_METHOD", "").upper()
        metrics.count(
            environ.get(ENDPOINT_KEY, metrics.UNMATCHED),
            method if method in _METHODS else "other",
            answered[-1] if answered else 500,
            time.perf_counter() - started,
        )
        return result

    def _headers(self, headers: list, request_id: str) -> None:
        """The headers every answer gets, added in place to a start_response list."""
        names = {name.lower(): value for name, value in headers}
        content_type = names.get("content-type")
        if content_type is not None and content_type.startswith("text/html"):
            headers.extend(pair for pair in self.html if pair[0].lower() not in names)
        elif "x-content-type-options" not in names:
            headers.append(NOSNIFF)
        if "x-request-id" in names:
            headers[:] = [pair for pair in headers if pair[0].lower() != "x-request-id"]
        if content_type is None or not content_type.startswith(_SCRIPT):
            headers.append((logs.REQUEST_ID_HEADER, request_id))

    # --- The body limit ---------------------------------------------------------------

    def _body(self, environ: dict) -> errors.ApiError | None:
        """A refusal of the body (413 over the limit, 400 a chunked body the server could
        not decode), else None; a chunked body is read whole and put back with its length."""
        declared = environ.get("CONTENT_LENGTH")
        if declared:
            if declared.isdigit() and int(declared) > self.limit:
                return errors.too_large(self.limit)
            return None
        if "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            return None
        try:
            body = self._read(environ["wsgi.input"])
        except Exception:  # the server's parser refused a chunk (gunicorn: InvalidChunkSize)
            return errors.ApiError(
                400,
                "bad_request",
                "the chunked request body is malformed",
                headers={"Connection": "close"},
            )
        if len(body) > self.limit:
            error = errors.too_large(self.limit)
            error.headers["Connection"] = "close"  # the rest of the body is never read
            return error
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        del environ["HTTP_TRANSFER_ENCODING"]
        return None

    def _read(self, stream) -> bytes:
        parts, size = [], 0
        while size <= self.limit:
            chunk = stream.read(min(_READ_CHUNK, self.limit + 1 - size))
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
        return b"".join(parts)

    # --- Refusals ------------------------------------------------------------------------

    def _refuse_in_flask(self, environ: dict, start_response: Callable, error) -> Iterable[bytes]:
        """A refusal answered by Flask's error handler and after-request hooks, as the
        route it was sent to answers its own errors (its CORS and Cache-Control)."""
        with self.flask.request_context(environ):
            response = self.flask.finalize_request(self.flask.handle_user_exception(error))
            return response(environ, start_response)


def _rule_of(request) -> str:
    """The metrics' label of a Flask request: the rule it matched (`/v1/banner`)."""
    rule = getattr(request, "url_rule", None)
    return rule.rule if rule is not None else metrics.UNMATCHED


def _answer_error(start_response: Callable, error: errors.ApiError) -> list[bytes]:
    body = errors.error_body(error.code, error.message)
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    headers.extend(error.headers.items())
    start_response(errors.status_line(error.status), headers)
    return [body]
