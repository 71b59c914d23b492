"""The OpenAPI piece of member recognition: tokens after Checkout, sign-in links, renewal and
the Billing Portal. The bodies are generated from the members.rules schemas that load them;
tests/http/test_openapi.py checks that they take what the service takes."""

from __future__ import annotations

import re

from membership.core import openapi as core_openapi
from membership.core.openapi import (
    HTML,
    LOCALE_QUERY,
    NOT_JSON,
    TEXT,
    answer,
    error,
    json_body,
    obj,
    ref,
    retry_later,
    too_large,
)
from membership.ledger.model import MAX_EMAIL
from membership.members import rules
from membership.stripe.openapi import STRIPE_FAILED, STRIPE_TIMEOUT

_UNREACHABLE = retry_later("Redis unreachable")
_NOT_CONFIGURED = error("STRIPE_API_KEY is not set (`stripe_not_configured`)")
_CHECKOUT_LIMIT = retry_later("Over RATE_LIMIT_CHECKOUT for this address")
_TOKEN = answer(
    "A member token (send it as `member` to /v1/prompt)",
    obj(
        {
            "token": TEXT,
            "expires_at": {
                "type": "string",
                "format": "date-time",
                "description": "At most 7 days ahead",
            },
            "member": {"const": True},
        }
    ),
)


def _body(schema: type, **exact) -> dict:
    """A body's JSON Schema, generated from the members.rules schema that loads it (apispec);
    `exact`: what a field takes, said more exactly than its type and length can."""
    body = core_openapi.from_marshmallow(schema)
    body["properties"].update(exact)
    return body


_RETURN_URL = ref("ReturnUrl")
_SIGN_IN = _body(
    rules.SignInBody,
    email={
        "type": "string",
        # members.rules: at most 254 characters, one @, no spaces (printable ASCII here: the
        # service also takes letters of other scripts, but no control or format character)
        "pattern": r"^[!-?A-~]+@[!-?A-~]+$",
        "maxLength": MAX_EMAIL,
        "examples": ["reader@example.org"],
    },
    return_url=_RETURN_URL,
    locale={"anyOf": [LOCALE_QUERY["schema"], {"type": "null"}], "examples": ["uk", "en"]},
)

OPENAPI = {
    "/v1/member/token": {
        "get": {
            "summary": "A member token after Stripe Checkout, the session the proof",
            "description": "The success page calls it with the `session_id` Stripe put in "
            "CHECKOUT_SUCCESS_URL. Stripe is asked for the session (its subscription, customer "
            "and payment intent expanded); when it is complete and paid, within a day of its "
            "completion, the answer is a token: subscription mode (the subscription active or "
            "trialing), for the subscription's customer (`cus_...`); payment mode (a one-time "
            "contribution), `once:cus_...` when the session created that customer, else "
            "`once:cs_...`. Never an email: an address typed at Checkout proves nothing. "
            "Works before the webhook has arrived; the ledger still decides the count. Shares "
            "RATE_LIMIT_CHECKOUT's budget per client address.",
            "parameters": [
                {
                    "name": "session_id",
                    "in": "query",
                    "required": True,
                    "schema": {"type": "string", "pattern": "^cs_[A-Za-z0-9_]{1,252}$"},
                }
            ],
            "responses": {
                "200": _TOKEN,
                "400": error("`session_id` missing or not a Checkout Session id"),
                "404": error("The session is open, unpaid, expired or unknown to Stripe"),
                "410": error("The session completed over a day ago (`session_too_old`)"),
                "429": _CHECKOUT_LIMIT,
                "502": error(STRIPE_FAILED),
                "503": _NOT_CONFIGURED,
                **STRIPE_TIMEOUT,
            },
        }
    },
    "/v1/member/sign-in": {
        "post": {
            "summary": "Mail a one-time sign-in link to a member",
            "description": "Every well-formed request gets the same 202, member or not, as "
            "fast: the lookup and the mail happen after the answer. A current member (a "
            "Stripe customer's email as the ledger knows it, or an offline member) gets an "
            "email (English or Ukrainian by `locale`) with `PUBLIC_URL/v1/member/verify?code=` "
            "good once, for 15 minutes. Rate-limited per client address (RATE_LIMIT_SIGN_IN) "
            "and per email asked for (RATE_LIMIT_SIGN_IN_EMAIL), whether a member or not. The "
            "form the 410 page posts (`application/x-www-form-urlencoded`) is answered with a "
            "page.",
            "requestBody": json_body(
                _SIGN_IN,
                "application/x-www-form-urlencoded",
                description="At most 8 KiB; unknown fields are ignored.",
            ),
            "responses": {
                "202": {
                    "description": "Accepted: if the email is a member's, a link is on its way",
                    "content": {
                        "application/json": {
                            "schema": obj(
                                {
                                    "accepted": {"const": True},
                                    "link_minutes": {"type": "integer", "examples": [15]},
                                }
                            )
                        },
                        **HTML,
                    },
                },
                "400": error(
                    "A malformed email, a return_url not on an ALLOWED_ORIGINS origin, a bad "
                    "locale (the field is named); a page for the form",
                    html=True,
                ),
                "413": too_large("8 KiB"),
                "415": error("Not JSON or a form"),
                "429": error(
                    "Over RATE_LIMIT_SIGN_IN for this address, or RATE_LIMIT_SIGN_IN_EMAIL for "
                    "this email",
                    retry=True,
                    html=True,
                ),
                "503": retry_later(
                    "SMTP_URL is not set (`mail_not_configured`), too many requests queued "
                    "(`sign_in_busy`), or Redis unreachable"
                ),
            },
        }
    },
    "/v1/member/verify": {
        "get": {
            "summary": "The sign-in link of the email",
            "description": "A good link redirects (303) to its `return_url` with "
            "`#member_token=<token>` (the widget stores it). A link used before, older than 15 "
            "minutes or unknown answers 410 with a short page that says so and offers a new "
            "link.",
            "parameters": [
                {
                    "name": "code",
                    "in": "query",
                    "required": True,
                    "schema": {"type": "string", "minLength": 1},
                }
            ],
            "responses": {
                "303": {
                    "description": "Signed in: to `return_url#member_token=...`",
                    "headers": {"Location": {"schema": TEXT}},
                },
                "400": error("`code` missing"),
                "410": answer(
                    "Used, expired or unknown: a page to ask for a new link", TEXT, "text/html"
                ),
                "503": _UNREACHABLE,
            },
        }
    },
    "/v1/member/token/refresh": {
        "post": {
            "summary": "A fresh member token while the ledger still counts the member",
            "description": "The widget calls it a day before its token expires. A "
            "`cus_...` token is renewed while that customer has a subscription that counts, "
            "an `email:` token while the ledger counts that email (a member customer has it, "
            "or an offline member). A token from a one-time contribution (`once:`) is not "
            "renewed (401 `not_renewable`): it ends after its 7 days.",
            "requestBody": json_body(_body(rules.TokenBody)),
            "responses": {
                "200": _TOKEN,
                "400": error("Not JSON or no `token` string"),
                "401": error(
                    "The token is forged, malformed or expired (`invalid_token`), the "
                    "membership has ended (`membership_ended`), or it is a one-time "
                    "contribution's (`not_renewable`)"
                ),
                "413": too_large("8 KiB"),
                "415": error(NOT_JSON),
                "503": _UNREACHABLE,
            },
        }
    },
    "/v1/member/portal": {
        "post": {
            "summary": "A Stripe Billing Portal session for the member's customer",
            "description": "Update card, change plan, cancel. A `cus_...` token: that "
            "customer's, while the ledger counts it. An `email:` token (made only by a sign-in "
            "link clicked from that mailbox, or by staff): a customer the ledger counts with "
            "that email. A one-time contribution's `once:cus_...` token: the customer its Checkout "
            "created; `once:cs_...`: nothing to manage (409). Shares RATE_LIMIT_CHECKOUT's "
            "budget per client address.",
            "requestBody": json_body(_body(rules.PortalBody, return_url=_RETURN_URL)),
            "responses": {
                "200": answer("Go to `url` (Stripe's Billing Portal)", obj({"url": TEXT})),
                "400": error("Not JSON, no `token`, a return_url not on an allowed origin"),
                "401": error("The token is invalid or expired, or the membership has ended"),
                "409": error(
                    "Not a Stripe membership (an offline member): contact the newsroom; or a "
                    "one-time contribution without a customer (`nothing_to_manage`)"
                ),
                "413": too_large("8 KiB"),
                "415": error(NOT_JSON),
                "429": _CHECKOUT_LIMIT,
                "502": error(STRIPE_FAILED),
                "503": retry_later("STRIPE_API_KEY is not set, or Redis unreachable"),
                **STRIPE_TIMEOUT,
            },
        }
    },
}

# The printable ASCII a return_url's path, query and fragment may hold in the document
# (members.rules.ReturnUrl: no space, quote, backslash or angle bracket).
_URL_REST = r"""(?:[/?#][!#-&(-;=?-\[\]-_a-~]*)?"""


def openapi_schemas(settings) -> dict:
    """ReturnUrl: an http(s) URL on an ALLOWED_ORIGINS origin (members.rules.ReturnUrl)."""
    origins = settings.allowed_origins if settings is not None else ()
    origin = "|".join(map(re.escape, origins)) or r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?"
    return {
        "ReturnUrl": {
            "type": "string",
            "description": "An http(s) URL on an ALLOWED_ORIGINS origin; its #fragment is dropped",
            "pattern": f"^(?:{origin}){_URL_REST}(?!\\n)$",
            "maxLength": rules.MAX_URL,
            "examples": [f"{origins[0] if origins else 'https://news.example'}/2026/11/26/story"],
        }
    }
