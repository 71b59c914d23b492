"""The body of `POST /v1/checkout` and the Checkout Session it asks for (pure, no I/O).

`BodySchema` loads the fields; `parse` then checks them against the `Offer` (plans, prices,
limits, currencies); a CheckoutInvalid names the field. The body: docs/checkout-and-members.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from marshmallow import EXCLUDE, Schema, ValidationError, validate
from marshmallow import fields as mf

from membership.core.config import PRICED_PLANS, Settings
from membership.ledger.model import MAX_EMAIL
from membership.prompts.campaigns import RESERVED_VARIANT
from membership.prompts.errors import DocumentError, flatten
from membership.prompts.tokens import DecisionClaim

PLANS = (*PRICED_PLANS, "once")

# The locales Stripe Checkout displays (`locale` of checkout.Session.create), as Stripe lists
# them: https://docs.stripe.com/js/appendix/supported_locales (the "Checkout" column) and the
# pinned stripe-python's SessionCreateParams. Ukrainian is not among them.
CHECKOUT_LOCALES = (
    "bg", "cs", "da", "de", "el", "en", "en-GB", "es", "es-419", "et", "fi", "fil", "fr",
    "fr-CA", "hi-IN", "hr", "hu", "id", "it", "ja", "ko", "lt", "lv", "ms", "mt", "nb", "nl",
    "pl", "pt", "pt-BR", "ro", "ru", "sk", "sl", "sv", "th", "tr", "vi", "zh", "zh-HK", "zh-TW",
)  # fmt: skip
AUTO = "auto"
_BY_LOWER = {tag.lower(): tag for tag in CHECKOUT_LOCALES}
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}([_-][A-Za-z0-9]{1,8}){0,4}\Z")


class CheckoutInvalid(DocumentError):
    """A body that cannot become a Checkout Session; the message names the field."""


def checkout_locale(locale: str | None) -> str:
    """The reader's language tag as Checkout spells it, or `auto` (the browser's language)."""
    if not locale:
        return AUTO
    tag = locale.replace("_", "-").lower()
    if tag in _BY_LOWER:
        return _BY_LOWER[tag]
    language = tag.split("-")[0]
    if language in _BY_LOWER:
        return _BY_LOWER[language]
    regional = [t for t in CHECKOUT_LOCALES if t.lower().split("-")[0] == language]
    return regional[0] if len(regional) == 1 else AUTO


class BodySchema(Schema):
    """The fields of the body (the OpenAPI component is generated from it)."""

    class Meta:
        unknown = EXCLUDE

    plan = mf.String(
        required=True,
        validate=validate.OneOf(PLANS, error=f"expected one of {', '.join(PLANS)}"),
    )
    amount = mf.Integer(strict=True, load_default=None, allow_none=True)
    currency = mf.String(
        load_default=None,
        allow_none=True,
        validate=validate.Regexp(r"[A-Za-z]{3}\Z", error="expected a currency code such as eur"),
    )
    locale = mf.String(
        load_default=None,
        allow_none=True,
        validate=validate.Regexp(_LANGUAGE, error="expected a language tag such as uk or en-GB"),
    )
    token = mf.String(load_default=None, allow_none=True, validate=validate.Length(max=4096))
    email = mf.Email(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=MAX_EMAIL, error=f"at most {MAX_EMAIL} characters"),
    )


_SCHEMA = BodySchema()


@dataclass(frozen=True)
class Offer:
    """What may be bought, from the settings: prices per plan, the one-time limits."""

    prices: Mapping[str, str]
    once_min: int
    once_max: int
    currencies: tuple[str, ...]
    publication: str
    success_url: str
    cancel_url: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Offer:
        return cls(
            prices=dict(settings.stripe_prices),
            once_min=settings.checkout_once_min,
            once_max=settings.checkout_once_max,
            currencies=settings.checkout_currencies,
            publication=settings.publication_name,
            success_url=settings.checkout_success_url,
            cancel_url=settings.checkout_cancel_url,
        )


@dataclass(frozen=True)
class CheckoutRequest:
    plan: str
    locale: str  # as Checkout spells it, or auto
    amount: int | None = None  # once only
    currency: str | None = None  # once only
    token: str | None = None
    email: str | None = None


def parse(data: object, offer: Offer) -> CheckoutRequest:
    """A JSON body -> CheckoutRequest, or CheckoutInvalid naming the first bad field."""
    if not isinstance(data, dict):
        raise CheckoutInvalid(["body: expected a JSON object with `plan`"])
    try:
        body = _SCHEMA.load(data)
    except ValidationError as exc:
        raise CheckoutInvalid(flatten(exc.messages)) from None
    plan = body["plan"]
    amount, currency = body["amount"], body["currency"]
    if plan == "once":
        if amount is None:
            raise CheckoutInvalid(["amount: required for a one-time contribution (plan once)"])
        if not offer.once_min <= amount <= offer.once_max:
            raise CheckoutInvalid(
                [f"amount: expected {offer.once_min} to {offer.once_max} (minor units)"]
            )
        currency = (currency or offer.currencies[0]).lower()
        if currency not in offer.currencies:
            raise CheckoutInvalid([f"currency: expected one of {', '.join(offer.currencies)}"])
    else:
        for name, value in (("amount", amount), ("currency", currency)):
            if value is not None:
                raise CheckoutInvalid([f"{name}: only a one-time contribution (plan once) has one"])
        if plan not in offer.prices:
            raise CheckoutInvalid([f"plan: {plan} is not offered (no price in STRIPE_PRICES)"])
    return CheckoutRequest(
        plan=plan,
        locale=checkout_locale(body["locale"]),
        amount=amount,
        currency=currency,
        token=body["token"],
        email=body["email"],
    )


def metadata(claim: DecisionClaim | None) -> dict[str, str]:
    """What the session carries for attribution: the campaign, the variant (or `holdout`)
    and the decision of a valid token; nothing without one."""
    if claim is None:
        return {}
    variant = RESERVED_VARIANT if claim.variant is None else claim.variant
    return {"campaign": claim.campaign, "variant": variant, "decision": claim.decision}


def session_params(
    req: CheckoutRequest, offer: Offer, reference: str, claim: DecisionClaim | None
) -> dict:
    """The parameters of `checkout.Session.create`. `reference` (client_reference_id) is the
    token's decision id, or a random one; the success URL keeps {CHECKOUT_SESSION_ID} as it
    is: Stripe fills it in."""
    params: dict = {
        "success_url": offer.success_url,
        "cancel_url": offer.cancel_url,
        "client_reference_id": reference,
        "locale": req.locale,
        "metadata": {**metadata(claim), "plan": req.plan},
    }
    if req.email:
        params["customer_email"] = req.email
    if req.plan == "once":
        params["mode"] = "payment"
        params["submit_type"] = "donate"
        params["line_items"] = [
            {
                "quantity": 1,
                "price_data": {
                    "currency": req.currency,
                    "unit_amount": req.amount,
                    "product_data": {"name": f"Contribution to {offer.publication}"},
                },
            }
        ]
    else:
        params["mode"] = "subscription"
        params["line_items"] = [{"price": offer.prices[req.plan], "quantity": 1}]
        # A completed session's event carries no line items: the price rides along for
        # the conversion's plan.
        params["metadata"]["price"] = offer.prices[req.plan]
    return params
