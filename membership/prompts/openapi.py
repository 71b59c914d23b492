"""The OpenAPI piece of the paywall prompts: POST /v1/prompt (its body generated from the
PromptBody Struct that decodes it) and POST /v1/prompt/events."""

from __future__ import annotations

from membership.core.openapi import (
    NOT_JSON,
    REF,
    TEXT,
    answer,
    error,
    json_body,
    nullable,
    obj,
    ref,
    retry_later,
    too_large,
)
from membership.prompts import request as prompt_request
from membership.prompts.campaigns import PLACEMENTS
from membership.prompts.http import DEBUG_VALUES

_BODY, _BODY_SCHEMAS = prompt_request.schema_components(REF)
_PLACEMENT = {"enum": list(PLACEMENTS)}
_COUNT = {"type": "integer", "minimum": 0}

# Loose on purpose: an event of any shape inside an object is answered (rejected), not refused.
_EVENTS = obj(
    {
        "events": {
            "type": "array",
            # Not `maxItems`: 51 events are often over 16 KiB, a 413, which schemathesis
            # counts as invalid data accepted (it expects a 400 or 422).
            "description": "At most 50 events (more: 400)",
            "items": obj(
                {
                    "type": {"examples": ["view", "click", "dismiss", "holdout"]},
                    "token": {"description": "From the /v1/prompt answer (24 h)"},
                },
                required=(),
            ),
        }
    }
)

OPENAPI = {
    "/v1/prompt": {
        "post": {
            "summary": "Which paywall prompts this page view shows (decided in memory)",
            "description": "Not rate-limited. `?debug=1` with `Authorization: Bearer "
            "$STAFF_API_TOKEN` adds `debug`; without that token it is a 403.",
            "parameters": [
                {
                    "name": "debug",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string", "enum": list(DEBUG_VALUES)},
                }
            ],
            "security": [{}, {"staffToken": []}],
            "requestBody": json_body(
                _BODY,
                description="At most 16 KiB; only `reader` is required. The page is described "
                "inside `page` (`page.section`, `page.tags`, `page.referrer`, `page.type`); "
                "unknown fields are ignored at every level, so a top-level `section` is never "
                "read.",
            ),
            "responses": {
                "200": answer(
                    "The prompts (at most one per placement) and the holdout; "
                    "`Cache-Control: private, no-store`",
                    ref("PromptAnswer"),
                ),
                "400": error("Malformed JSON, or a field that does not validate (named)"),
                "403": error("?debug=1 without a valid staff token"),
                "413": too_large("16 KiB"),
                "415": error(NOT_JSON),
            },
        }
    },
    "/v1/prompt/events": {
        "post": {
            "summary": "What readers did with prompts: views, clicks, dismissals, holdouts",
            "description": "At most 50 events and 16 KiB. An event whose token is missing, "
            "forged or expired, whose type is unknown or does not fit the token (a holdout "
            "token only with `holdout`) is rejected, not refused; the same token and type is "
            "counted once. Rate-limited per client address (RATE_LIMIT_PROMPT_EVENTS).",
            "requestBody": json_body(_EVENTS, "text/plain"),
            "responses": {
                "202": answer(
                    "Counted (duplicates once) or rejected, event by event",
                    obj({"accepted": _COUNT, "rejected": _COUNT}),
                ),
                "400": error(
                    "Not UTF-8 JSON, no `events` list, over 50 events, or an event "
                    "that is not an object (the field is named)"
                ),
                "413": too_large("16 KiB"),
                "415": error("Not Content-Type: application/json or text/plain"),
                "429": retry_later("Over RATE_LIMIT_PROMPT_EVENTS for this address"),
                "503": retry_later("Redis unreachable or refusing; nothing counted"),
            },
        }
    },
}

_PROMPT = obj(
    {
        "placement": _PLACEMENT,
        "campaign": TEXT,
        "variant": TEXT,
        "headline": TEXT,
        "body": {"type": ["string", "null"]},
        "cta": obj(
            {
                "label": TEXT,
                "url": TEXT,
                "checkout": {
                    "type": "boolean",
                    "description": "true: the ask goes through POST /v1/checkout (url is "
                    "JOIN_URL, the fallback); false: staff chose url for this variant, follow it",
                },
            }
        ),
        "banner": nullable(ref("Banner")),
        "dismissible": {"type": "boolean"},
        "token": TEXT,
    }
)
_HOLDOUT = obj(
    {
        "campaign": TEXT,
        "placement": {
            **_PLACEMENT,
            "description": "Where the ask would have been: the widget reports the holdout "
            "once that place is on screen, as it reports a view.",
        },
        "token": TEXT,
    }
)
_TRACE = obj(
    {
        "campaign": TEXT,
        "placement": TEXT,
        "result": {"enum": ["shown", "holdout", "rejected", "outranked"]},
        "variant": {"type": ["string", "null"]},
        "bucket": {"type": ["integer", "null"]},
        "filters": {
            "type": "array",
            "items": obj({"name": TEXT, "passed": {"type": "boolean"}, "reason": TEXT}),
        },
    },
    required=("campaign", "placement", "result", "filters"),
)
PROMPT_ANSWER = obj(
    {
        "prompts": {"type": "array", "items": _PROMPT},
        "holdout": {"type": "array", "items": _HOLDOUT},
        "debug": {"type": "array", "items": _TRACE},
    },
    required=("prompts", "holdout"),
)


def openapi_schemas(settings) -> dict:
    return {**_BODY_SCHEMAS, "PromptAnswer": PROMPT_ANSWER}
