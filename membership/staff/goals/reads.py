"""What the goal pages and their JSON read: the form, the live count, a goal by id, and a
preview of unsaved values (the shell around goal_form.py)."""

from __future__ import annotations

from collections.abc import Mapping

from flask import abort, make_response

from membership.core.runtime import runtime
from membership.goals import rules as goal_rules
from membership.goals import store as goals_mod
from membership.ledger import queries as ledger_queries
from membership.ledger.codec import CorruptRecord
from membership.staff.access import guard
from membership.staff.goals.form import GOAL_ID, build_preview, errors_of, preview_count


def live_count() -> int | None:
    rt = runtime()
    try:
        return ledger_queries.count(rt.redis, rt.keys)
    except CorruptRecord:
        return None


def goal_id_of(raw) -> int | None:
    text = str(raw) if raw is not None else ""
    return int(text) if GOAL_ID.fullmatch(text) else None


def find(raw_id) -> goal_rules.Goal | None:
    goal_id = goal_id_of(raw_id)
    if goal_id is None:
        return None
    rt = runtime()
    return goals_mod.get(rt.redis, rt.keys, goal_id)


def not_found(raw_id):
    return guard.refuse(404, f"no goal with id {str(raw_id)[:40]}")


def existing(raw_id) -> goal_rules.Goal:
    """The goal; else the request ends with the page that says there is none (404)."""
    goal = find(raw_id)
    if goal is None:
        abort(make_response(not_found(raw_id)))
    return goal


def preview_of(old: goal_rules.Goal | None, data: Mapping, count: str | None):
    """(Preview, {}) for unsaved goal data (parse_goal's input) at a member count (blank:
    the live one), or (None, errors by field)."""
    rt = runtime()
    live = live_count() or 0
    try:
        new = goal_rules.parse_goal(data, keep_deadline=old.deadline if old is not None else None)
    except goal_rules.GoalError as exc:
        return None, errors_of(exc)
    try:
        count = preview_count(count, live)
    except ValueError as exc:
        return None, {"preview_count": str(exc)}
    stored = goals_mod.load(rt.redis, rt.keys)
    try:
        return build_preview(stored, old, new, count, goal_rules.utc_now(), rt.settings), {}
    except goal_rules.GoalError as exc:
        return None, errors_of(exc)
