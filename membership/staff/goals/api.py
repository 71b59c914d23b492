"""/staff/api/goals: the goal pages' JSON twin, with the same roles and rules."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from membership.core.runtime import runtime
from membership.goals import rules as goal_rules
from membership.goals import store as goals_mod
from membership.staff.access.guard import api_error, requires
from membership.staff.forms import form_fields
from membership.staff.goals.form import errors_of, form_errors, goal_data
from membership.staff.goals.reads import find, goal_id_of, live_count, preview_of

bp = Blueprint("api", __name__)


def _api_invalid(exc: goal_rules.GoalError):
    errors = errors_of(exc)
    return api_error(400, "invalid_goal", str(exc), field=next(iter(errors)), fields=errors)


def _conflict(exc: goal_rules.GoalConflict):
    return api_error(409, "conflict", str(exc), field="version", current=_api_goal(exc.current))


def _api_goal(goal: goal_rules.Goal, state: str | None = None) -> dict:
    body = {**goal.as_dict(), "version": goal_rules.version_of(goal)}
    return body if state is None else {**body, "state": state}


def _json_body() -> dict | None:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else None


def _not_an_object():
    return api_error(400, "invalid_body", "body: expected a JSON object", field="body")


def _api_unknown(raw_id):
    return api_error(404, "not_found", f"no goal with id {str(raw_id)[:40]}")


@bp.get("/api/goals")
@requires("viewer")
def api_goals():
    rt = runtime()
    stored, live = goals_mod.load(rt.redis, rt.keys), live_count()
    state = goal_rules.states(stored, live or 0)
    return jsonify(count=live, goals=[_api_goal(s, state[s.id]) for s in stored])


@bp.post("/api/goals")
@requires("editor")
def api_goals_add():
    body, rt = _json_body(), runtime()
    if body is None:
        return _not_an_object()
    try:
        goal = goals_mod.add(rt.redis, rt.keys, goal_rules.parse_goal(body), actor=g.staff.email)
    except goal_rules.GoalError as exc:
        return _api_invalid(exc)
    return jsonify(_api_goal(goal)), 201


@bp.post("/api/goals/preview")
@requires("viewer")
def api_goals_preview():
    """JSON {target, deadline?, name?, copy?, id?, count?}, or the page's own form fields
    (what goals.js sends): the banner in each locale were it saved. Nothing is stored."""
    if request.is_json:
        body = _json_body()
        if body is None:
            return _not_an_object()
        goal_id, count = body.pop("id", None), body.pop("count", None)
        data, count = body, None if count is None else str(count)
    else:
        form = form_fields()
        goal_id, data, count = form.get("id") or None, goal_data(form), form.get("preview_count")
    old = None
    if goal_id is not None:
        old = find(goal_id)
        if old is None:
            return _api_unknown(goal_id)
    preview, errors = preview_of(old, data, count)
    if errors:
        if request.is_json and "preview_count" in errors:  # JSON calls it count
            errors = {"count": errors.pop("preview_count"), **errors}
        elif not request.is_json:  # the page's boxes, named as the page names them
            errors = form_errors(errors)
        name, message = next(iter(errors.items()))
        said = message if name.startswith("copy.") and not request.is_json else f"{name}: {message}"
        return api_error(400, "invalid_goal", said, field=name, fields=errors)
    return jsonify(preview.as_json())


@bp.get("/api/goals/<goal_id>")
@requires("viewer")
def api_goal(goal_id):
    goal = find(goal_id)
    if goal is None:
        return _api_unknown(goal_id)
    return jsonify(_api_goal(goal))


@bp.put("/api/goals/<goal_id>")
@requires("editor")
def api_goal_save(goal_id):
    goal, body, rt = find(goal_id), _json_body(), runtime()
    if goal is None:
        return _api_unknown(goal_id)
    if body is None:
        return _not_an_object()
    version = body.pop("version", None)
    if not isinstance(version, str) or not version:
        message = "version: required; the version of the goal this edit is based on"
        return api_error(400, "invalid_goal", message, field="version")
    try:
        new = goal_rules.parse_goal(body, keep_deadline=goal.deadline)
        saved = goals_mod.update(
            rt.redis, rt.keys, goal.id, new, expected=version, actor=g.staff.email
        )
    except goal_rules.GoalConflict as exc:
        return _conflict(exc)
    except goal_rules.GoalError as exc:
        return _api_invalid(exc)
    if saved is None:
        return _api_unknown(goal_id)
    return jsonify(_api_goal(saved))


@bp.delete("/api/goals/<goal_id>")
@requires("editor")
def api_goal_remove(goal_id):
    goal_id_ = goal_id_of(goal_id)
    version = request.args.get("version") or None
    rt = runtime()
    try:
        removed = goal_id_ is not None and goals_mod.remove(
            rt.redis, rt.keys, goal_id_, actor=g.staff.email, expected=version
        )
    except goal_rules.GoalConflict as exc:
        return _conflict(exc)
    except goal_rules.GoalError as exc:
        return api_error(503, "unavailable", str(exc))
    if not removed:
        return _api_unknown(goal_id)
    return "", 204
