"""The OpenAPI paths of /staff/api/goals: the bodies' fields from GoalInput (apispec)."""

from __future__ import annotations

from membership.core.openapi import INTEGER, TEXT, answer, error, from_marshmallow, json_body, obj
from membership.goals import rules as goals_mod
from membership.staff.apidoc import in_path, in_query, op

_TEXT = {**TEXT, "maxLength": 300}
_TEMPLATE = {
    "oneOf": [
        _TEXT,
        {
            "type": "object",
            "description": "One text per plural form (en: one, other; uk: one, few, many, other)",
            "additionalProperties": _TEXT,
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
_INPUT = from_marshmallow(goals_mod.GoalInput)
_INPUT["properties"]["name"]["maxLength"] = goals_mod.MAX_NAME
_INPUT["properties"]["copy"] = _COPY
_MAYBE_TEXT = {"type": ["string", "null"]}
_VERSION = {
    **TEXT,
    "description": "Digest of the goal's fields: send it back with a change (409 when the "
    "goal changed since)",
}
_GOAL = obj(
    {
        "id": {**INTEGER, "minimum": 1},
        "target": INTEGER,
        "deadline": _MAYBE_TEXT,
        "name": _MAYBE_TEXT,
        "copy": _COPY,
        "created_at": _MAYBE_TEXT,
        "reached_at": _MAYBE_TEXT,
        "version": _VERSION,
        "state": {"enum": ["current", "milestone", "reached", "upcoming"]},
    },
    required=("id", "target", "deadline", "name", "copy", "created_at", "reached_at", "version"),
)
_PREVIEW = obj(
    {
        "note": {"type": "string", "description": "What the preview shows, in a sentence"},
        "count": INTEGER,
        "shows_this_goal": {"type": "boolean"},
        "shown_goal": {"type": ["object", "null"]},
        "banner": {
            "type": "object",
            "additionalProperties": {"$ref": "#/components/schemas/Banner"},
        },
    }
)
_FORBIDDEN = {"403": error("Above the caller's role (changes need editor)")}
_INVALID = error(
    "Bad input: `error.field` names the first bad field, `error.fields` every one (each bad "
    "template by its path, e.g. copy.uk.message.few)"
)
_UNKNOWN = error("No goal with that id")
_CONFLICT = error("The goal changed since `version`; `error.current` is the goal as it is now")
_ID = in_path("goal_id", "^[1-9][0-9]{0,11}$")


def _input(**properties) -> dict:
    return {**_INPUT, "properties": {**_INPUT["properties"], **properties}}


OPENAPI = {
    "/staff/api/goals": {
        "get": op(
            "Every goal by target, with its state and version, and the live count",
            {
                "200": answer(
                    "The goals",
                    obj(
                        {
                            "count": {"type": ["integer", "null"]},
                            "goals": {"type": "array", "items": _GOAL},
                        }
                    ),
                ),
                **_FORBIDDEN,
            },
        ),
        "post": op(
            "Add a goal (editor; audited as goal_added), as `membership goals add`",
            {"201": answer("The goal", _GOAL), "400": _INVALID, **_FORBIDDEN},
            requestBody=json_body(_INPUT),
        ),
    },
    "/staff/api/goals/preview": {
        "post": op(
            "The banner in each locale were this goal saved; nothing is stored",
            {"200": answer("The banner per locale", _PREVIEW), "400": _INVALID, "404": _UNKNOWN},
            description="Any role. The same view model as /v1/banner, over the stored goals "
            "with this one added (or replacing goal `id`), at `count` members (default: the "
            "live count). Also takes the dashboard form's fields, form-encoded.",
            requestBody={
                "required": True,
                "content": {
                    "application/json": {
                        "schema": _input(
                            id={**INTEGER, "minimum": 1}, count={**INTEGER, "minimum": 0}
                        )
                    },
                    "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
                },
            },
        )
    },
    "/staff/api/goals/{goal_id}": {
        "get": op(
            "One goal",
            {"200": answer("The goal", _GOAL), "404": _UNKNOWN, **_FORBIDDEN},
            parameters=[_ID],
        ),
        "put": op(
            "Change a goal (editor; audited as goal_changed, before and after)",
            {
                "200": answer("The goal as saved", _GOAL),
                "400": _INVALID,
                "404": _UNKNOWN,
                "409": _CONFLICT,
                **_FORBIDDEN,
            },
            parameters=[_ID],
            description="The whole goal as for POST, plus the `version` it is based on. "
            "Its id and creation time stay; reached stays reached while the target is the "
            "same, and a new target is reached or not by the count.",
            requestBody=json_body({**_input(version=TEXT), "required": ["target", "version"]}),
        ),
        "delete": op(
            "Remove a goal (editor; audited as goal_removed)",
            {
                "204": answer("Removed"),
                "404": _UNKNOWN,
                "409": _CONFLICT,
                "503": error("The goals kept changing, or a stored value is corrupt"),
                **_FORBIDDEN,
            },
            parameters=[
                _ID,
                in_query(
                    "version",
                    TEXT,
                    "Remove only if the goal is still this version (else 409)",
                    required=False,
                ),
            ],
        ),
    },
}
