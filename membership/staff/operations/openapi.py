"""The OpenAPI paths of /staff/api/operations."""

from __future__ import annotations

from membership.core.openapi import TEXT, answer, error, json_body, obj
from membership.staff.apidoc import op
from membership.staff.operations import runner as jobs

_STATUS = {
    "type": ["object", "null"],
    "description": "The running or last operation; null if none ran",
    "properties": {
        "id": TEXT,
        "kind": {"enum": list(jobs.KINDS)},
        "state": {"enum": ["running", "done", "failed", "interrupted"]},
        "actor": TEXT,
        "started": TEXT,
        "finished": TEXT,
        "progress": TEXT,
        "result": {"description": "The operation's report (as `--json` prints it)"},
        "error": TEXT,
    },
}
_STATE = answer(
    "The operation's status",
    obj(
        {
            "status": _STATUS,
            "running": {"type": "boolean"},
            "sync_available": {
                "type": "boolean",
                "description": "false while STRIPE_API_KEY is unset",
            },
        }
    ),
)
_NOT_ADMIN = error("Not an admin")

OPENAPI: dict = {
    "/staff/api/operations": {
        "get": op(
            "The running or last admin operation (ledger rebuild, sync)",
            {"200": _STATE, "403": _NOT_ADMIN},
            description="Admins only (403 for editors and viewers).",
        ),
        "post": op(
            "Start a ledger rebuild or a sync with Stripe in the background",
            {
                "202": _STATE,
                "400": error("`operation` missing or unknown, or sync without STRIPE_API_KEY"),
                "403": _NOT_ADMIN,
                "409": error("Another operation is running"),
            },
            description="One operation at a time across every process: 409 while one "
            "runs. `sync_check` reports the drift, `sync_apply` repairs it (as `membership "
            "sync --apply`); both need STRIPE_API_KEY (400 without). Audited.",
            requestBody=json_body(obj({"operation": {"enum": list(jobs.KINDS)}})),
        ),
    },
}
