"""Goals' rules, pure: the goal, its validation, which goal is current, what an edit stores.

What a goal is and how it is reached: docs/goals-and-banner.md. An edit keeps the goal's id and
creation time (`plan_update`) and names the version it was based on (`version_of`), so of two
people editing one goal the second save is refused (GoalConflict). Redis: `goals.store`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from marshmallow import Schema, ValidationError, validate, validates
from marshmallow import fields as mf

from membership.core import i18n
from membership.core.config import SUPPORTED_LOCALES
from membership.core.text import unsafe_character

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
