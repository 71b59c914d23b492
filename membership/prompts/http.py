"""`POST /v1/prompt`: which asks this page view shows (the shell around `filters.decide`).

- The body: JSON (`Content-Type: application/json`, else 415), at most 16 KiB (413; a
  chunked body is read whole first by membership.http.bodies, so it is measured too),
  decoded and validated in one pass by `wire.decode` (msgspec) when it is valid, else by
  json.loads and `request.parse_request` (400 naming the field; unknown fields ignored).
- The plain valid case never reaches this route: `lane.PromptLane` answers it in front of
  Flask with the same `answer` below. This route answers the rest (?debug, errors, ...).
- The member token (`member`) is checked with SECRET_KEY: missing, forged or expired is a
  non-member, never an error. The country comes from the CDN header COUNTRY_HEADER.
- No Redis command: campaigns and banner data come from the process's `PromptSnapshot`,
  the campaigns compiled there (`compiled`) into only the checks that can fail; the
  prompts' copy is written once per banner state (`render.cached_prompt_dict`).
- A decision id per request, one signed token per prompt and per holdout entry; the answer
  is `Cache-Control: private, no-store` (it is one reader's), with CORS for ALLOWED_ORIGINS.
- `?debug=1` with `Authorization: Bearer <STAFF_API_TOKEN>` adds each campaign's trace;
  without that token (or with STAFF_API_TOKEN unset) it is a 403.
- Not rate-limited: the site calls it once per page view, and the CDN sits in front.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import time

from flask import Blueprint, Response, current_app, request

from membership.errors import ApiError
from membership.http.bodies import BodyError, parse_json, read_limited
from membership.http.cors import Origins
from membership.prompts import render, snapshot, wire
from membership.prompts.filters import decide
from membership.prompts.request import PromptRequest, RequestError, parse_request
from membership.prompts.tokens import Tokens, new_decision_id
from membership.runtime import runtime

bp = Blueprint("prompts", __name__)

ENDPOINT_EXTENSION = "membership.prompts.endpoint"
MAX_BODY_BYTES = 16 * 1024
CACHE_CONTROL = "private, no-store"
# Codes CDNs send when they do not know: Cloudflare's XX (unknown) and T1 (Tor), ZZ.
UNKNOWN_COUNTRIES = frozenset({"XX", "T1", "ZZ"})
_DEBUG_VALUES = {"": True, "1": True, "true": True, "0": False, "false": False}
FORBIDDEN = "?debug=1 needs Authorization: Bearer <STAFF_API_TOKEN>"


def country_from(raw: str | None) -> str | None:
    """The CDN's country header -> a two-letter upper-case code, None when unknown."""
    if not raw:
        return None
    code = raw.strip().upper()
    if len(code) != 2 or not (code.isascii() and code.isalpha()) or code in UNKNOWN_COUNTRIES:
        return None
    return code


class _Endpoint:
    """What a request needs, built once per app."""

    def __init__(self, app) -> None:
        settings = runtime(app).settings
        self.snapshot = snapshot.for_app(app)
        self.tokens = Tokens(settings.secret_key)
        self.views = render.BannerViews(
            publication=settings.publication_name, join_url=settings.join_url
        )
        self.publication = settings.publication_name
        self.join_url = settings.join_url
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


@bp.record_once
def _attach(state) -> None:
    state.app.extensions[ENDPOINT_EXTENSION] = _Endpoint(state.app)


def _debug_requested(query_string: str) -> bool:
    if not query_string:  # the usual case: nothing to parse
        return False
    values = request.args.getlist("debug")
    if not values:
        return False
    if len(values) > 1 or values[0].lower() not in _DEBUG_VALUES:
        raise ApiError(400, "invalid_query", "debug: expected 1 (or 0), once")
    return _DEBUG_VALUES[values[0].lower()]


def _encode(body: dict) -> bytes:
    try:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate a reader sent, echoed in a debug reason
        return json.dumps(body, separators=(",", ":")).encode("ascii")


def answer(ep: _Endpoint, req: PromptRequest, environ: dict, debug: bool) -> tuple[bytes, list]:
    """A valid request -> the decision's JSON and its headers (all but the app-wide
    nosniff and X-Request-ID). The one decision both doors run: the Flask view below and
    `lane.PromptLane`, which answers the common case without Flask's per-request work."""
    now = time.time()
    member = (
        req.member_token is not None and ep.tokens.read_member(req.member_token, now) is not None
    )
    live = ep.snapshot.live()  # first: the first decision of a process may wait for data
    facts = ep.views.facts(ep.snapshot.banner())
    numbers = facts.numbers
    country = country_from(environ.get(ep.country_key))
    at = dt.datetime.fromtimestamp(now, dt.UTC)
    if debug:  # every filter of every campaign, with its reason
        decision = decide(
            live.campaigns, req, at, member, country, numbers.count_known, numbers.has_goal
        )
    else:  # the same prompts and holdout, by the checks that can fail
        decision = live.compiled.decide(
            req, at, member, country, numbers.count_known, numbers.has_goal
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
        publication=ep.publication,
        join_url=ep.join_url,
        debug=debug,
        cache=facts.prompts,
    )
    data = _encode(body)
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(data))),
        ("Cache-Control", CACHE_CONTROL),
        ("Vary", "Origin"),
    ]
    origin = environ.get("HTTP_ORIGIN")
    if ep.origins.allowed(origin):
        headers.append(("Access-Control-Allow-Origin", origin))
    return data, headers


def _request() -> PromptRequest:
    """The body, validated: msgspec's one pass for the common case (`wire.decode`), else
    json.loads and the full validator, whose 400s name what is wrong."""
    raw = read_limited(MAX_BODY_BYTES)
    req = wire.decode(raw)
    if req is not None:
        return req
    try:
        return parse_request(parse_json(raw))
    except BodyError as exc:
        raise ApiError(400, "invalid_json", str(exc)) from None
    except RequestError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from None


@bp.post("/v1/prompt", provide_automatic_options=False)
def prompt():
    ep: _Endpoint = current_app.extensions[ENDPOINT_EXTENSION]
    environ = request.environ
    debug = _debug_requested(environ.get("QUERY_STRING", ""))
    if debug:
        ep.check_staff(environ.get("HTTP_AUTHORIZATION"))
    data, headers = answer(ep, _request(), environ, debug)
    # The headers `_headers` would add are set here at once (it skips an answer so
    # marked): on the path of every page view, werkzeug's header objects cost more than
    # the rest of the response.
    response = Response(data, headers=headers)
    response.cors_done = True  # for Origins.finish, should another hook call it
    response.prompt_headers_done = True
    return response


@bp.route("/v1/prompt", methods=["OPTIONS"])
def prompt_preflight():
    return current_app.extensions[ENDPOINT_EXTENSION].origins.preflight("POST", "Content-Type")


@bp.after_request
def _headers(response: Response) -> Response:
    """Every answer here is one reader's (errors too): never stored by a cache."""
    if getattr(response, "prompt_headers_done", False):  # a decision: set by the view
        return response
    if response.status_code != 204:
        response.headers["Cache-Control"] = CACHE_CONTROL
    return current_app.extensions[ENDPOINT_EXTENSION].origins.finish(response)
