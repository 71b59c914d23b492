"""The OpenAPI paths of /staff/api/members (merged into /openapi.json)."""

from __future__ import annotations


def _error(description: str) -> dict:
    schema = {"$ref": "#/components/schemas/Error"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_SECURITY = [{"staffToken": []}]
_ROW = {
    "type": "object",
    "required": ["id", "email", "name", "source", "status", "since", "plan", "amount"],
    "properties": {
        "id": {"type": "string", "examples": ["stripe:cus_123", "offline:reader@example.org"]},
        "email": {"type": "string"},
        "name": {"type": "string"},
        "source": {"enum": ["stripe", "offline"]},
        "status": {"type": "string"},
        "since": {"type": "string", "description": "YYYY-MM-DD, or empty"},
        "plan": {"type": "string"},
        "amount": {"type": "integer", "description": "minor units per billing interval"},
        "currency": {"type": "string"},
        "amount_text": {"type": "string", "examples": ["5.00 EUR"]},
        "current": {"type": "boolean", "description": "counted as a member now"},
        "customer": {"type": "string"},
    },
}
_OFFLINE_BODY = {
    "required": True,
    "content": {
        media: {
            "schema": {
                "type": "object",
                "required": ["email", "reason"],
                "properties": {
                    # As the ledger's writer checks them: an email with one @ and no
                    # spaces, a reason that is not blank; printable ASCII here (the writer
                    # also takes other scripts, but no control or format character)
                    "email": {
                        "type": "string",
                        "pattern": r"^[!-?A-~]+@[!-?A-~]+(?!\n)$",
                        "maxLength": 254,
                    },
                    "reason": {
                        "type": "string",
                        "pattern": r"^[ -~]*[!-~][ -~]*(?!\n)$",
                        "maxLength": 500,
                    },
                    "name": {"type": "string", "pattern": r"^[ -~]*(?!\n)$", "maxLength": 200},
                },
            }
        }
        for media in ("application/json", "application/x-www-form-urlencoded")
    },
}
_CHANGED = {
    "type": "object",
    "required": ["email", "outcome", "count_before", "count_after"],
    "properties": {
        "email": {"type": "string"},
        "outcome": {"const": "applied"},
        "count_before": {"type": ["integer", "null"]},
        "count_after": {"type": ["integer", "null"]},
    },
}
_WRITE_ERRORS = {
    "400": _error("A field is missing or wrong; `error.field` names it"),
    "401": _error("No valid token or session"),
    "403": _error("Viewers may not change members"),
    "503": _error("The ledger is busy; retry after Retry-After seconds"),
}
_EXPORT = {
    "get": {
        "summary": "Every current member (offline ones included) as CSV, streamed",
        "description": "Columns email, name, source, status, since, plan, amount; a cell "
        "that a spreadsheet would run as a formula starts with a quote. Each download is "
        "recorded in the audit log (`members_exported`) before the first line.",
        "security": _SECURITY,
        "responses": {
            "200": {"description": "CSV", "content": {"text/csv": {"schema": {"type": "string"}}}},
            "401": _error("No valid token or session"),
        },
    }
}

OPENAPI: dict = {
    "/staff/api/members": {
        "get": {
            "summary": "Search members by email prefix, name words or exact Stripe customer id",
            "description": "Matches by email first, then by name; `cursor` from one answer "
            "gives the next page. A page may be short and still carry a cursor (work per "
            "call is bounded): ask again while `cursor` is not null.",
            "security": _SECURITY,
            "parameters": [
                {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 254}},
                {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 50},
                },
            ],
            "responses": {
                "200": {
                    "description": "A page of members",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["members", "cursor"],
                                "properties": {
                                    "members": {"type": "array", "items": _ROW},
                                    "cursor": {"type": ["string", "null"]},
                                },
                            }
                        }
                    },
                },
                "400": _error("A bad `q`, `cursor` or `limit`; `error.field` names it"),
                "401": _error("No valid token or session"),
            },
        }
    },
    "/staff/api/members/{who}": {
        "get": {
            "summary": "One member: rows, Stripe customers, subscriptions with their status "
            "history, invoices, contributions and refunds, the offline record, events",
            "security": _SECURITY,
            "parameters": [
                {
                    "name": "who",
                    "in": "path",
                    "required": True,
                    "description": "A Stripe customer id (cus_...) or an email",
                    "schema": {"type": "string"},
                }
            ],
            "responses": {
                "200": {
                    "description": "What the ledger keeps of them",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "401": _error("No valid token or session"),
                "404": _error("The ledger knows nobody by that id"),
            },
        }
    },
    "/staff/api/members/offline": {
        "post": {
            "summary": "Add an offline member (bank transfer, gift, comp), with a reason",
            "description": "Editors and admins. Audited (`offline_member_added`, with the "
            "reason) under the caller's email.",
            "security": _SECURITY,
            "requestBody": _OFFLINE_BODY,
            "responses": {
                "201": {
                    "description": "Added",
                    "content": {"application/json": {"schema": _CHANGED}},
                },
                **_WRITE_ERRORS,
                "409": _error("Already an offline member"),
            },
        }
    },
    "/staff/api/members/offline/remove": {
        "post": {
            "summary": "Remove an offline member, with a reason (`name` is ignored)",
            "description": "Editors and admins. Audited (`offline_member_removed`: the "
            "record before, the reason after). A Stripe subscription, if any, still counts.",
            "security": _SECURITY,
            "requestBody": _OFFLINE_BODY,
            "responses": {
                "200": {
                    "description": "Removed",
                    "content": {"application/json": {"schema": _CHANGED}},
                },
                **_WRITE_ERRORS,
                "404": _error("Not an offline member"),
            },
        }
    },
    "/staff/api/members/export.csv": _EXPORT,
}
