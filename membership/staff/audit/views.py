"""Staff page: the audit log (every staff change, newest first), for every role."""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import urlencode

from flask import Blueprint, render_template, request, url_for

from membership.core import audit
from membership.core.runtime import runtime
from membership.staff.access.guard import requires
from membership.staff.forms import MAX_FIELD

bp = Blueprint("audit", __name__)

AUDIT_PAGE = 50


def _audit_filters() -> tuple[dict, str | None]:
    args = request.args
    filters = {
        name: (args.get(name) or "").strip()[:MAX_FIELD]
        for name in ("actor", "action", "since", "until")
    }
    for name in ("since", "until"):
        if filters[name]:
            try:
                filters[name] = dt.date.fromisoformat(filters[name]).isoformat()
            except ValueError:
                return filters, f"{name}: expected a date, YYYY-MM-DD"
    return filters, None


@bp.get("/audit")
@requires("viewer")
def audit_log():
    """Every staff change, newest first, filtered by actor, action and date (GET form), 50
    a page with a cursor (the last entry's id); each page reads at most 5,000 entries."""
    rt = runtime()
    filters, error = _audit_filters()
    cursor = (request.args.get("cursor") or "")[:64]
    found, next_cursor = [], None
    if error is None:
        try:
            found, next_cursor = audit.page(
                rt.redis, rt.keys, **filters, cursor=cursor, limit=AUDIT_PAGE
            )
        except audit.AuditInputError as exc:
            error = str(exc)
    next_url = None
    if next_cursor:
        query = {k: v for k, v in filters.items() if v} | {"cursor": next_cursor}
        next_url = f"{url_for('staff.audit.audit_log')}?{urlencode(query)}"
    page = render_template(
        "staff/audit.html",
        entries=found,
        filters=filters,
        cursor=cursor,
        next_url=next_url,
        first_url=url_for(
            "staff.audit.audit_log", **{k: v for k, v in filters.items() if v and not error}
        ),
        error=error,
        to_json=_pretty_json,
    )
    return page, 400 if error else 200


def _pretty_json(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, indent=2)
