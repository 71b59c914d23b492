import time
import weakref

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stripe import StripeClient

from membership.core.config import DEFAULT_MEMBER_STATUSES
from membership.ledger import Ledger
from membership.store import Keys
from membership.stripe.api import iter_subscriptions
from membership.stripe.apply import apply_event
from membership.stripe.sync import (
    BATCH,
    StatusChange,
    SyncRefused,
    compare,
    prune_refusal,
    run,
)
from tests.support import stripe_payloads as sp

STATUSES = st.sampled_from(["active", "trialing", "past_due", "canceled", "unpaid", "paused"])
SIDE = st.dictionaries(st.sampled_from([f"sub_{i}" for i in range(12)]), STATUSES, max_size=12)


def test_reports_missing_extra_and_differing():
    drift = compare(
        {"sub_a": "active", "sub_b": "active", "sub_gone": "active"},
        {"sub_a": "active", "sub_b": "canceled", "sub_new": "trialing"},
    )
    assert drift.missing == ("sub_new",)
    assert drift.extra == ("sub_gone",)
    assert drift.status_differs == (StatusChange("sub_b", "active", "canceled"),)
    assert not drift.clean


@given(SIDE, SIDE)
def test_drift_accounts_for_every_subscription_exactly_once(ledger, stripe):
    drift = compare(ledger, stripe)
    agreeing = {s for s in ledger.keys() & stripe.keys() if ledger[s] == stripe[s]}
    differing = {c.subscription_id for c in drift.status_differs}
    parts = [set(drift.missing), set(drift.extra), differing, agreeing]
    assert sum(len(p) for p in parts) == len(ledger.keys() | stripe.keys())
    assert set().union(*parts) == ledger.keys() | stripe.keys()
    assert drift.clean == (ledger == stripe)


@given(SIDE)
def test_no_drift_against_itself(side):
    assert compare(side, dict(side)).clean


def test_prune_refusal():
    assert prune_refusal(0, 100, 0) is None  # nothing to end
    assert "listed no subscriptions" in prune_refusal(1, 100, 0)
    assert prune_refusal(10, 20, 10) is None  # a few stragglers: fine
    assert prune_refusal(11, 100, 100) is None  # many, but a small share
    assert "26 of the ledger's 100" in prune_refusal(26, 100, 74)


@pytest.fixture
def sync_ledger(redis_conn):
    return Ledger.on(redis_conn, Keys("sync"), DEFAULT_MEMBER_STATUSES)


def _stripe_world(ledger, fake_stripe) -> tuple[dict, dict]:
    """23 subscriptions in Stripe and a ledger that agrees on some, differs on some (one of
    them final), lacks some and has one Stripe does not: (ledger statuses, Stripe's)."""
    old = int(time.time()) - 3600
    in_ledger = {"sub_ghost": "active", "sub_ended": "canceled"}
    in_stripe = {"sub_ended": "active"}
    for i in range(21):
        in_stripe[f"sub_{i:02d}"] = "active" if i % 3 else "past_due"
        if i % 4:
            in_ledger[f"sub_{i:02d}"] = "active"
    in_stripe["sub_other"] = "trialing"
    for sid, status in in_ledger.items():
        sub = sp.subscription(sid, f"cus_{sid}", status)
        apply_event(ledger.writer, sp.subscription_event(sub, created=old))
    for sid, status in in_stripe.items():
        customer = {"id": f"cus_{sid}", "object": "customer", "email": f"{sid}@example.org"}
        fake_stripe.add(sp.subscription(sid, f"cus_{sid}", status), customer)
    return in_ledger, in_stripe


def test_sync_follows_every_page_and_finds_what_one_listing_finds(sync_ledger, fake_stripe):
    in_ledger, in_stripe = _stripe_world(sync_ledger, fake_stripe)
    client = StripeClient("sk_test_fake", base_addresses={"api": fake_stripe.url})
    open_ledger = {s: v for s, v in in_ledger.items() if s in in_stripe or v != "canceled"}
    expected = compare(open_ledger, in_stripe)
    now = int(time.time())

    reports = {}
    for size in (4, 100):
        fake_stripe.requests.clear()
        listing = iter_subscriptions(client, page_size=size)
        reports[size] = run(sync_ledger, listing, observed_at=now, apply=False)
        pages = fake_stripe.calls("GET", "/v1/subscriptions")
        assert len(pages) == -(-len(in_stripe) // size)
        # Each page after the first starts after the last subscription of the one before.
        newest_first = [s["id"] for s in fake_stripe.subscriptions]
        cursors = [p["query"].get("starting_after", [None])[0] for p in pages]
        assert cursors == [None, *newest_first[size - 1 :: size]][: len(pages)]

    for report in reports.values():
        assert report.listed == len(in_stripe)
        assert report.drift == expected
        assert report.unrepairable == ["sub_ended"]
    assert expected.missing and expected.extra == ("sub_ghost",) and expected.status_differs

    applied = run(sync_ledger, iter_subscriptions(client, page_size=4), observed_at=now, apply=True)
    assert applied.drift == expected
    differing = [c.subscription_id for c in expected.status_differs]
    assert applied.kept_newer == ["sub_ended"]  # final in the ledger
    assert sorted(applied.applied) == sorted(
        {*expected.missing, "sub_ghost", *differing} - {"sub_ended"}
    )
    assert sorted(applied.linked) == sorted(f"cus_{sid}" for sid in in_stripe)
    again = run(sync_ledger, iter_subscriptions(client, page_size=4), observed_at=now, apply=False)
    assert again.drift.status_differs == (StatusChange("sub_ended", "canceled", "active"),)
    assert not again.drift.missing and not again.drift.extra


class _Listed(dict):
    """A listed subscription a test can hold a weak reference to."""


def test_sync_holds_one_batch_of_the_listing_and_reports_progress(sync_ledger):
    alive = [0]  # listed subscriptions not yet freed
    most = 0

    def freed():
        alive[0] -= 1

    counted = {}

    def listing():
        nonlocal most
        for i in range(1200):
            most = max(most, alive[0])
            if i == 1000:
                counted[i] = sync_ledger.queries.count()
            sub = _Listed(sp.subscription(f"sub_{i:04d}", f"cus_{i:04d}", "active"))
            sub["customer"] = {"id": f"cus_{i:04d}", "email": f"r{i}@example.org"}
            alive[0] += 1
            weakref.finalize(sub, freed)
            yield sub

    seen = []
    now = int(time.time())
    result = run(sync_ledger, listing(), observed_at=now, apply=True, progress=seen.append)
    assert result.listed == 1200 and len(result.applied) == 1200 and len(result.linked) == 1200
    assert sync_ledger.queries.count() == 1200
    assert seen == [500, 1000]
    assert 0 < most <= 2 * BATCH  # the batch compared and the one being read, never more
    # Nothing in the ledger could be ended: the repairs were written as the listing came.
    assert counted[1000] >= 1000 - BATCH


def test_repairs_wait_while_the_listing_may_yet_be_refused(sync_ledger):
    """Another account's listing (a wrong key) that shares a few subscriptions: the ones it
    adds are not written while the listing goes on, and the refusal at its end changed
    nothing."""
    old = int(time.time()) - 3600
    ours = [sp.subscription(f"sub_ours_{i:02d}", f"cus_ours_{i:02d}", "active") for i in range(40)]
    for sub in ours:
        apply_event(sync_ledger.writer, sp.subscription_event(sub, created=old))
    theirs = [sp.subscription(f"sub_x_{i:03d}", f"cus_x_{i:03d}", "active") for i in range(250)]
    with pytest.raises(SyncRefused, match="30 of the ledger's 40 open subscriptions"):
        run(sync_ledger, [*theirs, *ours[:10]], observed_at=int(time.time()), apply=True)
    assert sync_ledger.queries.count() == 40
    assert sync_ledger.queries.subscription("sub_x_000") is None
    forced = run(
        sync_ledger, [*theirs, *ours[:10]], observed_at=int(time.time()), apply=True, force=True
    )
    assert len(forced.applied) == 250 + 30 and sync_ledger.queries.count() == 250 + 10
