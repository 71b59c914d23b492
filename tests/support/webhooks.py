"""Stripe webhooks through an app's test client, signed as Stripe signs them."""

from __future__ import annotations

from tests.support import stripe_payloads as sp

URL = "/webhooks/stripe"


def post(client, payload, header=None, secret=sp.WEBHOOK_SECRET, timestamp=None):
    """POST `payload` (an event or its body) to the webhook; `header`: a Stripe-Signature of
    your own (`""`: none), else it is signed with `secret` at `timestamp`."""
    if isinstance(payload, dict):
        payload = sp.body(payload)
    if header is None:
        header = sp.sign(payload, secret, timestamp)
    headers = {"Stripe-Signature": header} if header else {}
    return client.post(URL, data=payload, headers=headers, content_type="application/json")


def deliver(client, event: dict) -> dict:
    """One event through the webhook, which must answer 200; its answer."""
    response = post(client, event)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def active(sub_id="sub_1", customer="cus_1", created=sp.T0) -> dict:
    """A Stripe event of `customer`'s active subscription `sub_id`."""
    return sp.subscription_event(sp.subscription(sub_id, customer, "active"), created=created)
