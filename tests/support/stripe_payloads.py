"""Stripe-shaped payloads for tests and benchmarks: events, signatures, random worlds.

`sign()` computes the `Stripe-Signature` header exactly as Stripe does
(`t=<ts>,v1=<hex HMAC-SHA256(secret, f"{t}.{payload}")>`), by hand, so the app's
verification through the stripe SDK is tested against an independent signer.
Objects follow the API shape of the pinned stripe package (prices and periods
on `items.data[]`, invoice subscription under `parent.subscription_details`).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import itertools
import json
import random
import time
import urllib.parse

from membership.stripe.events import to_command
from tests.support.memory_ledger import MemoryLedger

WEBHOOK_SECRET = "whsec_test_secret_for_membership"  # tests/conftest.py configures apps with it
API_VERSION = "2025-10-29.clover"
T0 = 1_780_000_000  # 2026-05-28, a fixed clock for event `created` values

_ids = itertools.count(1)


def new_id(prefix: str) -> str:
    return f"{prefix}_{next(_ids):08d}{random.getrandbits(32):08x}"


def sign(payload: str | bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """The Stripe-Signature header for `payload`, as Stripe computes it."""
    if isinstance(payload, bytes):
        payload = payload.decode("utf-8")
    t = int(time.time()) if timestamp is None else int(timestamp)
    mac = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def body(event: dict) -> str:
    return json.dumps(event, separators=(",", ":"))


def event(type_: str, obj: dict, *, created: int = T0, id: str | None = None) -> dict:
    return {
        "id": id or new_id("evt"),
        "object": "event",
        "api_version": API_VERSION,
        "created": created,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": type_,
        "data": {"object": obj},
    }


def price(
    *,
    id: str = "price_monthly_5",
    amount: int = 500,
    currency: str = "eur",
    interval: str = "month",
    interval_count: int = 1,
    nickname: str | None = "Monthly",
) -> dict:
    return {
        "id": id,
        "object": "price",
        "active": True,
        "currency": currency,
        "unit_amount": amount,
        "unit_amount_decimal": str(amount),
        "nickname": nickname,
        "lookup_key": None,
        "product": "prod_membership",
        "recurring": {"interval": interval, "interval_count": interval_count},
        "type": "recurring",
    }


def subscription(
    id: str,
    customer: str,
    status: str,
    *,
    prices: list[dict] | None = None,
    quantity: int = 1,
    start: int = T0,
    canceled_at: int | None = None,
    cancel_at_period_end: bool = False,
) -> dict:
    items = []
    for p in prices or [price()]:
        items.append(
            {
                "id": new_id("si"),
                "object": "subscription_item",
                "quantity": quantity,
                "current_period_start": start,
                "current_period_end": start + 30 * 86400,
                "price": p,
                "subscription": id,
            }
        )
    final = status in ("canceled", "incomplete_expired")
    return {
        "id": id,
        "object": "subscription",
        "customer": customer,
        "status": status,
        "currency": items[0]["price"]["currency"],
        "start_date": start,
        "cancel_at_period_end": cancel_at_period_end,
        "canceled_at": canceled_at if canceled_at is not None else (start if final else None),
        "ended_at": canceled_at if final else None,
        "metadata": {},
        "items": {"object": "list", "data": items, "has_more": False},
    }


def subscription_event(
    sub: dict, *, created: int = T0, type_: str | None = None, id: str | None = None
) -> dict:
    if type_ is None:
        type_ = {
            "canceled": "customer.subscription.deleted",
            "incomplete_expired": "customer.subscription.updated",
        }.get(sub["status"], "customer.subscription.updated")
    return event(type_, sub, created=created, id=id)


def new_member_event() -> dict:
    """customer.subscription.created: a new customer's active subscription (one member)."""
    sub = subscription(new_id("sub"), new_id("cus"), "active")
    return subscription_event(sub, type_="customer.subscription.created")


def checkout_subscription(
    customer: str, email: str | None, *, name: str | None = "A Reader", created: int = T0
) -> dict:
    return event(
        "checkout.session.completed",
        {
            "id": new_id("cs"),
            "object": "checkout.session",
            "mode": "subscription",
            "status": "complete",
            "payment_status": "paid",
            "customer": customer,
            "customer_email": None,
            "customer_details": {"email": email, "name": name},
            "subscription": new_id("sub"),
            "metadata": {"campaign": "banner"},
            "amount_total": 500,
            "currency": "eur",
        },
        created=created,
    )


def checkout_payment(
    payment_intent: str,
    amount: int,
    *,
    currency: str = "eur",
    customer: str | None = None,
    email: str | None = "donor@example.org",
    paid: bool = True,
    type_: str = "checkout.session.completed",
    created: int = T0,
) -> dict:
    return event(
        type_,
        {
            "id": new_id("cs"),
            "object": "checkout.session",
            "mode": "payment",
            "status": "complete",
            "payment_status": "paid" if paid else "unpaid",
            "payment_intent": payment_intent,
            "customer": customer,
            "customer_email": email,
            "customer_details": {"email": email, "name": "A Donor"},
            "amount_total": amount,
            "currency": currency,
            "metadata": {"campaign": "year-end"},
        },
        created=created,
    )


def charge_refunded(
    payment_intent: str, amount: int, amount_refunded: int, *, currency="eur", created=T0
) -> dict:
    return event(
        "charge.refunded",
        {
            "id": new_id("ch"),
            "object": "charge",
            "amount": amount,
            "amount_refunded": amount_refunded,
            "refunded": amount_refunded >= amount,
            "currency": currency,
            "payment_intent": payment_intent,
            "customer": None,
        },
        created=created,
    )


def invoice(
    type_: str, customer: str, subscription_id: str, *, amount: int = 500, created: int = T0
) -> dict:
    paid = type_ == "invoice.paid"
    return event(
        type_,
        {
            "id": new_id("in"),
            "object": "invoice",
            "customer": customer,
            "currency": "eur",
            "amount_due": amount,
            "amount_paid": amount if paid else 0,
            "status": "paid" if paid else "open",
            "parent": {
                "type": "subscription_details",
                "subscription_details": {"subscription": subscription_id, "metadata": {}},
            },
        },
        created=created,
    )


def dispute(payment_intent: str, amount: int, *, created: int = T0) -> dict:
    return event(
        "charge.dispute.created",
        {
            "id": new_id("dp"),
            "object": "dispute",
            "amount": amount,
            "currency": "eur",
            "charge": new_id("ch"),
            "payment_intent": payment_intent,
            "reason": "fraudulent",
            "status": "needs_response",
        },
        created=created,
    )


def customer_deleted(customer: str, *, email: str | None = None, created: int = T0) -> dict:
    return event(
        "customer.deleted",
        {"id": customer, "object": "customer", "email": email, "deleted": True},
        created=created,
    )


# --- random worlds: customers with subscription lifecycles ---------------------

_STATUSES = (
    ["active"] * 4
    + ["trialing", "past_due", "unpaid", "paused", "incomplete"]
    + ["canceled", "canceled", "incomplete_expired"]
)


def random_world(
    rng: random.Random,
    customers: int,
    *,
    t0: int = T0,
    subscriptions: tuple[int, ...] = (1, 1, 1, 2),
    steps: int = 5,
    tag: str = "",
) -> tuple[list, list]:
    """(events in delivery order by `created`, offline member emails) for a random newsroom.

    Same-second events are frequent (to exercise the tie rules), emails collide
    between customers and offline members (and differ in case), some customers
    check out several times with the same or another address, some customers
    are deleted, some readers also give one-time contributions and get refunds.
    Each customer has `rng.choice(subscriptions)` subscriptions of 1..`steps`
    events; many subscriptions and steps make "hot" customers whose events
    collide when delivered concurrently. `tag` keeps ids of two worlds apart.
    """
    emails = [f"reader{i}@example.org" for i in range(max(2, customers))]
    events: list[dict] = []
    for c in range(customers):
        cus = f"cus_{tag}{c:05d}_{rng.getrandbits(24):06x}"
        t = t0 + rng.randint(0, 20)
        if rng.random() < 0.7:
            # Sometimes several checkouts: the same address again, or another one,
            # earlier, later or in the same second (the link's order rules).
            email = rng.choice(emails)
            for _ in range(rng.choice((1, 1, 2, 3, 3))):
                email = rng.choice((email, email, rng.choice(emails)))
                email = email.upper() if rng.random() < 0.2 else email
                events.append(checkout_subscription(cus, email, created=t + rng.randint(0, 6)))
        last = t
        for s in range(rng.choice(subscriptions)):
            sub_id = f"sub_{tag}{c:05d}_{s}_{rng.getrandbits(24):06x}"
            p = price(
                id=f"price_{s}",
                amount=rng.choice((300, 500, 1200)),
                currency=rng.choice(("eur", "eur", "uah", "usd")),
                interval=rng.choice(("month", "month", "year", "week")),
                interval_count=rng.choice((1, 1, 1, 3)),
                nickname=None,
            )
            quantity = rng.choice((1, 1, 1, 2))
            tt = t
            for step in range(rng.randint(1, steps)):
                tt += rng.choice((0, 0, 1, 2, 60))
                status = "active" if step == 0 and rng.random() < 0.6 else rng.choice(_STATUSES)
                sub = subscription(sub_id, cus, status, prices=[p], start=t, quantity=quantity)
                kind = "customer.subscription.created" if step == 0 else None
                events.append(subscription_event(sub, created=tt, type_=kind))
            last = max(last, tt)
        if rng.random() < 0.08:
            events.append(customer_deleted(cus, created=last + rng.randint(-3, 10)))
        for _ in range(rng.choice((0, 0, 0, 1, 2))):
            # A one-time gift, from the customer or only an email (a donor may give twice);
            # refunds are cumulative and may arrive in any order, even before the payment.
            pi = new_id("pi")
            amount = rng.choice((1000, 2500, 777))
            currency = rng.choice(("eur", "uah"))
            donor = {"customer": cus} if rng.random() < 0.5 else {"email": rng.choice(emails)}
            events.append(checkout_payment(pi, amount, currency=currency, created=t, **donor))
            for refunded in sorted(
                rng.sample((amount // 3, amount // 2, amount), rng.randint(0, 2))
            ):
                at = t + rng.randint(-2, 8)
                events.append(charge_refunded(pi, amount, refunded, currency=currency, created=at))
        if rng.random() < 0.2:
            events.append(invoice("invoice.paid", cus, f"sub_{tag}{c:05d}_0", created=t))
        if rng.random() < 0.1:
            events.append(event("customer.updated", {"id": cus, "object": "customer"}, created=t))
    events.sort(key=lambda e: e["created"])
    offline = rng.sample(emails, k=max(1, len(emails) // 4))
    return events, offline


def shuffled_with_duplicates(rng: random.Random, events: list, dup_rate: float = 0.3) -> list:
    out = list(events)
    out += [e for e in events if rng.random() < dup_rate]
    rng.shuffle(out)
    return out


def ground_truth(events: list, offline: list, member_statuses) -> MemoryLedger:
    """The reference ledger after in-order delivery of `events` plus `offline` members."""
    model = MemoryLedger(tuple(member_statuses))
    for e in events:
        model.apply_event(e["id"], to_command(e))
    for email in offline:
        model.add_offline(email)
    return model


def deliver(url: str, bodies: list[str], secret: str = WEBHOOK_SECRET, retry: bool = True):
    """POST signed bodies to `url` in order; a non-200 is retried until 200 (as Stripe
    would) when `retry`, else kept. Returns (statuses seen: Counter-like dict, not delivered)."""
    seen: dict[int, int] = {}
    pending = []
    for payload in bodies:
        while True:
            status = post(url, payload, secret)
            seen[status] = seen.get(status, 0) + 1
            if status == 200:
                break
            if not retry:
                pending.append(payload)
                break
            time.sleep(0.05)
    return seen, pending


def post(url: str, payload: str, secret: str = WEBHOOK_SECRET, timeout: float = 10) -> int:
    """One delivery on a connection of its own (http.client: urllib's machinery cost more
    than the service's answer); 0 when no connection could be made or it broke."""
    target = urllib.parse.urlsplit(url)
    headers = {"Content-Type": "application/json", "Stripe-Signature": sign(payload, secret)}
    connection = http.client.HTTPConnection(target.hostname, target.port, timeout=timeout)
    try:
        connection.request("POST", target.path, body=payload.encode(), headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return 0  # connection refused/reset: treat as a failed delivery
    finally:
        connection.close()
