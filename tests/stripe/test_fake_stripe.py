"""The fake Stripe answers stripe-python as Stripe would (what the checkout and member tests
rely on): sessions created and read back through the SDK, completion events that the
webhook verifies, errors and delays on demand."""

from __future__ import annotations

import time

import pytest
import stripe
from stripe import StripeClient

from tests.support import stripe_payloads as sp
from tests.support.fake_stripe import STRIPE_KEY, unflatten
from tests.support.fake_stripe_checkout import CHECKOUT_LOCALES


def client(priced_stripe, **options) -> StripeClient:
    return StripeClient(
        STRIPE_KEY, base_addresses={"api": priced_stripe.url}, max_network_retries=0, **options
    )


def test_unflatten_reads_stripes_form_encoding():
    pairs = [
        ("mode", "payment"),
        ("metadata[campaign]", "spring"),
        ("line_items[0][price_data][product_data][name]", "Gift"),
        ("line_items[0][quantity]", "1"),
        ("expand[]", "subscription"),
        ("expand[]", "customer"),
    ]
    assert unflatten(pairs) == {
        "mode": "payment",
        "metadata": {"campaign": "spring"},
        "line_items": {"0": {"price_data": {"product_data": {"name": "Gift"}}, "quantity": "1"}},
        "expand": ["subscription", "customer"],
    }


def test_the_locale_oracle_is_the_sdks_list():
    assert {"auto", "en", "de", "pt-BR", "zh-TW"} <= CHECKOUT_LOCALES
    assert "uk" not in CHECKOUT_LOCALES


def test_a_subscription_session_from_create_to_complete(priced_stripe):
    session = client(priced_stripe).v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "line_items": [{"price": "price_monthly", "quantity": 1}],
            "success_url": "https://news.example/thanks?session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": "https://news.example/join",
            "client_reference_id": "dec123",
            "metadata": {"campaign": "spring", "variant": "a", "decision": "dec123"},
            "locale": "de",
        }
    )
    assert session.id.startswith("cs_") and session.url.startswith(
        "https://checkout.stripe.com/c/pay/cs_"
    )
    assert (session.status, session.payment_status, session.mode) == (
        "open",
        "unpaid",
        "subscription",
    )
    assert session.success_url.endswith("{CHECKOUT_SESSION_ID}")
    assert session.metadata.to_dict() == {
        "campaign": "spring",
        "variant": "a",
        "decision": "dec123",
    }
    sent = priced_stripe.calls("POST")[0]
    assert sent["params"]["line_items"]["0"]["price"] == "price_monthly"
    assert sent["authorization"] == f"Bearer {STRIPE_KEY}"

    events = priced_stripe.complete(session.id, email="new@example.org")
    assert [e["type"] for e in events] == [
        "customer.subscription.created",
        "invoice.paid",
        "invoice_payment.paid",
        "checkout.session.completed",
    ]
    done = events[-1]["data"]["object"]
    assert done["customer_details"]["email"] == "new@example.org" and done["amount_total"] == 500
    assert done["subscription"] == events[0]["data"]["object"]["id"]

    read = client(priced_stripe).v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["subscription"]}
    )
    assert read.status == "complete" and read.payment_status == "paid"
    assert read.subscription.status == "active" and read.subscription.customer == read.customer
    # every event verifies with the SDK, as the webhook endpoint verifies it
    for e in events:
        payload = sp.body(e)
        assert (
            stripe.Webhook.construct_event(payload, sp.sign(payload), sp.WEBHOOK_SECRET).id
            == e["id"]
        )


def test_a_payment_session_its_refund_and_async_payment(priced_stripe):
    session = client(priced_stripe).v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {
                        "currency": "eur",
                        "unit_amount": 2500,
                        "product_data": {"name": "Gift"},
                    },
                    "quantity": 1,
                }
            ],
            "success_url": "https://news.example/thanks",
        }
    )
    assert session.amount_total == 2500 and session.currency == "eur"
    [completed] = priced_stripe.complete(session.id, async_payment=True)
    assert completed["data"]["object"]["payment_status"] == "unpaid"
    succeeded = priced_stripe.succeed_async(session.id)
    assert succeeded["type"] == "checkout.session.async_payment_succeeded"
    refund = priced_stripe.refund(session.id)["data"]["object"]
    assert refund["payment_intent"] == completed["data"]["object"]["payment_intent"]
    assert refund["refunded"] and refund["amount_refunded"] == 2500


@pytest.mark.parametrize(
    "params, param",
    [
        (
            {"mode": "subscription", "line_items": [{"price": "price_nope", "quantity": 1}]},
            "line_items[0][price]",
        ),
        (
            {"mode": "payment", "line_items": [{"price": "price_monthly", "quantity": 1}]},
            "line_items[0][price]",
        ),
        (
            {
                "mode": "subscription",
                "line_items": [{"price": "price_monthly", "quantity": 1}],
                "locale": "uk",
            },
            "locale",
        ),
    ],
)
def test_refusals_are_stripes_errors(priced_stripe, params, param):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client(priced_stripe).v1.checkout.sessions.create(
            params={**params, "success_url": "https://x.example/"}
        )
    assert caught.value.param == param and caught.value.http_status == 400


def test_a_wrong_key_is_a_401_showing_only_its_end(priced_stripe):
    wrong = StripeClient("sk_test_wrong_key_abcd", base_addresses={"api": priced_stripe.url})
    with pytest.raises(stripe.AuthenticationError) as caught:
        wrong.v1.checkout.sessions.retrieve("cs_test_x")
    assert "abcd" in str(caught.value) and "sk_test_wrong_key_abcd" not in str(caught.value)


def test_portal_sessions_and_customers(priced_stripe):
    session = client(priced_stripe).v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "line_items": [{"price": "price_monthly", "quantity": 1}],
            "success_url": "https://x.example/",
        }
    )
    customer = priced_stripe.complete(session.id)[-1]["data"]["object"]["customer"]
    portal = client(priced_stripe).v1.billing_portal.sessions.create(
        params={"customer": customer, "return_url": "https://news.example/"}
    )
    assert portal.id.startswith("bps_") and portal.url.startswith(
        "https://billing.stripe.com/p/session/"
    )
    assert client(priced_stripe).v1.customers.retrieve(customer).email == "reader@example.org"
    with pytest.raises(stripe.InvalidRequestError):
        client(priced_stripe).v1.billing_portal.sessions.create(params={"customer": "cus_unknown"})


def test_queued_errors_and_delays(priced_stripe):
    priced_stripe.fail_with(
        402, "Your card was declined.", type_="card_error", code="card_declined"
    )
    with pytest.raises(stripe.CardError):
        client(priced_stripe).v1.checkout.sessions.retrieve("cs_test_x")
    priced_stripe.fail_with(500, times=1)
    with pytest.raises(stripe.APIError):
        client(priced_stripe).v1.checkout.sessions.retrieve("cs_test_x")
    priced_stripe.delay = 5
    started = time.monotonic()
    slow = StripeClient(
        STRIPE_KEY,
        base_addresses={"api": priced_stripe.url},
        max_network_retries=0,
        http_client=stripe.RequestsClient(timeout=0.3),
    )
    with pytest.raises(stripe.APIConnectionError):
        slow.v1.checkout.sessions.retrieve("cs_test_x")
    assert time.monotonic() - started < 2


def test_any_answer_on_demand(priced_stripe):
    """`answer_next`: whatever Stripe should never answer, as it would arrive."""
    priced_stripe.answer_next({"id": "bps_1", "object": "billing_portal.session", "url": 5})
    assert (
        client(priced_stripe).v1.billing_portal.sessions.create(params={"customer": "cus_x"}).url
        == 5
    )
    priced_stripe.answer_next([1, 2])
    assert client(priced_stripe).v1.checkout.sessions.retrieve("cs_test_x") == [1, 2]
    for sized in (True, False):
        priced_stripe.answer_next(b'{"id": "cs_1", "pad": "' + b"x" * 100_000 + b'"}', sized=sized)
        assert len(client(priced_stripe).v1.checkout.sessions.retrieve("cs_test_x").pad) == 100_000
    priced_stripe.answer_next(b"<html>")
    with pytest.raises(stripe.APIError):
        client(priced_stripe).v1.checkout.sessions.retrieve("cs_test_x")


def test_a_contribution_made_at_confirmation_and_its_customer(priced_stripe):
    """A payment-mode session: its payment intent is made when the reader pays (Stripe's since
    2022-08-01), so its `created` is the completion time; `customer_creation=always` makes a
    new customer unless one was given when the session was created."""
    base = {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {
                    "currency": "eur",
                    "unit_amount": 100,
                    "product_data": {"name": "G"},
                },
                "quantity": 1,
            }
        ],
        "success_url": "https://news.example/thanks",
    }
    expand = {"expand": ["payment_intent", "customer"]}
    made = client(priced_stripe).v1.checkout.sessions.create(
        params={**base, "customer_creation": "always"}
    )
    assert made.payment_intent is None
    priced_stripe.complete(made.id, created=1_800_000_000)
    read = client(priced_stripe).v1.checkout.sessions.retrieve(made.id, params=expand)
    assert read.payment_intent.created == 1_800_000_000
    assert read.customer.created == 1_800_000_000 and read.customer.id.startswith("cus_")

    given = client(priced_stripe).v1.checkout.sessions.create(
        params={**base, "customer_creation": "always", "customer": read.customer.id}
    )
    priced_stripe.complete(given.id)
    again = client(priced_stripe).v1.checkout.sessions.retrieve(given.id, params=expand)
    assert again.customer.id == read.customer.id  # kept, not replaced

    plain = client(priced_stripe).v1.checkout.sessions.create(params=base)
    priced_stripe.complete(plain.id)
    assert (
        client(priced_stripe).v1.checkout.sessions.retrieve(plain.id, params=expand).customer
        is None
    )
