"""Where Stripe is understood: one small handler per event type, event -> ledger command.

Pure: a handler reads the event's `data.object` (plain dicts, the API shape of
the pinned stripe package: a subscription's prices and periods live on
`items.data[]`) and returns a command from `membership.ledger_rules`. A type
without a handler becomes `Ignore`. An object missing what its handler needs
raises `EventError`; the ledger records the event as failed, for replay.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from marshmallow import Schema, validate
from marshmallow import fields as mf

from membership.config import SUBSCRIPTION_STATUSES
from membership.ledger_rules import (
    AddTimeline,
    ApplySubscription,
    Command,
    DeleteCustomer,
    Ignore,
    LinkCustomer,
    RecordContribution,
    RecordRefund,
    Subscription,
)


class EventError(ValueError):
    """The event is an event, but not one its handler can read."""


class _EnvelopeSchema(Schema):
    """What makes a JSON body a Stripe event (the rest is the handler's business)."""

    id = mf.String(required=True, validate=validate.Length(min=1, max=255))
    object = mf.String(required=True, validate=validate.Equal("event"))
    type = mf.String(required=True, validate=validate.Length(min=1, max=255))
    created = mf.Integer(required=True, strict=True, validate=validate.Range(min=0))


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


def _id(value: Any) -> str | None:
    """An expandable field's id: the string itself, or the expanded object's `id`."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _int(value: Any, default: int | None = 0) -> int | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise EventError(f"expected a number, got {value!r}")
    try:
        return int(float(value))
    except ValueError:
        raise EventError(f"expected a number, got {value!r}") from None


def _require(obj: Mapping, name: str) -> Any:
    value = obj.get(name)
    if value is None or value == "":
        raise EventError(f"{obj.get('object', 'object')} has no {name}")
    return value


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
    sub_id = _require(obj, "id")
    customer = _id(obj.get("customer"))
    if not customer:
        raise EventError(f"subscription {sub_id} has no customer")
    status = _require(obj, "status")
    if status not in SUBSCRIPTION_STATUSES:
        raise EventError(f"subscription {sub_id} has unknown status {status!r}")
    items = (obj.get("items") or {}).get("data") or []
    amount, quantity, prices, plans = 0, 0, [], []
    currency, interval, interval_count, period_end = "", "", 1, None
    for item in items:
        price = item.get("price") or item.get("plan") or {}
        qty = _int(item.get("quantity"), 1)
        unit = price.get("unit_amount")
        if unit is None and price.get("unit_amount_decimal") is not None:
            unit = price["unit_amount_decimal"]
        amount += (_int(unit, 0) or 0) * qty
        quantity += qty
        prices.append(str(price.get("id") or ""))
        plans.append(str(price.get("nickname") or price.get("lookup_key") or price.get("id") or ""))
        currency = currency or str(price.get("currency") or "")
        recurring = price.get("recurring") or {}
        if not interval and (recurring.get("interval") or price.get("interval")):
            interval = str(recurring.get("interval") or price.get("interval"))
            interval_count = _int(recurring.get("interval_count") or price.get("interval_count"), 1)
        end = _int(item.get("current_period_end"), None)
        if end is not None:
            period_end = max(period_end or 0, end)
    return Subscription(
        id=sub_id,
        customer=customer,
        status=status,
        created=int(created),
        price="+".join(p for p in prices if p),
        plan="+".join(p for p in plans if p),
        amount=amount,
        currency=(currency or str(obj.get("currency") or "")).lower(),
        interval=interval,
        interval_count=interval_count or 1,
        quantity=quantity or 1,
        started=_int(obj.get("start_date"), None),
        canceled_at=_int(obj.get("canceled_at"), None),
        ended_at=_int(obj.get("ended_at"), None),
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
    email = details.get("email") or obj.get("customer_email")
    customer = _id(obj.get("customer"))
    if mode == "subscription":
        if not customer:
            return Ignore("subscription checkout without a customer")
        return LinkCustomer(
            customer=customer,
            email=email,
            name=details.get("name"),
            metadata=_metadata(obj),
            created=event["created"],
        )
    if mode == "payment":
        if obj.get("payment_status") != "paid":
            return Ignore(f"payment checkout with payment_status {obj.get('payment_status')!r}")
        session = _require(obj, "id")
        return RecordContribution(
            key=_id(obj.get("payment_intent")) or session,
            amount=_int(_require(obj, "amount_total")),
            currency=str(_require(obj, "currency")).lower(),
            customer=customer,
            email=email,
            metadata=_metadata(obj),
            created=event["created"],
            session=session,
        )
    return Ignore(f"checkout in {mode!r} mode")


def _charge_refunded(obj: Mapping, event: Mapping) -> Command:
    charge = _require(obj, "id")
    return RecordRefund(
        key=_id(obj.get("payment_intent")) or charge,
        amount_refunded=_int(obj.get("amount_refunded")),
        currency=str(obj.get("currency") or "").lower(),
        created=event["created"],
        charge=charge,
    )


def _invoice(obj: Mapping, event: Mapping) -> Command:
    parent = (obj.get("parent") or {}).get("subscription_details") or {}
    subscription = _id(parent.get("subscription")) or _id(obj.get("subscription")) or ""
    failed = event["type"] == "invoice.payment_failed"
    return AddTimeline(
        kind=event["type"],
        customer=_id(obj.get("customer")),
        created=event["created"],
        reference=_require(obj, "id"),
        amount=_int(obj.get("amount_due" if failed else "amount_paid")),
        currency=str(obj.get("currency") or "").lower(),
        detail={"subscription": subscription, "status": str(obj.get("status") or "")},
    )


def _dispute(obj: Mapping, event: Mapping) -> Command:
    return AddTimeline(
        kind=event["type"],
        customer=None,  # a dispute names its charge; the ledger finds the contributor
        created=event["created"],
        reference=_require(obj, "id"),
        amount=_int(obj.get("amount")),
        currency=str(obj.get("currency") or "").lower(),
        detail={"charge": _id(obj.get("charge")) or "", "reason": str(obj.get("reason") or "")},
        payment_intent=_id(obj.get("payment_intent")),
    )


def _customer_deleted(obj: Mapping, event: Mapping) -> Command:
    return DeleteCustomer(customer=_require(obj, "id"), created=event["created"])


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


def to_command(event: Mapping) -> Command:
    """The ledger command for a verified event envelope (see `envelope_errors`)."""
    handler = HANDLERS.get(event["type"])
    if handler is None:
        return Ignore(f"{event['type']} is not an event the ledger uses")
    obj = event["data"]["object"]
    try:
        return handler(obj, event)
    except EventError:
        raise
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise EventError(f"cannot read {event['type']} {obj.get('id', '')}: {exc!r}") from exc


__all__ = [
    "HANDLERS",
    "EventError",
    "envelope_errors",
    "subscription_from_object",
    "to_command",
]
