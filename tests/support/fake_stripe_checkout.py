"""The fake Stripe's Checkout and Billing Portal: sessions, prices, and what completing one makes.

Pure state, no HTTP: `tests/support/fake_stripe.py` serves it. Objects follow the API shape of the
pinned stripe package (2025-10-29.clover: a subscription's prices and periods on
`items.data[]`, an invoice's subscription under `parent.subscription_details`), and the
events a completion returns are the ones Stripe sends and the ledger reads, built by
`tests/support/stripe_payloads.py` so they sign and verify exactly as Stripe's do.

Create-time checks are Stripe's own, for what the service sends: a known mode, a success
URL, line items with a known price (or `price_data`), a recurring price only in subscription
mode, a locale Checkout supports (the pinned SDK's list, not the service's), metadata and
`client_reference_id` within Stripe's limits. A refusal is a `StripeRefusal`, which the server
answers with Stripe's error JSON.
"""

from __future__ import annotations

import secrets
import threading
import time
import typing

from stripe.params.checkout import SessionCreateParams

from tests.support import stripe_payloads as sp


def _sdk_locales() -> frozenset[str]:
    """The locales the pinned SDK declares for `checkout.Session.create`: an oracle for the
    service's own list that does not share its source."""
    ref = typing.get_args(SessionCreateParams.__annotations__["locale"])[0]
    # The annotation's text: "Literal['auto', 'bg', ...]|str"
    union = eval(ref.__forward_arg__, {"Literal": typing.Literal})
    literal = next(a for a in typing.get_args(union) if typing.get_origin(a) is typing.Literal)
    return frozenset(typing.get_args(literal))


CHECKOUT_LOCALES = _sdk_locales()
SESSION_TTL = 24 * 3600  # Stripe's default expires_at


class StripeRefusal(Exception):
    """What Stripe answers with a 4xx: `{"error": {type, code, message, param}}`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type_: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"type": type_, "message": message}}
        if code:
            self.body["error"]["code"] = code
        if param:
            self.body["error"]["param"] = param


def _id(prefix: str) -> str:
    return f"{prefix}_test_{secrets.token_hex(12)}"


def _int(value, param: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise StripeRefusal(400, f"Invalid integer: {value}", param=param) from None


class _Paying:
    """What the reader does at Checkout, and what Stripe then sends (CheckoutWorld's half
    that tests drive; the state is CheckoutWorld's)."""

    lock: threading.Lock
    sessions: dict[str, dict]
    customers: dict[str, dict]
    subscriptions: dict[str, dict]
    payment_intents: dict[str, dict]
    invoice_intents: dict[str, str]
    _line_items: dict[str, list[dict]]

    def complete(
        self,
        session_id: str,
        *,
        email: str = "reader@example.org",
        name: str = "A Reader",
        status: str = "active",
        async_payment: bool = False,
        created: int | None = None,
    ) -> list[dict]:
        """Pay for an open session as a reader would. Returns the events Stripe would send
        (unsigned dicts; sign each with `sp.sign(sp.body(event))`), in a usual order:

        - subscription mode: `customer.subscription.created` (the subscription `status`),
          `invoice.paid` and `invoice_payment.paid` (unless trialing),
          `checkout.session.completed`;
        - payment mode: `checkout.session.completed`, its `payment_status` `unpaid` when
          `async_payment` (then `succeed_async` sends the rest).
        """
        created = int(time.time()) if created is None else created
        with self.lock:
            session = self.sessions[session_id]
            if session["status"] != "open":
                raise ValueError(f"session {session_id} is {session['status']}, not open")
            items = self._line_items[session_id]
            session["status"] = "complete"
            session["customer_details"] = {
                "email": session["customer_email"] or email,
                "name": name,
            }
            events = []
            if session["mode"] == "subscription":
                events = self._subscribe(session, items, status, created)
            else:
                # Checkout makes a customer only when asked to and none was given at creation.
                if session["customer_creation"] == "always" and not session["customer"]:
                    session["customer"] = self._customer(session, created)
                session["payment_intent"] = self._payment_intent(session, created)
            paid = "no_payment_required" if status == "trialing" else "paid"
            session["payment_status"] = "unpaid" if async_payment else paid
            events.append(sp.event("checkout.session.completed", dict(session), created=created))
        return events

    def _customer(self, session: dict, created: int) -> str:
        customer_id = _id("cus")
        email = session["customer_details"]["email"]
        self.customers[customer_id] = {
            "id": customer_id,
            "object": "customer",
            "email": email,
            "name": session["customer_details"]["name"],
            "created": created,
        }
        return customer_id

    def _payment_intent(self, session: dict, created: int) -> str:
        """The payment intent Checkout makes when the reader confirms (since API version
        2022-08-01, not when the session is created): its `created` is the completion time."""
        intent_id = _id("pi")
        self.payment_intents[intent_id] = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": session["amount_total"],
            "currency": session["currency"],
            "customer": session["customer"],
            "status": "succeeded",
            "created": created,
        }
        return intent_id

    def _subscribe(self, session: dict, items: list[dict], status: str, created: int) -> list:
        customer = session["customer"] or self._customer(session, created)
        subscription_id = _id("sub")
        prices = [item["price"] for item in items]
        subscription = sp.subscription(
            subscription_id, customer, status, prices=prices, start=created
        )
        subscription["created"] = created
        self.subscriptions[subscription_id] = subscription
        session["customer"] = customer
        session["subscription"] = subscription_id
        events = [
            sp.subscription_event(
                subscription, created=created, type_="customer.subscription.created"
            )
        ]
        if status != "trialing":
            invoice = sp.invoice(
                "invoice.paid",
                customer,
                subscription_id,
                amount=session["amount_total"],
                created=created,
            )
            session["invoice"] = invoice["data"]["object"]["id"]
            intent = self.invoice_intents[session["invoice"]] = _id("pi")
            events.append(invoice)
            # How an invoice names its payment since 2025-03-31 (charges no longer name invoices).
            payment = {
                "id": _id("inpay"),
                "object": "invoice_payment",
                "invoice": session["invoice"],
                "status": "paid",
                "amount_paid": session["amount_total"],
                "currency": session["currency"],
                "payment": {"type": "payment_intent", "payment_intent": intent},
            }
            events.append(sp.event("invoice_payment.paid", payment, created=created))
        return events

    def succeed_async(self, session_id: str, *, created: int | None = None) -> dict:
        """The delayed payment of a completed session went through."""
        with self.lock:
            session = self.sessions[session_id]
            session["payment_status"] = "paid"
            return sp.event(
                "checkout.session.async_payment_succeeded",
                dict(session),
                created=int(time.time()) if created is None else created,
            )

    def expire(self, session_id: str) -> dict:
        with self.lock:
            session = self.sessions[session_id]
            session["status"] = "expired"
            return sp.event("checkout.session.expired", dict(session), created=int(time.time()))

    def payment_intent_of(self, session_id: str) -> str:
        """A paid session's payment intent: its own (payment mode) or its first invoice's."""
        session = self.sessions[session_id]
        return session["payment_intent"] or self.invoice_intents[session["invoice"]]

    def refund(
        self, session_id: str, amount: int | None = None, *, created: int | None = None
    ) -> dict:
        """`charge.refunded` for the session's payment: in full, or `amount` of it so far."""
        total = self.sessions[session_id]["amount_total"]
        return sp.charge_refunded(
            self.payment_intent_of(session_id),
            total,
            total if amount is None else amount,
            currency=self.sessions[session_id]["currency"],
            created=int(time.time()) if created is None else created,
        )


class CheckoutWorld(_Paying):
    """Prices, Checkout Sessions, customers, subscriptions, payment intents, portal sessions."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.prices: dict[str, dict] = {}
        self.sessions: dict[str, dict] = {}
        self.customers: dict[str, dict] = {}
        self.subscriptions: dict[str, dict] = {}
        self.payment_intents: dict[str, dict] = {}
        self.portal_sessions: list[dict] = []
        self.invoice_intents: dict[str, str] = {}  # invoice id -> its payment intent
        self._line_items: dict[str, list[dict]] = {}

    # --- set-up, from tests ------------------------------------------------------------------

    def add_price(
        self, id: str, amount: int = 500, *, interval: str | None = "month", currency="eur"
    ) -> dict:
        """A price Checkout can sell: recurring with `interval`, one-time with None."""
        price = sp.price(id=id, amount=amount, currency=currency, interval=interval or "month")
        if interval is None:
            price["recurring"], price["type"] = None, "one_time"
        self.prices[id] = price
        return price

    # --- the API ------------------------------------------------------------------------------

    def create_session(self, params: dict) -> dict:
        mode = params.get("mode")
        if mode not in ("payment", "subscription", "setup"):
            raise StripeRefusal(400, "Missing required param: mode.", param="mode")
        success = params.get("success_url")
        if not isinstance(success, str) or not success.startswith(("http://", "https://")):
            raise StripeRefusal(400, "Not a valid URL", param="success_url")
        locale = params.get("locale")
        if locale is not None and locale not in CHECKOUT_LOCALES:
            raise StripeRefusal(400, f"Invalid locale: {locale}", param="locale")
        metadata = params.get("metadata") or {}
        if len(metadata) > 50 or any(len(k) > 40 or len(str(v)) > 500 for k, v in metadata.items()):
            raise StripeRefusal(400, "Invalid metadata", param="metadata")
        reference = params.get("client_reference_id")
        if reference is not None and len(reference) > 200:
            raise StripeRefusal(400, "Invalid client_reference_id", param="client_reference_id")
        items = [
            self._line_item(mode, i, item) for i, item in enumerate(_list(params, "line_items"))
        ]
        if mode != "setup" and not items:
            raise StripeRefusal(400, "Missing required param: line_items.", param="line_items")
        currencies = {item["price"]["currency"] for item in items}
        if len(currencies) > 1:
            raise StripeRefusal(400, "All prices must be in the same currency.", param="line_items")
        session_id = _id("cs")
        now = int(time.time())
        session = {
            "id": session_id,
            "object": "checkout.session",
            "url": f"https://checkout.stripe.com/c/pay/{session_id}#fidkdWxOYHwnPyd1blpxYHZxWjA0",
            "mode": mode,
            "status": "open",
            "payment_status": "unpaid",
            "client_reference_id": reference,
            "metadata": dict(metadata),
            "customer": params.get("customer"),
            "customer_email": params.get("customer_email"),
            "customer_details": None,
            "customer_creation": params.get("customer_creation")
            or ("if_required" if mode == "payment" else None),
            "amount_subtotal": sum(i["amount_total"] for i in items),
            "amount_total": sum(i["amount_total"] for i in items),
            "currency": currencies.pop() if currencies else None,
            "subscription": None,
            "invoice": None,
            "payment_intent": None,
            "locale": locale,
            "submit_type": params.get("submit_type"),
            "success_url": success,
            "cancel_url": params.get("cancel_url"),
            "created": now,
            "expires_at": now + SESSION_TTL,
            "livemode": False,
        }
        with self.lock:
            self.sessions[session_id] = session
            self._line_items[session_id] = items
        return session

    def _line_item(self, mode: str, i: int, item: dict) -> dict:
        where = f"line_items[{i}]"
        quantity = _int(item.get("quantity", 1), f"{where}[quantity]")
        if "price" in item:
            price = self.prices.get(item["price"])
            if price is None:
                raise StripeRefusal(
                    400,
                    f"No such price: '{item['price']}'",
                    param=f"{where}[price]",
                    code="resource_missing",
                )
        elif "price_data" in item:
            data = item["price_data"]
            if not (data.get("product") or (data.get("product_data") or {}).get("name")):
                raise StripeRefusal(400, "Missing product", param=f"{where}[price_data]")
            price = {
                "id": _id("price"),
                "object": "price",
                "currency": str(data.get("currency", "")).lower(),
                "unit_amount": _int(data.get("unit_amount"), f"{where}[price_data][unit_amount]"),
                "recurring": data.get("recurring"),
                "type": "recurring" if data.get("recurring") else "one_time",
            }
        else:
            raise StripeRefusal(400, "Missing price", param=f"{where}[price]")
        recurring = price.get("recurring") is not None
        if mode == "payment" and recurring:
            raise StripeRefusal(
                400,
                "You specified `payment` mode but passed a recurring price.",
                param=f"{where}[price]",
            )
        if mode == "subscription" and not recurring:
            raise StripeRefusal(
                400, "You must provide at least one recurring price in `subscription` mode."
            )
        return {
            "price": price,
            "quantity": quantity,
            "amount_total": price["unit_amount"] * quantity,
        }

    def retrieve_session(self, session_id: str, expand: set[str]) -> dict:
        session = self.sessions.get(session_id)
        if session is None:
            raise StripeRefusal(
                404,
                f"No such checkout.session: '{session_id}'",
                param="session",
                code="resource_missing",
            )
        shown = dict(session)
        for name in ("subscription", "customer", "payment_intent"):
            if name in expand and isinstance(shown.get(name), str):
                found = {
                    "subscription": self.subscriptions,
                    "customer": self.customers,
                    "payment_intent": self.payment_intents,
                }[name]
                shown[name] = found.get(shown[name], shown[name])
        if "line_items" in expand:
            shown["line_items"] = {
                "object": "list",
                "data": self._line_items.get(session_id, []),
                "has_more": False,
            }
        return shown

    def create_portal_session(self, params: dict) -> dict:
        customer = params.get("customer")
        if not customer:
            raise StripeRefusal(400, "Missing required param: customer.", param="customer")
        if customer not in self.customers:
            raise StripeRefusal(
                400, f"No such customer: '{customer}'", param="customer", code="resource_missing"
            )
        portal_id = _id("bps")
        portal = {
            "id": portal_id,
            "object": "billing_portal.session",
            "customer": customer,
            "return_url": params.get("return_url"),
            "url": f"https://billing.stripe.com/p/session/test_{secrets.token_hex(16)}",
            "created": int(time.time()),
            "livemode": False,
        }
        self.portal_sessions.append(portal)
        return portal


def _list(params: dict, name: str) -> list:
    """A form-encoded list: stripe-python sends `name[0][...]`, which `unflatten` turns into
    a dict keyed by index."""
    value = params.get(name) or []
    if isinstance(value, dict):
        return [value[k] for k in sorted(value, key=int)]
    return list(value)
