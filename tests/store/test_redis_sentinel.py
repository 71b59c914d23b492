"""A failover in the middle of a webhook stream, on a primary watched by three Sentinels
(the tests marked `topologies` run each area's tests on such a setup too).

`REDIS_URL=redis+sentinel://...` gives the service redis-py's `Sentinel.master_for`: each
new connection asks the Sentinels where the primary is, so after a failover the
same process reaches the new primary by itself.
"""

from __future__ import annotations

import random
import time

from membership.core.config import DEFAULT_MEMBER_STATUSES
from membership.ledger import Ledger
from membership.store import Keys, connect
from tests.support import stripe_payloads as sp
from tests.support.ledger_helpers import add_offline, assert_exact
from tests.support.redis_topologies import SentinelSetup, WebhookStream

# --- failover --------------------------------------------------------------------

PREFIX = "failover"


def test_a_failover_mid_stream_costs_a_few_503s_and_no_member(service_app):
    """Kill the primary while webhooks arrive: deliveries get 503 (never a wrong 200)
    until the Sentinels promote the replica, then the same app carries on; Stripe's
    retries make the count exact. The banner serves the last good value meanwhile."""
    setup = SentinelSetup().start()
    try:
        rng = random.Random(8)
        events, offline = sp.random_world(rng, 120)
        truth = sp.ground_truth(events, offline, DEFAULT_MEMBER_STATUSES)
        bodies = [sp.body(e) for e in sp.shuffled_with_duplicates(rng, events)]
        app = service_app(setup.url, PREFIX)
        http = app.test_client()
        ledger = Ledger.on(connect(setup.url), Keys(PREFIX), DEFAULT_MEMBER_STATUSES)
        for email in offline:
            add_offline(ledger, email, "gift")
        assert http.get("/v1/banner").status_code == 200  # a last good banner exists

        stream = WebhookStream(app, bodies).start()
        while stream.delivered < len(bodies) // 3:
            time.sleep(0.01)
        old = setup.primary()
        killed = time.monotonic()  # before the kill: an answer may land before this line runs
        old.kill()
        banners, ready = [], []
        promoted = None
        while stream.delivered < len(bodies) and time.monotonic() - killed < 60:
            answer = http.get("/v1/banner")
            banners.append((time.monotonic(), answer.status_code, answer.get_json()))
            ready.append((time.monotonic(), http.get("/readyz").status_code))
            if promoted is None and setup.primary_port() != old.port:
                promoted = time.monotonic()
            time.sleep(0.1)
        stream.join(timeout=30)

        statuses = stream.statuses()
        refused = [t for t, status in stream.answers if status != 200]
        assert set(statuses) <= {200, 503}, statuses  # down is 503, never a 500 or a wrong 200
        assert refused, "the outage was never seen by a delivery"
        assert min(refused) >= killed  # nothing refused while the primary was up
        recovered = max(refused)
        assert promoted is not None and recovered - killed < 15
        assert stream.delivered == len(bodies)
        # The banner never failed: stale (the last good value) while no primary answered.
        assert {status for _, status, _ in banners} == {200}
        assert any(body["stale"] for _, _, body in banners)
        assert any(status == 503 for _, status in ready)
        print(
            f"\nfailover: {len(bodies)} deliveries, {statuses.get(503, 0)} answered 503, "
            f"first {min(refused) - killed:.2f} s and last {recovered - killed:.2f} s after the "
            f"kill; Sentinels named the new primary after {promoted - killed:.2f} s; "
            f"{sum(1 for _, _, b in banners if b['stale'])} stale banners"
        )

        # The same app, not restarted: ready, fresh, and exact.
        assert http.get("/readyz").status_code == 200
        time.sleep(1.0)  # the banner re-reads Redis within a second
        body = http.get("/v1/banner").get_json()
        assert (body["stale"], body["count"]) == (False, truth.count)
        assert_exact(ledger, events, truth)
    finally:
        setup.stop()
