"""The OpenAPI piece of POST /v1/checkout: its body's fields generated from the marshmallow
schema that loads them, and, with the settings, what `checkout.request.parse` checks after."""

from __future__ import annotations

from membership.checkout import request as checkout_request
from membership.core import openapi as shapes
from membership.core.config import PRICED_PLANS
from membership.stripe.openapi import STRIPE_TIMEOUT

OPENAPI = {
    "/v1/checkout": {
        "post": {
            "summary": "A Stripe Checkout Session for a reader who clicked an ask",
            "description": "Subscription mode with the STRIPE_PRICES price for `monthly` and "
            "`yearly`; payment mode for `once` (`amount` in minor units, CHECKOUT_ONCE_MIN to "
            "CHECKOUT_ONCE_MAX, `currency` one of CHECKOUT_CURRENCIES, the first by default). A "
            "valid prompt or holdout `token` (24 h) attributes the session to its campaign and "
            "variant; a forged or expired one is ignored. The reader's `locale` is passed when "
            "Checkout speaks it, else `auto`. Nothing refused here reaches Stripe. "
            "Rate-limited per client address (RATE_LIMIT_CHECKOUT).",
            "requestBody": shapes.json_body(
                shapes.ref("CheckoutRequest"),
                description="At most 4 KiB; unknown fields are ignored.",
            ),
            "responses": {
                "200": shapes.answer(
                    "Go to `url` (Stripe Checkout)",
                    shapes.obj(
                        {
                            "url": {
                                "type": "string",
                                "examples": ["https://checkout.stripe.com/c/pay/cs_..."],
                            }
                        }
                    ),
                ),
                "400": shapes.error(
                    "Not JSON, an unknown or unpriced plan, a missing or out-of-limits amount, "
                    "a currency not configured, a malformed field (the field is named)"
                ),
                "413": shapes.too_large("4 KiB"),
                "415": shapes.error(shapes.NOT_JSON),
                "429": shapes.retry_later("Over RATE_LIMIT_CHECKOUT for this address"),
                "502": shapes.error(
                    "Stripe refused or failed (its error code and parameter named), or answered "
                    "something other than a session with an https:// url (`stripe_bad_answer`)"
                ),
                "503": shapes.error("STRIPE_API_KEY is not set (`stripe_not_configured`)"),
                **STRIPE_TIMEOUT,
            },
        }
    }
}

_WORDS = {
    "amount": "Minor units; only with plan once",
    "currency": "Only with plan once",
    "token": "A prompt's or a holdout's token",
}


def openapi_schemas(settings) -> dict:
    """CheckoutRequest; with the settings, a priced plan without amount or currency, or
    `once` within the configured limits."""
    body = shapes.from_marshmallow(checkout_request.BodySchema)
    fields = body["properties"]
    for name, words in _WORDS.items():
        fields[name]["description"] = words
    fields["locale"]["examples"] = ["uk", "en-GB"]
    if settings is None:
        return {"CheckoutRequest": body}
    offer = checkout_request.Offer.from_settings(settings)
    currency = {k: v for k, v in fields["currency"].items() if k != "pattern"}
    once = {
        **body,
        "required": ["plan", "amount"],
        "properties": {
            **fields,
            "plan": {"const": "once"},
            "amount": {
                "type": "integer",
                "minimum": offer.once_min,
                "maximum": offer.once_max,
                "description": _WORDS["amount"],
            },
            "currency": {
                **currency,
                "enum": [*offer.currencies, *(c.upper() for c in offer.currencies), None],
            },
        },
    }
    priced = [plan for plan in PRICED_PLANS if plan in offer.prices]
    if not priced:
        return {"CheckoutRequest": once}
    subscription = {
        **body,
        "properties": {
            **fields,
            "plan": {"enum": priced},
            "amount": {"type": "null", "description": _WORDS["amount"]},
            "currency": {"type": "null", "description": _WORDS["currency"]},
        },
    }
    return {"CheckoutRequest": {"oneOf": [subscription, once]}}
