"""The service on a real 3-primary Redis Cluster, end to end (the tests marked
`topologies` run each area's tests on it too).

`REDIS_URL=redis+cluster://...` gives the service redis-py's RedisCluster; every
transaction (WATCH/MULTI/EXEC, the Lua inside it) stays on the one slot of the
keys' shared hash tag.
"""

from __future__ import annotations

import random

from redis.cluster import RedisCluster

from membership.core.config import DEFAULT_MEMBER_STATUSES
from membership.core.runtime import runtime
from membership.ledger import Ledger
from membership.store import Keys
from tests.support import stripe_payloads as sp
from tests.support.ledger_helpers import add_offline, assert_exact
from tests.support.processes import free_port
from tests.support.redis_topologies import WebhookStream

# --- the service on the cluster, end to end ------------------------------------------


def test_webhooks_on_the_cluster_give_the_exact_count_on_one_slot(redis_cluster, service_app):
    redis_cluster.flush()
    rng = random.Random(5)
    events, offline = sp.random_world(rng, 60)
    truth = sp.ground_truth(events, offline, DEFAULT_MEMBER_STATUSES)
    app = service_app(redis_cluster.url, "e2e")
    ledger = Ledger.on(runtime(app).redis, Keys("e2e"), DEFAULT_MEMBER_STATUSES)
    for email in offline:
        add_offline(ledger, email, "gift")
    bodies = [sp.body(e) for e in sp.shuffled_with_duplicates(rng, events)]
    stream = WebhookStream(app, bodies).start()
    stream.join(timeout=60)
    assert stream.statuses() == {200: len(bodies)}
    assert_exact(ledger, events, truth)
    http = app.test_client()
    assert http.get("/v1/banner").get_json()["count"] == truth.count
    assert http.get("/readyz").status_code == 200

    # Every key the service wrote shares one hash tag, so one primary holds them all.
    client = redis_cluster.client()
    written = list(client.scan_iter(match="*", target_nodes=RedisCluster.PRIMARIES))
    assert len(written) > 100 and all(k.startswith("{e2e}:") for k in written)
    assert len(redis_cluster.holders()) == 1
    client.close()


def test_the_service_starts_while_the_cluster_is_unreachable(service_app):
    nowhere = f"redis+cluster://127.0.0.1:{free_port()},127.0.0.1:{free_port()}"
    app = service_app(nowhere, "e2e")  # no node answers: start anyway, answer 503
    http = app.test_client()
    assert http.get("/readyz").status_code == 503
    body = sp.body(sp.subscription_event(sp.subscription("sub_1", "cus_1", "active")))
    answer = http.post(
        "/webhooks/stripe",
        data=body,
        headers={"Stripe-Signature": sp.sign(body), "Content-Type": "application/json"},
    )
    assert answer.status_code == 503 and answer.headers["Retry-After"]
    assert http.get("/v1/banner").status_code == 503  # nothing ever seen on this host
