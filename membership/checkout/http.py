"""`POST /v1/checkout`: a Stripe Checkout Session for a reader who clicked an ask.

The body is validated by `request.parse` before Stripe is called; a valid prompt token gives
the session its attribution, a missing or bad one only none. Answers, limits and Stripe's
trouble: docs/checkout-and-members.md, "Checkout and conversions".
"""

from __future__ import annotations

import time

from flask import Blueprint, jsonify

from membership.checkout.request import CheckoutInvalid, Offer, parse, session_params
from membership.core.errors import ApiError
from membership.core.runtime import per_app, runtime
from membership.http.bodies import json_body
from membership.http.cors import open_to_site
from membership.http.rate_limits import rate_limited
from membership.prompts import counts
from membership.prompts.tokens import DecisionClaim, Tokens, new_decision_id
from membership.stripe import api as stripe_api

bp = Blueprint("checkout", __name__)

MAX_BODY_BYTES = 4 * 1024
DOING = "creating the checkout session"


class _Endpoint:
    def __init__(self, app) -> None:
        settings = runtime(app).settings
        self.offer = Offer.from_settings(settings)
        self.tokens = Tokens(settings.secret_key)
        self.stripe = stripe_api.interactive(app)

    def claim(self, token: str | None, now: float) -> DecisionClaim | None:
        """The token's decision when it is one we issued, fit to attribute; else None."""
        claim = self.tokens.read_decision(token, now) if token else None
        if claim is None:
            return None
        try:
            counts.check_event(claim, "holdout" if claim.holdout else "click")
        except counts.CountsError:
            return None
        return claim


_endpoint = per_app(bp, _Endpoint)


@bp.post("/v1/checkout", provide_automatic_options=False)
@rate_limited("checkout")
def checkout():
    ep: _Endpoint = _endpoint()
    if not ep.stripe.configured:
        raise stripe_api.failure(stripe_api.StripeNotConfigured(), DOING)
    try:
        req = parse(json_body(MAX_BODY_BYTES), ep.offer)
    except CheckoutInvalid as exc:
        raise ApiError(400, "invalid_checkout", str(exc)) from None
    claim = ep.claim(req.token, time.time())
    reference = claim.decision if claim is not None else new_decision_id()
    params = session_params(req, ep.offer, reference, claim)

    def create(client) -> str:
        session = client.v1.checkout.sessions.create(params=params)
        return stripe_api.https_url(stripe_api.answer_dict(session, "the session"), "the session")

    try:
        url = ep.stripe.call(create)
    except stripe_api.FAILURES as exc:
        raise stripe_api.failure(exc, DOING) from None
    return jsonify(url=url)


open_to_site(bp, "/v1/checkout", cache_control="no-store")  # one reader's answer
