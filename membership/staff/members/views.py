"""Staff pages: members. The list (newest first, or by name or email; filtered by counted,
source, plan, status, when they joined), the search above it (email, name words, a prefix of
a `cus_...` id), a member's page, offline members added and removed with a reason, and the
CSV export of current members; the same reads and changes answer JSON under
/staff/api/members. Reads go through the ledger's
queries (bounded whatever the number of members), changes through the writer's offline
commands as `membership members add|remove` does; the export is audited before its first
line.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping

from flask import Blueprint, Response, g, jsonify, redirect, render_template, request, url_for

from membership.core.runtime import runtime
from membership.ledger import LedgerBusy, LedgerCorrupt, LedgerInputError, ledger_for
from membership.ledger import members as read_side
from membership.ledger.members import BadCursor
from membership.ledger.model import valid_email
from membership.staff import format
from membership.staff.access.guard import api_error, requires
from membership.staff.forms import MAX_FIELD, field
from membership.staff.members import listing
from membership.staff.members.listing import Ask, Refused

bp = Blueprint("members", __name__)

RETRY_AFTER = "2"
SHOWN = read_side.Shown(time=format.when, money=format.money)  # Babel, the viewer's zone


# --- reading the request -----------------------------------------------------------------


def _inputs() -> Mapping[str, str]:
    """The form, or a JSON object's text values (scripts may send either)."""
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise Refused(400, "body: expected a JSON object")
        return {k: v for k, v in body.items() if isinstance(v, str)}
    return request.form


def _field_of(message: str) -> str:
    """Which field a LedgerInputError of the offline commands is about (its message says)."""
    if message.startswith("name:"):
        return "name"
    if message.startswith(("reason:", "a reason")):
        return "reason"
    return "email"


def _named(field: str, message: str) -> str:
    return message if message.startswith(f"{field}:") else f"{field}: {message}"


def _read(ask: Ask) -> read_side.Page:
    """The search's matches (the filters applied to them), else the list."""
    queries = ledger_for(runtime()).queries
    try:
        if ask.q:
            page = queries.search(ask.q, limit=ask.limit, cursor=ask.cursor)
            return read_side.Page(tuple(filter(ask.filters.keeps, page.rows)), page.cursor)
        return queries.members(
            ask.filters,
            sort=ask.sort,
            descending=ask.descending,
            limit=ask.limit,
            cursor=ask.cursor,
        )
    except BadCursor:
        raise listing.refuse("cursor", "not a page of this list; start again") from None


# --- changes: the writer's doors, as the CLI uses them ------------------------------------


def _change_offline(inputs: Mapping[str, str], *, adding: bool):
    """Add or remove an offline member as the signed-in staff member; the Outcome, or
    Refused naming the field (400), 409 for one already added, 404 for none to remove."""
    email, reason = field("email", inputs), field("reason", inputs)
    writer = ledger_for(runtime()).writer
    try:
        if adding:
            name = field("name", inputs)
            outcome = writer.add_offline_member(email, reason, name=name, actor=g.staff.email)
        else:
            outcome = writer.remove_offline_member(email, reason, actor=g.staff.email)
    except LedgerInputError as exc:
        name = _field_of(str(exc))
        raise Refused(400, _named(name, str(exc)), name) from None
    except (LedgerBusy, LedgerCorrupt):
        raise Refused(503, "the ledger is busy or needs attention; try again shortly") from None
    if outcome.outcome != "applied":
        if adding:
            raise Refused(409, "email: already an offline member", "email")
        raise Refused(404, "email: not an offline member", "email")
    return outcome


# --- pages ---------------------------------------------------------------------------------


def _members_page(refused: Refused | None = None, form: Mapping[str, str] | None = None):
    """The list, or the search's matches, with the filters; the export; the offline form."""
    ask, page, error = Ask(), read_side.Page((), None), None
    try:
        ask = listing.read(request.args)
        page = _read(ask)
    except Refused as exc:
        ask, error = listing.as_given(request.args), exc
    status = (refused or error).status if (refused or error) else 200
    stats = ledger_for(runtime()).queries.stats()
    html = render_template(
        "staff/members.html",
        ask=ask,
        rows=[read_side.row_view(r, SHOWN) for r in page.rows],
        next_url=_list_url(ask, cursor=page.cursor) if page.cursor else None,
        first_url=_list_url(ask) if ask.cursor else None,
        sort_urls={c: _sort_url(ask, c) for c in listing.SORTS},
        filtered=listing.filtered(ask),
        labels=listing.LABELS,
        statuses=listing.STATUSES,
        plans=listing.plan_choices(stats, ask.filters.plan),
        count=stats["members"],
        search_error=error,
        refused=refused,
        form=form or {},
    )
    return _answer(html, status)


def _list_url(ask: Ask, **more) -> str:
    q = {"q": ask.q} if ask.q else {}
    return url_for("staff.members.members", **q, **(ask.args or {}), **more)


def _sort_url(ask: Ask, sort: str) -> str:
    """The list by `sort`: the other way round when it is the sort already."""
    if sort == ask.sort:
        order = "asc" if ask.descending else "desc"
    else:
        order = "desc" if sort == "joined" else "asc"
    return _list_url(
        Ask(ask.q, ask.filters, args={**(ask.args or {}), "sort": sort, "order": order})
    )


@bp.get("/members")
@requires("viewer")
def members():
    return _members_page()


def _member_model(who: str):
    page = ledger_for(runtime()).queries.member(who[:MAX_FIELD])
    return None if page is None else read_side.member_view(page, SHOWN)


def _member_page(who: str, refused: Refused | None = None, form=None, notice: str = ""):
    model = _member_model(who)
    if model is None:
        html = render_template("staff/message.html", title="No member by that id", status=404)
        return html, 404
    html = render_template(
        "staff/member.html",
        who=who,
        model=model,
        refused=refused,
        form=form or {},
        notice=notice,
    )
    return _answer(html, refused.status if refused else 200)


def _answer(html: str, status: int):
    """A page and its status; a 503 says when to try again."""
    return html, status, ({"Retry-After": RETRY_AFTER} if status == 503 else {})


NOTICES = {"added": "Added as an offline member.", "removed": "Offline membership removed."}


@bp.get("/members/<path:who>")
@requires("viewer")
def member(who: str):
    """A member by Stripe customer id or email (404 for nobody the ledger knows)."""
    return _member_page(who, notice=NOTICES.get(request.args.get("done", ""), ""))


@bp.post("/members/offline")
@requires("editor")
def members_offline_add():
    try:
        _change_offline(request.form, adding=True)
    except Refused as exc:
        return _members_page(exc, request.form)
    email = valid_email(request.form.get("email"))  # the writer took it: valid
    return redirect(url_for("staff.members.member", who=email, done="added"), 303)


@bp.post("/members/offline/remove")
@requires("editor")
def members_offline_remove():
    email = field("email", request.form)
    try:
        _change_offline(request.form, adding=False)
    except Refused as exc:
        if exc.field != "reason":  # the email is the page's own, not typed: say it above
            exc = Refused(exc.status, exc.message)
        if _member_model(email) is None:  # no member page to show the form on
            return _members_page(exc)
        return _member_page(email, exc, request.form)
    if _member_model(email) is None:  # nothing else is known of them
        return redirect(url_for("staff.members.members", q=email), 303)
    return redirect(url_for("staff.members.member", who=valid_email(email), done="removed"), 303)


@bp.get("/members/export.csv")
@bp.get("/api/members/export.csv")
@requires("viewer")
def members_export() -> Response:
    """The current members as CSV, streamed; the download is audited before the first line."""
    lines = (
        ledger_for(runtime())
        .queries.member_export()
        .audited_export(actor=g.staff.email, at=time.time())
    )
    response = Response(lines, mimetype="text/csv")
    name = f"members-{dt.datetime.now(dt.UTC).date().isoformat()}.csv"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


# --- JSON under /staff/api/members -------------------------------------------------------


def _api_error(exc: Refused):
    code = {400: "bad_request", 404: "not_found", 409: "conflict", 503: "unavailable"}
    extra = {"field": exc.field} if exc.field else {}
    response = api_error(exc.status, code.get(exc.status, "error"), exc.message, **extra)
    if exc.status == 503:
        response.headers["Retry-After"] = RETRY_AFTER
    return response


@bp.get("/api/members")
@requires("viewer")
def api_members():
    try:
        page = _read(listing.read(request.args))
    except Refused as exc:
        return _api_error(exc)
    return jsonify(members=[read_side.row_json(r) for r in page.rows], cursor=page.cursor)


@bp.get("/api/members/<path:who>")
@requires("viewer")
def api_member(who: str):
    page = ledger_for(runtime()).queries.member(who[:MAX_FIELD])
    if page is None:
        return _api_error(Refused(404, "no member by that id"))
    return jsonify(read_side.member_json(page))


def _api_change(*, adding: bool):
    try:
        outcome = _change_offline(_inputs(), adding=adding)
    except Refused as exc:
        return _api_error(exc)
    body = {
        "email": valid_email(_inputs().get("email")),  # the writer took it: valid
        "outcome": outcome.outcome,
        "count_before": outcome.count_before,
        "count_after": outcome.count_after,
    }
    return jsonify(body), 201 if adding else 200


@bp.post("/api/members/offline")
@requires("editor")
def api_members_offline_add():
    return _api_change(adding=True)


@bp.post("/api/members/offline/remove")
@requires("editor")
def api_members_offline_remove():
    return _api_change(adding=False)
