"""Where Stripe is understood: one small handler per event type, event -> ledger command.

Pure: a handler reads the event's `data.object` (the API shape of the pinned stripe package:
a subscription's prices and periods live on `items.data[]`) and returns a command from
`membership.ledger.commands`; a type without a handler becomes `Ignore`. An object missing
what its handler needs raises `EventError` (the event is logged failed, for replay). A value
Stripe never sends raises `InvalidEvent` before anything is stored (docs/http-api.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from marshmallow import Schema, validate
from marshmallow import fields as mf

from membership.core.config import SUBSCRIPTION_STATUSES
from membership.core.text import has_control
from membership.ledger.commands import (
    AddTimeline,
    ApplySubscription,
    Command,
    DeleteCustomer,
    Ignore,
    LinkCustomer,
    RecordContribution,
    RecordRefund,
)
from membership.ledger.model import MAX_EMAIL, Subscription

STRIPE_ID = r"^[A-Za-z0-9_]{1,255}\Z"  # \Z: "$" would let a trailing newline in
_STRIPE_ID = re.compile(STRIPE_ID)
MAX_AMOUNT = 10**12 - 1  # 12 digits: far above any real price, far below a 64-bit overflow
MAX_TIMESTAMP = 10**11 - 1  # the year 5138
MAX_ITEMS = 20  # Stripe's limit of items per subscription
INTERVALS = ("day", "week", "month", "year")
MAX_INTERVAL_COUNT = 1095  # three years of days: Stripe's longest billing period
MAX_CUSTOMER_NAME = 256  # Stripe's own limit on a customer's name
_CURRENCY = re.compile(r"^[a-z]{3}$")


class EventError(ValueError):
    """The event is an event, but not one its handler can read."""


class InvalidEvent(ValueError):
    """The event carries a value Stripe never sends; refuse it whole (400), store nothing."""


class _EnvelopeSchema(Schema):
    """What makes a JSON body a Stripe event (the rest is the handler's business)."""

    id = mf.String(
        required=True,
        validate=validate.Regexp(STRIPE_ID, error="expected a Stripe id ([A-Za-z0-9_], 1-255)"),
    )
    object = mf.String(required=True, validate=validate.Equal("event"))
    type = mf.String(required=True, validate=validate.Length(min=1, max=255))
    created = mf.Integer(
        required=True, strict=True, validate=validate.Range(min=0, max=MAX_TIMESTAMP)
    )


# One instance: validating keeps no state on the schema. Only the envelope's own
# fields are handed to it, so the event's (large) data is never copied.
_ENVELOPE = _EnvelopeSchema()
_ENVELOPE_FIELDS = tuple(_ENVELOPE.fields)


def envelope_errors(body: Any) -> dict | None:
    """None when `body` is a Stripe event envelope, else field -> problems."""
    if not isinstance(body, dict):
        return {"_schema": ["expected a JSON object"]}
    errors = _ENVELOPE.validate({k: body[k] for k in _ENVELOPE_FIELDS if k in body})
    data = body.get("data")
    if not isinstance(data, dict):
        errors["data"] = [
            "Missing data for required field." if data is None else "Not a valid mapping type."
        ]
    elif not isinstance(data.get("object"), dict):
        errors["data"] = {"object": ["expected an object"]}
    return errors or None


# --- reading Stripe objects --------------------------------------------------


def _checked_id(value: str, what: str = "id") -> str:
    if not _STRIPE_ID.match(value):
        raise InvalidEvent(f"{what} {value[:80]!r} is not a Stripe id ([A-Za-z0-9_], 1-255)")
    return value


def _id(value: Any, what: str = "id") -> str | None:
    """An expandable field's id: the string itself, or the expanded object's `id`."""
    if isinstance(value, dict):
        value = value.get("id")
    return _checked_id(value, what) if isinstance(value, str) and value else None


def _int(value: Any, default: int | None = 0, *, what: str = "number", most: int = MAX_AMOUNT):
    """A whole number from 0 to `most` (InvalidEvent outside: Stripe sends none)."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise EventError(f"expected a number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise EventError(f"expected a number, got {value!r}") from None
    if not 0 <= number <= most:
        raise InvalidEvent(f"{what} {value!r} is outside 0 to {most}")
    return int(number)


def _time(value: Any, what: str) -> int | None:
    return _int(value, None, what=what, most=MAX_TIMESTAMP)


def _require(obj: Mapping, name: str) -> Any:
    value = obj.get(name)
    if value is None or value == "":
        raise EventError(f"{obj.get('object', 'object')} has no {name}")
    return value


def _required_id(obj: Mapping, name: str) -> str:
    value = _require(obj, name)
    if not isinstance(value, str):
        raise EventError(f"{obj.get('object', 'object')} {name} is not a string")
    return _checked_id(value, name)


def _currency(value: Any) -> str:
    currency = str(value or "").lower()
    if currency and not _CURRENCY.match(currency):
        raise InvalidEvent(f"currency {currency[:20]!r} is not a three-letter code")
    return currency


def _email(value: Any) -> str | None:
    if value is None:
        return None
    email = str(value)
    if len(email) > MAX_EMAIL or any(ord(c) < 32 or ord(c) == 127 for c in email):
        raise InvalidEvent("the customer email is longer than 254 characters or has control codes")
    return email


def customer_name(value: Any) -> str | None:
    """A customer's name as the ledger keeps it: text of at most 256 characters that a staff
    page or a terminal shows as it is; anything else (not text, too long, a control or
    format character) is no name, and the event or listing still applies."""
    if not isinstance(value, str) or not value.strip():
        return None
    return None if len(value) > MAX_CUSTOMER_NAME or has_control(value) else value


def _metadata(obj: Mapping) -> dict[str, str]:
    value = obj.get("metadata") or {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def subscription_from_object(obj: Mapping, *, created: int, source: str) -> Subscription:
    """A Stripe subscription object (webhook or API listing) as the ledger's Subscription.

    Price, amount, currency and interval come from `items.data[].price` and
    `quantity` (amount = sum of unit_amount x quantity); the period end from
    the items. `created` is the clock of the event or listing, not the
    subscription's own creation time.
    """
    sub_id = _required_id(obj, "id")
    customer = _id(obj.get("customer"), "customer")
    if not customer:
        raise EventError(f"subscription {sub_id} has no customer")
    status = _require(obj, "status")
    if status not in SUBSCRIPTION_STATUSES:
        raise EventError(f"subscription {sub_id} has unknown status {status!r}")
    items = (obj.get("items") or {}).get("data") or []
    if len(items) > MAX_ITEMS:
        raise InvalidEvent(
            f"subscription {sub_id} has {len(items)} items; Stripe allows {MAX_ITEMS}"
        )
    amount, quantity, prices, plans = 0, 0, [], []
    currency, interval, interval_count, period_end = "", "", 1, None
    for item in items:
        price = item.get("price") or item.get("plan") or {}
        qty = _int(item.get("quantity"), 1, what="quantity")
        unit = price.get("unit_amount")
        if unit is None and price.get("unit_amount_decimal") is not None:
            unit = price["unit_amount_decimal"]
        amount += (_int(unit, 0, what="unit_amount") or 0) * qty
        quantity += qty
        prices.append(str(price.get("id") or ""))
        plans.append(str(price.get("nickname") or price.get("lookup_key") or price.get("id") or ""))
        currency = currency or _currency(price.get("currency"))
        recurring = price.get("recurring") or {}
        if not interval and (recurring.get("interval") or price.get("interval")):
            interval = str(recurring.get("interval") or price.get("interval"))
            if interval not in INTERVALS:
                raise InvalidEvent(f"interval {interval[:20]!r} is not one of {INTERVALS}")
            count = recurring.get("interval_count") or price.get("interval_count")
            interval_count = _int(count, 1, what="interval_count", most=MAX_INTERVAL_COUNT)
        end = _time(item.get("current_period_end"), "current_period_end")
        if end is not None:
            period_end = max(period_end or 0, end)
    if amount > MAX_AMOUNT:
        raise InvalidEvent(f"subscription {sub_id} amounts to {amount}, more than 12 digits")
    return Subscription(
        id=sub_id,
        customer=customer,
        status=status,
        created=int(created),
        price="+".join(p for p in prices if p),
        plan="+".join(p for p in plans if p),
        amount=amount,
        currency=currency or _currency(obj.get("currency")),
        interval=interval,
        interval_count=interval_count or 1,
        quantity=quantity or 1,
        started=_time(obj.get("start_date"), "start_date"),
        canceled_at=_time(obj.get("canceled_at"), "canceled_at"),
        ended_at=_time(obj.get("ended_at"), "ended_at"),
        cancel_at_period_end=bool(obj.get("cancel_at_period_end")),
        current_period_end=period_end,
        source=source,
    )


# --- one handler per event type ---------------------------------------------

Handler = Callable[[Mapping, Mapping], Command]


def _subscription(obj: Mapping, event: Mapping) -> Command:
    return ApplySubscription(
        subscription_from_object(obj, created=event["created"], source=event["id"])
    )


def _checkout(obj: Mapping, event: Mapping) -> Command:
    mode = obj.get("mode")
    details = obj.get("customer_details") or {}
    email = _email(details.get("email") or obj.get("customer_email"))
    customer = _id(obj.get("customer"), "customer")
    if mode == "subscription":
        if not customer:
            return Ignore("subscription checkout without a customer")
        return LinkCustomer(
            customer=customer,
            email=email,
            name=customer_name(details.get("name")),
            metadata=_metadata(obj),
            created=event["created"],
        )
    if mode == "payment":
        if obj.get("payment_status") != "paid":
            return Ignore(f"payment checkout with payment_status {obj.get('payment_status')!r}")
        session = _required_id(obj, "id")
        return RecordContribution(
            key=_id(obj.get("payment_intent"), "payment_intent") or session,
            amount=_int(_require(obj, "amount_total"), what="amount_total"),
            currency=_currency(_require(obj, "currency")),
            customer=customer,
            email=email,
            metadata=_metadata(obj),
            created=event["created"],
            session=session,
        )
    return Ignore(f"checkout in {mode!r} mode")


def _charge_refunded(obj: Mapping, event: Mapping) -> Command:
    charge = _required_id(obj, "id")
    return RecordRefund(
        key=_id(obj.get("payment_intent"), "payment_intent") or charge,
        amount_refunded=_int(obj.get("amount_refunded"), what="amount_refunded"),
        currency=_currency(obj.get("currency")),
        created=event["created"],
        charge=charge,
    )


def _invoice(obj: Mapping, event: Mapping) -> Command:
    parent = (obj.get("parent") or {}).get("subscription_details") or {}
    subscription = _id(parent.get("subscription")) or _id(obj.get("subscription")) or ""
    failed = event["type"] == "invoice.payment_failed"
    return AddTimeline(
        kind=event["type"],
        customer=_id(obj.get("customer"), "customer"),
        created=event["created"],
        reference=_required_id(obj, "id"),
        amount=_int(obj.get("amount_due" if failed else "amount_paid"), what="amount"),
        currency=_currency(obj.get("currency")),
        detail={"subscription": subscription, "status": str(obj.get("status") or "")},
    )


def _dispute(obj: Mapping, event: Mapping) -> Command:
    return AddTimeline(
        kind=event["type"],
        customer=None,  # a dispute names its charge; the ledger finds the contributor
        created=event["created"],
        reference=_required_id(obj, "id"),
        amount=_int(obj.get("amount"), what="amount"),
        currency=_currency(obj.get("currency")),
        detail={"charge": _id(obj.get("charge")) or "", "reason": str(obj.get("reason") or "")},
        payment_intent=_id(obj.get("payment_intent"), "payment_intent"),
    )


def _customer_deleted(obj: Mapping, event: Mapping) -> Command:
    return DeleteCustomer(customer=_required_id(obj, "id"), created=event["created"])


HANDLERS: dict[str, Handler] = {
    "customer.subscription.created": _subscription,
    "customer.subscription.updated": _subscription,
    "customer.subscription.deleted": _subscription,
    "customer.subscription.paused": _subscription,
    "customer.subscription.resumed": _subscription,
    "checkout.session.completed": _checkout,
    "checkout.session.async_payment_succeeded": _checkout,
    "charge.refunded": _charge_refunded,
    "invoice.paid": _invoice,
    "invoice.payment_failed": _invoice,
    "charge.dispute.created": _dispute,
    "customer.deleted": _customer_deleted,
}


# Types a Stripe endpoint commonly sends that the ledger ignores (or, for
# invoice_payment.paid, that only the conversions hook reads): named in /metrics too.
IGNORED_TYPES = frozenset(
    [
        "invoice_payment.paid",
        "checkout.session.expired",
        "checkout.session.async_payment_failed",
        "customer.created",
        "customer.updated",
        "customer.subscription.trial_will_end",
        "customer.subscription.pending_update_applied",
        "customer.subscription.pending_update_expired",
        "invoice.created",
        "invoice.finalized",
        "invoice.updated",
        "invoice.upcoming",
        "invoice.payment_succeeded",
        "invoice.payment_action_required",
        "payment_intent.created",
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "charge.succeeded",
        "charge.failed",
        "charge.updated",
        "charge.dispute.closed",
        "payment_method.attached",
    ]
)
OTHER_TYPE = "other"


def type_label(event_type: str | None) -> str | None:
    """`event_type` when the service knows it (HANDLERS, IGNORED_TYPES), else `other`: what
    the writer's subscribers (the /metrics label) are told, so a signed event of any new or
    made-up type adds no new series. None stays None (not an event)."""
    if event_type is None or event_type in HANDLERS or event_type in IGNORED_TYPES:
        return event_type
    return OTHER_TYPE


def to_command(event: Mapping) -> Command:
    """The ledger command for a verified event envelope (see `envelope_errors`)."""
    handler = HANDLERS.get(event["type"])
    if handler is None:
        return Ignore(f"{event['type']} is not an event the ledger uses")
    obj = event["data"]["object"]
    try:
        return handler(obj, event)
    except (EventError, InvalidEvent):
        raise
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise EventError(f"cannot read {event['type']} {obj.get('id', '')}: {exc!r}") from exc
