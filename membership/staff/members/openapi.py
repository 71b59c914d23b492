"""The OpenAPI paths of /staff/api/members."""

from __future__ import annotations

from membership.core.openapi import INTEGER, TEXT, answer, error, json_body, obj
from membership.staff.apidoc import in_path, op, query_parameters
from membership.staff.members.listing import ListQuery

_ROW = obj(
    {
        "id": {**TEXT, "examples": ["stripe:cus_123", "offline:reader@example.org"]},
        "email": TEXT,
        "name": TEXT,
        "source": {"enum": ["stripe", "offline"]},
        "status": TEXT,
        "since": {**TEXT, "description": "YYYY-MM-DD, or empty"},
        "plan": TEXT,
        "amount": {**INTEGER, "description": "minor units per billing interval"},
        "currency": TEXT,
        "amount_text": {**TEXT, "examples": ["5.00 EUR"]},
        "current": {"type": "boolean", "description": "counted as a member now"},
        "customer": TEXT,
        "joined": {**TEXT, "description": "when it started, ISO 8601 UTC; empty: never"},
    },
    required=("id", "email", "name", "source", "status", "since", "plan", "amount"),
)
# As the ledger's writer checks them: an email with one @ and no spaces, a reason that is
# not blank; printable ASCII here (the writer also takes other scripts, but no control or
# format character)
_OFFLINE = json_body(
    obj(
        {
            "email": {**TEXT, "pattern": r"^[!-?A-~]+@[!-?A-~]+(?!\n)$", "maxLength": 254},
            "reason": {**TEXT, "pattern": r"^[ -~]*[!-~][ -~]*(?!\n)$", "maxLength": 500},
            "name": {**TEXT, "pattern": r"^[ -~]*(?!\n)$", "maxLength": 200},
        },
        required=("email", "reason"),
    ),
    "application/x-www-form-urlencoded",
)
_MAYBE_COUNT = {"type": ["integer", "null"]}
_CHANGED = obj(
    {
        "email": TEXT,
        "outcome": {"const": "applied"},
        "count_before": _MAYBE_COUNT,
        "count_after": _MAYBE_COUNT,
    }
)
_WRITE_ERRORS = {
    "400": error("A field is missing or wrong; `error.field` names it"),
    "403": error("Viewers may not change members"),
    "503": error("The ledger is busy; retry after Retry-After seconds"),
}


def _offline_change(summary: str, done: tuple, refused: tuple, audited: str) -> dict:
    """An offline member's change: `done` and `refused` are (status, description)."""
    responses = {done[0]: answer(done[1], _CHANGED), **_WRITE_ERRORS, refused[0]: error(refused[1])}
    description = f"Editors and admins. Audited {audited}"
    return {"post": op(summary, responses, description=description, requestBody=_OFFLINE)}


OPENAPI: dict = {
    "/staff/api/members": {
        "get": op(
            "The list of members (newest first, by name or by email, filtered), or a search",
            {
                "200": answer(
                    "A page of members",
                    obj(
                        {
                            "members": {"type": "array", "items": _ROW},
                            "cursor": {"type": ["string", "null"]},
                        }
                    ),
                ),
                "400": error(
                    "A bad parameter; `error.field` names it, the message by its label "
                    "(`Status: one of ...`)"
                ),
            },
            description="Without `q`: everyone who has had a subscription or an offline "
            "membership, sorted by `sort` and `order` (default: joined, newest first; name "
            "and email A to Z, those without one last) and filtered by the other "
            "parameters. With `q`: members whose email starts with it, then those whose name "
            "has words starting with each of its words, or Stripe customers whose id starts "
            "with it (`cus_...`); the filters apply, the sort does not. `cursor` from one "
            "answer gives the next page. Work per call is bounded, so a page may be short, "
            "even empty, and still carry a cursor: ask again while `cursor` is not null.",
            parameters=query_parameters(ListQuery),
        )
    },
    "/staff/api/members/{who}": {
        "get": op(
            "One member: rows, Stripe customers, subscriptions with their status "
            "history, invoices, contributions and refunds, the offline record, events",
            {
                "200": answer("What the ledger keeps of them", {"type": "object"}),
                "404": error("The ledger knows nobody by that id"),
            },
            parameters=[in_path("who", description="A Stripe customer id (cus_...) or an email")],
        )
    },
    "/staff/api/members/offline": _offline_change(
        "Add an offline member (bank transfer, gift, comp), with a reason",
        ("201", "Added"),
        ("409", "Already an offline member"),
        "(`offline_member_added`, with the reason) under the caller's email.",
    ),
    "/staff/api/members/offline/remove": _offline_change(
        "Remove an offline member, with a reason (`name` is ignored)",
        ("200", "Removed"),
        ("404", "Not an offline member"),
        "(`offline_member_removed`: the record before, the reason after). A Stripe "
        "subscription, if any, still counts.",
    ),
    "/staff/api/members/export.csv": {
        "get": op(
            "Every current member (offline ones included) as CSV, streamed",
            {"200": answer("CSV", TEXT, "text/csv")},
            description="Columns email, name, source, status, since, plan, amount, customer "
            "(the Stripe customer id; empty for an offline member); a cell "
            "that a spreadsheet would run as a formula starts with a quote. Each download is "
            "recorded in the audit log (`members_exported`) before the first line.",
        )
    },
}
