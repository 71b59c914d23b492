"""The campaigns' JSON under /staff/api/campaigns: the pages' data and actions for scripts,
with the same roles (viewers read; editors and admins change) and the same service
functions (membership.prompts.store, audited with the caller's email).

A campaign's `version` (also its ETag) is what `PUT` may send back as `If-Match`: a PUT
over a newer version is 409, as the form's second save is.
"""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from membership.core.errors import ApiError
from membership.core.runtime import runtime
from membership.http.bodies import json_body
from membership.prompts import counts, store
from membership.prompts.campaigns import CampaignError, every_problem, parse, to_json
from membership.staff.access.guard import requires
from membership.staff.campaigns import preview as campaign_preview
from membership.staff.campaigns import reads as campaign_reads

bp = Blueprint("api", __name__)

MAX_BODY = 256 * 1024
MAX_RESULT_DAYS = 400


def _campaign(campaign_id: str):
    rt = runtime()
    try:
        found = store.get_versioned(rt.redis, rt.keys, campaign_id)
    except store.CampaignStoreError as exc:
        raise ApiError(409, "corrupt", str(exc)) from None
    if found is None:
        raise ApiError(404, "not_found", f"no campaign {campaign_id[:64]!r}")
    return found


def _document(expected_id: str | None = None):
    data = json_body(MAX_BODY)
    try:
        parsed = parse(data)
    except CampaignError:
        raise ApiError(400, "invalid_campaign", "; ".join(every_problem(data)[:20])) from None
    if expected_id is not None and parsed.id != expected_id:
        raise ApiError(400, "invalid_campaign", f"id: expected {expected_id!r}, as in the path")
    return parsed


def _apply(parsed, based_on):
    rt = runtime()
    try:
        ((_, outcome),) = store.apply(
            rt.redis, rt.keys, [parsed], actor=g.staff.email, based_on=based_on
        )
    except store.CampaignConflict as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    except store.CampaignStoreError as exc:
        raise ApiError(409, "refused", str(exc)) from None
    _, version = store.get_versioned(rt.redis, rt.keys, parsed.id)
    return outcome, version


def _answer(campaign, version: str, status: int = 200, **extra):
    response = jsonify(campaign=to_json(campaign), version=version, **extra)
    response.status_code = status
    response.set_etag(version)
    return response


@bp.get("/api/campaigns")
@requires("viewer")
def api_campaigns():
    rt = runtime()
    listing = campaign_reads.listing(rt.redis, rt.keys)
    rows = [
        {
            **to_json(r.campaign),
            "views": r.views,
            "readers": r.readers,
            "conversions": r.conversions,
            "conversion_rate": r.conversion_rate,
        }
        for r in listing.active
    ]
    rows += [to_json(c) for c in listing.archived]
    return jsonify(campaigns=rows, corrupt=listing.corrupt)


@bp.post("/api/campaigns")
@requires("editor")
def api_campaign_create():
    parsed = _document()
    _, version = _apply(parsed, {parsed.id: None})
    return _answer(parsed, version, 201)


@bp.get("/api/campaigns/<campaign_id>")
@requires("viewer")
def api_campaign(campaign_id: str):
    c, version = _campaign(campaign_id)
    return _answer(c, version)


@bp.put("/api/campaigns/<campaign_id>")
@requires("editor")
def api_campaign_put(campaign_id: str):
    parsed = _document(campaign_id)
    match = request.if_match
    based_on = None
    if match and not match.star_tag:
        tags = list(match.as_set())
        if len(tags) != 1:
            raise ApiError(400, "invalid_header", "If-Match: expected one version")
        based_on = {parsed.id: tags[0]}
    outcome, version = _apply(parsed, based_on)
    return _answer(parsed, version, 201 if outcome == "created" else 200, outcome=outcome)


def _change(campaign_id: str, change, *args):
    """`change(redis, keys, campaign_id, *args, actor=...)` in the store: 404 unknown, 409
    refused."""
    rt = runtime()
    try:
        return change(rt.redis, rt.keys, campaign_id, *args, actor=g.staff.email)
    except store.CampaignNotFound:
        raise ApiError(404, "not_found", f"no campaign {campaign_id[:64]!r}") from None
    except store.CampaignStoreError as exc:
        raise ApiError(409, "refused", str(exc)) from None


def _status_view(action: str):
    @requires("editor")
    def view(campaign_id: str):
        before, after = _change(campaign_id, store.set_status, action)
        return jsonify(campaign=campaign_id, before=before, after=after)

    view.__name__ = f"api_campaign_{action}"
    bp.add_url_rule(f"/api/campaigns/<campaign_id>/{action}", view_func=view, methods=["POST"])


for _action in store.ACTIONS:
    _status_view(_action)


@bp.post("/api/campaigns/<campaign_id>/duplicate")
@requires("editor")
def api_campaign_duplicate(campaign_id: str):
    copy = _change(campaign_id, store.duplicate)
    rt = runtime()
    _, version = store.get_versioned(rt.redis, rt.keys, copy.id)
    return _answer(copy, version, 201)


@bp.post("/api/campaigns/<campaign_id>/move")
@requires("editor")
def api_campaign_move(campaign_id: str):
    body = json_body(4096)
    direction = body.get("direction") if isinstance(body, dict) else None
    offset = {"up": -1, "down": 1}.get(direction if isinstance(direction, str) else "")
    if offset is None:
        raise ApiError(400, "invalid_request", "direction: expected up or down")
    changed = _change(campaign_id, store.move, offset)
    rt = runtime()
    order = [c.id for c in store.read(rt.redis, rt.keys).campaigns if c.status != "archived"]
    return jsonify(changed=changed, order=order)


@bp.get("/api/campaigns/<campaign_id>/results")
@requires("viewer")
def api_campaign_results(campaign_id: str):
    raw = request.args.get("days", "0")
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 3 and int(raw) <= MAX_RESULT_DAYS):
        raise ApiError(
            400, "invalid_query", f"days: expected a whole number from 0 to {MAX_RESULT_DAYS}"
        )
    c, _ = _campaign(campaign_id)
    rt = runtime()
    try:
        data = campaign_reads.campaign_results(rt.redis, rt.keys, c, int(raw))
    except counts.CorruptCounts as exc:
        raise ApiError(409, "corrupt", f"a stored prompt counter is corrupt: {exc}") from None
    return jsonify(data)


def _previews(campaign):
    shown = campaign_preview.previews_now(campaign, runtime().settings)
    fields = ("variant", "locale", "placement", "prompt")
    rows = [{**{f: getattr(p, f) for f in fields}, "missing": list(p.missing)} for p in shown]
    return jsonify(campaign=campaign.id, previews=rows)


@bp.get("/api/campaigns/<campaign_id>/preview")
@requires("viewer")
def api_campaign_preview(campaign_id: str):
    c, _ = _campaign(campaign_id)
    return _previews(c)


@bp.post("/api/campaigns/preview")
@requires("viewer")
def api_campaign_preview_draft():
    """A document not saved (yet): anyone signed in may preview; nothing is written."""
    return _previews(_document())
