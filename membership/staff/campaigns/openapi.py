"""The OpenAPI paths of /staff/api/campaigns (merged into /openapi.json)."""

from __future__ import annotations

from membership.prompts import store
from membership.staff.campaigns.api import MAX_RESULT_DAYS

_ERROR = {"$ref": "#/components/schemas/Error"}
_ID = {
    "name": "campaign_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,63}$"},
}
_DOC = {
    "type": "object",
    "description": "A campaign document, as `membership campaigns show ID --json` prints it "
    "and `campaigns apply` takes it; validation errors name the field path, e.g. "
    "`variants[1].copy.uk.headline: missing`.",
}
_VERSIONED = {
    "type": "object",
    "required": ["campaign", "version"],
    "properties": {
        "campaign": _DOC,
        "version": {"type": "string", "description": "Send back as If-Match"},
        "outcome": {"enum": ["created", "replaced", "unchanged"]},
    },
}


def _json(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _err(description: str) -> dict:
    return _json(description, _ERROR)


_COMMON = {"401": _err("No valid token or session"), "403": _err("The role does not allow it")}
_WRITE = {
    **_COMMON,
    "400": _err("Bad input (the message names the field) or a missing CSRF token"),
    "404": _err("No such campaign"),
    "409": _err("Refused: a newer version, an id taken, or a status it cannot leave"),
}


def _op(summary: str, responses: dict, **extra) -> dict:
    return {"summary": summary, "security": [{"staffToken": []}], "responses": responses, **extra}


def _status_op(action: str) -> dict:
    return {
        "post": _op(
            f"{action.capitalize()} a campaign (audited; the same status is no change)",
            {"200": _json("Its status before and after", {"type": "object"}), **_WRITE},
            parameters=[_ID],
        )
    }


_PREVIEWS = {
    "type": "object",
    "required": ["campaign", "previews"],
    "properties": {
        "campaign": {"type": "string"},
        "previews": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["variant", "locale", "placement", "prompt", "missing"],
                "properties": {
                    "variant": {"type": "string"},
                    "locale": {"type": "string"},
                    "placement": {"enum": ["banner", "inline", "modal", "gate"]},
                    "prompt": {"type": "object", "description": "As in /v1/prompt's prompts"},
                    "missing": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "Numbers the copy needs that are unknown now: "
                        "the widget would not be sent this variant",
                    },
                },
            },
        },
    },
}
_BODY = {"required": True, "content": {"application/json": {"schema": _DOC}}}
OPENAPI: dict = {
    "/staff/api/campaigns": {
        "get": _op(
            "Every campaign by rank, with views, readers, conversions and conversion rate "
            "(not for archived ones)",
            {"200": _json("The campaigns", {"type": "object"}), **_COMMON},
        ),
        "post": _op(
            "Create a campaign (409 when its id is taken)",
            {"201": _json("Created", _VERSIONED), **_WRITE},
            requestBody=_BODY,
        ),
    },
    "/staff/api/campaigns/{campaign_id}": {
        "get": _op(
            "One campaign and its version (also the ETag)",
            {"200": _json("The campaign", _VERSIONED), "404": _err("No such campaign"), **_COMMON},
            parameters=[_ID],
        ),
        "put": _op(
            "Create or replace a campaign; with If-Match: its version, 409 if it changed since",
            {
                "200": _json("Replaced or unchanged", _VERSIONED),
                "201": _json("Created", _VERSIONED),
                **_WRITE,
            },
            parameters=[
                _ID,
                {
                    "name": "If-Match",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string"},
                },
            ],
            requestBody=_BODY,
        ),
    },
    **{f"/staff/api/campaigns/{{campaign_id}}/{a}": _status_op(a) for a in store.ACTIONS},
    "/staff/api/campaigns/{campaign_id}/duplicate": {
        "post": _op(
            "Copy a campaign as a draft under a new id (<id>-copy, <id>-copy-2, ...)",
            {"201": _json("The copy", _VERSIONED), **_WRITE},
            parameters=[_ID],
        )
    },
    "/staff/api/campaigns/{campaign_id}/move": {
        "post": _op(
            "Move a campaign up or down in the order (its priority, or as few others as need be)",
            {"200": _json("The ids changed and the new order", {"type": "object"}), **_WRITE},
            parameters=[_ID],
            requestBody={
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["direction"],
                            "properties": {"direction": {"enum": ["up", "down"]}},
                        }
                    }
                },
            },
        )
    },
    "/staff/api/campaigns/{campaign_id}/preview": {
        "get": _op(
            "Each variant's prompt in each locale the campaign targets, as /v1/prompt "
            "would answer it now (copy with today's count and goal)",
            {"200": _json("The previews", _PREVIEWS), "404": _err("No such campaign"), **_COMMON},
            parameters=[_ID],
        )
    },
    "/staff/api/campaigns/preview": {
        "post": _op(
            "The same for a campaign document that is not saved; nothing is written",
            {
                "200": _json("The previews", _PREVIEWS),
                "400": _err("Not a valid campaign (the message names the field)"),
                **_COMMON,
            },
            requestBody=_BODY,
        )
    },
    "/staff/api/campaigns/{campaign_id}/results": {
        "get": _op(
            "The figures of `membership campaigns results ID --json --days N`",
            {
                "200": _json("Per variant and the holdout", {"type": "object"}),
                "400": _err("days is not 0 to 400"),
                "404": _err("No such campaign"),
                **_COMMON,
            },
            parameters=[
                _ID,
                {
                    "name": "days",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 0, "maximum": MAX_RESULT_DAYS},
                },
            ],
        )
    },
}
