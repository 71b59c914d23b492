"""Staff pages: goals and their per-locale copy, with a preview of the banner before saving.

The rules stay in membership/goals.py (parse_goal, add, update, remove, plan_add,
plan_update, the same calls as `membership goals ...`), and the preview is /v1/banner's own
view model (banner.preview). Here: the form's fields <-> a goal's data (pure), the pages
and the /staff/api/goals JSON. Every form works without JavaScript: "Preview" is a submit
button that re-renders the form with the banner for the unsaved values; static/staff/goals.js
asks /staff/api/goals/preview as the staff member types.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cache

from flask import g, jsonify, redirect, render_template, request, url_for

from membership import banner, i18n
from membership import goals as goals_mod
from membership.config import SUPPORTED_LOCALES
from membership.ledger import queries as ledger_queries
from membership.ledger.codec import CorruptRecord
from membership.runtime import runtime
from membership.staff import guard
from membership.staff.guard import requires
from membership.staff.views import MAX_FIELD, bp

LOCALE_NAMES = {"en": "English", "uk": "Ukrainian"}
# The copy fields a goal may set, with what each is for (i18n.FIELDS says what each may use).
FIELD_HELP = {
    "headline": "Above the bar, always. The plural form follows the member count.",
    "message": "While this is the current goal. The plural form follows the goal's target.",
    "thanks": "Once this is the milestone and no goal is left. The form follows the target.",
    "cta": "The button, always.",
}
PLURAL_ORDER = ("zero", "one", "two", "few", "many", "other")
GOAL_FIELDS = ("target", "deadline", "name")
MAX_PREVIEW_COUNT = 10 * goals_mod.MAX_TARGET
_ID = re.compile(r"[1-9][0-9]{0,11}")


# --- The form (pure) ------------------------------------------------------------------
@dataclass(frozen=True)
class CopyInput:
    """One text box of the copy form: a locale's field, or one plural form of it."""

    locale: str
    field: str
    form: str | None  # None: the field has no plural forms (cta)

    @property
    def name(self) -> str:
        return ".".join(p for p in ("copy", self.locale, self.field, self.form) if p)

    @property
    def id(self) -> str:
        return self.name.replace(".", "-")

    @property
    def default(self) -> str:
        """The default copy this box overrides, shown as its placeholder."""
        default = i18n.DEFAULT_COPY[self.locale][self.field]
        if isinstance(default, str):
            return default
        return default.get(self.form or "other") or default["other"]


def copy_inputs(locale: str, field: str) -> list[CopyInput]:
    if i18n.FIELDS[field][0] is None:
        return [CopyInput(locale, field, None)]
    forms = i18n.plural_categories(locale)
    return [CopyInput(locale, field, f) for f in PLURAL_ORDER if f in forms]


def copy_fields() -> list[str]:
    return [f for f in i18n.FIELDS if f != goals_mod.NOT_PER_GOAL]


@cache
def plural_examples(locale: str) -> dict[str, str]:
    """Which whole numbers take each plural form, for the labels: uk few -> "2, 3, 4, 22"."""
    found: dict[str, list[int]] = {}
    for n in (*range(0, 30), 101, 111):
        found.setdefault(i18n.plural_category(locale, n), []).append(n)
    return {form: ", ".join(map(str, numbers[:4])) for form, numbers in found.items()}


def goal_data(form: Mapping[str, str]) -> dict:
    """The form's fields as parse_goal's input. Empty boxes set nothing; a plural field
    with only its "other" form filled is one text for every number."""
    copy: dict[str, dict] = {}
    for locale in SUPPORTED_LOCALES:
        for field in copy_fields():
            texts = {}
            for box in copy_inputs(locale, field):
                text = (form.get(box.name) or "").strip()
                if text:
                    texts[box.form] = text
            if not texts:
                continue
            plain = list(texts) in ([None], ["other"])
            copy.setdefault(locale, {})[field] = next(iter(texts.values())) if plain else texts
    return {
        "target": (form.get("target") or "").strip().replace(",", "").replace("_", ""),
        "deadline": (form.get("deadline") or "").strip() or None,
        "name": form.get("name") or None,
        "copy": copy,
    }


def form_values(goal: goals_mod.Goal) -> dict[str, str]:
    """A stored goal as the form's fields (the inverse of goal_data)."""
    values = {"target": str(goal.target), "deadline": goal.deadline or "", "name": goal.name or ""}
    for locale, fields in goal.copy.items():
        for field, template in fields.items():
            if i18n.FIELDS.get(field, (None,))[0] is None:
                # One box: a plural override of a field with no number is its "other" form
                # (what i18n.render shows), so nothing that shows is lost on saving.
                text = template if isinstance(template, str) else template.get("other", "")
                values[CopyInput(locale, field, None).name] = text
            elif isinstance(template, str):
                values[CopyInput(locale, field, "other").name] = template
            else:
                for form, text in template.items():
                    values[CopyInput(locale, field, form).name] = text
    return values


def copy_rows(copy: Mapping) -> list[tuple[str, str, str, str]]:
    """A goal's copy overrides as (locale, field, plural form or "", text) rows to read."""
    rows = []
    for locale, fields in sorted(copy.items()):
        for field, template in fields.items():
            forms = {"": template} if isinstance(template, str) else template
            rows += [(locale, field, form, text) for form, text in forms.items()]
    return rows


def errors_of(exc: goals_mod.GoalError) -> dict[str, str]:
    """A refusal's messages by the form field they name ("form" when none)."""
    if isinstance(exc, goals_mod.GoalInvalid):
        return exc.errors
    name, _, message = str(exc).partition(": ")
    return {name: message} if name in (*GOAL_FIELDS, "version") else {"form": str(exc)}


def preview_count(raw: str | None, live: int) -> int:
    """The member count to preview at: the live one when blank. ValueError names the field."""
    text = (raw or "").strip().replace(",", "")
    if not text:
        return live
    if not text.isdigit() or int(text) > MAX_PREVIEW_COUNT:
        raise ValueError(f"expected a whole number of members, 0 to {MAX_PREVIEW_COUNT:,}")
    return int(text)


@dataclass(frozen=True)
class Preview:
    count: int
    banner: dict  # locale -> /v1/banner's body
    shown: goals_mod.Goal | None  # the goal whose copy the banner shows at this count
    goal: goals_mod.Goal  # the previewed goal, as it would be stored

    @property
    def shows_this_goal(self) -> bool:
        return self.shown is not None and self.shown.id == self.goal.id

    def as_json(self) -> dict:
        shown = None if self.shown is None else {"id": self.shown.id, "target": self.shown.target}
        return {
            "count": self.count,
            "shows_this_goal": self.shows_this_goal,
            "shown_goal": shown,
            "banner": self.banner,
        }


def build_preview(
    stored: list[goals_mod.Goal],
    old: goals_mod.Goal | None,
    new: goals_mod.Goal,
    count: int,
    now: str,
    settings,
) -> Preview:
    """The banner in every locale once `new` is saved (over `old`, or added), at `count`:
    the same rules as saving (plan_update/plan_add; GoalError as they raise it) and the
    same view as /v1/banner."""
    if old is not None:
        goal = goals_mod.plan_update(stored, count, old, new, now)
    else:
        next_id = max((s.id for s in stored), default=0) + 1
        goal = goals_mod.plan_add(stored, count, replace(new, id=next_id), now)
    after = [s for s in stored if s.id != goal.id] + [goal]
    selection = goals_mod.select(after, count)
    bodies = banner.preview(
        after, count, publication=settings.publication_name, join_url=settings.join_url
    )
    return Preview(count, bodies, selection.current or selection.milestone, goal)


# --- Reading (the shell) --------------------------------------------------------------
def _form() -> dict[str, str]:
    return {k: v[:MAX_FIELD] for k, v in request.form.items() if isinstance(v, str)}


def _live_count() -> int | None:
    rt = runtime()
    try:
        return ledger_queries.count(rt.redis, rt.keys)
    except CorruptRecord:
        return None


def _goal_id(raw) -> int | None:
    text = str(raw) if raw is not None else ""
    return int(text) if _ID.fullmatch(text) else None


def _find(raw_id) -> goals_mod.Goal | None:
    goal_id = _goal_id(raw_id)
    if goal_id is None:
        return None
    rt = runtime()
    return goals_mod.get(rt.redis, rt.keys, goal_id)


def _not_found(raw_id):
    return guard.refuse(404, f"no goal with id {str(raw_id)[:40]}")


def _preview(old: goals_mod.Goal | None, data: Mapping, count: str | None):
    """(Preview, {}) for unsaved goal data (parse_goal's input) at a member count (blank:
    the live one), or (None, errors by field)."""
    rt = runtime()
    live = _live_count() or 0
    try:
        new = goals_mod.parse_goal(data, keep_deadline=old.deadline if old is not None else None)
    except goals_mod.GoalError as exc:
        return None, errors_of(exc)
    try:
        count = preview_count(count, live)
    except ValueError as exc:
        return None, {"preview_count": str(exc)}
    stored = goals_mod.load(rt.redis, rt.keys)
    try:
        return build_preview(stored, old, new, count, goals_mod.utc_now(), rt.settings), {}
    except goals_mod.GoalError as exc:
        return None, errors_of(exc)


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
        can_edit=guard.rules.allows(g.staff.role, "editor"),
        live=_live_count(),
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
        states=goals_mod.states(stored, _live_count() or 0),
        values=values or {},
        errors=errors or {},
        preview=preview,
        notice=notice,
    )


def _edit_page(goal, values=None, errors=None, preview=None, status=200, **extra):
    if values is None and preview is None:  # as stored, at the live count
        values = form_values(goal)
        preview, _ = _preview(goal, goal_data(values), None)
    return _render(
        "staff/goals_edit.html",
        status,
        goal=goal,
        values=values,
        version=extra.pop("version", None) or goals_mod.version_of(goal),
        errors=errors or {},
        preview=preview,
        **extra,
    )


@bp.get("/goals")
@requires("viewer")
def goals():
    removed = _goal_id(request.args.get("removed"))
    return _list_page(notice=f"Goal {removed} removed." if removed else None)


@bp.post("/goals")
@requires("editor")
def goals_add():
    form = _form()
    rt = runtime()
    try:
        new = goals_mod.parse_goal(goal_data(form))
        goal = goals_mod.add(rt.redis, rt.keys, new, actor=g.staff.email)
    except goals_mod.GoalError as exc:
        return _list_page(values=form, errors=errors_of(exc), status=400)
    return redirect(url_for("staff.goal_page", goal_id=goal.id, saved="added"), 303)


@bp.post("/goals/preview")
@requires("viewer")  # previewing stores nothing: everyone may
def goals_preview_new():
    form = _form()
    preview, errors = _preview(None, goal_data(form), form.get("preview_count"))
    return _list_page(values=form, errors=errors, preview=preview, status=400 if errors else 200)


SAVED = {"added": "Goal added.", "saved": "Saved: the banner shows it within a second."}


@bp.get("/goals/<goal_id>")
@requires("viewer")
def goal_page(goal_id):
    goal = _find(goal_id)
    if goal is None:
        return _not_found(goal_id)
    return _edit_page(goal, notice=SAVED.get(request.args.get("saved", "")))


@bp.post("/goals/<goal_id>/preview")
@requires("viewer")
def goal_preview(goal_id):
    goal = _find(goal_id)
    if goal is None:
        return _not_found(goal_id)
    form = _form()
    preview, errors = _preview(goal, goal_data(form), form.get("preview_count"))
    return _edit_page(
        goal, form, errors, preview, 400 if errors else 200, version=form.get("version")
    )


@bp.post("/goals/<goal_id>")
@requires("editor")
def goal_save(goal_id):
    goal = _find(goal_id)
    if goal is None:
        return _not_found(goal_id)
    form, rt = _form(), runtime()
    version = form.get("version", "")
    try:
        if not version:
            raise goals_mod.GoalError("version: missing; reload the page and edit again")
        new = goals_mod.parse_goal(goal_data(form), keep_deadline=goal.deadline)
        saved = goals_mod.update(
            rt.redis, rt.keys, goal.id, new, expected=version, actor=g.staff.email
        )
    except goals_mod.GoalConflict as exc:
        # Their save is shown; the form keeps these values, based on their version now,
        # so saving again is a choice made knowing what it replaces.
        preview, _ = _preview(exc.current, goal_data(form), form.get("preview_count"))
        errors = errors_of(exc)
        return _edit_page(exc.current, form, errors, preview, 409, conflict=exc.current)
    except goals_mod.GoalError as exc:
        return _edit_page(goal, form, errors_of(exc), None, 400, version=version)
    if saved is None:
        return _not_found(goal_id)
    return redirect(url_for("staff.goal_page", goal_id=goal.id, saved="saved"), 303)


@bp.get("/goals/<goal_id>/remove")
@requires("editor")
def goal_remove_confirm(goal_id):
    goal = _find(goal_id)
    if goal is None:
        return _not_found(goal_id)
    return _remove_page(goal)


@bp.post("/goals/<goal_id>/remove")
@requires("editor")
def goal_remove(goal_id):
    goal = _find(goal_id)
    if goal is None:
        return _not_found(goal_id)
    version, rt = _form().get("version", ""), runtime()
    if not version:
        return _remove_page(goal, "version: missing; open the goal and remove it from there", 400)
    try:
        removed = goals_mod.remove(
            rt.redis, rt.keys, goal.id, actor=g.staff.email, expected=version
        )
    except goals_mod.GoalConflict as exc:
        # The page now shows their version: removing it after all is a second, informed click.
        return _remove_page(exc.current, f"{exc} (as shown now): look again before removing", 409)
    except goals_mod.GoalError as exc:
        return _remove_page(goal, str(exc), 400)
    if not removed:
        return _not_found(goal_id)
    return redirect(url_for("staff.goals", removed=goal.id), 303)


def _remove_page(goal: goals_mod.Goal, error: str | None = None, status: int = 200):
    version = goals_mod.version_of(goal)
    return _render("staff/goals_remove.html", status, goal=goal, version=version, error=error)


# --- JSON: /staff/api/goals -------------------------------------------------------------
def _answer(description: str, schema: dict | None = None) -> dict:
    schema = schema or {"$ref": "#/components/schemas/Error"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_TEMPLATE = {
    "oneOf": [
        {"type": "string", "maxLength": 300},
        {
            "type": "object",
            "description": "One text per plural form (en: one, other; uk: one, few, many, other)",
            "additionalProperties": {"type": "string", "maxLength": 300},
        },
    ]
}
_COPY = {
    "type": "object",
    "description": "Per locale (en, uk), per field (headline, message, thanks, cta): the text "
    "shown while this goal is the banner's; placeholders {count} {goal} {remaining} "
    "{publication} as each field allows (see `membership goals add --help`).",
    "additionalProperties": {"type": "object", "additionalProperties": _TEMPLATE},
}
_GOAL_INPUT = {
    "type": "object",
    "required": ["target"],
    "additionalProperties": False,
    "properties": {
        "target": {"type": "integer", "minimum": 1, "maximum": goals_mod.MAX_TARGET},
        "deadline": {"type": ["string", "null"], "format": "date"},
        "name": {"type": ["string", "null"], "maxLength": goals_mod.MAX_NAME},
        "copy": _COPY,
    },
}
_GOAL = {
    "type": "object",
    "required": ["id", "target", "deadline", "name", "copy", "created_at", "reached_at", "version"],
    "properties": {
        "id": {"type": "integer", "minimum": 1},
        "target": {"type": "integer"},
        "deadline": {"type": ["string", "null"]},
        "name": {"type": ["string", "null"]},
        "copy": _COPY,
        "created_at": {"type": ["string", "null"]},
        "reached_at": {"type": ["string", "null"]},
        "version": {
            "type": "string",
            "description": "Digest of the goal's fields: send it back with a change (409 "
            "when the goal changed since)",
        },
        "state": {"enum": ["current", "milestone", "reached", "upcoming"]},
    },
}
_COMMON = {
    "401": _answer("No valid token or session"),
    "403": _answer("Above the caller's role (changes need editor)"),
}
_INVALID = _answer(
    "Bad input: `error.field` names the first bad field, `error.fields` every one (each bad "
    "template by its path, e.g. copy.uk.message.few)"
)
_CONFLICT = _answer("The goal changed since `version`; `error.current` is the goal as it is now")
_GOAL_ID = {
    "name": "goal_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[1-9][0-9]{0,11}$"},
}
_SECURITY = [{"staffToken": []}]

OPENAPI = {
    "/staff/api/goals": {
        "get": {
            "summary": "Every goal by target, with its state and version, and the live count",
            "security": _SECURITY,
            "responses": {
                "200": _answer(
                    "The goals",
                    {
                        "type": "object",
                        "required": ["count", "goals"],
                        "properties": {
                            "count": {"type": ["integer", "null"]},
                            "goals": {"type": "array", "items": _GOAL},
                        },
                    },
                ),
                **_COMMON,
            },
        },
        "post": {
            "summary": "Add a goal (editor; audited as goal_added), as `membership goals add`",
            "security": _SECURITY,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _GOAL_INPUT}},
            },
            "responses": {"201": _answer("The goal", _GOAL), "400": _INVALID, **_COMMON},
        },
    },
    "/staff/api/goals/preview": {
        "post": {
            "summary": "The banner in each locale were this goal saved; nothing is stored",
            "description": "Any role. The same view model as /v1/banner, over the stored goals "
            "with this one added (or replacing goal `id`), at `count` members (default: the "
            "live count). Also takes the dashboard form's fields, form-encoded.",
            "security": _SECURITY,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            **_GOAL_INPUT,
                            "properties": {
                                **_GOAL_INPUT["properties"],
                                "id": {"type": "integer", "minimum": 1},
                                "count": {"type": "integer", "minimum": 0},
                            },
                        }
                    },
                    "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
                },
            },
            "responses": {
                "200": _answer(
                    "The banner per locale",
                    {
                        "type": "object",
                        "required": ["count", "shows_this_goal", "shown_goal", "banner"],
                        "properties": {
                            "count": {"type": "integer"},
                            "shows_this_goal": {"type": "boolean"},
                            "shown_goal": {"type": ["object", "null"]},
                            "banner": {
                                "type": "object",
                                "additionalProperties": {"$ref": "#/components/schemas/Banner"},
                            },
                        },
                    },
                ),
                "400": _INVALID,
                "404": _answer("No goal with that id"),
                "401": _COMMON["401"],
            },
        }
    },
    "/staff/api/goals/{goal_id}": {
        "get": {
            "summary": "One goal",
            "parameters": [_GOAL_ID],
            "security": _SECURITY,
            "responses": {
                "200": _answer("The goal", _GOAL),
                "404": _answer("No goal with that id"),
                **_COMMON,
            },
        },
        "put": {
            "summary": "Change a goal (editor; audited as goal_changed, before and after)",
            "parameters": [_GOAL_ID],
            "description": "The whole goal as for POST, plus the `version` it is based on. "
            "Its id and creation time stay; reached stays reached while the target is the "
            "same, and a new target is reached or not by the count.",
            "security": _SECURITY,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            **_GOAL_INPUT,
                            "required": ["target", "version"],
                            "properties": {
                                **_GOAL_INPUT["properties"],
                                "version": {"type": "string"},
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": _answer("The goal as saved", _GOAL),
                "400": _INVALID,
                "404": _answer("No goal with that id"),
                "409": _CONFLICT,
                **_COMMON,
            },
        },
        "delete": {
            "summary": "Remove a goal (editor; audited as goal_removed)",
            "security": _SECURITY,
            "parameters": [
                _GOAL_ID,
                {
                    "name": "version",
                    "in": "query",
                    "required": False,
                    "description": "Remove only if the goal is still this version (else 409)",
                    "schema": {"type": "string"},
                },
            ],
            "responses": {
                "204": {"description": "Removed"},
                "404": _answer("No goal with that id"),
                "409": _CONFLICT,
                "503": _answer("The goals kept changing, or a stored value is corrupt"),
                **_COMMON,
            },
        },
    },
}


def _api_error(status: int, code: str, message: str, **extra):
    response = jsonify(error={"code": code, "message": message, **extra})
    response.status_code = status
    return response


def _api_invalid(exc: goals_mod.GoalError):
    errors = errors_of(exc)
    return _api_error(400, "invalid_goal", str(exc), field=next(iter(errors)), fields=errors)


def _api_goal(goal: goals_mod.Goal, state: str | None = None) -> dict:
    body = {**goal.as_dict(), "version": goals_mod.version_of(goal)}
    return body if state is None else {**body, "state": state}


def _json_body() -> dict | None:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else None


def _not_an_object():
    return _api_error(400, "invalid_body", "body: expected a JSON object", field="body")


def _api_unknown(raw_id):
    return _api_error(404, "not_found", f"no goal with id {str(raw_id)[:40]}")


@bp.get("/api/goals")
@requires("viewer")
def api_goals():
    rt = runtime()
    stored, live = goals_mod.load(rt.redis, rt.keys), _live_count()
    state = goals_mod.states(stored, live or 0)
    return jsonify(count=live, goals=[_api_goal(s, state[s.id]) for s in stored])


@bp.post("/api/goals")
@requires("editor")
def api_goals_add():
    body, rt = _json_body(), runtime()
    if body is None:
        return _not_an_object()
    try:
        goal = goals_mod.add(rt.redis, rt.keys, goals_mod.parse_goal(body), actor=g.staff.email)
    except goals_mod.GoalError as exc:
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
        form = _form()
        goal_id, data, count = form.get("id") or None, goal_data(form), form.get("preview_count")
    old = None
    if goal_id is not None:
        old = _find(goal_id)
        if old is None:
            return _api_unknown(goal_id)
    preview, errors = _preview(old, data, count)
    if errors:
        if request.is_json and "preview_count" in errors:  # JSON calls it count
            errors = {"count": errors.pop("preview_count"), **errors}
        name, message = next(iter(errors.items()))
        return _api_error(400, "invalid_goal", f"{name}: {message}", field=name, fields=errors)
    return jsonify(preview.as_json())


@bp.get("/api/goals/<goal_id>")
@requires("viewer")
def api_goal(goal_id):
    goal = _find(goal_id)
    if goal is None:
        return _api_unknown(goal_id)
    return jsonify(_api_goal(goal))


@bp.put("/api/goals/<goal_id>")
@requires("editor")
def api_goal_save(goal_id):
    goal, body, rt = _find(goal_id), _json_body(), runtime()
    if goal is None:
        return _api_unknown(goal_id)
    if body is None:
        return _not_an_object()
    version = body.pop("version", None)
    if not isinstance(version, str) or not version:
        message = "version: required; the version of the goal this edit is based on"
        return _api_error(400, "invalid_goal", message, field="version")
    try:
        new = goals_mod.parse_goal(body, keep_deadline=goal.deadline)
        saved = goals_mod.update(
            rt.redis, rt.keys, goal.id, new, expected=version, actor=g.staff.email
        )
    except goals_mod.GoalConflict as exc:
        return _api_error(
            409, "conflict", str(exc), field="version", current=_api_goal(exc.current)
        )
    except goals_mod.GoalError as exc:
        return _api_invalid(exc)
    if saved is None:
        return _api_unknown(goal_id)
    return jsonify(_api_goal(saved))


@bp.delete("/api/goals/<goal_id>")
@requires("editor")
def api_goal_remove(goal_id):
    goal_id_ = _goal_id(goal_id)
    version = request.args.get("version") or None
    rt = runtime()
    try:
        removed = goal_id_ is not None and goals_mod.remove(
            rt.redis, rt.keys, goal_id_, actor=g.staff.email, expected=version
        )
    except goals_mod.GoalConflict as exc:
        return _api_error(
            409, "conflict", str(exc), field="version", current=_api_goal(exc.current)
        )
    except goals_mod.GoalError as exc:
        return _api_error(503, "unavailable", str(exc))
    if not removed:
        return _api_unknown(goal_id)
    return "", 204
