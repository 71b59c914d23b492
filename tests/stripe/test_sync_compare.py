from hypothesis import given
from hypothesis import strategies as st

from membership.stripe.sync import StatusChange, collect, compare

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


def test_collect_reports_progress():
    seen = []
    listed = collect(({"id": f"sub_{i}"} for i in range(1200)), progress=seen.append, every=500)
    assert len(listed) == 1200
    assert seen == [500, 1000]


def test_prune_refusal():
    from membership.stripe.sync import prune_refusal

    assert prune_refusal(0, 100, 0) is None  # nothing to end
    assert "listed no subscriptions" in prune_refusal(1, 100, 0)
    assert prune_refusal(10, 20, 10) is None  # a few stragglers: fine
    assert prune_refusal(11, 100, 100) is None  # many, but a small share
    assert "26 of the ledger's 100" in prune_refusal(26, 100, 74)
