"""`POST /v1/prompt/events`: what the reader did with a prompt, each event counted once per
(token, type) by `counts.record` (docs/prompts.md, "Prompt events and results")."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from flask import Blueprint, jsonify, request

from membership.core.errors import ApiError
from membership.core.runtime import per_app, runtime
from membership.http.bodies import BodyError, parse_json, read_limited
from membership.http.cors import open_to_site
from membership.http.rate_limits import client_address, rate_limited
from membership.prompts import counts
from membership.prompts.tokens import Tokens

bp = Blueprint("prompt_events", __name__)

MAX_BODY_BYTES = 16 * 1024
CONTENT_TYPES = ("application/json", "text/plain")


# --- The body (pure) -----------------------------------------------------------------


def parse(data: object) -> list[tuple[object, object]]:
    """The events as (type, token) pairs, as sent: judging each is the caller's job.
    Unknown fields are ignored (the widget and the service may be upgraded apart)."""
    if not isinstance(data, dict):
        raise BodyError("body: expected a JSON object with `events`")
    if "events" not in data:
        raise BodyError("events: missing")
    events = data["events"]
    if not isinstance(events, list):
        raise BodyError("events: expected a list")
    if len(events) > counts.MAX_EVENTS:
        raise BodyError(f"events: at most {counts.MAX_EVENTS} per call, got {len(events)}")
    for i, event in enumerate(events):
        if not isinstance(event, dict):
            raise BodyError(f"events[{i}]: expected an object with `type` and `token`")
    return [(event.get("type"), event.get("token")) for event in events]


def judge(tokens: Tokens, events, now: float) -> tuple[list, int]:
    """(the countable (claim, type) pairs, how many were rejected)."""
    good = []
    for event_type, token in events:
        claim = tokens.read_decision(token, now)
        if claim is None:
            continue
        try:
            counts.check_event(claim, event_type)
        except counts.CountsError:
            continue
        good.append((claim, event_type))
    return good, len(events) - len(good)


# --- HTTP (the shell) -------------------------------------------------------------------


class _Endpoint:
    def __init__(self, settings) -> None:
        self.tokens = Tokens(settings.secret_key)
        self.hops = settings.trusted_proxy_hops
        self.per_address = settings.prompt_events_per_address
        self._address_key = hmac.new(
            settings.secret_key.encode(), b"membership.prompt-events-address", hashlib.sha256
        ).digest()

    def address_of(self, environ) -> str:
        """The client's address as the rate limits see it, as a keyed hash (96 bits): what
        its budget is named by, so no address is stored."""
        address = client_address(environ, self.hops)
        hashed = hmac.new(self._address_key, address.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(hashed[:12]).decode("ascii")


_endpoint = per_app(bp, lambda app: _Endpoint(runtime(app).settings))


@bp.post("/v1/prompt/events", provide_automatic_options=False)
@rate_limited("prompt_events")
def post_events():
    endpoint: _Endpoint = _endpoint()
    try:
        events = parse(parse_json(read_limited(MAX_BODY_BYTES, CONTENT_TYPES)))
    except BodyError as exc:
        raise ApiError(400, "invalid_events", str(exc)) from None
    now = time.time()
    good, rejected = judge(endpoint.tokens, events, now)
    rt = runtime()
    recorded = counts.record(
        rt.redis,
        rt.keys,
        good,
        now,
        address=endpoint.address_of(request.environ),
        per_address=endpoint.per_address,
    )
    response = jsonify(accepted=len(good) - recorded.excess, rejected=rejected + recorded.excess)
    response.status_code = 202
    response.headers["Cache-Control"] = "no-store"
    return response


open_to_site(bp, "/v1/prompt/events")
