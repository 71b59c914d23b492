"""Staff pages: the admin's operations (/staff/operations): `ledger rebuild` and `sync`
(check or apply), run in the background by membership/staff/operations/runner.py, one at a time
across every process; the page shows the running or last one, its progress and its result.
Admins only: editors and viewers get 403. JSON twin: /staff/api/operations."""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, redirect, render_template, request, url_for

from membership.core.runtime import runtime
from membership.staff.access.guard import api_error, requires
from membership.staff.operations import runner as jobs

bp = Blueprint("operations", __name__)


def _operations() -> jobs.Operations:
    return jobs.Operations(runtime(), app=current_app._get_current_object())


def _page(error: str | None = None, status: int = 200):
    ops = _operations()
    page = render_template(
        "staff/operations.html",
        current=ops.status(),
        kinds=jobs.KINDS,
        sync_available=jobs.sync_available(runtime().settings),
        error=error,
    )
    return page, status


@bp.get("/operations")
@requires("admin")
def operations():
    return _page()


@bp.post("/operations")
@requires("admin")
def operations_start():
    try:
        _operations().start(request.form.get("operation", ""), actor=g.staff.email)
    except jobs.OperationRefused as exc:
        return _page(str(exc), 400)
    except jobs.OperationBusy as exc:
        return _page(f"operation: {exc}", 409)
    return redirect(url_for("staff.operations.operations"), 303)


def _state(ops: jobs.Operations) -> dict:
    return {
        "status": ops.status(),
        "running": ops.running(),
        "sync_available": jobs.sync_available(runtime().settings),
    }


@bp.get("/api/operations")
@requires("admin")
def api_operations():
    return jsonify(_state(_operations()))


@bp.post("/api/operations")
@requires("admin")
def api_operations_start():
    body = request.get_json(silent=True)
    kind = body.get("operation") if isinstance(body, dict) else request.form.get("operation")
    ops = _operations()
    try:
        ops.start(kind if isinstance(kind, str) else "", actor=g.staff.email)
    except jobs.OperationRefused as exc:
        return api_error(400, "bad_request", str(exc), field="operation")
    except jobs.OperationBusy as exc:
        return api_error(409, "busy", str(exc))
    return jsonify(_state(ops)), 202
