"""Made-up Stripe events for `membership dev send-event` (cli/dev.py): build one, sign it as
Stripe does. Pure: the caller passes `now` and the ids. The objects have the shape of API
version API_VERSION, as the tests' events do (a subscription's prices on `items.data[]`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

API_VERSION = "2025-10-29.clover"
DEV_PRICE_ID = "price_dev_monthly"
DEV_PRICE_AMOUNT = 500  # cents, monthly, eur: a typical membership
DEV_CONTRIBUTION_AMOUNT = 1000  # cents: a one-time contribution
CURRENCY = "eur"
PERIOD_SECONDS = 30 * 86400

SUBSCRIPTION_TYPES = (
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
)
EVENT_TYPES = (*SUBSCRIPTION_TYPES, "checkout.session.completed", "charge.refunded")
CHECKOUT_MODES = ("subscription", "payment")
FINAL_STATUSES = ("canceled", "incomplete_expired")  # Stripe stamps canceled_at/ended_at

# The id option -> its Stripe prefix; a wrong prefix is most likely swapped options.
ID_PREFIXES = {"customer": "cus", "subscription": "sub", "payment_intent": "pi"}
# The object's own id (subscription item, checkout session, charge) by event type.
_OBJECT_PREFIX = {"checkout.session.completed": "cs", "charge.refunded": "ch"}
_ID_TAIL = re.compile(r"^[A-Za-z0-9_]{1,200}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class Ids:
    """The Stripe ids an event names; the shell fills the ones not given with fresh ones."""

    event: str
    customer: str
    subscription: str
    payment_intent: str
    object: str  # the id of the event's own object when it is not one of the above (cs_, ch_, si_)


def id_problem(kind: str, value: str) -> str | None:
    """None when `value` looks like a Stripe id of `kind` (see ID_PREFIXES), else why not."""
    prefix = ID_PREFIXES[kind] + "_"
    if not value.startswith(prefix) or not _ID_TAIL.match(value[len(prefix) :]):
        return f"expected {prefix}... with only letters, digits and _"
    return None


def email_problem(value: str) -> str | None:
    return None if _EMAIL.match(value) else "expected an email address like reader@example.org"


def _allowed(type_: str, mode: str) -> tuple[frozenset[str], frozenset[str]]:
    """(options that mean something for this event, options it cannot do without)."""
    if type_ == "customer.subscription.created":
        return frozenset({"customer", "subscription", "status"}), frozenset()
    if type_ in SUBSCRIPTION_TYPES:  # changes one that exists: say which
        both = frozenset({"customer", "subscription"})
        return both | {"status"}, both
    if type_ == "charge.refunded":  # refunds a contribution made earlier
        return frozenset({"payment_intent"}), frozenset({"payment_intent"})
    if mode == "payment":
        return frozenset({"customer", "email", "payment_intent", "mode"}), frozenset()
    return frozenset({"customer", "subscription", "email", "mode"}), frozenset()


def option_problem(type_: str, mode: str, given: Mapping[str, object]) -> str | None:
    """None when the options `given` (name -> value, None = not given) fit `type_`, else why."""
    allowed, required = _allowed(type_, mode)
    for name, value in given.items():
        if value is not None and name not in allowed:
            return f"--{name.replace('_', '-')} does not apply to {type_}"
    missing = sorted(name for name in required if given.get(name) is None)
    if missing:
        flags = " and ".join(f"--{name.replace('_', '-')}" for name in missing)
        return f"{type_} needs {flags} (as an earlier send-event printed them)"
    if type_ == "customer.subscription.deleted" and given.get("status") not in (None, "canceled"):
        return "customer.subscription.deleted always carries status canceled"
    return None


def fill_ids(type_: str, given: Mapping[str, str | None], new_id: Callable[[str], str]) -> Ids:
    """The ids `given`, and fresh ones from `new_id(prefix)` for the rest."""

    def pick(kind: str) -> str:
        return given.get(kind) or new_id(ID_PREFIXES[kind])

    return Ids(
        event=new_id("evt"),
        customer=pick("customer"),
        subscription=pick("subscription"),
        payment_intent=pick("payment_intent"),
        object=new_id(_OBJECT_PREFIX.get(type_, "si")),
    )


def sign(payload: str, secret: str, timestamp: int) -> str:
    """The Stripe-Signature header for `payload`, computed as Stripe computes it."""
    mac = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def body(event: dict) -> str:
    """The exact text that is signed and sent (the signature covers these bytes)."""
    return json.dumps(event, separators=(",", ":"))


def envelope(type_: str, obj: dict, *, event_id: str, now: int) -> dict:
    return {
        "id": event_id,
        "object": "event",
        "api_version": API_VERSION,
        "created": now,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": type_,
        "data": {"object": obj},
    }


def _price() -> dict:
    return {
        "id": DEV_PRICE_ID,
        "object": "price",
        "active": True,
        "currency": CURRENCY,
        "unit_amount": DEV_PRICE_AMOUNT,
        "unit_amount_decimal": str(DEV_PRICE_AMOUNT),
        "nickname": "Monthly (dev)",
        "lookup_key": None,
        "product": "prod_dev_membership",
        "recurring": {"interval": "month", "interval_count": 1},
        "type": "recurring",
    }


def subscription_object(ids: Ids, status: str, now: int) -> dict:
    # A reused subscription's real start is unknown here; the ledger orders states
    # by the event's `created`, not by start_date, so `now` is good enough.
    item = {
        "id": ids.object,
        "object": "subscription_item",
        "quantity": 1,
        "current_period_start": now,
        "current_period_end": now + PERIOD_SECONDS,
        "price": _price(),
        "subscription": ids.subscription,
    }
    final = status in FINAL_STATUSES
    return {
        "id": ids.subscription,
        "object": "subscription",
        "customer": ids.customer,
        "status": status,
        "currency": CURRENCY,
        "start_date": now,
        "cancel_at_period_end": False,
        "canceled_at": now if final else None,
        "ended_at": now if final else None,
        "metadata": {"source": "membership dev send-event"},
        "items": {"object": "list", "data": [item], "has_more": False},
    }


def checkout_object(ids: Ids, mode: str, email: str | None) -> dict:
    # Stripe always collects an email at checkout; make one up that names the customer.
    email = email or f"{ids.customer}@example.org"
    obj = {
        "id": ids.object,
        "object": "checkout.session",
        "mode": mode,
        "status": "complete",
        "payment_status": "paid",
        "customer": ids.customer,
        "customer_email": email,
        "customer_details": {"email": email, "name": "A Reader (dev)"},
        "metadata": {"source": "membership dev send-event"},
        "currency": CURRENCY,
    }
    if mode == "subscription":
        obj.update(subscription=ids.subscription, amount_total=DEV_PRICE_AMOUNT)
    else:
        obj.update(payment_intent=ids.payment_intent, amount_total=DEV_CONTRIBUTION_AMOUNT)
    return obj


def refund_object(ids: Ids) -> dict:
    # A full refund of a contribution made with `checkout.session.completed --mode payment`.
    return {
        "id": ids.object,
        "object": "charge",
        "amount": DEV_CONTRIBUTION_AMOUNT,
        "amount_refunded": DEV_CONTRIBUTION_AMOUNT,
        "refunded": True,
        "currency": CURRENCY,
        "payment_intent": ids.payment_intent,
        "customer": None,
    }


def default_status(type_: str) -> str:
    """Stripe sends `customer.subscription.deleted` with the subscription canceled."""
    return "canceled" if type_ == "customer.subscription.deleted" else "active"


def build_event(
    type_: str,
    ids: Ids,
    *,
    now: int,
    status: str | None = None,
    email: str | None = None,
    mode: str = "subscription",
) -> dict:
    """The event `type_` about `ids`, created at `now`. ValueError for a type not in EVENT_TYPES."""
    if type_ in SUBSCRIPTION_TYPES:
        obj = subscription_object(ids, status or default_status(type_), now)
    elif type_ == "checkout.session.completed":
        obj = checkout_object(ids, mode, email)
    elif type_ == "charge.refunded":
        obj = refund_object(ids)
    else:
        raise ValueError(f"unsupported event type {type_!r}")
    return envelope(type_, obj, event_id=ids.event, now=now)


def webhook_url(url: str) -> str:
    """`url` as the webhook endpoint: a server's base URL gets /webhooks/stripe appended."""
    url = url.rstrip("/")
    return url if url.endswith("/webhooks/stripe") else url + "/webhooks/stripe"


def named_ids(event: dict) -> dict[str, str]:
    """The ids (option name -> value) to pass to a later event about the same thing."""
    obj = event["data"]["object"]
    if obj["object"] == "subscription":
        return {"customer": obj["customer"], "subscription": obj["id"]}
    if obj["object"] == "charge":
        return {"payment_intent": obj["payment_intent"]}
    kind = "subscription" if obj["mode"] == "subscription" else "payment_intent"
    return {"customer": obj["customer"], kind: obj[kind]}
