"""The member endpoints (/v1/member/token, sign-in, verify, token/refresh, portal): HTTP in,
`service.Members` does the rest. Bodies, limits and answers: docs/checkout-and-members.md.
"""

from __future__ import annotations

import hashlib
import hmac

from flask import Blueprint, Response, current_app, jsonify, render_template, request, url_for

from membership.core import i18n
from membership.core.errors import ApiError, too_large
from membership.core.runtime import per_app, runtime
from membership.http import rate_limits
from membership.http.bodies import json_body
from membership.http.cors import open_to_site
from membership.http.rate_limits import RateLimitExceeded, rate_limited
from membership.ledger.events import iso
from membership.ledger.queries import Queries
from membership.members import messages, rules
from membership.members.links import Links
from membership.members.outbox import Outbox
from membership.members.service import Issued, Members
from membership.members.stripe_calls import StripeCalls
from membership.stripe import api as stripe_api

bp = Blueprint("members", __name__)

MAX_BODY_BYTES = 8 * 1024
CACHE_CONTROL = "private, no-store"
FORM = "application/x-www-form-urlencoded"


class _Endpoint:
    """What the member endpoints need, built once per app."""

    def __init__(self, app) -> None:
        rt = runtime(app)
        settings = rt.settings
        clock = settings.extra.get("member_clock")  # tests age links and tokens without waiting
        self.members = Members(
            settings,
            Queries(rt.redis, rt.keys),
            Links(rt.redis, rt.keys),
            Outbox("sign-in"),
            StripeCalls(stripe_api.interactive(app)),
            **({"clock": clock} if clock else {}),
        )
        self.allowed = settings.allowed_origins
        self.publication = settings.publication_name
        self.join_url = settings.join_url
        self._email_key = hmac.new(
            settings.secret_key.encode(), b"membership.sign-in-email", hashlib.sha256
        ).digest()

    def email_key(self, email: str) -> str:
        return hmac.new(self._email_key, email.encode(), hashlib.sha256).hexdigest()[:32]


_ep = per_app(bp, _Endpoint)


def members_of(app) -> Members:
    """The app's member service (tests wait on its outbox)."""
    return _ep(app).members


def _mimetype() -> str:
    return request.environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()


def _invalid(exc: rules.RequestError) -> ApiError:
    return ApiError(400, "invalid_request", str(exc))


def _token_answer(issued: Issued) -> Response:
    return jsonify(token=issued.token, expires_at=iso(issued.claim.expires_at), member=True)


# --- After checkout ---------------------------------------------------------------------------


@bp.get("/v1/member/token")
@rate_limited("checkout")
def token_after_checkout():
    return _token_answer(_ep().members.token_after_checkout(request.args.get("session_id")))


# --- Sign-in by email -------------------------------------------------------------------------


def _page(state: str, status: int, *, locale: str, return_url: str | None, problem: str = ""):
    ep = _ep()
    copy = messages.page(
        locale,
        state,
        publication=ep.publication,
        link_seconds=ep.members.links.seconds,
        problem=problem,
    )
    html = render_template(
        "member_link.html",
        locale=locale,
        state=state,
        copy=copy,
        publication=ep.publication,
        return_url=return_url,
        sign_in_url=url_for("members.sign_in"),
        back_url=return_url or ep.join_url,
    )
    return Response(html, status=status, content_type="text/html; charset=utf-8")


def _too_many(exc: RateLimitExceeded, what: str, form: bool, locale: str):
    seconds = exc.retry_after
    message = f"too many sign-in requests {what}; try again in {seconds} s"
    if form:
        response = _page("invalid", 429, locale=locale, return_url=None, problem=message)
        response.headers["Retry-After"] = str(seconds)
        return response
    raise ApiError(429, "rate_limited", message, headers={"Retry-After": str(seconds)})


@bp.post("/v1/member/sign-in", provide_automatic_options=False)
def sign_in():
    ep = _ep()
    limits = current_app.extensions[rate_limits.EXTENSION]
    form = _mimetype() == FORM
    if form and (request.content_length or 0) > MAX_BODY_BYTES:
        raise too_large(MAX_BODY_BYTES)
    try:
        locale = i18n.resolve_locale(request.form.get("locale")) if form else "en"
    except i18n.CopyError:
        locale = "en"
    try:
        limits.check("sign_in")
    except RateLimitExceeded as exc:
        return _too_many(exc, "from this address", form, locale)
    ep.members.sign_in_ready()
    if form:
        body = {k: request.form.get(k) for k in ("email", "return_url", "locale")}
    else:
        body = json_body(MAX_BODY_BYTES)
    try:
        asked = rules.parse_sign_in(body, ep.allowed)
    except rules.RequestError as exc:
        if not form:
            raise _invalid(exc) from None
        return _page("invalid", 400, locale=locale, return_url=None, problem=str(exc))
    try:
        limits.check("sign_in_email", key=ep.email_key(asked.email))
    except RateLimitExceeded as exc:
        return _too_many(exc, "for this email", form, asked.locale)
    ep.members.ask_sign_in(asked)
    if form:
        return _page("sent", 202, locale=asked.locale, return_url=asked.return_url)
    response = jsonify(accepted=True, link_minutes=ep.members.links.seconds // 60)
    response.status_code = 202
    return response


@bp.get("/v1/member/verify")
def verify():
    code = request.args.get("code")
    if not code:
        raise ApiError(400, "invalid_query", "code: required, as in the link of the email")
    use, issued = _ep().members.verify(code)
    if issued is None:
        return _page(use.state, 410, locale=use.locale or "en", return_url=use.return_url)
    response = Response(status=303)
    response.headers["Location"] = f"{use.return_url}#member_token={issued.token}"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


# --- Renewal and self-service -----------------------------------------------------------------


@bp.post("/v1/member/token/refresh", provide_automatic_options=False)
def refresh():
    try:
        token = rules.parse_token(json_body(MAX_BODY_BYTES))
    except rules.RequestError as exc:
        raise _invalid(exc) from None
    return _token_answer(_ep().members.refresh(token))


@bp.post("/v1/member/portal", provide_automatic_options=False)
@rate_limited("checkout")
def portal():
    ep = _ep()
    ep.members.stripe_ready()
    try:
        token, return_url = rules.parse_portal(json_body(MAX_BODY_BYTES), ep.allowed)
    except rules.RequestError as exc:
        raise _invalid(exc) from None
    return jsonify(url=ep.members.portal(token, return_url))


# Every answer here is one reader's (a token, a page for one link): never cached.
open_to_site(
    bp,
    "/v1/member/sign-in",
    "/v1/member/token/refresh",
    "/v1/member/portal",
    cache_control=CACHE_CONTROL,
)
