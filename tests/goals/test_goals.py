import datetime as dt
import functools
import json
import threading
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from membership.core import audit
from membership.goals import rules as goal_rules
from membership.goals import store as goals
from membership.goals.rules import Goal
from membership.store import Keys
from tests.support.member_count import set_member_count

pytestmark = pytest.mark.topologies  # each test on a single server, a Cluster and Sentinel

KEYS = Keys()
AT = "2026-11-25T19:00:00Z"


# --- Pure rules ----------------------------------------------------------------

goal_lists = st.lists(
    st.builds(
        Goal,
        id=st.integers(1, 50),
        target=st.integers(1, 200),
        reached_at=st.one_of(st.none(), st.just(AT)),
    ),
    max_size=8,
    unique_by=lambda g: g.id,
)


@given(goal_lists, st.integers(0, 250))
def test_current_is_the_smallest_unreached_and_milestone_the_largest_reached(gs, count):
    selection = goal_rules.select(gs, count)
    unreached = [g for g in gs if g.reached_at is None and g.target > count]
    reached = [g for g in gs if g not in unreached]
    if unreached:
        assert selection.current in unreached
        assert selection.current.target == min(g.target for g in unreached)
    else:
        assert selection.current is None
    if reached:
        assert selection.milestone in reached
        assert selection.milestone.target == max(g.target for g in reached)
    else:
        assert selection.milestone is None


@given(goal_lists, st.integers(0, 250))
def test_selection_does_not_depend_on_order(gs, count):
    assert goal_rules.select(gs, count) == goal_rules.select(list(reversed(gs)), count)
    assert goal_rules.select(gs, count) == goal_rules.select(sorted(gs, key=lambda g: -g.id), count)


def _apply_count(goals: list[Goal], count: int, at: str) -> list[Goal]:
    """The goals after the count became `count` at `at`: the model of `goals.mark_reached`."""
    return [
        replace(g, reached_at=at) if g.reached_at is None and g.target <= count else g
        for g in goals
    ]


@given(goal_lists, st.lists(st.integers(0, 250), min_size=1, max_size=10))
def test_goals_stay_reached_whatever_the_count_does(gs, counts):
    """Applying every count change in turn: reached goals never become unreached."""
    state = [Goal(id=g.id, target=g.target) for g in gs]
    ever_reached: set[int] = set()
    for i, count in enumerate(counts):
        at = f"2026-11-25T19:00:{i:02d}Z"
        before = {g.id: g.reached_at for g in state}
        state = _apply_count(state, count, at)
        for g in state:
            if before[g.id] is not None:
                assert g.reached_at == before[g.id]  # the first time is kept
            elif g.target <= count:
                assert g.reached_at == at
            if g.reached_at:
                ever_reached.add(g.id)
        assert all(g.reached_at is not None for g in state if g.id in ever_reached)
        assert not [g for g in state if g.reached_at is None and g.target <= count]
        selection = goal_rules.select(state, count)
        if selection.current is not None:
            assert selection.current.target > count


def test_count_falling_below_a_reached_goal_keeps_it_the_milestone():
    gs = [Goal(id=1, target=100), Goal(id=2, target=200)]
    gs = _apply_count(gs, 150, AT)
    selection = goal_rules.select(gs, 90)
    assert selection.milestone.id == 1
    assert selection.current.id == 2


def test_plan_add_refuses_a_taken_target_and_reaches_at_once():
    existing = [Goal(id=1, target=100)]
    with pytest.raises(goal_rules.GoalError, match="goal 1 already has the target 100"):
        goal_rules.plan_add(existing, 0, Goal(id=2, target=100), AT)
    assert goal_rules.plan_add(existing, 150, Goal(id=2, target=150), AT).reached_at == AT
    assert goal_rules.plan_add(existing, 149, Goal(id=2, target=150), AT).reached_at is None


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"target": "many"}, "target: expected a whole number"),
        ({"target": 0}, "target: expected 1 to"),
        ({"target": -5}, "target: expected 1 to"),
        ({"target": 10**10}, "target: expected 1 to"),
        ({"target": 10, "deadline": "31/12/2026"}, "deadline: expected a date as YYYY-MM-DD"),
        ({"target": 10, "deadline": "2026-02-30"}, "deadline: expected a date"),
        ({"target": 10, "deadline": "2001-01-01"}, "deadline: 2001-01-01 is in the past"),
        ({"target": 10, "name": "   "}, "name: expected 1 to 100 characters"),
        ({"target": 10, "name": "x" * 101}, "name: expected 1 to 100 characters"),
        ({"target": 10, "name": "bad\nname"}, "name: control characters"),
        ({"target": 10, "copy": {"de": {"message": "x"}}}, "copy: unsupported locale 'de'"),
        ({"target": 10, "copy": {"en": {"message": "{oops}"}}}, "copy: the message template"),
        ({"target": 10, "copy": {"uk": {"headline": {"two": "x"}}}}, "uk has no plural form"),
    ],
)
def test_bad_goal_input_names_the_field(data, problem):
    with pytest.raises(goal_rules.GoalError) as info:
        goal_rules.parse_goal(data)
    assert problem in str(info.value)


def test_good_goal_input():
    tomorrow = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)).isoformat()
    goal = goal_rules.parse_goal({"target": "30000", "deadline": tomorrow, "name": "  Winter  "})
    assert (goal.target, goal.deadline, goal.name) == (30000, tomorrow, "Winter")


def test_copy_options():
    assert goal_rules.parse_copy_options(
        ["en.message=Only {remaining} to go", "uk.headline.one={count} читач", "uk.headline.few=x"]
    ) == {
        "en": {"message": "Only {remaining} to go"},
        "uk": {"headline": {"one": "{count} читач", "few": "x"}},
    }
    for bad in ["message=x", "en.message", "EN.message=x"]:
        with pytest.raises(goal_rules.GoalError, match=r"LOCALE\.FIELD=TEMPLATE"):
            goal_rules.parse_copy_options([bad])
    with pytest.raises(goal_rules.GoalError, match="given twice"):
        goal_rules.parse_copy_options(["en.cta=a", "en.cta=b"])


# --- Storage -------------------------------------------------------------------


def test_a_command_failing_inside_exec_is_an_error_saying_so(r):
    set_member_count(r, KEYS, 10)
    # The audit stream holds the last id there is: the entry's XADD fails inside EXEC.
    r.xadd(KEYS.audit, {"x": "y"}, id=f"{2**64 - 1}-{2**64 - 1}")
    with pytest.raises(
        goal_rules.GoalError, match=r"Redis refused part of the change \(.*goals list"
    ):
        goals.add(r, KEYS, goal_rules.parse_goal({"target": 100}), actor="olena")
    assert [g.target for g in goals.load(r, KEYS)] == [100]  # the rest stayed, as it says


def test_add_list_remove(r):
    set_member_count(r, KEYS, 25012)
    reached = goals.add(r, KEYS, goal_rules.parse_goal({"target": 25000}), now=AT, actor="test")
    pending = goals.add(
        r, KEYS, goal_rules.parse_goal({"target": 30000, "name": "Winter"}), now=AT, actor="test"
    )
    assert reached.reached_at == AT  # at or below the count: reached at once
    assert pending.reached_at is None
    assert [(g.id, g.target, g.reached_at) for g in goals.load(r, KEYS)] == [
        (reached.id, 25000, AT),
        (pending.id, 30000, None),
    ]
    assert goals.remove(r, KEYS, pending.id, actor="test") is True
    assert goals.remove(r, KEYS, pending.id, actor="test") is False
    assert [g.id for g in goals.load(r, KEYS)] == [reached.id]
    assert r.zcard(KEYS.goals_pending) == 0


def test_add_refuses_a_duplicate_target(r):
    goals.add(r, KEYS, goal_rules.parse_goal({"target": 500}), actor="test")
    with pytest.raises(goal_rules.GoalError, match="already has the target 500"):
        goals.add(r, KEYS, goal_rules.parse_goal({"target": 500}), actor="test")
    assert len(goals.load(r, KEYS)) == 1


def test_mark_reached_is_idempotent_and_keeps_the_first_time(r):
    for target in (10, 20, 30):
        goals.add(r, KEYS, goal_rules.parse_goal({"target": target}), actor="test")
    assert goals.mark_reached(r, KEYS, 20, "2026-11-25T19:00:00Z") == [1, 2]
    assert goals.mark_reached(r, KEYS, 20, "2026-11-25T19:05:00Z") == []
    assert goals.mark_reached(r, KEYS, 5, "2026-11-25T19:06:00Z") == []  # falling changes nothing
    when = dt.datetime(2026, 11, 25, 21, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert goals.mark_reached(r, KEYS, 1000, when) == [3]
    assert {g.target: g.reached_at for g in goals.load(r, KEYS)} == {
        10: "2026-11-25T19:00:00Z",
        20: "2026-11-25T19:00:00Z",
        30: "2026-11-25T19:00:00Z",  # 21:00 at +02:00 is 19:00 UTC
    }


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # it flushes Redis itself
)
@given(
    targets=st.lists(st.integers(1, 60), unique=True, max_size=6),
    counts=st.lists(st.integers(0, 70), max_size=8),
)
def test_storage_agrees_with_the_pure_model(redis_server, targets, counts):
    r = redis_server.client()
    r.flushall()
    model: list[Goal] = []
    for target in targets:  # added while the count is 0
        model.append(goals.add(r, KEYS, Goal(id=0, target=target), now=AT, actor="test"))
    for i, count in enumerate(counts):
        at = f"2026-11-25T20:00:{i:02d}Z"
        set_member_count(r, KEYS, count, at)
        goals.mark_reached(r, KEYS, count, at)
        model = _apply_count(model, count, at)
    stored = {g.id: g.reached_at for g in goals.load(r, KEYS)}
    assert stored == {g.id: g.reached_at for g in model}
    pending = {int(i) for i in r.zrange(KEYS.goals_pending, 0, -1)}
    assert pending == {g.id for g in model if g.reached_at is None}


# --- Audit ----------------------------------------------------------------------


def test_add_and_remove_are_audited_with_the_stored_goal(r):
    set_member_count(r, KEYS, 150)
    reached = goals.add(
        r, KEYS, goal_rules.parse_goal({"target": 100, "name": "Стати учасником"}), actor="olena"
    )
    pending = goals.add(r, KEYS, goal_rules.parse_goal({"target": 200}), now=AT, actor="taras")
    goals.mark_reached(r, KEYS, 250, "2026-11-25T20:00:00Z")  # after the add, before remove
    assert goals.remove(r, KEYS, pending.id, actor="  olena ") is True

    removed, added_2, added_1 = audit.entries(r, KEYS)
    assert (added_1["actor"], added_1["action"], added_1["target"]) == (
        "olena",
        "goal_added",
        f"goal {reached.id}",
    )
    assert added_1["before"] is None
    assert added_1["after"] == {
        "id": reached.id,
        "target": 100,
        "deadline": None,
        "name": "Стати учасником",
        "copy": {},
        "created_at": reached.created_at,
        "reached_at": reached.created_at,  # at or below the count: reached at once
    }
    assert added_2["actor"] == "taras"
    assert added_2["after"]["reached_at"] is None
    assert (removed["actor"], removed["action"], removed["target"]) == (
        "olena",
        "goal_removed",
        f"goal {pending.id}",
    )
    assert removed["before"] == {**added_2["after"], "reached_at": "2026-11-25T20:00:00Z"}
    assert removed["after"] is None


def test_removing_an_unknown_goal_audits_nothing(r):
    assert goals.remove(r, KEYS, 42, actor="olena") is False
    assert audit.entries(r, KEYS) == []


@pytest.mark.parametrize("actor", ["", "x" * 321, "\x1b[31m", "a\nb"])
def test_a_bad_actor_changes_nothing(r, actor):
    with pytest.raises(audit.AuditInputError, match=r"^actor: "):
        goals.add(r, KEYS, goal_rules.parse_goal({"target": 100}), actor=actor)
    assert r.exists(KEYS.goals, KEYS.goals_pending, KEYS.goals_next_id, KEYS.audit) == 0
    kept = goals.add(r, KEYS, goal_rules.parse_goal({"target": 100}), actor="olena")
    with pytest.raises(audit.AuditInputError, match=r"^actor: "):
        goals.remove(r, KEYS, kept.id, actor=actor)
    assert [g.id for g in goals.load(r, KEYS)] == [kept.id]
    assert len(audit.entries(r, KEYS)) == 1


def test_concurrent_removes_audit_each_goal_once(redis_server, r):
    """WATCH/read/MULTI: of many removers racing for a goal, one removes it and audits it."""
    ids = [goals.add(r, KEYS, Goal(id=0, target=t), actor="setup").id for t in range(1, 31)]
    wins: list[tuple[int, str]] = []
    start = threading.Barrier(6)

    def remover(name: str) -> None:
        client = redis_server.client()
        start.wait()
        for goal_id in ids:
            if goals.remove(client, KEYS, goal_id, actor=name):
                wins.append((goal_id, name))

    threads = [threading.Thread(target=remover, args=(f"staff{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(goal_id for goal_id, _ in wins) == ids
    removals = [e for e in audit.entries(r, KEYS, limit=1000) if e["action"] == "goal_removed"]
    assert sorted((int(e["target"].split()[1]), e["actor"]) for e in removals) == sorted(wins)
    assert goals.load(r, KEYS) == []


# --- CLI -------------------------------------------------------------------------


@pytest.fixture
def run(membership_cli):
    """`membership goals ARGS`."""
    return functools.partial(membership_cli, "goals")


def test_cli_add_list_remove(run, r):
    set_member_count(r, KEYS, 25012)
    first = run("add", "25000", "--name", "Autumn drive")
    assert first.exit_code == 0, first.output
    assert "added goal 1: 25000 members, reached at once" in first.output
    second = run(
        "add", "30000", "--deadline", "2099-12-31", "--copy", "en.message=Only {remaining}"
    )
    assert second.exit_code == 0, second.output
    assert "not reached yet" in second.output

    listing = run("list")
    assert listing.exit_code == 0
    lines = listing.output.splitlines()
    assert lines[0] == "members now: 25012"
    assert "milestone" in lines[2] and "Autumn drive" in lines[2]
    assert "current" in lines[3] and "2099-12-31" in lines[3] and "30,000" in lines[3]

    as_json = json.loads(run("list", "--json").output)
    assert [g["state"] for g in as_json["goals"]] == ["milestone", "current"]
    assert as_json["goals"][1]["copy"] == {"en": {"message": "Only {remaining}"}}

    removed = run("remove", "2")
    assert removed.exit_code == 0 and "removed goal 2" in removed.output
    missing = run("remove", "2")
    assert missing.exit_code == 1
    assert "no goal with id 2" in missing.output


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["add", "lots"], "target: expected a whole number"),
        (["add", "0"], "target: expected 1 to"),
        (["add", "10", "--deadline", "tomorrow"], "deadline: expected a date as YYYY-MM-DD"),
        (["add", "10", "--copy", "en.message={members}"], "copy: the message template may use"),
        (["add", "10", "--copy", "nonsense"], "copy: expected LOCALE.FIELD=TEMPLATE"),
        (["remove", "abc"], "is not a valid integer"),
        (["remove", "0"], "0 is not in the range x>=1"),
    ],
)
def test_cli_refuses_bad_input_clearly(run, args, problem):
    result = run(*args)
    assert result.exit_code == 2
    assert problem in result.output
    assert "Traceback" not in result.output


def test_cli_add_and_remove_record_the_actor(run, r):
    assert run("add", "100", "--actor", "olena").exit_code == 0
    assert run("remove", "1", "--actor", "taras").exit_code == 0
    assert [(e["actor"], e["action"]) for e in audit.entries(r, KEYS)] == [
        ("taras", "goal_removed"),
        ("olena", "goal_added"),
    ]
    bad = run("remove", "1", "--actor", "\x1b[31m")
    assert bad.exit_code == 2
    assert "actor: control characters" in bad.output


def test_cli_list_when_empty(run):
    result = run("list")
    assert result.exit_code == 0
    assert "no goals yet" in result.output


@pytest.mark.parametrize("planted", ["goals_pending", "audit"])
def test_a_key_of_the_wrong_type_refuses_every_change_before_anything_is_written(
    redis_url, redis_client, planted
):
    """Redis does not roll back: a ZADD or XADD failing inside EXEC would leave the goal
    written and the banner's version moved. The types are checked before queueing."""
    set_member_count(redis_client, KEYS, 10)
    first = goals.add(redis_client, KEYS, goal_rules.parse_goal({"target": 100}), actor="t")
    redis_client.delete(KEYS.audit)
    redis_client.set(getattr(KEYS, planted), "not what it should be")
    before = {k: redis_client.dump(k) for k in redis_client.keys("*")}
    bigger = goal_rules.parse_goal({"target": 300})
    version = goal_rules.version_of(first)
    changes = [
        lambda: goals.add(redis_client, KEYS, goal_rules.parse_goal({"target": 200}), actor="t"),
        lambda: goals.update(redis_client, KEYS, first.id, bigger, expected=version, actor="t"),
        lambda: goals.remove(redis_client, KEYS, first.id, actor="t"),
    ]
    for change in changes:
        with pytest.raises(goal_rules.GoalError, match="not a"):
            change()
    assert {k: redis_client.dump(k) for k in redis_client.keys("*")} == before
