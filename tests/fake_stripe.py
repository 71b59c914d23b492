"""A local stand-in for Stripe's API: serves Stripe-shaped list pages on 127.0.0.1.

Only what `membership sync` asks for: `GET /v1/subscriptions` with `status`,
`limit`, `starting_after` and `expand[...]=data.customer`, paginated the way
Stripe paginates (newest first, `has_more`, cursor = last id). It records every
request so tests can check the client sent its key and parameters.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class FakeStripe:
    def __init__(self) -> None:
        self.subscriptions: list[dict] = []  # newest first, as Stripe lists them
        self.customers: dict[str, dict] = {}
        self.requests: list[dict] = []
        self.fail_next: int = 0  # answer this many requests with a 500 first
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeStripe:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add(self, subscription: dict, customer: dict | None = None) -> None:
        self.subscriptions.insert(0, subscription)
        if customer is not None:
            self.customers[customer["id"]] = customer

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

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def _send(self, status: int, body: dict) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.send_header("Request-Id", f"req_fake_{len(fake.requests)}")
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self):
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                fake.requests.append(
                    {
                        "path": parts.path,
                        "query": query,
                        "authorization": self.headers.get("Authorization"),
                    }
                )
                if fake.fail_next > 0:
                    fake.fail_next -= 1
                    self._send(500, {"error": {"type": "api_error", "message": "try again"}})
                elif parts.path == "/v1/subscriptions":
                    self._send(200, fake._list_subscriptions(query))
                else:
                    self._send(
                        404,
                        {"error": {"type": "invalid_request_error", "message": "no such path"}},
                    )

        return Handler
