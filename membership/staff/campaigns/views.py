"""Staff pages: prompt campaigns, their form and JSON editor, previews and results.

One campaign's pages are under /staff/campaign/ (singular) so that no campaign id, "new"
included, is shadowed by a page of the list. Viewers read everything; editors and admins
change. Every change goes through membership.prompts.store (audited there with the staff
member's email); a save carries the version the form was opened at, and a save over a
newer version is refused with 409, keeping what was typed on the page.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from functools import partial

from flask import (
    Blueprint,
    Response,
    abort,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)

from membership.core import audit
from membership.core.config import SUPPORTED_LOCALES
from membership.core.runtime import runtime
from membership.prompts import counts, store
from membership.prompts.campaigns import (
    PLACEMENTS,
    READERS,
    STATUSES,
    Campaign,
    CampaignError,
    every_problem,
    parse,
    to_json,
)
from membership.staff import format as staff_format
from membership.staff.access import guard
from membership.staff.access.guard import requires
from membership.staff.campaigns import api
from membership.staff.campaigns import form as form_
from membership.staff.campaigns import preview as campaign_preview
from membership.staff.campaigns import reads as campaign_reads
from membership.staff.goals.form import plural_examples
from membership.staff.overview import charts

bp = Blueprint("campaigns", __name__)
bp.register_blueprint(api.bp)

SLUG_ARG = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
MAX_JSON = 256 * 1024  # characters of the JSON view's textarea read at most
NEW_CAMPAIGN = {
    "id": "",
    "name": "",
    "status": "draft",
    "priority": 100,
    "starts_at": None,
    "ends_at": None,
    "placement": "inline",
    "locales": None,
    "audience": {"readers": "non-members"},
    "frequency": {"per_days": 30, "min_hours_between": 0, "after_dismiss_days": 7},
    "control_share": 0.1,
    "gate": None,
    "variants": [{"id": "a", "weight": 1, "copy": {}, "cta_url": None}],
}
# What a redirect after a change says on the page it lands on (never text from the URL).
DONE = {
    "paused": "Paused.",
    "resumed": "Live again.",
    "archived": "Archived.",
    "already": "Nothing to change: it already is so.",
    "moved": "Moved.",
    "unmoved": "It cannot move further that way.",
    "duplicated": "Copied as a draft: change what differs and make it live.",
    "saved": "Saved.",
    "unchanged": "Saved: nothing had changed.",
}
CONFLICT = (
    "Someone else saved this campaign after you opened it, so your changes were not saved "
    "(they are still in the form below). Open the current version, then make your "
    "changes again."
)
LAST_CHANGE_LOOKBACK = 200  # audit entries read to say who saved last (on a conflict only)


def _done() -> str | None:
    return DONE.get(request.args.get("done", ""))


def _find(campaign_id: str) -> tuple[Campaign, str] | None:
    """A stored campaign and its version; None for an unknown (or impossible) id."""
    if not SLUG_ARG.fullmatch(campaign_id):
        return None
    rt = runtime()
    return store.get_versioned(rt.redis, rt.keys, campaign_id)


def _end(page) -> None:
    abort(make_response(page))


def _existing(campaign_id: str) -> tuple[Campaign, str]:
    """The stored campaign and its version; else the request ends with the page that says
    why (404 unknown, 409 unreadable)."""
    try:
        found = _find(campaign_id)
    except store.CampaignStoreError as exc:
        _end(guard.refuse(409, str(exc)))
    if found is None:
        _end(_not_found(campaign_id))
    return found


def _not_found(campaign_id: str):
    return guard.refuse(404, f"No campaign {campaign_id[:64]!r}.")


def _to_campaign(campaign_id: str, done: str, endpoint: str = "campaign"):
    return redirect(url_for(f"staff.campaigns.{endpoint}", campaign_id=campaign_id, done=done), 303)


# --- the list and one campaign ---------------------------------------------------------------
@bp.get("/campaigns")
@requires("viewer")
def campaigns():
    return _list_page()


def _list_page(error: str | None = None, status: int = 200):
    rt = runtime()
    done = _done()
    page = render_template(
        "staff/campaigns.html",
        listing=campaign_reads.listing(rt.redis, rt.keys),
        error=error,
        notice=done if error is None else None,
        changed=request.args.get("id", "") if done else "",
        percent=charts.percent,
    )
    return page, status


@bp.get("/campaigns/prompt.css")
@requires("viewer")
def campaign_prompt_css():
    return Response(campaign_preview.widget_css(), content_type="text/css; charset=utf-8")


@bp.get("/campaign/<campaign_id>")
@requires("viewer")
def campaign(campaign_id: str):
    c, _ = _existing(campaign_id)
    doc = json.dumps(to_json(c), ensure_ascii=False, indent=2)
    return render_template("staff/campaign.html", c=c, doc=doc, notice=_done())


def _change(campaign_id: str, change: Callable, *args):
    """`change(redis, keys, campaign_id, *args, actor=...)` in the store; else the request
    ends with the page that says why (404 unknown, 409 refused, on the list)."""
    if not SLUG_ARG.fullmatch(campaign_id):
        _end(_not_found(campaign_id))
    rt = runtime()
    try:
        return change(rt.redis, rt.keys, campaign_id, *args, actor=g.staff.email)
    except store.CampaignNotFound:
        _end(_not_found(campaign_id))
    except store.CampaignStoreError as exc:
        _end(_list_page(str(exc), 409))


@bp.post("/campaign/<campaign_id>/status")
@requires("editor")
def campaign_status(campaign_id: str):
    action = request.form.get("action", "")
    if action not in store.ACTIONS:
        return _list_page(f"action: expected one of {', '.join(store.ACTIONS)}", 400)
    before, after = _change(campaign_id, store.set_status, action)
    done = {"pause": "paused", "resume": "resumed"}.get(action, "archived")
    done = "already" if before == after else done
    if request.form.get("from") == "campaign":  # back where the button was
        return _to_campaign(campaign_id, done)
    return redirect(url_for("staff.campaigns.campaigns", done=done, id=campaign_id), 303)


@bp.post("/campaign/<campaign_id>/duplicate")
@requires("editor")
def campaign_duplicate(campaign_id: str):
    copy = _change(campaign_id, store.duplicate)
    return _to_campaign(copy.id, "duplicated", "campaign_edit")


@bp.post("/campaign/<campaign_id>/move")
@requires("editor")
def campaign_move(campaign_id: str):
    offset = {"up": -1, "down": 1}.get(request.form.get("direction", ""))
    if offset is None:
        return _list_page("direction: expected up or down", 400)
    done = "moved" if _change(campaign_id, store.move, offset) else "unmoved"
    target = url_for("staff.campaigns.campaigns", done=done, id=campaign_id)
    return redirect(f"{target}#row-{campaign_id}", 303)


# --- the form ----------------------------------------------------------------------------
def newsroom_zone() -> dt.tzinfo:
    """The newsroom's time zone (the `TIMEZONE` setting, UTC by default), in which the form
    shows and reads times."""
    return staff_format.zone(runtime().settings.timezone)


def _form_page(
    values: dict,
    *,
    campaign_id: str | None,
    based_on: str,
    errors: list[str] = (),
    status: int = 200,
    conflict: str | None = None,
    preview: list | None = None,
):
    zone = newsroom_zone()
    page = render_template(
        "staff/campaign_edit.html",
        values=values,
        campaign_id=campaign_id,
        based_on=based_on,
        errors=form_.place_errors(errors, form_.field_names(values), values),
        conflict=conflict,
        variant_count=len(form_.variant_indexes(values)),
        field_id=form_.field_id,
        definition=form_.definition,
        variant_name=form_.variant_name,
        copy_labels=form_.COPY_LABELS,
        plural_forms=form_.plural_forms,
        plural_examples=plural_examples,
        zone_name=str(getattr(zone, "key", None) or zone),
        statuses=STATUSES,
        placements=PLACEMENTS,
        readers=READERS,
        previews=preview,
        notice=_done(),
        **_preview_words(),
    )
    return page, status


def _preview_words() -> dict:
    return {
        "locales": SUPPORTED_LOCALES,
        "locale_names": form_.LOCALE_NAMES,
        "words": campaign_preview.WIDGET_WORDS,
    }


@bp.get("/campaigns/new")
@requires("editor")
def campaign_new():
    return _form_page(form_.to_form(NEW_CAMPAIGN, newsroom_zone()), campaign_id=None, based_on="")


@bp.get("/campaign/<campaign_id>/edit")
@requires("editor")
def campaign_edit(campaign_id: str):
    c, version = _existing(campaign_id)
    values = form_.to_form(to_json(c), newsroom_zone())
    return _form_page(values, campaign_id=c.id, based_on=version)


@bp.post("/campaigns/new")
@requires("editor")
def campaign_create():
    return _form_post(None)


@bp.post("/campaign/<campaign_id>/edit")
@requires("editor")
def campaign_save(campaign_id: str):
    _existing(campaign_id)
    return _form_post(campaign_id)


def _form_post(campaign_id: str | None):
    """Save, preview, add or remove a variant row: without JavaScript, each is a submit
    button of the one form; only "save" writes."""
    posted = request.form
    values = form_.form_values(posted)
    if campaign_id is not None:
        values["id"] = campaign_id
    based_on = posted.get("based_on", "")[:64]
    page = partial(_form_page, campaign_id=campaign_id, based_on=based_on)
    action, remove = posted.get("action", "save"), posted.get("remove", "")
    count = len(form_.variant_indexes(values))
    if remove:
        if not (remove.isascii() and remove.isdigit() and len(remove) <= 3):
            return page(values, errors=["remove: expected a variant's row number"], status=400)
        return page(form_.without_variant(values, int(remove)))
    if action == "add_variant":
        if count >= form_.MAX_VARIANTS:
            problem = f"variants: at most {form_.MAX_VARIANTS} variants"
            return page(values, errors=[problem], status=400)
        return page(form_.with_new_variant(values, count))
    if action not in ("save", "preview"):
        problem = "action: expected save, preview or add_variant"
        return page(values, errors=[problem], status=400)
    parsed, problems = _read_form(posted, campaign_id)
    if parsed is None:
        return page(values, errors=problems, status=400)
    if action == "preview":
        return page(values, preview=campaign_preview.previews_now(parsed, runtime().settings))
    return _save(parsed, based_on or None, campaign_id, partial(page, values))


@bp.post("/campaigns/preview")
@requires("viewer")  # previewing stores nothing
def campaign_form_preview():
    """The previews of the form as it is now, as HTML to put beside it (campaign.js asks as
    the editor types); a document that does not parse yet is a 400 naming its fields."""
    posted = request.form
    values = form_.form_values(posted)
    # An edited campaign's id is no field, and a new one's may not be typed yet.
    parsed, lines = _read_form(posted, posted.get("id", "").strip() or "preview")
    if parsed is None:
        problems = form_.place_errors(lines, form_.field_names(values), values)
        page = render_template("staff/campaign_previews.html", problems=problems)
        return page, 400
    previews = campaign_preview.previews_now(parsed, runtime().settings)
    return render_template("staff/campaign_previews.html", previews=previews, **_preview_words())


def _read_form(posted, campaign_id: str | None) -> tuple[Campaign | None, list[str]]:
    """The campaign a posted form describes, or None and the problems naming its fields
    (a time in the hour the newsroom's clocks skip is one)."""
    zone = newsroom_zone()
    doc = form_.from_form(posted, campaign_id, zone)
    problems = form_.skipped_times(posted, zone)
    try:
        parsed = parse(doc)
    except CampaignError:
        return None, problems + every_problem(doc)
    return (None, problems) if problems else (parsed, [])


def _save(parsed: Campaign, based_on: str | None, campaign_id: str | None, page):
    """Store the campaign (`campaign_id`: the one edited, else a new one) and go to its
    page; a refusal (a conflict, a store error) is `page(status=409, conflict=why)`."""
    rt = runtime()
    try:
        ((_, outcome),) = store.apply(
            rt.redis, rt.keys, [parsed], actor=g.staff.email, based_on={parsed.id: based_on}
        )
    except store.CampaignConflict as exc:
        if exc.based_on is None and campaign_id is None:
            taken = f"A campaign with the id {parsed.id!r} exists already: choose another id."
            return page(status=409, conflict=taken)
        return page(status=409, conflict=CONFLICT + _last_change(parsed.id))
    except store.CampaignStoreError as exc:
        return page(status=409, conflict=str(exc))
    return _to_campaign(parsed.id, "unchanged" if outcome == "unchanged" else "saved")


def _last_change(campaign_id: str) -> str:
    """ " (Last saved by ... at ... UTC.)" from the newest audit entries, if it is among them."""
    rt = runtime()
    target = f"campaign {campaign_id}"
    for entry in audit.entries(rt.redis, rt.keys, limit=LAST_CHANGE_LOOKBACK):
        if entry.get("target") == target:
            return f" (Last saved by {entry['actor']} at {entry['at']}.)"
    return ""


# --- the JSON view ----------------------------------------------------------------------------
def _json_page(
    text: str,
    *,
    campaign_id: str | None,
    based_on: str,
    errors: list[str] = (),
    status: int = 200,
    conflict: str | None = None,
):
    page = render_template(
        "staff/campaign_json.html",
        text=text,
        campaign_id=campaign_id,
        based_on=based_on,
        errors=errors,
        conflict=conflict,
    )
    return page, status


@bp.get("/campaigns/new/json")
@requires("editor")
def campaign_new_json():
    text = json.dumps(NEW_CAMPAIGN, ensure_ascii=False, indent=2)
    return _json_page(text, campaign_id=None, based_on="")


@bp.get("/campaign/<campaign_id>/json")
@requires("editor")
def campaign_json(campaign_id: str):
    try:
        found = _find(campaign_id)
    except store.CorruptCampaigns as exc:
        # Shown as stored, to be mended here: saving replaces it (apply may).
        rt = runtime()
        raw = rt.redis.hget(rt.keys.campaigns, campaign_id) or ""
        problems = [f"stored campaign: {why}" for why in exc.problems.values()]
        return _json_page(
            raw, campaign_id=campaign_id, based_on=store.version_of(raw), errors=problems
        )
    if found is None:
        return _not_found(campaign_id)
    c, version = found
    text = json.dumps(to_json(c), ensure_ascii=False, indent=2)
    return _json_page(text, campaign_id=c.id, based_on=version)


@bp.post("/campaigns/new/json")
@requires("editor")
def campaign_create_json():
    return _json_post(None)


@bp.post("/campaign/<campaign_id>/json")
@requires("editor")
def campaign_save_json(campaign_id: str):
    try:
        found = _find(campaign_id)
    except store.CorruptCampaigns:
        found = True  # stored but unreadable: saving a valid document mends it
    if found is None:
        return _not_found(campaign_id)
    return _json_post(campaign_id)


def _json_post(campaign_id: str | None):
    text = request.form.get("document", "")[:MAX_JSON]
    based_on = request.form.get("based_on", "")[:64]
    page = partial(_json_page, text, campaign_id=campaign_id, based_on=based_on)
    try:
        data = json.loads(text)
    except ValueError as exc:
        return page(errors=[f"document: not JSON ({exc})"], status=400)
    if campaign_id is not None and isinstance(data, dict) and data.get("id") != campaign_id:
        problem = f"id: this page edits {campaign_id!r}; use duplicate for a new id"
        return page(errors=[problem], status=400)
    try:
        parsed = parse(data)
    except CampaignError:
        return page(errors=every_problem(data), status=400)
    return _save(parsed, based_on or None, campaign_id, page)


# --- preview and results ---------------------------------------------------------------------
@bp.get("/campaign/<campaign_id>/preview")
@requires("viewer")
def campaign_preview_page(campaign_id: str):
    c, _ = _existing(campaign_id)
    return render_template(
        "staff/campaign_preview.html",
        c=c,
        previews=campaign_preview.previews_now(c, runtime().settings),
        articles=campaign_preview.sample_articles(c),
        **_preview_words(),
    )


@bp.get("/campaign/<campaign_id>/results")
@requires("viewer")
def campaign_results(campaign_id: str):
    try:
        days = campaign_reads.parse_days(request.args.get("days"))
        found = _find(campaign_id)
    except ValueError as exc:  # a bad `days`, or a corrupt stored campaign
        return guard.refuse(400 if not isinstance(exc, store.CampaignStoreError) else 409, str(exc))
    if found is None:
        return _not_found(campaign_id)
    c, _ = found
    rt = runtime()
    try:
        data = campaign_reads.campaign_results(rt.redis, rt.keys, c, days)
    except counts.CorruptCounts as exc:
        return guard.refuse(409, f"a stored prompt counter is corrupt: {exc}")
    return render_template(
        "staff/campaign_results.html",
        c=c,
        data=data,
        chart=charts.results_chart(data, chart_id=f"results-{c.id}"),
        days=days,
        periods=campaign_reads.RESULT_PERIODS,
        percent=charts.percent,
    )
