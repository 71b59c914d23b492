"""The OpenAPI paths of /staff/api/webhooks/ (merged into /openapi.json by pages/__init__)."""

from __future__ import annotations

from membership.ledger.events import OUTCOMES, STREAM_ID

_ERROR = {"$ref": "#/components/schemas/Error"}
_SECURITY = [{"staffToken": []}]


def _error(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


def _json(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_EVENT_ID = {
    "name": "event_id",
    "in": "path",
    "required": True,
    "description": "A Stripe event id (evt_...); anything else is 404",
    "schema": {"type": "string"},
}
_ENTRY = {
    "type": "object",
    "required": ["entry", "id", "type", "created", "received", "outcome", "error", "replay"],
    "properties": {
        "entry": {"type": "string", "description": "The log entry's id (a cursor)"},
        "id": {"type": "string"},
        "type": {"type": "string"},
        "created": {"type": "string", "description": "Stripe's created time, ISO-8601 UTC"},
        "received": {"type": "string", "description": "ISO-8601 UTC"},
        "outcome": {"enum": list(OUTCOMES)},
        "error": {"type": "string"},
        "detail": {"type": "string"},
        "replay": {"type": "boolean", "description": "A replay by staff, not a delivery"},
    },
}
_REPLAYED = {
    "type": "object",
    "required": ["id", "outcome", "error"],
    "properties": {
        "id": {"type": "string"},
        "outcome": {
            "enum": [*OUTCOMES, "not_applied"],
            "description": "not_applied: the store refused it (busy, down); nothing recorded",
        },
        "error": {"type": "string"},
    },
}
_COMMON = {"401": _error("No valid token or session")}

OPENAPI: dict = {
    "/staff/api/webhooks/events": {
        "get": {
            "summary": "The webhook event log, newest first, 50 a page",
            "description": "Filtered by `outcome` and `type` (exact, or a prefix ending in "
            "`*`). A page reads at most 2,000 log entries, so a rare type may give a short "
            "page with a `next_cursor`: follow it. Also says when Stripe last sent an event "
            "(replays aside) and `quiet` when none came for 24 h.",
            "security": _SECURITY,
            "parameters": [
                {"name": "outcome", "in": "query", "schema": {"enum": ["", *OUTCOMES]}},
                {
                    "name": "type",
                    "in": "query",
                    "description": "A Stripe event type, or a prefix of one ending in *",
                    "schema": {"type": "string", "pattern": r"^(?:[a-z0-9_.]{1,100}\*?)?(?!\n)$"},
                },
                {
                    "name": "cursor",
                    "in": "query",
                    "description": "The log entry id a page links to",
                    "schema": {"type": "string", "pattern": f"^(?:{STREAM_ID.pattern})?(?!\\n)$"},
                },
            ],
            "responses": {
                "200": _json(
                    "One page of the log",
                    {
                        "type": "object",
                        "required": ["events", "next_cursor", "failed", "last_received", "quiet"],
                        "properties": {
                            "events": {"type": "array", "items": _ENTRY},
                            "next_cursor": {"type": ["string", "null"]},
                            "failed": {"type": "integer", "description": "Events to replay"},
                            "last_received": {"type": ["string", "null"]},
                            "hours_since": {"type": ["number", "null"]},
                            "quiet": {"type": "boolean"},
                        },
                    },
                ),
                "400": _error("A bad filter; `error.field` names it"),
                **_COMMON,
            },
        }
    },
    "/staff/api/webhooks/events/{event_id}": {
        "get": {
            "summary": "One event: its payload as received, outcome and error",
            "security": _SECURITY,
            "parameters": [_EVENT_ID],
            "responses": {
                "200": _json(
                    "The event's record",
                    {
                        "type": "object",
                        "required": ["id", "type", "created", "received", "outcome", "payload"],
                        "properties": {
                            "id": {"type": "string"},
                            "type": {"type": "string"},
                            "created": {"type": "string"},
                            "received": {"type": "string"},
                            "outcome": {"type": "string"},
                            "error": {"type": "string"},
                            "detail": {"type": "string"},
                            "payload": {"description": "The body as received, parsed"},
                        },
                    },
                ),
                "404": _error("Unknown id, or its record has expired"),
                **_COMMON,
            },
        }
    },
    "/staff/api/webhooks/events/{event_id}/replay": {
        "post": {
            "summary": "Apply a stored event again (editors and admins; audited)",
            "description": "As `membership events replay EVENT_ID`: an event already applied "
            "answers `duplicate`. Audited whatever comes of it.",
            "security": _SECURITY,
            "parameters": [_EVENT_ID],
            "responses": {
                "200": _json("What came of the replay", _REPLAYED),
                "400": _error("Signed in by session without the CSRF token"),
                "403": _error("A viewer"),
                "404": _error("Unknown id, or its record has expired"),
                **_COMMON,
            },
        }
    },
    "/staff/api/webhooks/replay-failed": {
        "post": {
            "summary": "Replay every failed event, oldest first, 200 a call (editors; audited)",
            "security": _SECURITY,
            "responses": {
                "200": _json(
                    "What came of each; `remaining`: failed events beyond this call's 200",
                    {
                        "type": "object",
                        "required": ["results", "remaining"],
                        "properties": {
                            "results": {"type": "array", "items": _REPLAYED},
                            "remaining": {"type": "integer"},
                        },
                    },
                ),
                "400": _error("Signed in by session without the CSRF token"),
                "403": _error("A viewer"),
                **_COMMON,
            },
        }
    },
}
