"""Staff pages: the admin's operations (/staff/operations): `ledger rebuild` and `sync`
(check or apply), run in the background by membership/staff/operations/runner.py, one at a time
across every process; the page shows the running or last one, its progress and its result.
Admins only: editors and viewers get 403. JSON twin: /staff/api/operations."""

from __future__ import annotations

from flask import current_app, g, jsonify, redirect, render_template, request, url_for

from membership.core.runtime import runtime
from membership.staff.access.guard import requires
from membership.staff.operations import runner as jobs
from membership.staff.views import bp

_STATUS = {
    "type": ["object", "null"],
    "description": "The running or last operation; null if none ran",
    "properties": {
        "id": {"type": "string"},
        "kind": {"enum": list(jobs.KINDS)},
        "state": {"enum": ["running", "done", "failed", "interrupted"]},
        "actor": {"type": "string"},
        "started": {"type": "string"},
        "finished": {"type": "string"},
        "progress": {"type": "string"},
        "result": {"description": "The operation's report (as `--json` prints it)"},
        "error": {"type": "string"},
    },
}


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
    return redirect(url_for("staff.operations"), 303)


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
        response = jsonify(error={"code": "bad_request", "message": str(exc), "field": "operation"})
        response.status_code = 400
        return response
    except jobs.OperationBusy as exc:
        response = jsonify(error={"code": "busy", "message": str(exc)})
        response.status_code = 409
        return response
    return jsonify(_state(ops)), 202


def _error(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


_STATE = {
    "description": "The operation's status",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["status", "running", "sync_available"],
                "properties": {
                    "status": _STATUS,
                    "running": {"type": "boolean"},
                    "sync_available": {
                        "type": "boolean",
                        "description": "false while STRIPE_API_KEY is unset",
                    },
                },
            }
        }
    },
}

OPENAPI: dict = {
    "/staff/api/operations": {
        "get": {
            "summary": "The running or last admin operation (ledger rebuild, sync)",
            "description": "Admins only (403 for editors and viewers).",
            "security": [{"staffToken": []}],
            "responses": {
                "200": _STATE,
                "401": _error("No valid token or session"),
                "403": _error("Not an admin"),
            },
        },
        "post": {
            "summary": "Start a ledger rebuild or a sync with Stripe in the background",
            "description": "One operation at a time across every process: 409 while one "
            "runs. `sync_check` reports the drift, `sync_apply` repairs it (as `membership "
            "sync --apply`); both need STRIPE_API_KEY (400 without). Audited.",
            "security": [{"staffToken": []}],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["operation"],
                            "properties": {"operation": {"enum": list(jobs.KINDS)}},
                        }
                    }
                },
            },
            "responses": {
                "202": _STATE,
                "400": _error("`operation` missing or unknown, or sync without STRIPE_API_KEY"),
                "401": _error("No valid token or session"),
                "403": _error("Not an admin"),
                "409": _error("Another operation is running"),
            },
        },
    },
}
