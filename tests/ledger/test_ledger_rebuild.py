"""`ledger rebuild`, O(1) reads, the per-outcome event index and the writer's subscribers."""

from __future__ import annotations

import json
import random
import threading

import pytest
from click.testing import CliRunner

from membership.cli import cli
from membership.core import audit
from membership.core.config import DEFAULT_MEMBER_STATUSES
from membership.goals import rules as goal_rules
from membership.goals import store as goals
from membership.ledger import Ledger, LedgerBusy
from membership.ledger import rebuild as rebuild_module
from membership.ledger.rebuild import rebuild
from membership.store import Keys, connect
from membership.stripe.apply import apply_event
from tests.support import stripe_payloads as sp
from tests.support.ledger_helpers import ACTOR, add_offline, fill, recount
from tests.support.memory_ledger import MemoryLedger

pytestmark = pytest.mark.topologies  # each test on a single server, a Cluster and Sentinel

PREFIX = "rebuild"


def make(redis_conn, keys, statuses=DEFAULT_MEMBER_STATUSES, **options) -> Ledger:
    return Ledger.on(redis_conn, keys, statuses, **options)


def dump(redis_conn, keys):
    return {k: redis_conn.dump(k) for k in sorted(redis_conn.scan_iter(match=keys.ledger_pattern))}


def assert_matches(ledger: Ledger, model: MemoryLedger):
    stats = ledger.queries.stats()
    assert stats["members"] == model.count == recount(ledger)
    assert stats["mrr"] == model.per_currency("mrr:")
    assert stats["contributions"]["sum"] == model.per_currency("contrib_sum:")
    assert stats["contributions"]["contributors"] == model.counters["contributors"]
    assert stats["subscriptions_by_status"] == model.per_currency("subs:")
    assert stats["members_by_plan"] == model.per_currency("plan:")
    assert stats["stripe_members"] == model.counters["stripe_members"]
    assert stats["offline_also_in_stripe"] == model.counters["offline_also_in_stripe"]


def test_a_rebuild_of_a_correct_ledger_changes_nothing_and_says_so(redis_conn, keys):
    ledger = make(redis_conn, keys)
    events, offline = fill(ledger)
    before = dump(redis_conn, keys)
    report = rebuild(redis_conn, keys, DEFAULT_MEMBER_STATUSES, actor=ACTOR)
    assert report.unchanged and report.differed == {} and report.counters == {}
    assert report.count_before == report.count_after == ledger.queries.count()
    assert dump(redis_conn, keys) == before  # not one ledger key written
    assert_matches(ledger, sp.ground_truth(events, offline, DEFAULT_MEMBER_STATUSES))
    (entry,) = [e for e in audit.entries(redis_conn, keys) if e["action"] == "ledger_rebuilt"]
    assert entry["actor"] == ACTOR and entry["after"]["rewritten"] == {}


def test_a_rebuild_applies_a_new_member_statuses_list(redis_conn, keys):
    events, offline = fill(make(redis_conn, keys), seed=2)
    openings = {r.id: r.opening for r in make(redis_conn, keys).queries.subscriptions()}
    assert all(openings.values())
    narrow = ("active",)
    report = rebuild(redis_conn, keys, narrow, actor=ACTOR)
    assert not report.unchanged and report.differed["subscription"] > 0
    # the subscriptions it rewrites keep their opening status change
    assert {r.id: r.opening for r in make(redis_conn, keys).queries.subscriptions()} == openings
    ledger = make(redis_conn, keys, narrow)
    assert_matches(ledger, sp.ground_truth(events, offline, narrow))
    # and the writer carries on from there under the new list
    more, _ = sp.random_world(random.Random(3), 15, tag="more")
    for e in more:
        apply_event(ledger.writer, e)
    assert_matches(ledger, sp.ground_truth(events + more, offline, narrow))
    assert rebuild(redis_conn, keys, narrow, actor=ACTOR).unchanged


def test_a_rebuild_mends_corrupt_and_drifted_values(redis_conn, keys, redis_url, tmp_path):
    ledger = make(redis_conn, keys)
    events, offline = fill(ledger, seed=4)
    customer = next(c for c in ledger.queries.customers() if c.member)
    redis_conn.set(keys.member_count, "lots")
    redis_conn.hset(keys.ledger_counters, mapping={"subs:active": "x", "mrr:zzz": 5})
    redis_conn.hset(keys.ledger_customer(customer.id), "live", "-2")
    redis_conn.hset(keys.ledger_email("nobody@example.org"), "live", 3)
    redis_conn.sadd(keys.ledger_offline_members, "ghost@example.org")
    redis_conn.set(keys.ledger_contributor("email:nobody@example.org"), "-3")
    with pytest.raises(Exception, match="member count"):
        ledger.queries.stats()
    env = {
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": keys.prefix,
        "MEMBERSHIP_DATA_DIR": str(tmp_path),
    }
    shown = CliRunner().invoke(cli, ["stats"], env=env)
    assert shown.exit_code == 1 and "membership ledger rebuild" in shown.output
    assert "Traceback" not in shown.output

    report = rebuild(redis_conn, keys, DEFAULT_MEMBER_STATUSES, actor=ACTOR)
    assert report.count_before is None  # "lots" is no count
    assert report.differed["customer"] >= 1 and report.differed["email"] >= 1
    assert report.differed["offline index"] == 1 and report.differed["contributor"] == 1
    assert report.counters["subs:active"][0] == "x" and report.counters["mrr:zzz"] == ("5", 0)
    assert_matches(ledger, sp.ground_truth(events, offline, DEFAULT_MEMBER_STATUSES))
    assert ledger.queries.stats()["needs_rebuild"] is None
    assert rebuild(redis_conn, keys, DEFAULT_MEMBER_STATUSES, actor=ACTOR).unchanged


def test_a_ledger_without_counters_says_it_needs_a_rebuild(redis_conn, keys):
    """As a ledger written by the version before counters existed looks."""
    ledger = make(redis_conn, keys)
    events, offline = fill(ledger, seed=5)
    redis_conn.delete(keys.ledger_counters)
    assert ledger.queries.stats()["needs_rebuild"]["reason"]
    rebuild(redis_conn, keys, DEFAULT_MEMBER_STATUSES, actor=ACTOR)
    assert ledger.queries.stats()["needs_rebuild"] is None
    assert_matches(ledger, sp.ground_truth(events, offline, DEFAULT_MEMBER_STATUSES))


def test_a_rebuild_while_webhooks_arrive_loses_nothing(redis_conn, keys, redis_url):
    events, offline = sp.random_world(random.Random(6), 60)
    stop = threading.Event()
    errors = []

    def deliver():
        own = connect(redis_url)
        writer = make(own, keys).writer
        try:
            for e in sp.shuffled_with_duplicates(random.Random(7), events, 0.3):
                while True:
                    try:
                        apply_event(writer, e)
                        break
                    except LedgerBusy:  # the rebuild's lock: Stripe would retry
                        continue
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            stop.set()
            own.close()

    thread = threading.Thread(target=deliver)
    thread.start()
    rebuilds = 0
    while not stop.is_set() or rebuilds == 0:
        rebuild(redis_conn, keys, DEFAULT_MEMBER_STATUSES, actor=ACTOR)
        rebuilds += 1
    thread.join(60)
    assert not errors
    ledger = make(redis_conn, keys)
    for email in offline:
        add_offline(ledger, email, "comp")
    assert_matches(ledger, sp.ground_truth(events, offline, DEFAULT_MEMBER_STATUSES))
    assert rebuild(redis_conn, keys, DEFAULT_MEMBER_STATUSES, actor=ACTOR).unchanged


def test_a_rebuild_that_keeps_losing_takes_the_lock_and_writers_wait(redis_conn, keys, monkeypatch):
    ledger = make(redis_conn, keys)
    fill(ledger, seed=8, customers=10)
    real_plan = rebuild_module._plan
    refused = []

    def plan_with_a_writer_in_between(*args):
        if redis_conn.get(keys.ledger_rebuild_lock):  # locked: a webhook now must wait (503)
            try:
                apply_event(
                    ledger.writer,
                    sp.subscription_event(sp.subscription("sub_z", "cus_z", "active")),
                )
            except LedgerBusy:
                refused.append(True)
        else:  # a webhook lands during each optimistic read
            redis_conn.incr(keys.banner_version)
        return real_plan(*args)

    monkeypatch.setattr(rebuild_module, "_plan", plan_with_a_writer_in_between)
    report = rebuild(redis_conn, keys, DEFAULT_MEMBER_STATUSES, actor=ACTOR)
    assert report.locked and report.unchanged
    assert refused == [True]
    assert redis_conn.get(keys.ledger_rebuild_lock) is None  # released
    out = apply_event(
        ledger.writer, sp.subscription_event(sp.subscription("sub_z", "cus_z", "active"))
    )
    assert out.outcome == "applied"  # Stripe's retry gets through


def test_a_second_rebuild_while_one_holds_the_lock_changes_nothing(redis_conn, keys):
    redis_conn.set(keys.ledger_rebuild_lock, "someone-else", ex=60)
    redis_conn.incr(keys.banner_version)
    real = rebuild_module.OPTIMISTIC_TRIES
    try:
        rebuild_module.OPTIMISTIC_TRIES = 0
        with pytest.raises(LedgerBusy):
            rebuild(redis_conn, keys, DEFAULT_MEMBER_STATUSES, actor=ACTOR)
    finally:
        rebuild_module.OPTIMISTIC_TRIES = real
    assert redis_conn.get(keys.ledger_rebuild_lock) == "someone-else"


def test_a_lock_taken_over_before_the_commit_is_busy_and_nothing_is_written(
    redis_conn, keys, monkeypatch
):
    """The lock expired and another rebuild took it between the check and EXEC: the
    commit fails on its WATCH and the rebuild answers busy, as when the check sees it."""
    fill(make(redis_conn, keys), seed=3, customers=5)
    redis_conn.set(keys.member_count, 999)  # what a rebuild would mend
    monkeypatch.setattr(rebuild_module, "OPTIMISTIC_TRIES", 0)

    def clock():  # read as the commit is queued: the other rebuild takes the lock then
        redis_conn.set(keys.ledger_rebuild_lock, "another rebuild")
        return 1795687200.0

    with pytest.raises(LedgerBusy, match="the rebuild lock expired before the commit"):
        rebuild(redis_conn, keys, DEFAULT_MEMBER_STATUSES, actor=ACTOR, clock=clock)
    assert redis_conn.get(keys.member_count) == "999"
    assert redis_conn.get(keys.ledger_rebuild_lock) == "another rebuild"  # theirs: left alone


def test_the_writer_marks_goals_in_the_commit_that_reaches_them(redis_conn, keys):
    goals.add(redis_conn, keys, goal_rules.parse_goal({"target": 2}), actor=ACTOR)
    silent = make(redis_conn, keys)  # no subscribers: the mark is the commit's own
    apply_event(silent.writer, sp.subscription_event(sp.subscription("sub_1", "cus_1", "active")))
    assert goals.load(redis_conn, keys)[0].reached_at is None
    apply_event(silent.writer, sp.subscription_event(sp.subscription("sub_2", "cus_2", "active")))
    assert goals.load(redis_conn, keys)[0].reached_at is not None
    assert redis_conn.zcard(keys.goals_pending) == 0


def test_a_goal_added_below_the_next_target_is_marked_by_the_rise_that_reaches_it(redis_conn, keys):
    """The writer looks for goals only when the rise reaches the lowest pending target it
    keeps: a goal's change makes it look again."""
    far = goals.add(redis_conn, keys, goal_rules.parse_goal({"target": 3}), actor=ACTOR)
    silent = make(redis_conn, keys)
    apply_event(silent.writer, sp.subscription_event(sp.subscription("sub_1", "cus_1", "active")))
    near = goals.add(redis_conn, keys, goal_rules.parse_goal({"target": 2}), actor=ACTOR)
    apply_event(silent.writer, sp.subscription_event(sp.subscription("sub_2", "cus_2", "active")))
    reached = {g.id: g.reached_at for g in goals.load(redis_conn, keys)}
    assert reached[near.id] is not None and reached[far.id] is None
    apply_event(silent.writer, sp.subscription_event(sp.subscription("sub_3", "cus_3", "active")))
    assert all(g.reached_at is not None for g in goals.load(redis_conn, keys))
    assert redis_conn.zcard(keys.goals_pending) == 0


def test_a_rebuild_keeps_the_days_joins_and_leaves(redis_conn, keys):
    silent = make(redis_conn, keys)
    apply_event(silent.writer, sp.subscription_event(sp.subscription("sub_1", "cus_1", "active")))
    apply_event(silent.writer, sp.subscription_event(sp.subscription("sub_2", "cus_2", "active")))
    redis_conn.set(keys.member_count, 7)  # a count gone wrong: the rebuild mends it
    rebuild(redis_conn, keys, DEFAULT_MEMBER_STATUSES, actor=ACTOR)
    [today] = silent.queries.history(days=1)
    assert (today["count"], today["joins"], today["leaves"]) == (2, 2, 0)
    assert silent.queries.count() == 2


def test_a_rebuild_marks_goals_a_lost_mark_did_not(redis_conn, keys):
    goal = goals.add(redis_conn, keys, goal_rules.parse_goal({"target": 1}), actor=ACTOR)
    silent = make(redis_conn, keys)
    apply_event(silent.writer, sp.subscription_event(sp.subscription("sub_1", "cus_1", "active")))
    redis_conn.hdel(keys.goals_reached, str(goal.id))  # a count restored without its marks
    redis_conn.zadd(keys.goals_pending, {str(goal.id): 1})
    assert goals.load(redis_conn, keys)[0].reached_at is None
    rebuild(
        redis_conn,
        keys,
        DEFAULT_MEMBER_STATUSES,
        actor=ACTOR,
        subscribers=[goals.reach_goals(redis_conn, keys)],
    )
    assert goals.load(redis_conn, keys)[0].reached_at is not None


def test_the_rebuild_command_reports_and_refuses_bad_actors(redis_url, tmp_path):
    redis_conn = connect(redis_url)
    ledger = make(redis_conn, Keys())
    apply_event(ledger.writer, sp.subscription_event(sp.subscription("sub_1", "cus_1", "active")))
    redis_conn.set(Keys().member_count, 7)
    env = {"REDIS_URL": redis_url, "MEMBERSHIP_DATA_DIR": str(tmp_path)}
    result = CliRunner().invoke(cli, ["ledger", "rebuild", "--actor", "ops"], env=env)
    assert result.exit_code == 0, result.output
    assert "members: 7 -> 1" in result.stdout
    again = CliRunner().invoke(cli, ["ledger", "rebuild", "--json", "--actor", "ops"], env=env)
    assert json.loads(again.stdout)["unchanged"] is True
    bad = CliRunner().invoke(cli, ["ledger", "rebuild", "--actor", "\x1b[31mx"], env=env)
    assert bad.exit_code == 2
    redis_conn.close()


# --- reads that do not scan ----------------------------------------------------


def _commands(redis_conn) -> int:
    return sum(v["calls"] for v in redis_conn.info("commandstats").values())


@pytest.mark.topologies("single")  # INFO commandstats of the one server it asks
def test_stats_costs_the_same_at_any_size(redis_conn, keys):
    ledger = make(redis_conn, keys)
    fill(ledger, seed=9, customers=5)
    start = _commands(redis_conn)
    ledger.queries.stats()
    small = _commands(redis_conn) - start - 1  # less the INFO itself
    fill(ledger, seed=10, customers=300)
    start = _commands(redis_conn)
    ledger.queries.stats()
    large = _commands(redis_conn) - start - 1
    assert small == large <= 6


@pytest.mark.topologies("single")  # INFO commandstats of the one server it asks
def test_events_by_outcome_come_from_their_own_stream(redis_conn, keys):
    ledger = make(redis_conn, keys)
    for i in range(300):
        apply_event(
            ledger.writer, sp.subscription_event(sp.subscription(f"sub_{i}", "cus_1", "active"))
        )
    obj = sp.subscription("sub_bad", "cus_2", "active")
    obj["status"] = "mystery"
    bad = sp.subscription_event(obj)
    apply_event(ledger.writer, bad)
    assert redis_conn.xlen(keys.ledger_event_log_by_outcome("failed")) == 1
    start = _commands(redis_conn)
    (entry,) = ledger.events.recent(outcome="failed", limit=50)
    assert _commands(redis_conn) - start - 1 == 1  # one XREVRANGE, whatever the log holds
    assert entry["id"] == bad["id"]


# --- the writer's subscribers -----------------------------------------------------


def test_subscribers_are_handed_every_outcome_and_cannot_break_an_apply(redis_conn, keys, caplog):
    seen = []

    def broken(outcome):
        raise RuntimeError("a subscriber's bug")

    ledger = make(redis_conn, keys, subscribers=[seen.append, broken])
    e = sp.subscription_event(sp.subscription("sub_1", "cus_1", "active"))
    out = apply_event(ledger.writer, e)
    assert out.outcome == "applied"
    assert apply_event(ledger.writer, e).outcome == "duplicate"
    add_offline(ledger, "a@example.org", "comp")
    assert [(o.event_id, o.event_type, o.outcome, o.count_before, o.count_after) for o in seen] == [
        (e["id"], e["type"], "applied", 0, 1),
        (e["id"], e["type"], "duplicate", 1, 1),
        (None, None, "applied", 1, 2),
    ]
    assert "a subscriber's bug" in caplog.text
    assert ledger.queries.count() == 2
