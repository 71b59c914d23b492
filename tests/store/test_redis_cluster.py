"""The ledger, banner and goals tests again, on a real 3-primary Redis Cluster.

`REDIS_URL=redis+cluster://...` gives the service redis-py's RedisCluster; every
transaction (WATCH/MULTI/EXEC, the Lua inside it) stays on the one slot of the
keys' shared hash tag.
"""

from __future__ import annotations

import random

import pytest
from redis.cluster import RedisCluster

from membership import create_app
from membership.core.config import DEFAULT_MEMBER_STATUSES
from membership.core.runtime import runtime
from membership.ledger import Ledger
from membership.store import Keys
from tests.cli import test_cli_campaign_results, test_cli_ledger
from tests.core import test_audit
from tests.goals import test_banner, test_banner_cache, test_goals
from tests.ledger import test_ledger, test_ledger_properties, test_ledger_rebuild
from tests.members import test_member_export, test_member_search
from tests.prompts import test_prompt_counts, test_prompt_events_http
from tests.store import test_whole
from tests.stripe.test_webhooks_concurrency import assert_exact
from tests.support import stripe_payloads as sp
from tests.support.ledger_helpers import add_offline
from tests.support.processes import free_port
from tests.support.redis_topologies import (
    EMBEDDED,
    NO_REDIS,
    ONE_SERVER,
    UNTAGGED,
    Cluster,
    WebhookStream,
    adopt,
)


@pytest.fixture(scope="module")
def redis_server():
    cluster = Cluster().start()
    yield cluster
    cluster.stop()


@pytest.fixture
def redis_url(redis_server):
    redis_server.flush()
    return redis_server.url


@pytest.fixture
def redis_client(redis_server):
    client = redis_server.client()
    yield client
    client.close()


TestLedger = adopt(test_ledger)
TestLedgerRebuild = adopt(test_ledger_rebuild, leave_out=ONE_SERVER)
TestLedgerProperties = adopt(test_ledger_properties, leave_out=NO_REDIS)
TestBanner = adopt(test_banner)
TestBannerCache = adopt(test_banner_cache, leave_out=ONE_SERVER)
TestGoals = adopt(test_goals)
TestWhole = adopt(test_whole)
TestAudit = adopt(test_audit, leave_out=UNTAGGED)
TestCliLedger = adopt(test_cli_ledger, leave_out=EMBEDDED)
TestPromptCounts = adopt(test_prompt_counts)
TestPromptEventsHttp = adopt(test_prompt_events_http, leave_out=ONE_SERVER)
TestCliCampaignResults = adopt(test_cli_campaign_results)
TestMemberSearch = adopt(test_member_search)
TestMemberExport = adopt(test_member_export)


# --- the service on the cluster, end to end ------------------------------------------


def _app(url, tmp_path, prefix="e2e"):
    return create_app(
        {
            "redis_url": url,
            "redis_prefix": prefix,
            "data_dir": tmp_path / "var",
            "stripe_webhook_secrets": (sp.WEBHOOK_SECRET,),
            "secret_key": "test-secret-key-0123456789",
        }
    )


def test_webhooks_on_the_cluster_give_the_exact_count_on_one_slot(redis_server, tmp_path):
    redis_server.flush()
    rng = random.Random(5)
    events, offline = sp.random_world(rng, 60)
    truth = sp.ground_truth(events, offline, DEFAULT_MEMBER_STATUSES)
    app = _app(redis_server.url, tmp_path)
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
    client = redis_server.client()
    written = list(client.scan_iter(match="*", target_nodes=RedisCluster.PRIMARIES))
    assert len(written) > 100 and all(k.startswith("{e2e}:") for k in written)
    assert len(redis_server.holders()) == 1
    client.close()


def test_the_service_starts_while_the_cluster_is_unreachable(tmp_path):
    nowhere = f"redis+cluster://127.0.0.1:{free_port()},127.0.0.1:{free_port()}"
    app = _app(nowhere, tmp_path)  # no node answers: start anyway, answer 503
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
