"""The Stripe calls of member recognition, each a plain value in and out, through the app's
`stripe_api.Interactive`; every failure is the ApiError `stripe_api.failure` makes of it, and
an answer that is not what was asked for is `stripe_bad_answer` (checked here field by field).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

import stripe

from membership.members.rules import CUSTOMER_ID
from membership.stripe.api import (
    FAILURES,
    Interactive,
    StripeBadAnswer,
    StripeNotConfigured,
    answer_dict,
    failure,
    https_url,
)

T = TypeVar("T")

# What the session is read with: what completing it made (the subscription, the payment
# intent: when it completed) and its customer (whether the session created it).
SESSION_EXPAND = ["subscription", "customer", "payment_intent"]
_TEXT = (str, type(None))


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _reference(value: object, name: str, *, created: bool = False) -> None:
    """None, an id, or the expanded object with a string id (and a whole `created`, unless it
    is a deleted customer, which has none)."""
    if value is None or isinstance(value, str):
        return
    if not isinstance(value, Mapping) or not isinstance(value.get("id"), str):
        raise StripeBadAnswer(f"the checkout session's {name}: not an id or an object")
    if created and not value.get("deleted") and not _whole(value.get("created")):
        raise StripeBadAnswer(f"the checkout session's {name}: no created time")


def check_session(session: dict, session_id: str) -> dict:
    """The fields `rules.session_subject` reads, of the types Stripe gives them; else
    StripeBadAnswer. The session must be the one asked for."""
    if session.get("id") != session_id or session.get("object") != "checkout.session":
        raise StripeBadAnswer("not the checkout session asked for")
    if not _whole(session.get("created")):
        raise StripeBadAnswer("the checkout session's created: not a whole number")
    for name in ("status", "mode", "payment_status"):
        if not isinstance(session.get(name), _TEXT):
            raise StripeBadAnswer(f"the checkout session's {name}: not a string")
    for name in ("customer", "payment_intent", "subscription"):
        _reference(session.get(name), name, created=True)
    subscription = session.get("subscription")
    if isinstance(subscription, Mapping):
        if not isinstance(subscription.get("status"), str):
            raise StripeBadAnswer("the checkout session's subscription: no status")
        _reference(subscription.get("customer"), "subscription's customer")
    return session


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
        except FAILURES as exc:
            raise failure(exc, doing) from None

    def checkout_session(self, session_id: str) -> dict | None:
        """The Checkout Session (`SESSION_EXPAND` expanded, checked by `check_session`), None
        when Stripe has none."""

        def retrieve(client: stripe.StripeClient) -> dict | None:
            try:
                session = client.v1.checkout.sessions.retrieve(
                    session_id, params={"expand": SESSION_EXPAND}
                )
            except stripe.InvalidRequestError as exc:
                if exc.code == "resource_missing":
                    return None
                raise
            return check_session(answer_dict(session, "the checkout session"), session_id)

        return self._call(retrieve, "reading the checkout session")

    def portal_url(self, customer: str, return_url: str) -> str:
        def create(client: stripe.StripeClient) -> str:
            params = {"customer": customer, "return_url": return_url}
            portal = client.v1.billing_portal.sessions.create(params=params)
            return https_url(answer_dict(portal, "the portal session"), "the portal session")

        return self._call(create, "opening the billing portal")

    def customers_with_email(self, email: str) -> list[str]:
        """Ids of Stripe's customers with exactly this email, newest first. Stripe compares
        it case-sensitively; the ledger's addresses are lower-case, as most are typed."""

        def find(client: stripe.StripeClient) -> list[str]:
            page = answer_dict(
                client.v1.customers.list(params={"email": email, "limit": 10}), "customers"
            )
            found = page.get("data")
            if not isinstance(found, list):
                raise StripeBadAnswer("customers: no list")
            ids = [c.get("id") if isinstance(c, Mapping) else None for c in found]
            if not all(isinstance(i, str) and CUSTOMER_ID.match(i) for i in ids):
                raise StripeBadAnswer("customers: a customer without a customer id")
            return ids

        return self._call(find, "looking up the customer")
