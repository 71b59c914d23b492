"""The Stripe calls of member recognition, each a plain value in and out, through the app's
`stripe_api.Interactive` (no retries, the whole answer within 10 s). Every failure is the
ApiError `stripe_api.failure` makes of it: 503 without STRIPE_API_KEY, 504 when Stripe did not
answer in time, 502 when it could not be reached, refused or failed (never its message or a
key); what went wrong is logged there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import stripe

from membership.stripe_api import Interactive, StripeNotConfigured, StripeTimedOut, failure

T = TypeVar("T")

# What the session is read with: what completing it made (the subscription, the payment
# intent: when it completed) and its customer (whether the session created it).
SESSION_EXPAND = ["subscription", "customer", "payment_intent"]


class StripeCalls:
    def __init__(self, interactive: Interactive) -> None:
        self.interactive = interactive

    @property
    def configured(self) -> bool:
        return self.interactive.configured

    def ready(self) -> None:
        if not self.configured:
            raise failure(StripeNotConfigured(), "no STRIPE_API_KEY")

    def _call(self, fn: Callable[[stripe.StripeClient], T], doing: str) -> T:
        try:
            return self.interactive.call(fn)
        except (StripeNotConfigured, StripeTimedOut, stripe.StripeError) as exc:
            raise failure(exc, doing) from None

    def checkout_session(self, session_id: str) -> dict | None:
        """The Checkout Session (`SESSION_EXPAND` expanded), None when Stripe has none."""

        def retrieve(client: stripe.StripeClient) -> dict | None:
            try:
                session = client.v1.checkout.sessions.retrieve(
                    session_id, params={"expand": SESSION_EXPAND}
                )
            except stripe.InvalidRequestError as exc:
                if exc.code == "resource_missing":
                    return None
                raise
            return session.to_dict(recursive=True)

        return self._call(retrieve, "reading the checkout session")

    def portal_url(self, customer: str, return_url: str) -> str:
        def create(client: stripe.StripeClient) -> str:
            params = {"customer": customer, "return_url": return_url}
            return client.v1.billing_portal.sessions.create(params=params).url

        return self._call(create, "opening the billing portal")

    def customers_with_email(self, email: str) -> list[str]:
        """Ids of Stripe's customers with exactly this email, newest first. Stripe compares
        it case-sensitively; the ledger's addresses are lower-case, as most are typed."""

        def find(client: stripe.StripeClient) -> list[str]:
            page = client.v1.customers.list(params={"email": email, "limit": 10})
            return [customer.id for customer in page.data]

        return self._call(find, "looking up the customer")
