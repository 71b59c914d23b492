"""Benchmark: can the time of `POST /v1/member/sign-in` tell a member from anyone else?

    .venv/bin/python bench/sign_in.py [--requests 2000]

In-process (Flask's test client, a throwaway redis-server, a local aiosmtpd server: nothing
leaves the machine): 1,000 Stripe members and 1,000 offline members in the ledger, then
sign-in requests for members' and strangers' addresses interleaved, each timed from request
to answer. Prints p50/p90/p99 per group and the difference of the medians, then the time the
worker thread needed to look up, store the link and mail it (the part that happens after the
answer), and `POST /v1/member/token/refresh` for comparison. Rate limits are off (they count
both groups alike, one Redis round trip each).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from membership import create_app  # noqa: E402
from membership.core.config import DEFAULT_MEMBER_STATUSES  # noqa: E402
from membership.ledger import Ledger  # noqa: E402
from membership.members.http import members_of  # noqa: E402
from membership.prompts.tokens import Tokens  # noqa: E402
from membership.store import Keys  # noqa: E402
from tests.support import stripe_payloads as sp  # noqa: E402
from tests.support.ledger_helpers import add_offline, link  # noqa: E402
from tests.support.ledger_helpers import snapshot as observe  # noqa: E402
from tests.support.processes import RedisServer  # noqa: E402
from tests.support.smtp_server import SmtpServer  # noqa: E402

ORIGIN = "https://news.example"
SECRET = "bench-secret-key-0123456789"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-sign-in-"))
    redis_server = RedisServer().start()
    smtp = SmtpServer(work).start()
    try:
        app = create_app(
            {
                "redis_url": redis_server.url,
                "data_dir": work / "var",
                "secret_key": SECRET,
                "allowed_origins": (ORIGIN,),
                "smtp_url": smtp.url(),
                "rate_limit_sign_in": "off",
                "rate_limit_sign_in_email": "off",
                "log_level": "WARNING",
            }
        )
        ledger = Ledger.on(redis_server.client(), Keys(), DEFAULT_MEMBER_STATUSES)
        for i in range(1000):
            observe(ledger, sp.subscription(f"sub_{i}", f"cus_{i}", "active"), observed_at=100)
            link(ledger, f"cus_{i}", f"payer{i}@example.org", observed_at=100)
            add_offline(ledger, f"gift{i}@example.org", "bench")
        client = app.test_client()
        outbox = members_of(app).outbox
        times: dict[str, list[float]] = {"member": [], "stranger": []}
        for i in range(args.requests):
            group = "member" if i % 2 == 0 else "stranger"
            who = f"payer{i % 1000}@example.org" if group == "member" else f"x{i}@example.org"
            body = {"email": who, "return_url": f"{ORIGIN}/story"}
            started = time.perf_counter()
            response = client.post("/v1/member/sign-in", json=body)
            times[group].append(time.perf_counter() - started)
            assert response.status_code == 202, response.get_json()
            if i % 100 == 99:  # keep the queue well below its bound
                outbox.wait_idle(60)
        started = time.perf_counter()
        outbox.wait_idle(120)
        drain = time.perf_counter() - started

        mailed = len(smtp.messages())
        t0 = time.perf_counter()
        for i in range(200):  # the worker's own cost per member: lookup, link, SMTP
            members_of(app)._mail_link(
                type("R", (), {"email": f"gift{i}@example.org", "return_url": ORIGIN + "/",
                               "locale": "en"})()
            )  # fmt: skip
        per_mail = (time.perf_counter() - t0) / 200

        tokens = Tokens(SECRET)
        token = tokens.encode_member(tokens.member("cus_1", time.time()))
        refresh = []
        for _ in range(1000):
            started = time.perf_counter()
            client.post("/v1/member/token/refresh", json={"token": token})
            refresh.append(time.perf_counter() - started)

        print(f"sign-in answers, {args.requests} requests (ms)    p50     p90     p99")
        for group, values in times.items():
            print(
                f"  {group:<8} ({len(values)})                 "
                f"{pct(values, 0.5):6.3f}  {pct(values, 0.9):6.3f}  {pct(values, 0.99):6.3f}"
            )
        diff = (statistics.median(times["member"]) - statistics.median(times["stranger"])) * 1000
        print(f"  median member - median stranger: {diff:+.3f} ms")
        print(f"mails delivered to the local server: {mailed} (one per member request)")
        print(f"worker, per member (lookup + link + SMTP): {per_mail * 1000:.2f} ms")
        print(f"queue drained {drain * 1000:.0f} ms after the last answer")
        print(f"refresh (ms): p50 {pct(refresh, 0.5):.3f}  p99 {pct(refresh, 0.99):.3f}")
    finally:
        smtp.stop()
        redis_server.stop()


if __name__ == "__main__":
    main()
