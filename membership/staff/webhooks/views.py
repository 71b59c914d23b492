"""Staff pages: Webhooks, and their JSON twin under /staff/api/webhooks/. The event log by
outcome and type (50 a page by cursor), an event's page (payload, outcome, error), replaying
one event or every failed one (editors; audited whatever comes of it: stripe/replay.py, as
`membership events replay`), and when Stripe last sent an event.
"""

from __future__ import annotations

import time

from flask import Blueprint, g, jsonify, render_template, request, url_for

from membership.core.runtime import runtime
from membership.ledger import ledger_for
from membership.ledger.model import LedgerInputError
from membership.staff.access.guard import api_error, refuse, requires
from membership.staff.webhooks import model
from membership.stripe.replay import UnknownEvent, replay, replay_failed

bp = Blueprint("webhooks", __name__)
PAGE = 50
GONE = "no such event (unknown id, or its record has expired)"


def _events():
    return ledger_for(runtime()).events


def _listing(filters: model.Filters) -> tuple[list[dict], str | None]:
    if filters.errors:
        return [], None
    found, cursor = _events().page(
        outcome=filters.outcome or None, type_=filters.type, cursor=filters.cursor, limit=PAGE
    )
    return [model.row(entry) for entry in found], cursor


def _freshness() -> model.Freshness:
    return model.freshness(_events().last_received(), time.time())


def _list_page(filters: model.Filters, *, notice=None, replayed=None, status=200):
    rows, next_cursor = _listing(filters)
    page = render_template(
        "staff/webhooks.html",
        filters=filters,
        rows=rows,
        next_url=url_for("staff.webhooks.webhooks", **filters.query(cursor=next_cursor))
        if next_cursor
        else None,
        first_url=url_for("staff.webhooks.webhooks", **filters.query(cursor="")),
        outcomes=model.OUTCOMES,
        known_types=model.KNOWN_TYPES,
        fresh=_freshness(),
        ago=model.ago,
        failed=_events().failed_count(),
        notice=notice,
        replayed=replayed,
    )
    return page, 400 if filters.errors else status


@bp.get("/webhooks")
@requires("viewer")
def webhooks():
    return _list_page(model.read_filters(request.args))


def _record(event_id: str):
    return _events().record(event_id) if model.valid_event_id(event_id) else None


def _replay(event_id: str):
    """What came of replaying the event; None for an unknown id (or an expired record)."""
    if not model.valid_event_id(event_id):
        return None
    try:
        return replay(ledger_for(runtime()), event_id, actor=g.staff.email)
    except UnknownEvent:
        return None


def _event_page(event_id: str, *, replayed=None):
    record = _record(event_id)
    if record is None:
        return refuse(404, GONE)
    page = render_template(
        "staff/webhook_event.html",
        event=model.event_view(record),
        replayed=replayed,
    )
    return page, 200


@bp.get("/webhooks/events/<event_id>")
@requires("viewer")
def webhook_event(event_id: str):
    return _event_page(event_id)


@bp.post("/webhooks/events/<event_id>/replay")
@requires("editor")
def webhook_replay(event_id: str):
    result = _replay(event_id)
    return refuse(404, GONE) if result is None else _event_page(event_id, replayed=result)


@bp.post("/webhooks/replay-failed")
@requires("editor")
def webhook_replay_failed():
    results, remaining = replay_failed(ledger_for(runtime()), actor=g.staff.email)
    applied = sum(r.succeeded for r in results)
    if not results:
        notice = "No failed events to replay."
    else:
        notice = f"Replayed {len(results)}: {applied} dealt with, {len(results) - applied} not."
        if remaining:
            notice += f" {remaining} more wait: replay again."
    return _list_page(model.Filters(outcome="failed"), notice=notice, replayed=results)


# --- JSON: /staff/api/webhooks/ ------------------------------------------------------


def _bad_request(message: str):
    return api_error(400, "bad_request", message, field=message.partition(":")[0])


def _not_found():
    return api_error(404, "not_found", GONE)


@bp.get("/api/webhooks/events")
@requires("viewer")
def api_webhook_events():
    filters = model.read_filters(request.args)
    if filters.errors:
        return _bad_request(next(iter(filters.errors.values())))
    try:
        rows, next_cursor = _listing(filters)
    except LedgerInputError as exc:
        return _bad_request(str(exc))
    for row in rows:
        del row["error_short"]
    return jsonify(
        events=rows,
        next_cursor=next_cursor,
        failed=_events().failed_count(),
        **_freshness().as_dict(),
    )


@bp.get("/api/webhooks/events/<event_id>")
@requires("viewer")
def api_webhook_event(event_id: str):
    record = _record(event_id)
    if record is None:
        return _not_found()
    view = model.event_view(record)
    del view["payload_pretty"]
    return jsonify(view)


@bp.post("/api/webhooks/events/<event_id>/replay")
@requires("editor")
def api_webhook_replay(event_id: str):
    result = _replay(event_id)
    return _not_found() if result is None else jsonify(result.as_dict())


@bp.post("/api/webhooks/replay-failed")
@requires("editor")
def api_webhook_replay_failed():
    results, remaining = replay_failed(ledger_for(runtime()), actor=g.staff.email)
    return jsonify(results=[r.as_dict() for r in results], remaining=remaining)
