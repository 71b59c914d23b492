"""prompts.counts against a real Redis: events counted once, whole batches, what is kept how long.

Runs on a real Cluster too (marked `topologies`), so every key and the script must stay on
one slot.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from membership.prompts import counts
from membership.prompts.counts import HOLDOUT, CountsError, Recorded
from membership.prompts.tokens import CLOCK_SKEW, DECISION_MAX_AGE, DecisionClaim
from membership.store import Keys

pytestmark = pytest.mark.topologies("single", "cluster")

# 2026-11-25T12:00:00Z
NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC).timestamp()
CAMPAIGN = "winter-drive"


def claim(variant="a", reader="r_reader01", decision="d1", campaign=CAMPAIGN, issued=NOW):
    return DecisionClaim(decision, campaign, variant, reader, int(issued))


def totals(redis_client, keys, campaign=CAMPAIGN, day=None):
    key = keys.prompt_counts_day(campaign, day) if day else keys.prompt_counts(campaign)
    return {k: int(v) for k, v in redis_client.hgetall(key).items()}


def readers(redis_client, keys, slot, campaign=CAMPAIGN):
    return redis_client.pfcount(keys.prompt_readers(campaign, slot))


def test_each_type_is_counted_per_variant_day_and_all_time(redis_conn, redis_client, keys):
    events = [
        (claim("a", "r_reader01", "d1"), "view"),
        (claim("a", "r_reader01", "d1"), "click"),
        (claim("a", "r_reader02", "d2"), "view"),
        (claim("a", "r_reader02", "d2"), "dismiss"),
        (claim("b", "r_reader03", "d3"), "view"),
        (claim(None, "r_reader04", "d4"), "holdout"),
    ]
    assert counts.record(redis_conn, keys, events, NOW) == Recorded(6, 0)
    expected = {
        "a:views": 2,
        "a:clicks": 1,
        "a:dismissals": 1,
        "b:views": 1,
        f"{HOLDOUT}:events": 1,
    }
    assert totals(redis_client, keys) == expected
    assert totals(redis_client, keys, day="2026-11-25") == expected
    assert readers(redis_client, keys, "a") == 2
    assert readers(redis_client, keys, "b") == 1
    assert readers(redis_client, keys, HOLDOUT) == 1


def test_the_same_claim_and_type_counts_once_in_a_batch_and_across_calls(
    redis_conn, redis_client, keys
):
    view = (claim(), "view")
    assert counts.record(redis_conn, keys, [view, view, view], NOW) == Recorded(1, 2)
    assert counts.record(redis_conn, keys, [view, (claim(), "click")], NOW + 60) == Recorded(1, 1)
    assert totals(redis_client, keys) == {"a:views": 1, "a:clicks": 1}
    # Another decision for the same reader is another view (the widget showed it again).
    assert counts.record(redis_conn, keys, [(claim(decision="d2"), "view")], NOW) == Recorded(1, 0)
    assert totals(redis_client, keys)["a:views"] == 2
    assert readers(redis_client, keys, "a") == 1


def test_a_mark_lives_as_long_as_the_token_reads_and_never_names_the_token(
    redis_conn, redis_client, keys
):
    issued = NOW - 3600
    c = claim(issued=issued, reader="r_secretreader")
    counts.record(redis_conn, keys, [(c, "view")], NOW)
    mark = keys.prompt_event_mark(counts.digest(c), "view")
    ttl = redis_client.ttl(mark)
    assert DECISION_MAX_AGE + CLOCK_SKEW - 3600 - 2 <= ttl <= DECISION_MAX_AGE + CLOCK_SKEW - 3600
    assert "r_secretreader" not in mark and "d1" not in mark
    # Its last second: the mark still outlives the token.
    late = NOW + DECISION_MAX_AGE - 3600 - 1
    assert counts.mark_ttl(c, late) == CLOCK_SKEW + 1


def test_day_keys_expire_after_the_retention_and_totals_stay(redis_conn, redis_client, keys):
    counts.record(
        redis_conn, keys, [(claim(), "view"), (claim(None, decision="h"), "holdout")], NOW
    )
    day_ttl = redis_client.ttl(keys.prompt_counts_day(CAMPAIGN, "2026-11-25"))
    assert counts.DAY_TTL - 5 <= day_ttl <= counts.DAY_TTL
    assert redis_client.ttl(keys.prompt_counts(CAMPAIGN)) == -1
    assert redis_client.ttl(keys.prompt_readers(CAMPAIGN, "a")) == -1
    assert redis_client.ttl(keys.prompt_readers(CAMPAIGN, HOLDOUT)) == -1


def test_the_utc_day_is_the_day_the_event_arrives(redis_conn, redis_client, keys):
    midnight = dt.datetime(2026, 11, 26, tzinfo=dt.UTC).timestamp()
    counts.record(redis_conn, keys, [(claim(decision="x"), "view")], midnight - 1)
    counts.record(redis_conn, keys, [(claim(decision="y"), "view")], midnight)
    assert totals(redis_client, keys, day="2026-11-25") == {"a:views": 1}
    assert totals(redis_client, keys, day="2026-11-26") == {"a:views": 1}
    assert totals(redis_client, keys) == {"a:views": 2}


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        ((claim(None), "view"), "a holdout token cannot be view"),
        ((claim("a"), "holdout"), "a prompt token cannot be holdout"),
        ((claim(), "hover"), "event type"),
        ((claim(campaign="Winter Drive"), "view"), "campaign"),
        ((claim(campaign="x:y}"), "view"), "campaign"),
        ((claim("A!"), "view"), "variant"),
        ((claim(reader=""), "view"), "reader"),
        ((DecisionClaim("d", CAMPAIGN, "a", "r_reader01", True), "view"), "issued_at"),
        (("a token", "view"), "DecisionClaim"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_sent(
    redis_conn, redis_client, keys, event, problem
):
    good = (claim(decision="fine"), "view")
    with pytest.raises(CountsError, match=problem):
        counts.record(redis_conn, keys, [good, event], NOW)
    assert totals(redis_client, keys) == {}
    assert not redis_client.exists(keys.prompt_event_mark(counts.digest(good[0]), "view"))


def test_more_than_fifty_events_or_a_bad_clock_are_refused(redis_conn, keys):
    with pytest.raises(CountsError, match="at most 50"):
        counts.record(redis_conn, keys, [(claim(decision=str(i)), "view") for i in range(51)], NOW)
    with pytest.raises(CountsError, match="now"):
        counts.record(redis_conn, keys, [(claim(), "view")], float("nan"))
    assert counts.record(redis_conn, keys, [], NOW) == Recorded(0, 0)


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda r, k: r.set(k.prompt_counts_day("other", "2026-11-25"), "oops"),
        lambda r, k: r.hset(k.prompt_counts("other"), "a:views", "many"),
        lambda r, k: r.hset(k.prompt_counts("other"), "a:views", "9" * 25),
        lambda r, k: r.set(k.prompt_readers("other", "a"), "not a hyperloglog"),
        lambda r, k: r.rpush(
            k.prompt_event_mark(counts.digest(claim(campaign="other")), "view"), 1
        ),
    ],
    ids=[
        "day-not-a-hash",
        "field-not-a-number",
        "field-too-long",
        "readers-not-hll",
        "mark-a-list",
    ],
)
def test_a_key_of_the_wrong_kind_refuses_the_whole_batch(redis_conn, redis_client, keys, corrupt):
    corrupt(redis_client, keys)
    first = (claim(), "view")
    with pytest.raises(redis.exceptions.ResponseError, match="nothing was counted"):
        counts.record(redis_conn, keys, [first, (claim(campaign="other"), "view")], NOW)
    # The first event's campaign is untouched, and its mark was not set: a retry counts it.
    assert totals(redis_client, keys) == {}
    assert not redis_client.exists(keys.prompt_event_mark(counts.digest(first[0]), "view"))
    assert counts.record(redis_conn, keys, [first], NOW) == Recorded(1, 0)


def test_concurrent_batches_count_each_event_once(redis_conn, redis_client, keys):
    batch = [(claim(decision=f"d{i}", reader=f"r_reader{i:02}"), "view") for i in range(20)]
    results: list[Recorded] = []
    barrier = threading.Barrier(6)

    def send():
        barrier.wait()
        results.append(counts.record(redis_conn, keys, batch, NOW))

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.counted for r in results) == 20
    assert sum(r.duplicates for r in results) == 100
    assert totals(redis_client, keys) == {"a:views": 20}
    assert readers(redis_client, keys, "a") == 20


# --- The bound per client address --------------------------------------------------------

ADDRESS = "aGFzaGVkYWRkcjE"  # what the endpoint passes: a keyed hash of the client's address


def mark(keys, c, event_type):
    return keys.prompt_event_mark(counts.digest(c), event_type)


def views(n, variant="a", start=0, campaign=CAMPAIGN):
    return [
        (claim(variant, f"r_reader{i:04}", f"d{i}", campaign=campaign), "view")
        for i in range(start, start + n)
    ]


def test_a_hundred_concurrent_calls_from_one_address_count_exactly_its_bound(
    redis_conn, redis_client, keys
):
    """What one address sent to steer a variant (the review's 1,675 views in 10 s): 160
    events at once from 32 threads; the bound counts whatever the interleaving."""
    batches = [views(5, start=5 * i) for i in range(32)]
    results: list[Recorded] = []
    barrier = threading.Barrier(len(batches))

    def send(batch):
        barrier.wait()
        results.append(counts.record(redis_conn, keys, batch, NOW, address=ADDRESS))

    threads = [threading.Thread(target=send, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.counted for r in results) == counts.PER_ADDRESS == 100
    assert sum(r.excess for r in results) == 60
    assert sum(r.duplicates for r in results) == 0
    assert totals(redis_client, keys) == {"a:views": 100, "a:excess": 60}
    assert totals(redis_client, keys, day="2026-11-25") == {"a:views": 100, "a:excess": 60}
    # No reader added past the bound: the unique readers are those of the counted events
    # (those whose mark is set), compared as HyperLogLogs of the same set are: exactly.
    counted = [c for b in batches for c, t in b if redis_client.exists(mark(keys, c, t))]
    assert len(counted) == 100
    redis_client.pfadd(keys.prompt_readers(CAMPAIGN, "check"), *[c.reader for c in counted])
    assert readers(redis_client, keys, "a") == readers(redis_client, keys, "check")


def test_each_address_type_and_campaign_has_its_own_bound(redis_conn, redis_client, keys):
    other = "b3RoZXJhZGRyZXNz"
    assert counts.record(redis_conn, keys, views(3), NOW, address=ADDRESS, per_address=2) == (
        Recorded(2, 0, 1)
    )
    assert counts.record(
        redis_conn, keys, views(3, start=10), NOW, address=other, per_address=2
    ) == Recorded(2, 0, 1)
    clicks = [(c, "click") for c, _ in views(3)]
    assert counts.record(redis_conn, keys, clicks, NOW, address=ADDRESS, per_address=2) == (
        Recorded(2, 0, 1)
    )
    elsewhere = views(3, campaign="spring-drive")
    assert counts.record(redis_conn, keys, elsewhere, NOW, address=ADDRESS, per_address=2) == (
        Recorded(2, 0, 1)
    )
    assert totals(redis_client, keys) == {"a:views": 4, "a:clicks": 2, "a:excess": 3}
    assert totals(redis_client, keys, "spring-drive") == {"a:views": 2, "a:excess": 1}
    # The holdout's entries are bounded the same way, and counted as its excess.
    held = [(claim(None, f"r_held{i:04}", f"h{i}"), "holdout") for i in range(3)]
    assert counts.record(redis_conn, keys, held, NOW, address=ADDRESS, per_address=2) == (
        Recorded(2, 0, 1)
    )
    assert totals(redis_client, keys)[f"{HOLDOUT}:excess"] == 1
    assert readers(redis_client, keys, HOLDOUT) == 2


def test_duplicates_take_nothing_from_the_bound_and_a_refused_event_counts_next_hour(
    redis_conn, redis_client, keys
):
    first, second, third = views(3)
    bound = {"address": ADDRESS, "per_address": 2}
    assert counts.record(redis_conn, keys, [first, first, second], NOW, **bound) == Recorded(2, 1)
    assert counts.record(redis_conn, keys, [first, second], NOW, **bound) == Recorded(0, 2)
    assert counts.record(redis_conn, keys, [third, third], NOW, **bound) == Recorded(0, 0, 2)
    # No mark for a refused event: in the next hour's window it is a new one.
    next_hour = (NOW // 3600 + 1) * 3600
    assert counts.record(redis_conn, keys, [third], next_hour, **bound) == Recorded(1, 0)
    assert totals(redis_client, keys) == {"a:views": 3, "a:excess": 2}


def test_the_budget_is_one_expiring_hash_per_address_and_hour_with_no_address(
    redis_conn, redis_client, keys
):
    late = NOW + 3599  # the hour's last second
    counts.record(
        redis_conn, keys, views(2) + views(1, campaign="spring-drive"), late, address=ADDRESS
    )
    counts.record(redis_conn, keys, [(c, "click") for c, _ in views(2)], late, address=ADDRESS)
    budget = keys.prompt_event_budget(ADDRESS, int(NOW // 3600))
    assert keys.prompt_event_budget(ADDRESS, int(late // 3600)) == budget
    assert redis_client.hgetall(budget) == {
        f"{CAMPAIGN}:view": "2",
        f"{CAMPAIGN}:click": "2",
        "spring-drive:view": "1",
    }
    assert 1 <= redis_client.ttl(budget) <= 1 + counts.WINDOW_SLACK
    pattern = keys.prompt_event_budget("*", 0).rsplit(":", 2)[0] + ":*"
    assert list(redis_client.scan_iter(match=pattern)) == [budget]
    assert redis_client.memory_usage(budget) < 200  # a small listpack, per address and hour


def test_without_an_address_nothing_is_bounded(redis_conn, redis_client, keys):
    assert counts.record(redis_conn, keys, views(50), NOW) == Recorded(50, 0)
    assert counts.record(redis_conn, keys, views(50, start=50), NOW) == Recorded(50, 0)
    assert counts.record(redis_conn, keys, views(1, start=100), NOW) == Recorded(1, 0)
    assert totals(redis_client, keys) == {"a:views": 101}


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"address": "192.0.2.1"}, "address"),
        ({"address": ""}, "address"),
        ({"address": "x" * 65}, "address"),
        ({"address": ADDRESS, "per_address": 0}, "per_address"),
        ({"address": ADDRESS, "per_address": True}, "per_address"),
        ({"address": ADDRESS, "per_address": 1.5}, "per_address"),
    ],
)
def test_a_bad_address_or_bound_is_refused_before_anything_is_sent(
    redis_conn, redis_client, keys, kwargs, problem
):
    with pytest.raises(CountsError, match=problem):
        counts.record(redis_conn, keys, views(1), NOW, **kwargs)
    assert redis_client.dbsize() == 0


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda r, k: r.rpush(k.prompt_event_budget(ADDRESS, int(NOW // 3600)), 1),
        lambda r, k: r.hset(k.prompt_event_budget(ADDRESS, int(NOW // 3600)), "other:view", "x"),
        lambda r, k: r.hset(k.prompt_counts_day("other", "2026-11-25"), "a:excess", "many"),
    ],
    ids=["budget-a-list", "budget-not-a-number", "excess-not-a-number"],
)
def test_a_corrupt_budget_or_excess_refuses_the_whole_batch(
    redis_conn, redis_client, keys, corrupt
):
    corrupt(redis_client, keys)
    first = (claim(), "view")
    with pytest.raises(redis.exceptions.ResponseError, match="nothing was counted"):
        counts.record(
            redis_conn, keys, [first, (claim(campaign="other"), "view")], NOW, address=ADDRESS
        )
    assert totals(redis_client, keys) == {}
    assert not redis_client.exists(keys.prompt_event_mark(counts.digest(first[0]), "view"))


def test_conversions_join_the_callers_transaction_and_are_read_back(redis_conn, redis_client, keys):
    with redis_conn.pipeline(transaction=True) as pipe:
        counts.queue_conversion(pipe, keys, CAMPAIGN, "a", NOW, amount=1200, currency="eur")
        counts.queue_conversion(pipe, keys, CAMPAIGN, None, NOW)
        pipe.execute()
    expected = {"a:conversions": 1, "a:revenue:eur": 1200, f"{HOLDOUT}:conversions": 1}
    assert totals(redis_client, keys) == expected
    assert totals(redis_client, keys, day="2026-11-25") == expected
    assert redis_client.ttl(keys.prompt_counts_day(CAMPAIGN, "2026-11-25")) > 0


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (("Bad Id", "a", NOW), "campaign"),
        ((CAMPAIGN, "_holdout", NOW), "variant"),
        ((CAMPAIGN, "a", float("inf")), "at"),
    ],
)
def test_a_bad_conversion_queues_nothing(redis_conn, keys, args, problem):
    with redis_conn.pipeline(transaction=True) as pipe:
        with pytest.raises(CountsError, match=problem):
            counts.queue_conversion(pipe, keys, *args)
        assert len(pipe) == 0
    with redis_conn.pipeline(transaction=True) as pipe:
        for kwargs in ({"amount": -1}, {"amount": 5, "currency": "EUR"}, {"amount": 5}):
            with pytest.raises(CountsError):
                counts.queue_conversion(pipe, keys, CAMPAIGN, "a", NOW, **kwargs)
        assert len(pipe) == 0


def test_read_gets_totals_readers_days_and_retired_variants(redis_conn, keys):
    counts.record(
        redis_conn,
        keys,
        [
            (claim("a"), "view"),
            (claim("gone", decision="g"), "view"),
            (claim(None, decision="h", reader="r_held0001"), "holdout"),
        ],
        NOW,
    )
    stored = counts.read(
        redis_conn, keys, CAMPAIGN, ["a", "b", HOLDOUT], ["2026-11-24", "2026-11-25"]
    )
    assert stored.totals == {"a:views": "1", "gone:views": "1", f"{HOLDOUT}:events": "1"}
    assert stored.readers == {"a": 1, "b": 0, HOLDOUT: 1, "gone": 1}
    assert stored.days[0] == ("2026-11-24", {})
    assert stored.days[1][0] == "2026-11-25"
    assert counts.last_days(NOW, 3) == ["2026-11-23", "2026-11-24", "2026-11-25"]


# --- A model: whatever the batches, each distinct (claim, type) counts once ---------------

events = st.tuples(
    st.sampled_from(["d1", "d2", "d3"]),
    st.sampled_from(["a", "b", None]),
    st.sampled_from(["r_reader01", "r_reader02"]),
    st.sampled_from(counts.EVENT_TYPES),
).filter(lambda e: (e[1] is None) == (e[3] == "holdout"))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.lists(events, max_size=8), max_size=4))
def test_counts_equal_the_distinct_events_whatever_the_batches(redis_conn, batches):
    keys = Keys(prefix=f"model-{uuid.uuid4().hex[:8]}")  # a fresh namespace per example
    seen: set = set()
    for batch in batches:
        pairs = [(claim(v, r, d), t) for d, v, r, t in batch]
        new = len({p for p in pairs} - seen)
        assert counts.record(redis_conn, keys, pairs, NOW) == Recorded(new, len(pairs) - new)
        seen |= set(pairs)
    expected: dict[str, int] = {}
    for c, t in seen:
        field = f"{counts.slot_of(c)}:{counts._METRIC[t]}"
        expected[field] = expected.get(field, 0) + 1
    got = {k: int(v) for k, v in redis_conn.hgetall(keys.prompt_counts(CAMPAIGN)).items()}
    assert got == expected
