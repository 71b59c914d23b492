"""CORS for the public endpoints the news site calls from the browser (banner, prompt).

Only origins in ALLOWED_ORIGINS get `Access-Control-Allow-Origin` (their own origin echoed,
never `*`); every answer of such an endpoint carries `Vary: Origin`, since what it says
depends on the Origin header. A preflight is a 204 that grants the methods and headers
only to an allowed origin.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import Blueprint, Response, current_app, request

from membership.core.runtime import runtime

PREFLIGHT_MAX_AGE = 86400
EXTENSION = "membership.cors"


class Origins:
    """The allowed origins (already lower-cased by config), and the headers they get."""

    def __init__(self, allowed: Iterable[str]) -> None:
        self._allowed = frozenset(o.lower() for o in allowed)

    def allowed(self, origin: str | None) -> bool:
        return bool(origin) and origin.lower() in self._allowed

    def request_origin(self) -> str | None:
        """The request's Origin when it is allowed, else None."""
        origin = request.headers.get("Origin")
        return origin if self.allowed(origin) else None

    def grant(self, origin: str | None, methods: str, headers: str) -> list[tuple[str, str]]:
        """What a preflight from `origin` is granted: nothing unless the origin is allowed."""
        if not self.allowed(origin):
            return []
        return [
            ("Access-Control-Allow-Methods", methods),
            ("Access-Control-Allow-Headers", headers),
            ("Access-Control-Max-Age", str(PREFLIGHT_MAX_AGE)),
        ]

    def preflight(self, methods: str, headers: str) -> Response:
        """A 204 preflight answer (the after-request hook adds Allow-Origin and Vary)."""
        response = Response(status=204)
        del response.headers["Content-Type"]
        response.headers.extend(self.grant(request.headers.get("Origin"), methods, headers))
        return response

    def finish(self, response: Response) -> Response:
        """For an after-request hook: `Vary: Origin` and Allow-Origin on every answer
        (errors and preflights included) unless the view did it already (`cors_done`)."""
        if getattr(response, "cors_done", False):
            return response
        response.vary.add("Origin")
        origin = self.request_origin()
        if origin is not None:
            response.headers["Access-Control-Allow-Origin"] = origin
        return response


def open_to_site(bp: Blueprint, *rules: str, cache_control: str | None = None) -> None:
    """Let the news site's pages POST JSON to `rules` of `bp`: a preflight for each, and on
    every answer of `bp` (errors and 429s too) the CORS headers and, but on a preflight's,
    `Cache-Control: <cache_control>`."""

    def origins() -> Origins:
        return current_app.extensions[EXTENSION]

    @bp.record_once
    def _attach(state) -> None:
        allowed = runtime(state.app).settings.allowed_origins
        state.app.extensions.setdefault(EXTENSION, Origins(allowed))

    def preflight() -> Response:
        return origins().preflight("POST", "Content-Type")

    for rule in rules:
        bp.add_url_rule(rule, "preflight", preflight, methods=["OPTIONS"])

    @bp.after_request
    def _finish(response: Response) -> Response:
        if cache_control is not None and response.status_code != 204:
            response.headers["Cache-Control"] = cache_control
        return origins().finish(response)
