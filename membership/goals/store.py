"""Goals in Redis (their keys: docs/ledger.md): each read and write whole
(`membership.store.whole`), decided by `rules`; every change increments the banner's
version, which orders the banner's snapshots."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import replace

import redis as redis_lib

from membership.core import audit
from membership.goals.rules import (
    Goal,
    GoalConflict,
    GoalError,
    iso,
    plan_add,
    plan_update,
    utc_now,
    version_of,
)
from membership.ledger import queries as ledger_queries
from membership.ledger.codec import CorruptRecord, version_from
from membership.store import Keys, whole

# Marks every pending goal with target <= count as reached at ARGV[2]; returns their ids.
# Any mark is a change the banner shows, so it increments the banner's version (KEYS[3]).
_MARK_REACHED = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if #ids > 0 then
  redis.call('INCR', KEYS[3])
end
for _, id in ipairs(ids) do
  redis.call('HSETNX', KEYS[2], id, ARGV[2])
  redis.call('ZREM', KEYS[1], id)
end
return ids
"""
_MAX_ATTEMPTS = 50


def mark_reached(
    redis: redis_lib.Redis, keys: Keys, count: int, at: dt.datetime | str
) -> list[int]:
    """Mark every unreached goal with target <= count as reached at `at`; returns their ids.
    Idempotent and atomic (one Lua script)."""
    script = redis.register_script(_MARK_REACHED)
    ids = script(
        keys=[keys.goals_pending, keys.goals_reached, keys.banner_version],
        args=[int(count), iso(at)],
    )
    return [int(i) for i in ids]


def reach_goals(redis: redis_lib.Redis, keys: Keys):
    """A subscriber to the ledger: a rebuild marks the goals its count reaches (it mends a
    mark a count set by other means lacks). The writer marks the goals a rise reaches in
    the rise's own transaction (ledger/writer.py), so its outcomes need nothing here."""

    def on_ledger_outcome(outcome) -> None:
        after = outcome.count_after
        if after is None:
            return
        if outcome.outcome == "rebuilt":
            at = dt.datetime.fromtimestamp(outcome.at, dt.UTC) if outcome.at else utc_now()
            mark_reached(redis, keys, after, at)

    return on_ledger_outcome


def queue_load(pipe, keys: Keys) -> None:
    """Queue the two reads `goals_from` needs on a pipeline (for one-round-trip snapshots)."""
    pipe.hgetall(keys.goals)
    pipe.hgetall(keys.goals_reached)


def goals_from(raw_goals: Mapping[str, str], raw_reached: Mapping[str, str]) -> list[Goal]:
    goals = [
        Goal.from_record(int(goal_id), json.loads(data), raw_reached.get(goal_id))
        for goal_id, data in raw_goals.items()
    ]
    return sorted(goals, key=lambda g: (g.target, g.id))


def load(redis: redis_lib.Redis, keys: Keys) -> list[Goal]:
    pipe = redis.pipeline(transaction=True)
    queue_load(pipe, keys)
    raw_goals, raw_reached = pipe.execute()
    return goals_from(raw_goals, raw_reached)


def get(redis: redis_lib.Redis, keys: Keys, goal_id: int) -> Goal | None:
    """One goal by id, with its reached time; None when there is none."""
    pipe = redis.pipeline(transaction=True)
    pipe.hget(keys.goals, str(goal_id))
    pipe.hget(keys.goals_reached, str(goal_id))
    raw, reached_at = pipe.execute()
    return None if raw is None else Goal.from_record(int(goal_id), json.loads(raw), reached_at)


def add(
    redis: redis_lib.Redis, keys: Keys, new: Goal, now: str | None = None, *, actor: str
) -> Goal:
    """Store a validated goal (see `rules.parse_goal`); reached at once when the count is at
    its target. The rules decide on what is read under WATCH (goals, id counter, count); the
    id is taken in the same transaction, so a refused goal uses none up; the audit entry
    (`goal_added`, by `actor`) commits with it."""
    actor = audit.check_actor(actor)
    now = now or utc_now()

    def body(pipe):
        existing = goals_from(pipe.hgetall(keys.goals), pipe.hgetall(keys.goals_reached))
        goal_id = _next_id(pipe.get(keys.goals_next_id))
        _check_before_queueing(pipe, keys)
        # An unknown count (no member counted yet) reaches nothing.
        count = ledger_queries.count(pipe, keys) or 0
        goal = plan_add(existing, count, replace(new, id=goal_id), now)

        def queue(pipe) -> None:
            pipe.set(keys.goals_next_id, goal_id)
            _queue_change(pipe, keys, actor, "goal_added", goal, None, goal)

        return whole.Write(queue, goal)

    watch = (keys.goals, keys.goals_reached, keys.goals_next_id, *ledger_queries.count_keys(keys))
    # goals_pending is written, not read: WATCHed as its type is checked
    return _transaction(redis, body, (*watch, keys.goals_pending))


def update(
    redis: redis_lib.Redis,
    keys: Keys,
    goal_id: int,
    new: Goal,
    *,
    expected: str,
    actor: str,
    now: str | None = None,
) -> Goal | None:
    """Replace goal `goal_id`'s fields with `new`'s (validated by `rules.parse_goal`); None when
    there is no such goal. `expected` is the `version_of` the goal the edit was based on:
    another one raises GoalConflict and nothing changes. Decided by `rules.plan_update` under
    WATCH, as `add`; audited as `goal_changed`; an edit that changes nothing writes nothing."""
    actor = audit.check_actor(actor)
    now = now or utc_now()

    def body(pipe):
        existing = goals_from(pipe.hgetall(keys.goals), pipe.hgetall(keys.goals_reached))
        old = next((g for g in existing if g.id == goal_id), None)
        if old is None:
            return None
        if expected != version_of(old):
            raise GoalConflict(old)
        _check_before_queueing(pipe, keys)
        count = ledger_queries.count(pipe, keys) or 0
        goal = plan_update(existing, count, old, new, now)
        if goal == old:
            return old
        return whole.Write(
            lambda pipe: _queue_change(pipe, keys, actor, "goal_changed", goal, old, goal), goal
        )

    watch = (keys.goals, keys.goals_reached, keys.goals_pending)
    return _transaction(redis, body, (*watch, *ledger_queries.count_keys(keys)))


def remove(
    redis: redis_lib.Redis,
    keys: Keys,
    goal_id: int,
    *,
    actor: str,
    expected: str | None = None,
) -> bool:
    """Delete a goal; False when there is no goal with that id (and nothing is audited).
    The audit entry (`goal_removed`, by `actor`) holds the goal exactly as it was read under
    WATCH. `expected`: the `version_of` the goal the request saw; another raises
    GoalConflict and deletes nothing."""
    actor = audit.check_actor(actor)
    field_ = str(goal_id)

    def body(pipe):
        raw = pipe.hget(keys.goals, field_)
        if raw is None:
            return False
        goal = Goal.from_record(
            int(goal_id), json.loads(raw), pipe.hget(keys.goals_reached, field_)
        )
        if expected is not None and expected != version_of(goal):
            raise GoalConflict(goal)
        _check_before_queueing(pipe, keys)
        return whole.Write(
            lambda pipe: _queue_change(pipe, keys, actor, "goal_removed", goal, goal, None), True
        )

    return _transaction(redis, body, (keys.goals, keys.goals_reached, keys.goals_pending))


def _queue_change(pipe, keys: Keys, actor: str, action: str, goal: Goal, old, new) -> None:
    """Queue the banner's version, `new` as stored (reached with its time, or pending by
    target, never both; None: `goal` deleted) and the audit entry of `action` on `goal`."""
    pipe.incr(keys.banner_version)
    pipe.delete(keys.goals_lowest)  # the ledger's writer finds it again (ledger/writer.py)
    field_ = str(goal.id)
    if new is None:
        pipe.hdel(keys.goals, field_)
        pipe.hdel(keys.goals_reached, field_)
        pipe.zrem(keys.goals_pending, field_)
    else:
        pipe.hset(keys.goals, field_, json.dumps(new.record(), ensure_ascii=False))
        if new.reached_at is not None:
            pipe.hset(keys.goals_reached, field_, new.reached_at)
            pipe.zrem(keys.goals_pending, field_)
        else:
            pipe.hdel(keys.goals_reached, field_)
            pipe.zadd(keys.goals_pending, {field_: new.target})
    audit.queue(
        pipe,
        keys,
        actor=actor,
        action=action,
        target=f"goal {goal.id}",
        before=old.as_dict() if old is not None else None,
        after=new.as_dict() if new is not None else None,
    )


def _check_before_queueing(pipe, keys: Keys) -> None:
    """The transaction INCRs the banner's version, ZADDs or ZREMs the pending goals and
    XADDs to the audit log: refuse before queueing anything if one of them cannot take it,
    since a command failing inside EXEC would leave the rest applied."""
    try:
        version_from(keys.banner_version, pipe.get(keys.banner_version))
    except CorruptRecord as exc:
        raise GoalError(
            f"a stored value is corrupt ({exc}); run `membership ledger rebuild`"
        ) from None
    try:
        whole.check_types(pipe, ((keys.goals_pending, "zset"), (keys.audit, "stream")))
    except whole.WrongType as exc:
        raise GoalError(str(exc)) from None


def _transaction(redis: redis_lib.Redis, body, watch):
    """Run `body` as one whole transaction (store/whole.py), with the goals' errors."""
    return whole.transaction(
        redis,
        body,
        watch=watch,
        attempts=_MAX_ATTEMPTS,
        busy=GoalError("the goals kept changing under this request; try again"),
        refused=lambda failed: GoalError(
            f"Redis refused part of the change ({failed[0]}); check `goals list`"
        ),
    )


def _next_id(raw: str | None) -> int:
    """The id after the last one handed out (`keys.goals_next_id`)."""
    try:
        last = int(raw or 0)
    except ValueError:
        raise GoalError(f"the goal id counter holds {raw!r}, not a number") from None
    return max(last, 0) + 1
