"""Conversions: a paid Checkout Session from a prompt credits its campaign's variant once; a
full refund counts once under `refunds` (docs/checkout-and-members.md, "Conversions").

`ConversionHook` queues the credit in the ledger writer's own MULTI, after a WATCHed read of
the session's mark that the MULTI writes, so a second event for the session is decided again."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from membership.ledger.codec import CorruptRecord
from membership.prompts import counts
from membership.prompts.campaigns import RESERVED_VARIANT, SLUG, VARIANT_ID
from membership.store import Keys
from membership.stripe.events import STRIPE_ID

CREDIT_EVENTS = ("checkout.session.completed", "checkout.session.async_payment_succeeded")
REFUND_EVENT = "charge.refunded"
PAYMENT_EVENT = "invoice_payment.paid"
PAID = ("paid", "no_payment_required")
KEEP = 400 * 86400  # a credited session: refunds come months later; results keep 400 days
WAIT = 30 * 86400  # a refund or an invoice payment waiting for its session's event
MAX_AMOUNT = 10**12 - 1

_ID = re.compile(STRIPE_ID)


@dataclass(frozen=True)
class Credit:
    """What a paid session earns: one conversion for (campaign, variant; None = holdout)."""

    session: str
    campaign: str
    variant: str | None
    amount: int
    currency: str
    plan: str  # monthly | yearly | once (our metadata), else the session's mode
    price: str  # the subscription's price (our metadata), "" for a one-time payment
    payment_intent: str | None  # payment mode
    invoice: str | None  # subscription mode: the first invoice
    at: int  # the event's `created`


def _stripe_id(value: object) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and _ID.match(value) else None


def credit_from(event: Mapping) -> Credit | None:
    """The conversion a session event proves, or None (not a paid session of ours)."""
    if event.get("type") not in CREDIT_EVENTS:
        return None
    obj = event["data"]["object"]
    meta = obj.get("metadata") or {}
    campaign, variant = meta.get("campaign"), meta.get("variant")
    session = _stripe_id(obj.get("id"))
    if session is None or obj.get("payment_status") not in PAID:
        return None
    if not (isinstance(campaign, str) and SLUG.match(campaign)):
        return None
    if not (isinstance(variant, str) and VARIANT_ID.match(variant)):
        return None
    amount, currency = obj.get("amount_total") or 0, str(obj.get("currency") or "").lower()
    if not isinstance(amount, int) or not 0 <= amount <= MAX_AMOUNT:
        return None
    if amount and not (len(currency) == 3 and currency.isascii() and currency.isalpha()):
        return None
    plan = meta.get("plan") if meta.get("plan") in ("monthly", "yearly", "once") else None
    return Credit(
        session=session,
        campaign=campaign,
        variant=None if variant == RESERVED_VARIANT else variant,
        amount=amount,
        currency=currency,
        plan=plan or str(obj.get("mode") or ""),
        price=str(meta.get("price") or "")[:255],
        payment_intent=_stripe_id(obj.get("payment_intent")),
        invoice=_stripe_id(obj.get("invoice")) if obj.get("mode") == "subscription" else None,
        at=int(event["created"]),
    )


def refund_from(event: Mapping) -> str | None:
    """The payment intent of a charge refunded in full, or None."""
    if event.get("type") != REFUND_EVENT:
        return None
    charge = event["data"]["object"]
    amount, refunded = charge.get("amount"), charge.get("amount_refunded")
    full = charge.get("refunded") is True or (
        isinstance(amount, int) and isinstance(refunded, int) and refunded >= amount > 0
    )
    return _stripe_id(charge.get("payment_intent")) if full else None


def payment_of(event: Mapping) -> tuple[str, str] | None:
    """(invoice, payment intent) of an `invoice_payment.paid`, or None."""
    if event.get("type") != PAYMENT_EVENT:
        return None
    obj = event["data"]["object"]
    payment = obj.get("payment") or {}
    invoice, intent = _stripe_id(obj.get("invoice")), _stripe_id(payment.get("payment_intent"))
    return (invoice, intent) if invoice and intent else None


# --- In the ledger's transaction -------------------------------------------------------------

Queue = Callable[[object], None]


class ConversionHook:
    """The ledger writer's `TransactionHook` for conversions and their refunds."""

    def __init__(self, keys: Keys) -> None:
        self.keys = keys

    def prepare(self, event: Mapping, reader, at: float) -> Queue | None:
        credit = credit_from(event)
        if credit is not None:
            return self._credit(credit, reader)
        intent = refund_from(event)
        if intent is not None:
            return self._refund(intent, reader, int(event["created"]))
        paid = payment_of(event)
        if paid is not None:
            return self._paid(*paid, reader, int(event["created"]))
        return None

    def _hash(self, reader, key: str) -> dict:
        [value] = reader.read([("hgetall", key)])
        return value

    def _check_counters(self, reader, campaign, variant, at, currency) -> None:
        """What the credit or refund will increment holds integers (Redis would not undo)."""
        targets = counts.money_fields(self.keys, campaign, variant, at, currency)
        reads = []
        for key, fields in targets:
            reads += [("type", key), ("hmget", key, *fields)]
        values = reader.read([], reads)
        for i, (key, fields) in enumerate(targets):
            try:
                counts.check_integers(key, fields, str(values[2 * i]), values[2 * i + 1])
            except counts.CorruptCounts as exc:
                raise CorruptRecord(key, str(exc)) from None

    def _credit(self, c: Credit, reader) -> Queue | None:
        k = self.keys
        if self._hash(reader, k.conversion(c.session)):
            return None  # credited before, by this event's twin or a redelivery
        intent = c.payment_intent
        if intent is None and c.invoice:
            intent = self._hash(reader, k.conversion_invoice(c.invoice)).get("payment_intent")
        # A full refund that came before this event: counted with the credit, on its own day.
        refunded_at = None
        if intent:
            refunded = self._hash(reader, k.conversion_payment(intent)).get("refunded")
            refunded_at = _whole(refunded, k.conversion_payment(intent)) if refunded else None
        self._check_counters(reader, c.campaign, c.variant, c.at, c.currency)
        if refunded_at is not None:
            self._check_counters(reader, c.campaign, c.variant, refunded_at, c.currency)
        record = {
            "campaign": c.campaign,
            "slot": c.variant or counts.HOLDOUT,
            "amount": c.amount,
            "currency": c.currency,
            "plan": c.plan,
            "price": c.price,
            "at": c.at,
            "payment_intent": intent or "",
            "invoice": c.invoice or "",
        }
        if refunded_at is not None:
            record["refunded"] = refunded_at

        def queue(pipe) -> None:
            pipe.hset(k.conversion(c.session), mapping=record)
            pipe.expire(k.conversion(c.session), KEEP)
            amount = {"amount": c.amount, "currency": c.currency or None}
            counts.queue_conversion(pipe, k, c.campaign, c.variant, c.at, **amount)
            if c.invoice:
                pipe.hset(k.conversion_invoice(c.invoice), "session", c.session)
                pipe.expire(k.conversion_invoice(c.invoice), WAIT)
            if intent:
                pipe.hset(k.conversion_payment(intent), "session", c.session)
                pipe.expire(k.conversion_payment(intent), KEEP)
            if refunded_at is not None:
                counts.queue_conversion(
                    pipe, k, c.campaign, c.variant, refunded_at, **amount, refund=True
                )

        return queue

    def _refund(self, intent: str, reader, at: int) -> Queue | None:
        k = self.keys
        payment = self._hash(reader, k.conversion_payment(intent))
        if payment.get("refunded"):
            return None  # counted (or waiting) already
        session = payment.get("session")
        if not session:

            def wait(pipe) -> None:  # the session's event has not come yet
                pipe.hset(k.conversion_payment(intent), "refunded", at)
                pipe.expire(k.conversion_payment(intent), WAIT)

            return wait
        return self._refund_session(session, intent, reader, at)

    def _refund_session(self, session: str, intent: str, reader, at: int) -> Queue | None:
        k = self.keys
        record = self._hash(reader, k.conversion(session))
        if not record or record.get("refunded"):
            return None
        campaign, slot = record.get("campaign", ""), record.get("slot", "")
        variant = None if slot == counts.HOLDOUT else slot
        amount = _whole(record.get("amount"), k.conversion(session))
        currency = record.get("currency") or None
        try:
            counts.check_money(campaign, variant, at, amount, currency)
        except counts.CountsError as exc:
            raise CorruptRecord(k.conversion(session), str(exc)) from None
        self._check_counters(reader, campaign, variant, at, currency)

        def queue(pipe) -> None:
            pipe.hset(k.conversion(session), "refunded", at)
            pipe.hset(k.conversion_payment(intent), "refunded", at)
            money = {"amount": amount, "currency": currency, "refund": True}
            counts.queue_conversion(pipe, k, campaign, variant, at, **money)

        return queue

    def _paid(self, invoice: str, intent: str, reader, at: int) -> Queue | None:
        k = self.keys
        link = self._hash(reader, k.conversion_invoice(invoice))
        if link.get("payment_intent"):
            return None
        session = link.get("session")
        refund = None
        if session:
            payment = self._hash(reader, k.conversion_payment(intent))
            if payment.get("refunded") and not payment.get("session"):
                refund = self._refund_session(session, intent, reader, at)

        def queue(pipe) -> None:
            pipe.hset(k.conversion_invoice(invoice), "payment_intent", intent)
            pipe.expire(k.conversion_invoice(invoice), WAIT)
            if session:
                pipe.hset(k.conversion(session), "payment_intent", intent)
                pipe.hset(k.conversion_payment(intent), "session", session)
                pipe.expire(k.conversion_payment(intent), KEEP)
            if refund is not None:
                refund(pipe)

        return queue


def _whole(value: object, key: str) -> int:
    """A whole number this module wrote; CorruptRecord (503, nothing written) otherwise."""
    if isinstance(value, str) and value.isdigit() and len(value) < 19:
        return int(value)
    raise CorruptRecord(key, f"{str(value)[:40]!r} is not a whole number")
