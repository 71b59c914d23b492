"""Stripe events -> ledger commands: one handler per type, pure."""

import pytest

from membership.ledger.commands import (
    AddTimeline,
    ApplySubscription,
    DeleteCustomer,
    Ignore,
    LinkCustomer,
    RecordContribution,
    RecordRefund,
)
from membership.stripe.events import (
    HANDLERS,
    EventError,
    envelope_errors,
    subscription_from_object,
    to_command,
)
from tests.support import stripe_payloads as sp


@pytest.mark.parametrize(
    "type_",
    [
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "customer.subscription.paused",
        "customer.subscription.resumed",
    ],
)
def test_subscription_events_carry_the_state(type_):
    obj = sp.subscription("sub_1", "cus_1", "active")
    command = to_command(sp.event(type_, obj, created=123, id="evt_1"))
    assert isinstance(command, ApplySubscription)
    assert command.sub.id == "sub_1" and command.sub.customer == "cus_1"
    assert command.sub.status == "active" and command.sub.created == 123
    assert command.sub.source == "evt_1"


def test_price_amount_interval_and_period_come_from_the_items():
    yearly = sp.price(id="price_y", amount=6000, currency="UAH", interval="year", nickname=None)
    addon = sp.price(id="price_a", amount=100, currency="uah", interval="year", nickname="Print")
    obj = sp.subscription("sub_1", {"id": "cus_9", "object": "customer"}, "trialing")
    obj["items"]["data"] = [
        {**obj["items"]["data"][0], "price": yearly, "quantity": 2},
        {"price": addon, "quantity": 1, "current_period_end": sp.T0 + 9_999_999},
    ]
    s = subscription_from_object(obj, created=7, source="sync@7")
    assert s.customer == "cus_9"  # an expanded customer
    assert s.amount == 6000 * 2 + 100
    assert s.currency == "uah"
    assert (s.interval, s.interval_count, s.quantity) == ("year", 1, 3)
    assert s.price == "price_y+price_a" and s.plan == "price_y+Print"
    assert s.current_period_end == sp.T0 + 9_999_999
    assert s.started == sp.T0


def test_cancel_at_period_end_is_kept_but_the_status_decides():
    obj = sp.subscription("sub_1", "cus_1", "active", cancel_at_period_end=True)
    s = to_command(sp.subscription_event(obj)).sub
    assert s.cancel_at_period_end and s.status == "active"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda o: o.pop("customer"), "no customer"),
        (lambda o: o.update(status="lapsed"), "unknown status"),
        (lambda o: o.pop("id"), "has no id"),
        (lambda o: o["items"]["data"][0].update(quantity="many"), "expected a number"),
    ],
)
def test_unreadable_subscriptions_raise_event_error(mutate, message):
    obj = sp.subscription("sub_1", "cus_1", "active")
    mutate(obj)
    with pytest.raises(EventError, match=message):
        to_command(sp.subscription_event(obj))


def test_checkout_in_subscription_mode_links_the_customer():
    command = to_command(sp.checkout_subscription("cus_1", "R@x.org", name="R", created=5))
    assert command == LinkCustomer("cus_1", "R@x.org", "R", {"campaign": "banner"}, 5)


def test_checkout_in_payment_mode_records_a_paid_contribution():
    for type_ in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
        e = sp.checkout_payment("pi_1", 2500, currency="USD", customer="cus_1", type_=type_)
        command = to_command(e)
        assert isinstance(command, RecordContribution)
        assert (command.key, command.amount, command.currency) == ("pi_1", 2500, "usd")
        assert command.customer == "cus_1" and command.email == "donor@example.org"
        assert command.metadata == {"campaign": "year-end"}
    unpaid = to_command(sp.checkout_payment("pi_2", 2500, paid=False))
    assert isinstance(unpaid, Ignore)


def test_other_checkout_modes_are_ignored():
    e = sp.checkout_subscription("cus_1", "r@x.org")
    e["data"]["object"]["mode"] = "setup"
    assert isinstance(to_command(e), Ignore)


def test_refund_dispute_invoice_and_deletion():
    refund = to_command(sp.charge_refunded("pi_1", 1000, 400))
    assert isinstance(refund, RecordRefund)
    assert (refund.key, refund.amount_refunded) == ("pi_1", 400)
    paid = to_command(sp.invoice("invoice.paid", "cus_1", "sub_1", amount=500))
    assert isinstance(paid, AddTimeline)
    assert (paid.customer, paid.amount, paid.detail["subscription"]) == ("cus_1", 500, "sub_1")
    failed = to_command(sp.invoice("invoice.payment_failed", "cus_1", "sub_1", amount=700))
    assert failed.kind == "invoice.payment_failed" and failed.amount == 700
    disputed = to_command(sp.dispute("pi_1", 1000))
    assert disputed.payment_intent == "pi_1" and disputed.customer is None
    assert to_command(sp.customer_deleted("cus_1", created=9)) == DeleteCustomer("cus_1", 9)


def test_other_types_are_ignored():
    command = to_command(sp.event("customer.updated", {"id": "cus_1"}))
    assert isinstance(command, Ignore)
    assert "customer.updated" in command.reason
    assert "customer.updated" not in HANDLERS


def test_envelope_validation():
    assert envelope_errors(sp.event("customer.updated", {"id": "cus_1"})) is None
    assert envelope_errors([1, 2]) == {"_schema": ["expected a JSON object"]}
    good = sp.event("x.y", {"id": "a"})
    for field in ("id", "type", "created", "data"):
        broken = {k: v for k, v in good.items() if k != field}
        assert field in envelope_errors(broken)
    assert "object" in envelope_errors({**good, "object": "v2.core.event"})
    assert "created" in envelope_errors({**good, "created": "yesterday"})
    assert "data" in envelope_errors({**good, "data": {"object": "nope"}})
