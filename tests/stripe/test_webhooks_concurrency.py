"""The service under gunicorn, fed by several OS processes at once; Redis killed mid-stream."""

import multiprocessing
import random
import time
import urllib.request
from collections import Counter
from concurrent.futures import ProcessPoolExecutor

import pytest

from membership.core.config import DEFAULT_MEMBER_STATUSES
from membership.ledger import Ledger
from membership.store import Keys, connect
from tests.support import stripe_payloads as sp
from tests.support.ledger_helpers import add_offline, assert_exact
from tests.support.metrics import requests_total
from tests.support.processes import RedisServer, ServiceProcess, wait_until

pytestmark = pytest.mark.slow

PREFIX = "conc"
DELIVERERS = 4


def start_service(redis_url, tmp_path):
    env = {
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": PREFIX,
        "STRIPE_WEBHOOK_SECRET": sp.WEBHOOK_SECRET,
        "MEMBERSHIP_DATA_DIR": str(tmp_path / "var"),
        "LOG_LEVEL": "WARNING",
    }
    return ServiceProcess(env, workers=2, threads=4).start()


def refused(service) -> float:
    """How many deliveries the service has answered 503 (its /metrics, every worker's)."""
    with urllib.request.urlopen(service.url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    return requests_total(text, "/webhooks/stripe", "503", "POST")


def world(rng, customers, hot):
    """A newsroom of `customers`, plus `hot` customers with many subscriptions and
    events each, so concurrent deliveries keep meeting on the same records."""
    events, offline = sp.random_world(rng, customers)
    hot_events, hot_offline = sp.random_world(rng, hot, subscriptions=(6, 10), steps=8, tag="h")
    return sorted(events + hot_events, key=lambda e: e["created"]), offline + hot_offline


def split(rng, events, parts):
    """Shuffled, duplicated deliveries dealt to `parts` deliverers: a duplicate often
    goes to another process, so the same event arrives concurrently."""
    deliveries = [sp.body(e) for e in sp.shuffled_with_duplicates(rng, events, dup_rate=0.4)]
    return [deliveries[i::parts] for i in range(parts)], len(deliveries)


def executor(n):
    return ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("fork"))


def test_several_processes_deliver_shuffled_duplicated_events_at_once(redis_server, tmp_path):
    rng = random.Random(2026)
    events, offline = world(rng, 350, hot=6)
    truth = sp.ground_truth(events, offline, DEFAULT_MEMBER_STATUSES)
    parts, total = split(rng, events, DELIVERERS)
    assert len(events) >= 2000 and total >= 2800

    client = connect(redis_server.url)
    client.flushall()
    ledger = Ledger.on(client, Keys(PREFIX), DEFAULT_MEMBER_STATUSES)
    service = start_service(redis_server.url, tmp_path)
    try:
        url = service.url + "/webhooks/stripe"
        started = time.monotonic()
        with executor(DELIVERERS) as pool:
            futures = [pool.submit(sp.deliver, url, part) for part in parts]
            for email in offline:  # staff at work while Stripe delivers
                add_offline(ledger, email, "bank transfer")
            results = [f.result(timeout=240) for f in futures]
        elapsed = time.monotonic() - started
    finally:
        service.stop()
    statuses = Counter()
    for seen, pending in results:
        statuses.update(seen)
        assert pending == []
    assert statuses[200] == total, statuses
    print(f"\n{total} deliveries of {len(events)} events in {elapsed:.1f}s: {dict(statuses)}")
    assert truth.count > 100
    assert_exact(ledger, events, truth)
    client.close()


def test_redis_killed_mid_stream_then_retries_make_the_count_exact(tmp_path):
    rng = random.Random(4)
    events, offline = world(rng, 200, hot=3)
    truth = sp.ground_truth(events, offline, DEFAULT_MEMBER_STATUSES)
    parts, total = split(rng, events, 2)

    server = RedisServer(persistent=True).start()
    client = connect(server.url)
    ledger = Ledger.on(client, Keys(PREFIX), DEFAULT_MEMBER_STATUSES)
    for email in offline:
        add_offline(ledger, email, "gift")
    service = start_service(server.url, tmp_path)
    try:
        url = service.url + "/webhooks/stripe"
        with executor(2) as pool:
            futures = [
                pool.submit(sp.deliver, url, part, sp.WEBHOOK_SECRET, False) for part in parts
            ]
            wait_until(
                lambda: client.xlen(Keys(PREFIX).ledger_event_log) > total // 5, 60, "progress"
            )
            server.kill()
            wait_until(lambda: refused(service) >= 2 * len(parts), 60, "deliveries refused")
            server.start()
            results = [f.result(timeout=240) for f in futures]
        statuses = Counter()
        pending = []
        for seen, failed in results:
            statuses.update(seen)
            pending += failed
        assert statuses[503] > 0, statuses  # the outage was seen by Stripe's deliveries
        assert set(statuses) <= {200, 503}, statuses
        assert len(pending) == statuses[503]
        # Stripe's retries: every delivery that did not get a 200, again
        seen, still = sp.deliver(url, pending)
        assert still == [] and seen.get(200) == len(pending)
    finally:
        service.stop()
        client.close()
    try:
        client = connect(server.url)
        assert_exact(Ledger.on(client, Keys(PREFIX), DEFAULT_MEMBER_STATUSES), events, truth)
        client.close()
    finally:
        server.stop()
