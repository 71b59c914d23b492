"""The OpenAPI paths of /staff/api/campaigns."""

from __future__ import annotations

from membership.core.openapi import INTEGER, TEXT, answer, error, json_body, obj
from membership.prompts import store
from membership.staff.apidoc import in_path, in_query, op, read_refusals
from membership.staff.campaigns.api import MAX_RESULT_DAYS

_ID = in_path("campaign_id", "^[a-z0-9][a-z0-9-]{0,63}$")
_DOC = {
    "type": "object",
    "description": "A campaign document, as `membership campaigns show ID --json` prints it "
    "and `campaigns apply` takes it; validation errors name the field path, e.g. "
    "`variants[1].copy.uk.headline: missing`.",
}
_VERSIONED = obj(
    {
        "campaign": _DOC,
        "version": {**TEXT, "description": "Send back as If-Match"},
        "outcome": {"enum": ["created", "replaced", "unchanged"]},
    },
    required=("campaign", "version"),
)
_OBJECT = {"type": "object"}
_FORBIDDEN = {"403": error("The role does not allow it")}
_UNKNOWN = error("No such campaign")
_WRITE = {
    **_FORBIDDEN,
    "400": error("Bad input (the message names the field) or a missing CSRF token"),
    "404": _UNKNOWN,
    "409": error("Refused: a newer version, an id taken, or a status it cannot leave"),
}
_PREVIEWS = obj(
    {
        "campaign": TEXT,
        "previews": {
            "type": "array",
            "items": obj(
                {
                    "variant": TEXT,
                    "locale": TEXT,
                    "placement": {"enum": ["banner", "inline", "modal", "gate"]},
                    "prompt": {"type": "object", "description": "As in /v1/prompt's prompts"},
                    "missing": {
                        "type": "array",
                        "items": TEXT,
                        "description": "Numbers the copy needs that are unknown now: "
                        "the widget would not be sent this variant",
                    },
                }
            ),
        },
    }
)
_BODY = json_body(_DOC)

_READ = read_refusals("256 KiB")


def _status_op(action: str) -> dict:
    return {
        "post": op(
            f"{action.capitalize()} a campaign (audited; the same status is no change)",
            {"200": answer("Its status before and after", _OBJECT), **_WRITE},
            parameters=[_ID],
        )
    }


OPENAPI: dict = {
    "/staff/api/campaigns": {
        "get": op(
            "Every campaign by rank, with views, readers, conversions and conversion rate "
            "(not for archived ones)",
            {"200": answer("The campaigns", _OBJECT), **_FORBIDDEN},
        ),
        "post": op(
            "Create a campaign (409 when its id is taken)",
            {"201": answer("Created", _VERSIONED), **_WRITE, **_READ},
            requestBody=_BODY,
        ),
    },
    "/staff/api/campaigns/{campaign_id}": {
        "get": op(
            "One campaign and its version (also the ETag)",
            {"200": answer("The campaign", _VERSIONED), "404": _UNKNOWN, **_FORBIDDEN},
            parameters=[_ID],
        ),
        "put": op(
            "Create or replace a campaign; with If-Match: its version, 409 if it changed since",
            {
                "200": answer("Replaced or unchanged", _VERSIONED),
                "201": answer("Created", _VERSIONED),
                **_WRITE,
                **_READ,
            },
            parameters=[
                _ID,
                {"name": "If-Match", "in": "header", "required": False, "schema": TEXT},
            ],
            requestBody=_BODY,
        ),
    },
    **{f"/staff/api/campaigns/{{campaign_id}}/{a}": _status_op(a) for a in store.ACTIONS},
    "/staff/api/campaigns/{campaign_id}/duplicate": {
        "post": op(
            "Copy a campaign as a draft under a new id (<id>-copy, <id>-copy-2, ...)",
            {"201": answer("The copy", _VERSIONED), **_WRITE},
            parameters=[_ID],
        )
    },
    "/staff/api/campaigns/{campaign_id}/move": {
        "post": op(
            "Move a campaign up or down in the order (its priority, or as few others as need be)",
            {
                "200": answer("The ids changed and the new order", _OBJECT),
                **_WRITE,
                **read_refusals("4 KiB"),
            },
            parameters=[_ID],
            requestBody=json_body(obj({"direction": {"enum": ["up", "down"]}})),
        )
    },
    "/staff/api/campaigns/{campaign_id}/preview": {
        "get": op(
            "Each variant's prompt in each locale the campaign targets, as /v1/prompt "
            "would answer it now (copy with today's count and goal)",
            {"200": answer("The previews", _PREVIEWS), "404": _UNKNOWN, **_FORBIDDEN},
            parameters=[_ID],
        )
    },
    "/staff/api/campaigns/preview": {
        "post": op(
            "The same for a campaign document that is not saved; nothing is written",
            {
                "200": answer("The previews", _PREVIEWS),
                "400": error("Not a valid campaign (the message names the field)"),
                **_FORBIDDEN,
                **_READ,
            },
            requestBody=_BODY,
        )
    },
    "/staff/api/campaigns/{campaign_id}/results": {
        "get": op(
            "The figures of `membership campaigns results ID --json --days N`",
            {
                "200": answer("Per variant and the holdout", _OBJECT),
                "400": error("days is not 0 to 400"),
                "404": _UNKNOWN,
                **_FORBIDDEN,
            },
            parameters=[
                _ID,
                in_query(
                    "days",
                    {**INTEGER, "minimum": 0, "maximum": MAX_RESULT_DAYS},
                    required=False,
                ),
            ],
        )
    },
}
