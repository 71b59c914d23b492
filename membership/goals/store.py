"""Goals: member-count targets, which one is current, which one is the milestone.

A goal is a target member count with an optional deadline, name and copy
overrides. When the count first reaches a goal's target the goal is marked
reached, with the time, and it stays reached even if the count falls again; a
goal added at or below the count is reached at once.

- current goal: the unreached goal with the smallest target (ties: lowest id)
- milestone: the reached goal with the largest target (ties: lowest id)

Staff may edit a goal (`update`): its id and creation time stay; while the target
is unchanged its reached state stays too, and a new target is reached or not by the
count as a new goal would be (`plan_update`). Each edit names the version it was based
on (`version_of`), so of two people editing one goal the second save is refused
(GoalConflict) instead of overwriting the first.

The rules are pure functions over plain data (`select`, `apply_count`,
`plan_add`, `plan_update`); the Redis part below them only reads and writes atomically:

- `keys.goals`          hash  id -> goal JSON (rewritten only by `update`)
- `keys.goals_reached`  hash  id -> reached-at time (HSETNX by the count; `update` of a
                        goal's target sets or clears it)
- `keys.goals_pending`  zset  unreached ids scored by target, so `mark_reached`
                        is one ZRANGEBYSCORE when no goal is crossed
- `keys.goals_next_id`  counter for ids (advanced only by a goal that is stored)
- `keys.banner_version` incremented by every change here (add, update, remove, a goal
                        marked reached), as by every change of the count: it orders the
                        banner's snapshots
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import redis as redis_lib
from marshmallow import Schema, ValidationError, validate, validates
from marshmallow import fields as mf

from membership.core import audit, i18n
from membership.core.config import SUPPORTED_LOCALES
from membership.core.text import unsafe_character
from membership.ledger import queries as ledger_queries
from membership.ledger.codec import CorruptRecord, version_from
from membership.store import Keys, whole

MAX_TARGET = 1_000_000_000
MAX_NAME = 100
# The copy field shown only when there is no goal at all: no goal's override can apply.
NOT_PER_GOAL = "invite"


class GoalError(ValueError):
    """A goal request that cannot be honoured; the message says why, naming the field."""


class GoalConflict(GoalError):
    """The goal changed since the version the request was based on (someone else saved)."""

    def __init__(self, current: Goal) -> None:
        super().__init__(
            f"version: goal {current.id} was changed by someone else since you opened it"
        )
        self.current = current


@dataclass(frozen=True)
class Goal:
    id: int
    target: int
    deadline: str | None = None  # YYYY-MM-DD
    name: str | None = None
    copy: Mapping[str, Mapping[str, i18n.Template]] = field(default_factory=dict)
    created_at: str | None = None
    reached_at: str | None = None

    def record(self) -> dict:
        """What is stored in `keys.goals` (the id is the hash field; reached_at lives apart)."""
        return {
            "target": self.target,
            "deadline": self.deadline,
            "name": self.name,
            "copy": self.copy,
            "created_at": self.created_at,
        }

    def as_dict(self) -> dict:
        """The whole goal, id and reached time included (the audit log's before/after)."""
        return {"id": self.id, **self.record(), "reached_at": self.reached_at}

    @classmethod
    def from_record(cls, goal_id: int, data: Mapping, reached_at: str | None) -> Goal:
        return cls(
            id=goal_id,
            target=int(data["target"]),
            deadline=data.get("deadline"),
            name=data.get("name"),
            copy=data.get("copy") or {},
            created_at=data.get("created_at"),
            reached_at=reached_at,
        )


@dataclass(frozen=True)
class Selection:
    current: Goal | None
    milestone: Goal | None


# --- Rules (pure) ------------------------------------------------------------


def is_reached(goal: Goal, count: int) -> bool:
    """Reached once marked, or as soon as the count is at its target (not marked yet)."""
    return goal.reached_at is not None or goal.target <= count


def newly_reached(goals: Iterable[Goal], count: int) -> list[Goal]:
    """Goals the count has reached that are not marked yet."""
    return [g for g in goals if g.reached_at is None and g.target <= count]


def apply_count(goals: Iterable[Goal], count: int, at: str) -> list[Goal]:
    """The goals after the count became `count` at `at` (the model of `mark_reached`)."""
    return [
        replace(g, reached_at=at) if g.reached_at is None and g.target <= count else g
        for g in goals
    ]


def select(goals: Iterable[Goal], count: int) -> Selection:
    current = milestone = None
    for g in goals:
        if is_reached(g, count):
            if milestone is None or (g.target, -g.id) > (milestone.target, -milestone.id):
                milestone = g
        elif current is None or (g.target, g.id) < (current.target, current.id):
            current = g
    return Selection(current=current, milestone=milestone)


def states(goal_list: Sequence[Goal], count: int) -> dict[int, str]:
    """Each goal's state for a list: "current", "milestone", "reached" or "upcoming"
    ("reached" also for a goal the count is at but that is not marked yet)."""
    selection = select(goal_list, count)

    def state(g: Goal) -> str:
        if g.reached_at:
            return "milestone" if g == selection.milestone else "reached"
        if g == selection.current:
            return "current"
        return "reached" if g.target <= count else "upcoming"

    return {g.id: state(g) for g in goal_list}


def plan_add(goals: Sequence[Goal], count: int, new: Goal, now: str) -> Goal:
    """The goal as it will be stored: refused if its target is taken, reached at once if due."""
    for g in goals:
        if g.target == new.target:
            raise GoalError(f"target: goal {g.id} already has the target {g.target}")
    return replace(new, created_at=now, reached_at=now if new.target <= count else None)


def plan_update(goals: Sequence[Goal], count: int, old: Goal, new: Goal, now: str) -> Goal:
    """The edited goal as it will be stored: `old`'s id and creation time, `new`'s fields.

    Reached stays reached while the target is unchanged (a reached goal stays reached
    whatever the count does). A new target is a new promise: reached if the count is at
    it (keeping the first reached time, else now), not reached if the count is below it.
    """
    for g in goals:
        if g.id != old.id and g.target == new.target:
            raise GoalError(f"target: goal {g.id} already has the target {g.target}")
    if new.target == old.target:
        reached_at = old.reached_at
    elif new.target <= count:
        reached_at = old.reached_at or now
    else:
        reached_at = None
    return replace(new, id=old.id, created_at=old.created_at, reached_at=reached_at)


def version_of(goal: Goal) -> str:
    """A short digest of what an edit form shows (not the reached time, which the count moves):
    a save based on another version is refused (GoalConflict), never a silent overwrite."""
    text = json.dumps(goal.record(), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# --- Input (validation) ------------------------------------------------------


def utc_now() -> str:
    return iso(dt.datetime.now(dt.UTC))


def iso(at: dt.datetime | str) -> str:
    """ISO-8601 UTC with a Z, to the second: "2026-11-25T19:00:00Z"."""
    if isinstance(at, str):
        return at
    if at.tzinfo is None:
        raise GoalError("at: expected a timezone-aware time")
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class GoalInput(Schema):
    """A goal as a client sends it. `keep_deadline`: the deadline the goal being edited has
    now, accepted though it may have passed (editing the copy must not need a new date)."""

    def __init__(self, *, keep_deadline: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.keep_deadline = keep_deadline

    target = mf.Integer(
        required=True,
        strict=False,
        validate=validate.Range(min=1, max=MAX_TARGET, error=f"expected 1 to {MAX_TARGET:,}"),
        error_messages={"invalid": "expected a whole number of members"},
    )
    deadline = mf.Date(
        format="%Y-%m-%d",
        load_default=None,
        allow_none=True,
        error_messages={"invalid": "expected a date as YYYY-MM-DD"},
    )
    name = mf.String(load_default=None, allow_none=True)
    copy = mf.Dict(load_default=dict)

    @validates("deadline")
    def _future(self, value, **_):
        if value is None or value.isoformat() == self.keep_deadline:
            return
        if value < dt.datetime.now(dt.UTC).date():
            raise ValidationError(f"{value.isoformat()} is in the past")

    @validates("name")
    def _name(self, value, **_):
        if value is None:
            return
        if not value.strip() or len(value) > MAX_NAME:
            raise ValidationError(f"expected 1 to {MAX_NAME} characters")
        bad = unsafe_character(value)
        if bad is not None:
            raise ValidationError(
                f"control characters and escape sequences are not allowed (found {bad})"
            )

    @validates("copy")
    def _copy(self, value, **_):
        for message in copy_problems(value, per_goal=True).values():
            raise ValidationError(message)


def check_copy(copy: Mapping) -> None:
    """Raise CopyError unless `copy` is {locale: {field: template or {plural form: template}}}."""
    for message in copy_problems(copy).values():
        raise i18n.CopyError(message)


def copy_problems(copy: Mapping, *, per_goal: bool = False) -> dict[str, str]:
    """Every problem in `copy`, by where it is ("uk", "en.cta", "uk.message.few"), in order.

    The messages are check_copy's; the paths let a form put each next to its input.
    `per_goal`: also refuse the fields a goal cannot set (NOT_PER_GOAL).
    """
    problems: dict[str, str] = {}
    for locale, fields_ in copy.items():
        if locale not in SUPPORTED_LOCALES:
            problems[str(locale)] = f"unsupported locale {locale!r}; expected one of en, uk"
            continue
        if not isinstance(fields_, Mapping):
            problems[locale] = f"{locale}: expected {{field: template}}"
            continue
        for name, template in fields_.items():
            path = f"{locale}.{name}"
            if per_goal and name == NOT_PER_GOAL:
                problems[path] = (
                    f"{path}: shown only when there is no goal, so a goal "
                    "cannot set it (the default copy in membership/core/i18n.py is used)"
                )
            elif isinstance(template, str):
                _check(problems, path, i18n.check_template, name, template)
            elif isinstance(template, Mapping) and template:
                for form, text in template.items():
                    if not isinstance(text, str):
                        problems[f"{path}.{form}"] = f"{path}.{form}: expected a template"
                    else:
                        forms = {form: text}
                        _check(
                            problems, f"{path}.{form}", i18n.check_plural_forms, locale, name, forms
                        )
            else:
                problems[path] = f"{path}: expected a template"
    return problems


def _check(problems: dict[str, str], path: str, check, *args) -> None:
    try:
        check(*args)
    except i18n.CopyError as exc:
        problems[path] = str(exc)


_COPY_OPTION = re.compile(
    r"(?P<locale>[a-z]{2})\.(?P<field>[a-z]+)(?:\.(?P<form>[a-z]+))?=(?P<t>.*)"
)


def parse_copy_options(options: Iterable[str]) -> dict:
    """["uk.message=...", "en.headline.one=..."] -> the copy mapping (validated later)."""
    copy: dict[str, dict] = {}
    for option in options:
        m = _COPY_OPTION.fullmatch(option)
        if not m:
            raise GoalError(
                f"copy: expected LOCALE.FIELD=TEMPLATE or LOCALE.FIELD.FORM=TEMPLATE, "
                f"got {option!r}"
            )
        fields_ = copy.setdefault(m["locale"], {})
        if m["form"]:
            existing = fields_.setdefault(m["field"], {})
            if isinstance(existing, str):
                raise GoalError(f"copy: {m['locale']}.{m['field']} is given both plain and plural")
            existing[m["form"]] = m["t"]
        else:
            if m["field"] in fields_:
                raise GoalError(f"copy: {m['locale']}.{m['field']} is given twice")
            fields_[m["field"]] = m["t"]
    return copy


class GoalInvalid(GoalError):
    """parse_goal's refusal. The message names the first bad field; `errors` holds every
    one by field, and each bad template also by its path ("copy.uk.message.few")."""

    def __init__(self, message: str, errors: Mapping[str, str]) -> None:
        super().__init__(message)
        self.errors = dict(errors)


def parse_goal(data: Mapping, *, keep_deadline: str | None = None) -> Goal:
    """Validate `{target, deadline?, name?, copy?}`; GoalInvalid names the first bad field.

    `keep_deadline`: when editing, the goal's own deadline passes though it is past.
    """
    try:
        loaded = GoalInput(keep_deadline=keep_deadline).load(dict(data))
    except ValidationError as exc:
        errors = {name: _first(problems) for name, problems in sorted(exc.messages.items())}
        if "copy" in errors and isinstance(data.get("copy"), Mapping):
            found = copy_problems(data["copy"], per_goal=True)
            errors.update({f"copy.{path}": message for path, message in found.items()})
        name, message = next(iter(errors.items()))
        raise GoalInvalid(f"{name}: {message}", errors) from None
    deadline = loaded["deadline"]
    name = loaded["name"].strip() if loaded["name"] else None
    return Goal(
        id=0,
        target=loaded["target"],
        deadline=deadline.isoformat() if deadline else None,
        name=name,
        copy=loaded["copy"],
    )


def _first(problems) -> str:
    """The first message of one field's marshmallow errors (a list, or a dict for a Dict)."""
    while isinstance(problems, (list, dict)) and problems:
        problems = problems[0] if isinstance(problems, list) else next(iter(problems.values()))
    return str(problems)


# --- Storage (Redis) ---------------------------------------------------------

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


def mark_reached(
    redis: redis_lib.Redis, keys: Keys, count: int, at: dt.datetime | str
) -> list[int]:
    """Mark every unreached goal with target <= count as reached at `at`; returns their ids.

    Idempotent and atomic (one Lua script); when no goal is crossed it costs one
    O(log n) ZRANGEBYSCORE. `reach_goals` calls it after the ledger's count rises.
    """
    script = redis.register_script(_MARK_REACHED)
    ids = script(
        keys=[keys.goals_pending, keys.goals_reached, keys.banner_version],
        args=[int(count), iso(at)],
    )
    return [int(i) for i in ids]


def reach_goals(redis: redis_lib.Redis, keys: Keys):
    """A subscriber to the ledger's writer: a rise in the count (or a rebuild, which
    also mends a mark lost to a crash after a commit) marks the goals it reaches."""

    def on_ledger_outcome(outcome) -> None:
        after, before = outcome.count_after, outcome.count_before
        if after is None:
            return
        if outcome.outcome == "rebuilt" or before is None or after > before:
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


def add(
    redis: redis_lib.Redis, keys: Keys, new: Goal, now: str | None = None, *, actor: str
) -> Goal:
    """Store a validated goal (see parse_goal); reached at once when the count is at its target.

    WATCH/MULTI over the goals, the id counter and the count, so a count change or
    another add in between makes it decide again on fresh data. The id is taken in
    the same transaction, so a refused goal uses none up. The audit entry
    (`goal_added`, by `actor`) commits in the same transaction.
    """
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
            pipe.incr(keys.banner_version)
            _queue_stored(pipe, keys, goal)
            audit.queue(
                pipe,
                keys,
                actor=actor,
                action="goal_added",
                target=f"goal {goal.id}",
                after=goal.as_dict(),
            )

        return whole.Write(queue, goal)

    watch = (keys.goals, keys.goals_reached, keys.goals_next_id, *ledger_queries.count_keys(keys))
    # goals_pending is written, not read: WATCHed as its type is checked
    return _transaction(redis, body, (*watch, keys.goals_pending))


_MAX_ATTEMPTS = 50


def _queue_stored(pipe, keys: Keys, goal: Goal) -> None:
    """Queue a goal as stored: its record, and reached (with the time) or pending (by target),
    never both."""
    field_ = str(goal.id)
    pipe.hset(keys.goals, field_, json.dumps(goal.record(), ensure_ascii=False))
    if goal.reached_at is not None:
        pipe.hset(keys.goals_reached, field_, goal.reached_at)
        pipe.zrem(keys.goals_pending, field_)
    else:
        pipe.hdel(keys.goals_reached, field_)
        pipe.zadd(keys.goals_pending, {field_: goal.target})


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


def remove(
    redis: redis_lib.Redis,
    keys: Keys,
    goal_id: int,
    *,
    actor: str,
    expected: str | None = None,
) -> bool:
    """Delete a goal; False when there is no goal with that id (and nothing is audited).

    WATCH/read/MULTI, so the audit entry (`goal_removed`, by `actor`) holds the goal
    exactly as it was, and commits in the same transaction as the delete. `expected`: the
    version_of the goal the request saw; another raises GoalConflict and deletes nothing.
    """
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

        def queue(pipe) -> None:
            pipe.incr(keys.banner_version)
            pipe.hdel(keys.goals, field_)
            pipe.hdel(keys.goals_reached, field_)
            pipe.zrem(keys.goals_pending, field_)
            audit.queue(
                pipe,
                keys,
                actor=actor,
                action="goal_removed",
                target=f"goal {goal.id}",
                before=goal.as_dict(),
            )

        return whole.Write(queue, True)

    return _transaction(redis, body, (keys.goals, keys.goals_reached, keys.goals_pending))


def get(redis: redis_lib.Redis, keys: Keys, goal_id: int) -> Goal | None:
    """One goal by id, with its reached time; None when there is none."""
    pipe = redis.pipeline(transaction=True)
    pipe.hget(keys.goals, str(goal_id))
    pipe.hget(keys.goals_reached, str(goal_id))
    raw, reached_at = pipe.execute()
    return None if raw is None else Goal.from_record(int(goal_id), json.loads(raw), reached_at)


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
    """Replace goal `goal_id`'s fields with `new`'s (validated by parse_goal); None when
    there is no such goal. `expected` is the version_of the goal the edit was based on:
    another one raises GoalConflict and nothing changes.

    WATCH/MULTI over the goals and the count, as `add`: the rules (plan_update) decide on
    what is read, everything is checked before anything is queued, and the change, the
    banner's version and the audit entry (`goal_changed`, before and after) commit together.
    An edit that changes nothing writes nothing.
    """
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

        def queue(pipe) -> None:
            pipe.incr(keys.banner_version)
            _queue_stored(pipe, keys, goal)
            audit.queue(
                pipe,
                keys,
                actor=actor,
                action="goal_changed",
                target=f"goal {goal.id}",
                before=old.as_dict(),
                after=goal.as_dict(),
            )

        return whole.Write(queue, goal)

    watch = (keys.goals, keys.goals_reached, keys.goals_pending)
    return _transaction(redis, body, (*watch, *ledger_queries.count_keys(keys)))
