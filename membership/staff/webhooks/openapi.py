"""The OpenAPI paths of /staff/api/webhooks/."""

from __future__ import annotations

from membership.core.openapi import INTEGER, TEXT, answer, error, obj
from membership.core.text import STREAM_ID
from membership.ledger.events import OUTCOMES
from membership.staff.apidoc import in_path, in_query, op

_EVENT_ID = in_path("event_id", description="A Stripe event id (evt_...); anything else is 404")
_ISO = {**TEXT, "description": "ISO-8601 UTC"}
_ENTRY = obj(
    {
        "entry": {**TEXT, "description": "The log entry's id (a cursor)"},
        "id": TEXT,
        "type": TEXT,
        "created": {**TEXT, "description": "Stripe's created time, ISO-8601 UTC"},
        "received": _ISO,
        "outcome": {"enum": list(OUTCOMES)},
        "error": TEXT,
        "detail": TEXT,
        "replay": {"type": "boolean", "description": "A replay by staff, not a delivery"},
    },
    required=("entry", "id", "type", "created", "received", "outcome", "error", "replay"),
)
_RECORD = obj(
    {
        "id": TEXT,
        "type": TEXT,
        "created": TEXT,
        "received": TEXT,
        "outcome": TEXT,
        "error": TEXT,
        "detail": TEXT,
        "payload": {"description": "The body as received, parsed"},
    },
    required=("id", "type", "created", "received", "outcome", "payload"),
)
_REPLAYED = obj(
    {
        "id": TEXT,
        "outcome": {
            "enum": [*OUTCOMES, "not_applied"],
            "description": "not_applied: the store refused it (busy, down); nothing recorded",
        },
        "error": TEXT,
    }
)
_PAGE = obj(
    {
        "events": {"type": "array", "items": _ENTRY},
        "next_cursor": {"type": ["string", "null"]},
        "failed": {**INTEGER, "description": "Events to replay"},
        "last_received": {"type": ["string", "null"]},
        "hours_since": {"type": ["number", "null"]},
        "quiet": {"type": "boolean"},
    },
    required=("events", "next_cursor", "failed", "last_received", "quiet"),
)
_GONE = error("Unknown id, or its record has expired")
_WRITE_ERRORS = {
    "400": error("Signed in by session without the CSRF token"),
    "403": error("A viewer"),
}

OPENAPI: dict = {
    "/staff/api/webhooks/events": {
        "get": op(
            "The webhook event log, newest first, 50 a page",
            {
                "200": answer("One page of the log", _PAGE),
                "400": error("A bad filter; `error.field` names it"),
            },
            description="Filtered by `outcome` and `type` (exact, or a prefix ending in "
            "`*`). A page reads at most 2,000 log entries, so a rare type may give a short "
            "page with a `next_cursor`: follow it. Also says when Stripe last sent an event "
            "(replays aside) and `quiet` when none came for 24 h.",
            parameters=[
                in_query("outcome", {"enum": ["", *OUTCOMES]}),
                in_query(
                    "type",
                    {**TEXT, "pattern": r"^(?:[a-z0-9_.]{1,100}\*?)?(?!\n)$"},
                    "A Stripe event type, or a prefix of one ending in *",
                ),
                in_query(
                    "cursor",
                    {**TEXT, "pattern": f"^(?:{STREAM_ID.pattern})?(?!\\n)$"},
                    "The log entry id a page links to",
                ),
            ],
        )
    },
    "/staff/api/webhooks/events/{event_id}": {
        "get": op(
            "One event: its payload as received, outcome and error",
            {"200": answer("The event's record", _RECORD), "404": _GONE},
            parameters=[_EVENT_ID],
        )
    },
    "/staff/api/webhooks/events/{event_id}/replay": {
        "post": op(
            "Apply a stored event again (editors and admins; audited)",
            {"200": answer("What came of the replay", _REPLAYED), **_WRITE_ERRORS, "404": _GONE},
            description="As `membership events replay EVENT_ID`: an event already applied "
            "answers `duplicate`. Audited whatever comes of it.",
            parameters=[_EVENT_ID],
        )
    },
    "/staff/api/webhooks/replay-failed": {
        "post": op(
            "Replay every failed event, oldest first, 200 a call (editors; audited)",
            {
                "200": answer(
                    "What came of each; `remaining`: failed events beyond this call's 200",
                    obj({"results": {"type": "array", "items": _REPLAYED}, "remaining": INTEGER}),
                ),
                **_WRITE_ERRORS,
            },
        )
    },
}
