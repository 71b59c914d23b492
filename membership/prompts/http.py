"""`POST /v1/prompt`: a plain WSGI endpoint, the one door of its path, which answers every case
itself through the service's error functions and sends no Redis command (docs/prompts.md,
"One door")."""

from __future__ import annotations

import datetime as dt
import hmac
import json
import time
from collections.abc import Callable
from urllib.parse import parse_qsl

import msgspec

from membership.core import errors
from membership.core.errors import ApiError
from membership.core.runtime import runtime
from membership.http.bodies import read_environ_limited
from membership.http.cors import Origins
from membership.http.outer import Endpoint
from membership.prompts import render, snapshot
from membership.prompts.filters import decide
from membership.prompts.request import PromptRequest, RequestError, decode
from membership.prompts.tokens import Tokens, new_decision_id

PATH = "/v1/prompt"
MAX_BODY_BYTES = 16 * 1024
CACHE_CONTROL = "private, no-store"
# Codes CDNs send when they do not know: Cloudflare's XX (unknown) and T1 (Tor), ZZ.
UNKNOWN_COUNTRIES = frozenset({"XX", "T1", "ZZ"})
# ?debug= (lower-cased) -> whether it asks for the trace
DEBUG_VALUES = {"1": True, "0": False, "true": True, "false": False, "": True}
FORBIDDEN = "?debug=1 needs Authorization: Bearer <STAFF_API_TOKEN>"


def country_from(raw: str | None) -> str | None:
    """The CDN's country header -> a two-letter upper-case code, None when unknown."""
    if not raw:
        return None
    code = raw.strip().upper()
    if len(code) != 2 or not (code.isascii() and code.isalpha()) or code in UNKNOWN_COUNTRIES:
        return None
    return code


class PromptEndpoint(Endpoint):
    """The WSGI endpoint of `/v1/prompt`, with what a request needs, built once per app."""

    path = PATH

    def __init__(self, app) -> None:
        settings = runtime(app).settings
        self.snapshot = snapshot.for_app(app)
        self.tokens = Tokens(settings.secret_key)
        self.views = render.BannerViews(
            publication=settings.publication_name, join_url=settings.join_url
        )
        self.origins = Origins(settings.allowed_origins)
        # WSGI's name for the header: CF-IPCountry -> HTTP_CF_IPCOUNTRY
        self.country_key = "HTTP_" + settings.country_header.upper().replace("-", "_")
        token = settings.staff_api_token
        self.staff_token = token.encode("ascii") if token else None

    def check_staff(self, authorization: str | None) -> None:
        scheme, _, given = (authorization or "").strip().partition(" ")
        ok = (
            self.staff_token is not None
            and scheme.lower() == "bearer"
            and hmac.compare_digest(given.strip().encode("latin-1"), self.staff_token)
        )
        if not ok:
            raise ApiError(403, "forbidden", FORBIDDEN)

    def handle(self, environ: dict) -> tuple[bytes, list]:
        debug = _debug_requested(environ.get("QUERY_STRING", ""))
        if debug:
            self.check_staff(environ.get("HTTP_AUTHORIZATION"))
        return answer(self, _request(environ), environ, debug)

    def own_headers(self, environ: dict, headers: list) -> list:
        """An answer's caching rule and CORS (not for a method it does not have: no route)."""
        headers.append(("Cache-Control", CACHE_CONTROL))
        return self.cors(environ, headers)

    def preflight(self, environ: dict, start_response: Callable) -> list[bytes]:
        """A 204 that grants the method and header only to an allowed origin."""
        headers = self.origins.grant(environ.get("HTTP_ORIGIN"), "POST", "Content-Type")
        start_response(errors.status_line(204), self.cors(environ, headers))
        return []

    def cors(self, environ: dict, headers: list) -> list:
        """`headers` with `Vary: Origin` and, for an allowed origin, its grant."""
        headers.append(("Vary", "Origin"))
        origin = environ.get("HTTP_ORIGIN")
        if self.origins.allowed(origin):
            headers.append(("Access-Control-Allow-Origin", origin))
        return headers


def _debug_requested(query_string: str) -> bool:
    if not query_string:  # the usual case: nothing to parse
        return False
    # As werkzeug reads a query string: the WSGI string's bytes, as UTF-8.
    text = query_string.encode("latin-1").decode("utf-8", "replace")
    values = [value for name, value in parse_qsl(text, keep_blank_values=True) if name == "debug"]
    if not values:
        return False
    if len(values) > 1 or values[0].lower() not in DEBUG_VALUES:
        raise ApiError(400, "invalid_query", "debug: expected 1 (or 0), once")
    return DEBUG_VALUES[values[0].lower()]


_to_json = msgspec.json.Encoder().encode


def _encode(body: dict) -> bytes:
    """Compact JSON, UTF-8, the text json.dumps(ensure_ascii=False) writes for an answer
    (text, whole numbers, and the banner's progress: a float in [0, 1] of 4 places, which
    both write alike), for far less than json.dumps costs."""
    try:
        return _to_json(body)
    except UnicodeEncodeError:  # a lone surrogate a reader sent, echoed in a debug reason
        return json.dumps(body, separators=(",", ":")).encode("ascii")


def answer(
    ep: PromptEndpoint, req: PromptRequest, environ: dict, debug: bool
) -> tuple[bytes, list]:
    """A valid request -> the decision's JSON and its content headers (the caching rule and
    CORS are the endpoint's `own_headers`; nosniff and X-Request-ID the outer layer's)."""
    now = time.time()
    member = (
        req.member_token is not None and ep.tokens.read_member(req.member_token, now) is not None
    )
    live = ep.snapshot.live()  # first: the first decision of a process may wait for data
    facts = ep.views.facts(ep.snapshot.banner())
    numbers = facts.numbers
    country = country_from(environ.get(ep.country_key))
    at = dt.datetime.fromtimestamp(now, dt.UTC)
    decision = decide(
        live.compiled, req, at, member, country, numbers.count_known, numbers.has_goal, debug=debug
    )
    decision_id = new_decision_id()

    def sign(campaign: str, variant: str | None) -> str:
        return ep.tokens.decision(decision_id, campaign, variant, req.reader, now)

    body = render.answer(
        decision,
        req.locale,
        numbers,
        ep.views.view(facts, req.locale) if decision.prompts else None,
        sign,
        publication=ep.views.publication,
        join_url=ep.views.join_url,
        debug=debug,
        cache=facts.prompts,
    )
    data = _encode(body)
    return data, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]


def _request(environ: dict) -> PromptRequest:
    """The body, read and validated (`request.decode`): a 400 names what is wrong."""
    try:
        return decode(read_environ_limited(environ, MAX_BODY_BYTES))
    except RequestError as exc:
        raise ApiError(400, exc.code, str(exc)) from None
