"""The OpenAPI paths of /staff/api/operations (merged into /openapi.json)."""

from __future__ import annotations

from membership.staff.operations import runner as jobs

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
