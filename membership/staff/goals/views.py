"""Staff pages: goals and their per-locale copy, with a preview of the banner before saving.
The rules stay in membership/goals/ (the calls `membership goals ...` makes); form.py maps
the form to a goal, api.py is the JSON twin. Every form works without JavaScript: "Preview"
re-renders the form with the banner for the unsaved values; static/staff/goals.js asks
/staff/api/goals/preview as the staff member types.
"""

from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, request, url_for

from membership.core import i18n
from membership.core.config import SUPPORTED_LOCALES
from membership.core.runtime import runtime
from membership.goals import rules as goal_rules
from membership.goals import store as goals_mod
from membership.staff.access.guard import requires
from membership.staff.forms import form_fields
from membership.staff.goals import api
from membership.staff.goals.form import (
    FIELD_HELP,
    LOCALE_NAMES,
    copy_fields,
    copy_inputs,
    copy_rows,
    errors_of,
    form_errors,
    form_values,
    goal_data,
    plural_examples,
)
from membership.staff.goals.reads import existing, goal_id_of, live_count, not_found, preview_of

bp = Blueprint("goals", __name__)
bp.register_blueprint(api.bp)


# --- Pages ----------------------------------------------------------------------------
def _render(template: str, status: int = 200, **context):
    page = render_template(
        template,
        locales=SUPPORTED_LOCALES,
        locale_names=LOCALE_NAMES,
        copy_fields=copy_fields(),
        copy_inputs=copy_inputs,
        field_help=FIELD_HELP,
        placeholders=lambda f: ", ".join("{" + p + "}" for p in sorted(i18n.FIELDS[f][1])),
        plural_examples={loc: plural_examples(loc) for loc in SUPPORTED_LOCALES},
        copy_rows=copy_rows,
        has_copy=lambda values: any(k.startswith("copy.") and v for k, v in values.items()),
        live=live_count(),
        **context,
    )
    return page, status


def _list_page(values=None, errors=None, preview=None, status=200, notice=None):
    rt = runtime()
    stored = goals_mod.load(rt.redis, rt.keys)
    return _render(
        "staff/goals.html",
        status,
        goals=stored,
        states=goal_rules.states(stored, live_count() or 0),
        values=values or {},
        errors=form_errors(errors or {}),
        preview=preview,
        notice=notice,
    )


def _edit_page(goal, values=None, errors=None, preview=None, status=200, **extra):
    if values is None and preview is None:  # as stored, at the live count
        values = form_values(goal)
        preview, _ = preview_of(goal, goal_data(values), None)
    return _render(
        "staff/goals_edit.html",
        status,
        goal=goal,
        values=values,
        version=extra.pop("version", None) or goal_rules.version_of(goal),
        errors=form_errors(errors or {}),
        preview=preview,
        **extra,
    )


@bp.get("/goals")
@requires("viewer")
def goals():
    removed = goal_id_of(request.args.get("removed"))
    return _list_page(notice=f"Goal {removed} removed." if removed else None)


@bp.post("/goals")
@requires("editor")
def goals_add():
    form = form_fields()
    rt = runtime()
    try:
        new = goal_rules.parse_goal(goal_data(form))
        goal = goals_mod.add(rt.redis, rt.keys, new, actor=g.staff.email)
    except goal_rules.GoalError as exc:
        return _list_page(values=form, errors=errors_of(exc), status=400)
    return redirect(url_for("staff.goals.goal_page", goal_id=goal.id, saved="added"), 303)


@bp.post("/goals/preview")
@requires("viewer")  # previewing stores nothing: everyone may
def goals_preview_new():
    form = form_fields()
    preview, errors = preview_of(None, goal_data(form), form.get("preview_count"))
    return _list_page(values=form, errors=errors, preview=preview, status=400 if errors else 200)


SAVED = {"added": "Goal added.", "saved": "Saved: the banner shows it within a second."}


@bp.get("/goals/<goal_id>")
@requires("viewer")
def goal_page(goal_id):
    goal = existing(goal_id)
    return _edit_page(goal, notice=SAVED.get(request.args.get("saved", "")))


@bp.post("/goals/<goal_id>/preview")
@requires("viewer")
def goal_preview(goal_id):
    goal = existing(goal_id)
    form = form_fields()
    preview, errors = preview_of(goal, goal_data(form), form.get("preview_count"))
    return _edit_page(
        goal, form, errors, preview, 400 if errors else 200, version=form.get("version")
    )


@bp.post("/goals/<goal_id>")
@requires("editor")
def goal_save(goal_id):
    goal = existing(goal_id)
    form, rt = form_fields(), runtime()
    version = form.get("version", "")
    try:
        if not version:
            raise goal_rules.GoalError("version: missing; reload the page and edit again")
        new = goal_rules.parse_goal(goal_data(form), keep_deadline=goal.deadline)
        saved = goals_mod.update(
            rt.redis, rt.keys, goal.id, new, expected=version, actor=g.staff.email
        )
    except goal_rules.GoalConflict as exc:
        # Their save is shown; the form keeps these values, based on their version now,
        # so saving again is a choice made knowing what it replaces.
        preview, _ = preview_of(exc.current, goal_data(form), form.get("preview_count"))
        errors = errors_of(exc)
        return _edit_page(exc.current, form, errors, preview, 409, conflict=exc.current)
    except goal_rules.GoalError as exc:
        return _edit_page(goal, form, errors_of(exc), None, 400, version=version)
    if saved is None:
        return not_found(goal_id)
    return redirect(url_for("staff.goals.goal_page", goal_id=goal.id, saved="saved"), 303)


@bp.get("/goals/<goal_id>/remove")
@requires("editor")
def goal_remove_confirm(goal_id):
    return _remove_page(existing(goal_id))


@bp.post("/goals/<goal_id>/remove")
@requires("editor")
def goal_remove(goal_id):
    goal = existing(goal_id)
    version, rt = form_fields().get("version", ""), runtime()
    if not version:
        return _remove_page(goal, "version: missing; open the goal and remove it from there", 400)
    try:
        removed = goals_mod.remove(
            rt.redis, rt.keys, goal.id, actor=g.staff.email, expected=version
        )
    except goal_rules.GoalConflict as exc:
        # The page now shows their version: removing it after all is a second, informed click.
        return _remove_page(exc.current, f"{exc} (as shown now): look again before removing", 409)
    except goal_rules.GoalError as exc:
        return _remove_page(goal, str(exc), 400)
    if not removed:
        return not_found(goal_id)
    return redirect(url_for("staff.goals.goals", removed=goal.id), 303)


def _remove_page(goal: goal_rules.Goal, error: str | None = None, status: int = 200):
    version = goal_rules.version_of(goal)
    return _render("staff/goals_remove.html", status, goal=goal, version=version, error=error)
