"""The OpenAPI paths of /staff/api/goals (merged into /openapi.json)."""

from __future__ import annotations

from membership.goals import rules as goals_mod
from membership.openapi import from_marshmallow


def _answer(description: str, schema: dict | None = None) -> dict:
    schema = schema or {"$ref": "#/components/schemas/Error"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_TEMPLATE = {
    "oneOf": [
        {"type": "string", "maxLength": 300},
        {
            "type": "object",
            "description": "One text per plural form (en: one, other; uk: one, few, many, other)",
            "additionalProperties": {"type": "string", "maxLength": 300},
        },
    ]
}
_COPY = {
    "type": "object",
    "description": "Per locale (en, uk), per field (headline, message, thanks, cta): the text "
    "shown while this goal is the banner's; placeholders {count} {goal} {remaining} "
    "{publication} as each field allows (see `membership goals add --help`).",
    "additionalProperties": {"type": "object", "additionalProperties": _TEMPLATE},
}
# The fields from the marshmallow schema that loads them; what its own checks add in words.
_GOAL_INPUT = from_marshmallow(goals_mod.GoalInput)
_GOAL_INPUT["properties"]["name"]["maxLength"] = goals_mod.MAX_NAME
_GOAL_INPUT["properties"]["copy"] = _COPY
_GOAL = {
    "type": "object",
    "required": ["id", "target", "deadline", "name", "copy", "created_at", "reached_at", "version"],
    "properties": {
        "id": {"type": "integer", "minimum": 1},
        "target": {"type": "integer"},
        "deadline": {"type": ["string", "null"]},
        "name": {"type": ["string", "null"]},
        "copy": _COPY,
        "created_at": {"type": ["string", "null"]},
        "reached_at": {"type": ["string", "null"]},
        "version": {
            "type": "string",
            "description": "Digest of the goal's fields: send it back with a change (409 "
            "when the goal changed since)",
        },
        "state": {"enum": ["current", "milestone", "reached", "upcoming"]},
    },
}
_COMMON = {
    "401": _answer("No valid token or session"),
    "403": _answer("Above the caller's role (changes need editor)"),
}
_INVALID = _answer(
    "Bad input: `error.field` names the first bad field, `error.fields` every one (each bad "
    "template by its path, e.g. copy.uk.message.few)"
)
_CONFLICT = _answer("The goal changed since `version`; `error.current` is the goal as it is now")
_GOAL_ID = {
    "name": "goal_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[1-9][0-9]{0,11}$"},
}
_SECURITY = [{"staffToken": []}]

OPENAPI = {
    "/staff/api/goals": {
        "get": {
            "summary": "Every goal by target, with its state and version, and the live count",
            "security": _SECURITY,
            "responses": {
                "200": _answer(
                    "The goals",
                    {
                        "type": "object",
                        "required": ["count", "goals"],
                        "properties": {
                            "count": {"type": ["integer", "null"]},
                            "goals": {"type": "array", "items": _GOAL},
                        },
                    },
                ),
                **_COMMON,
            },
        },
        "post": {
            "summary": "Add a goal (editor; audited as goal_added), as `membership goals add`",
            "security": _SECURITY,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _GOAL_INPUT}},
            },
            "responses": {"201": _answer("The goal", _GOAL), "400": _INVALID, **_COMMON},
        },
    },
    "/staff/api/goals/preview": {
        "post": {
            "summary": "The banner in each locale were this goal saved; nothing is stored",
            "description": "Any role. The same view model as /v1/banner, over the stored goals "
            "with this one added (or replacing goal `id`), at `count` members (default: the "
            "live count). Also takes the dashboard form's fields, form-encoded.",
            "security": _SECURITY,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            **_GOAL_INPUT,
                            "properties": {
                                **_GOAL_INPUT["properties"],
                                "id": {"type": "integer", "minimum": 1},
                                "count": {"type": "integer", "minimum": 0},
                            },
                        }
                    },
                    "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
                },
            },
            "responses": {
                "200": _answer(
                    "The banner per locale",
                    {
                        "type": "object",
                        "required": ["count", "shows_this_goal", "shown_goal", "banner"],
                        "properties": {
                            "count": {"type": "integer"},
                            "shows_this_goal": {"type": "boolean"},
                            "shown_goal": {"type": ["object", "null"]},
                            "banner": {
                                "type": "object",
                                "additionalProperties": {"$ref": "#/components/schemas/Banner"},
                            },
                        },
                    },
                ),
                "400": _INVALID,
                "404": _answer("No goal with that id"),
                "401": _COMMON["401"],
            },
        }
    },
    "/staff/api/goals/{goal_id}": {
        "get": {
            "summary": "One goal",
            "parameters": [_GOAL_ID],
            "security": _SECURITY,
            "responses": {
                "200": _answer("The goal", _GOAL),
                "404": _answer("No goal with that id"),
                **_COMMON,
            },
        },
        "put": {
            "summary": "Change a goal (editor; audited as goal_changed, before and after)",
            "parameters": [_GOAL_ID],
            "description": "The whole goal as for POST, plus the `version` it is based on. "
            "Its id and creation time stay; reached stays reached while the target is the "
            "same, and a new target is reached or not by the count.",
            "security": _SECURITY,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            **_GOAL_INPUT,
                            "required": ["target", "version"],
                            "properties": {
                                **_GOAL_INPUT["properties"],
                                "version": {"type": "string"},
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": _answer("The goal as saved", _GOAL),
                "400": _INVALID,
                "404": _answer("No goal with that id"),
                "409": _CONFLICT,
                **_COMMON,
            },
        },
        "delete": {
            "summary": "Remove a goal (editor; audited as goal_removed)",
            "security": _SECURITY,
            "parameters": [
                _GOAL_ID,
                {
                    "name": "version",
                    "in": "query",
                    "required": False,
                    "description": "Remove only if the goal is still this version (else 409)",
                    "schema": {"type": "string"},
                },
            ],
            "responses": {
                "204": {"description": "Removed"},
                "404": _answer("No goal with that id"),
                "409": _CONFLICT,
                "503": _answer("The goals kept changing, or a stored value is corrupt"),
                **_COMMON,
            },
        },
    },
}
