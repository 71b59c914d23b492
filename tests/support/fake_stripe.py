"""A local stand-in for Stripe's API on 127.0.0.1: nothing a test does leaves the machine.

What the service calls:
- `GET /v1/subscriptions` (`membership sync`): `status`, `limit`, `starting_after` and
  `expand[...]=data.customer`, paginated the way Stripe paginates (newest first, `has_more`,
  cursor = last id). Filled by `add()`.
- `POST /v1/checkout/sessions`, `GET /v1/checkout/sessions/{id}` (`expand[]=subscription`
  and the like), `POST /v1/billing_portal/sessions`, `GET /v1/customers/{id}`: see
  `tests/support/fake_stripe_checkout.py` (`fake.checkout`, with `add_price`, `complete`,
  `succeed_async`, `expire`, `refund` as shortcuts here).
- `GET /v1/customers?email=` (the member portal, for a member signed in by email): every
  customer, `add()`'s and Checkout's, matched exactly and case-sensitively, as Stripe does.

Bodies are read as stripe-python sends them (form-encoded, `a[b][0]=v`). Every request is
logged in `requests` (method, path, query, params, authorization, idempotency key) so tests
can check what was sent, or that nothing was. A request without `Authorization: Bearer sk_...`
(or with another key than `api_key`, when set) gets Stripe's 401.

Trouble on demand: `fail_next = n` answers the next n requests 500; `fail_with(...)` queues
any Stripe error answer (status, type, code, message, param); `answer_next(body)` queues any
answer at all (a JSON value, or raw bytes: not JSON, 40 MB), for a Stripe that answers what it
should not; `delay` holds every answer that many seconds (`stop()` releases them), for the
service's time limits.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, parse_qsl, urlsplit

from tests.support.fake_stripe_checkout import CheckoutWorld, StripeRefusal


def unflatten(pairs: list[tuple[str, str]]) -> dict:
    """Stripe's form encoding -> nested values: `metadata[campaign]=x` -> {"metadata":
    {"campaign": "x"}}; `line_items[0][price]=p` -> {"line_items": {"0": {"price": "p"}}};
    `expand[]=a` -> {"expand": ["a"]}."""
    out: dict = {}
    for key, value in pairs:
        head, _, rest = key.partition("[")
        path = [head] + ([p.rstrip("]") for p in rest.split("[")] if rest else [])
        node = out
        for i, part in enumerate(path):
            last = i == len(path) - 1
            if part == "":  # `name[]`: a list
                continue
            if last or path[i + 1] == "":
                if not last:  # name[] = value
                    node.setdefault(part, []).append(value)
                else:
                    node[part] = value
                break
            node = node.setdefault(part, {})
    return out


def _expanded(params: dict) -> set[str]:
    value = params.get("expand") or []
    return set(value.values() if isinstance(value, dict) else value)


STRIPE_KEY = "sk_test_fake_0123456789"  # the key of the `priced_stripe` fixture


class FakeStripe:
    def __init__(self, api_key: str | None = None) -> None:
        self.subscriptions: list[dict] = []  # newest first, as Stripe lists them
        self.customers: dict[str, dict] = {}
        self.checkout = CheckoutWorld()
        self.api_key = api_key  # None: any sk_/rk_ key is accepted
        self.requests: list[dict] = []
        self.fail_next: int = 0  # answer this many requests with a 500 first
        self.errors: list[tuple] = []  # queued answers (status, body[, sized]), first first
        self.delay: float = 0.0  # seconds to hold each answer
        self._released = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        # A short poll: stop() waits for it, once per test.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeStripe:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()

    # --- set-up and shortcuts, from tests ---------------------------------------------------

    def add(self, subscription: dict, customer: dict | None = None) -> None:
        self.subscriptions.insert(0, subscription)
        if customer is not None:
            self.customers[customer["id"]] = customer

    def fail_with(
        self,
        status: int,
        message: str = "Something went wrong",
        *,
        type_: str = "api_error",
        code: str | None = None,
        param: str | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` requests with this Stripe error."""
        error = {"type": type_, "message": message}
        error.update({k: v for k, v in (("code", code), ("param", param)) if v})
        self.errors += [(status, {"error": error})] * times

    def answer_next(
        self, body: object, status: int = 200, *, times: int = 1, sized: bool = True
    ) -> None:
        """Answer the next `times` requests with `body` (any JSON value; bytes go as they
        are), whatever was asked; `sized=False` sends no Content-Length (the body ends when
        the connection does)."""
        self.errors += [(status, body, sized)] * times

    def calls(self, method: str | None = None, path_prefix: str = "/v1/") -> list[dict]:
        """The logged requests to paths under `path_prefix` (and of `method`)."""
        return [
            r
            for r in self.requests
            if r["path"].startswith(path_prefix) and (method is None or r["method"] == method)
        ]

    def add_price(self, *args, **kwargs) -> dict:
        return self.checkout.add_price(*args, **kwargs)

    def complete(self, session_id: str, **kwargs) -> list[dict]:
        return self.checkout.complete(session_id, **kwargs)

    def succeed_async(self, session_id: str, **kwargs) -> dict:
        return self.checkout.succeed_async(session_id, **kwargs)

    def expire(self, session_id: str) -> dict:
        return self.checkout.expire(session_id)

    def refund(self, session_id: str, amount: int | None = None, **kwargs) -> dict:
        return self.checkout.refund(session_id, amount, **kwargs)

    # --- the API ------------------------------------------------------------------------------

    def _list_subscriptions(self, query: dict[str, list[str]]) -> dict:
        status = query.get("status", ["active"])[0]
        limit = min(int(query.get("limit", ["10"])[0]), 100)
        after = query.get("starting_after", [None])[0]
        # stripe-python encodes lists as expand[0]=..., curl users send expand[]=...
        expand = {v for k, vs in query.items() if k.startswith("expand[") for v in vs}
        items = [
            s
            for s in self.subscriptions
            if status == "all"
            or s["status"] == status
            or (status == "active" and s["status"] not in ("canceled", "incomplete_expired"))
        ]
        if after is not None:
            index = next(i for i, s in enumerate(items) if s["id"] == after)
            items = items[index + 1 :]
        page = items[:limit]
        data = []
        for sub in page:
            sub = dict(sub)
            if "data.customer" in expand and sub["customer"] in self.customers:
                sub["customer"] = self.customers[sub["customer"]]
            data.append(sub)
        return {
            "object": "list",
            "url": "/v1/subscriptions",
            "has_more": len(items) > limit,
            "data": data,
        }

    def _list_customers(self, params: dict) -> dict:
        """`GET /v1/customers?email=...`: Stripe's filter is exact and case-sensitive; newest
        first, one page of `limit` (at most 100)."""
        email = params.get("email")
        limit = min(int(params.get("limit", 10)), 100)
        everyone = {**self.customers, **self.checkout.customers}.values()
        found = [c for c in everyone if email is None or c.get("email") == email]
        found.sort(key=lambda c: c.get("created", 0), reverse=True)
        return {
            "object": "list",
            "url": "/v1/customers",
            "has_more": len(found) > limit,
            "data": found[:limit],
        }

    def _route(self, method: str, path: str, query: dict, params: dict) -> tuple[int, dict]:
        world = self.checkout
        parts = path.strip("/").split("/")
        if method == "GET" and path == "/v1/subscriptions":
            return 200, self._list_subscriptions(query)
        if method == "POST" and path == "/v1/checkout/sessions":
            return 200, world.create_session(params)
        if method == "GET" and parts[:3] == ["v1", "checkout", "sessions"] and len(parts) == 4:
            return 200, world.retrieve_session(parts[3], _expanded(params))
        if method == "POST" and path == "/v1/billing_portal/sessions":
            return 200, world.create_portal_session(params)
        if method == "GET" and path == "/v1/customers":
            return 200, self._list_customers(params)
        if method == "GET" and parts[:2] == ["v1", "customers"] and len(parts) == 3:
            found = world.customers.get(parts[2]) or self.customers.get(parts[2])
            if found is None:
                raise StripeRefusal(
                    404, f"No such customer: '{parts[2]}'", param="id", code="resource_missing"
                )
            return 200, found
        raise StripeRefusal(404, f"Unrecognized request URL ({method}: {path}).")

    def _authorized(self, header: str | None) -> StripeRefusal | None:
        scheme, _, key = (header or "").partition(" ")
        good = scheme == "Bearer" and key.startswith(("sk_", "rk_"))
        if good and (self.api_key is None or key == self.api_key):
            return None
        # Stripe shows a key's last four characters only, as here.
        shown = f"{key[:8]}{'*' * 12}{key[-4:]}" if key else ""
        return StripeRefusal(
            401,
            f"Invalid API Key provided: {shown}" if key else "You did not provide an API key.",
            type_="invalid_request_error",
        )

    def _answer(self, method: str, raw_path: str, headers, body: bytes) -> tuple:
        parts = urlsplit(raw_path)
        query = parse_qs(parts.query)
        pairs = parse_qsl(parts.query) if method == "GET" else parse_qsl(body.decode())
        params = unflatten(pairs)
        self.requests.append(
            {
                "method": method,
                "path": parts.path,
                "query": query,
                "params": params,
                "authorization": headers.get("Authorization"),
                "idempotency_key": headers.get("Idempotency-Key"),
                "stripe_version": headers.get("Stripe-Version"),
            }
        )
        if self.delay:
            self._released.wait(self.delay)
        if self.fail_next > 0:
            self.fail_next -= 1
            return 500, {"error": {"type": "api_error", "message": "try again"}}
        if self.errors:
            return self.errors.pop(0)
        try:
            refusal = self._authorized(headers.get("Authorization"))
            if refusal is not None:
                raise refusal
            return self._route(method, parts.path, query, params)
        except StripeRefusal as refusal:
            return refusal.status, refusal.body

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def _send(self, status: int, body: object, sized: bool = True) -> None:
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    if sized:
                        self.send_header("Content-Length", str(len(raw)))
                    else:
                        self.close_connection = True
                    self.send_header("Request-Id", f"req_fake_{len(fake.requests)}")
                    self.end_headers()
                    self.wfile.write(raw)
                except OSError:  # the client gave up waiting (a time-limit test)
                    pass

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                self._send(*fake._answer(method, self.path, self.headers, body))

            def do_GET(self):
                self._serve("GET")

            def do_POST(self):
                self._serve("POST")

        return Handler
