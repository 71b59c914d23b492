"""The OpenAPI piece of the banner, its widget's scripts and the demo article."""

from __future__ import annotations

from membership.core.config import SUPPORTED_LOCALES
from membership.core.openapi import (
    INTEGER,
    LOCALE_QUERY,
    NOT_MODIFIED,
    TEXT,
    answer,
    error,
    nullable,
    obj,
    ref,
    retry_later,
)
from membership.goals.widget import LOADED

_BAD_QUERY = error("Unknown or malformed query parameter")
_TIME = {"type": "string", "format": "date-time"}


def _script(summary: str, **more) -> dict:
    js = answer("JavaScript", TEXT, "text/javascript")
    return {"get": {"summary": summary, "responses": {"200": js, "304": NOT_MODIFIED, **more}}}


OPENAPI = {
    "/v1/banner": {
        "get": {
            "summary": "The member banner: count, goal, progress and localized copy",
            "parameters": [
                LOCALE_QUERY,
                {"name": "If-None-Match", "in": "header", "schema": TEXT},
            ],
            "responses": {
                "200": {
                    **answer("The banner (cacheable; `stale` when Redis is down)", ref("Banner")),
                    "headers": {"ETag": {"schema": TEXT}, "Cache-Control": {"schema": TEXT}},
                },
                "304": NOT_MODIFIED,
                "400": _BAD_QUERY,
                "503": retry_later("No count was ever seen on this host"),
            },
        },
        "options": {
            "summary": "CORS preflight (origins in ALLOWED_ORIGINS only)",
            "responses": {"204": answer("Preflight answer")},
        },
    },
    "/static/banner.js": _script("The member-count box alone, for pages that show no ask"),
    "/static/prompt.js": _script(
        "The embeddable paywall-prompt widget (asks /v1/prompt once per page view)"
    ),
    "/static/prompt-{name}.js": {
        "parameters": [
            {
                "name": "name",
                "in": "path",
                "required": True,
                "schema": {"enum": list(LOADED)},
            }
        ],
        **_script(
            "A module prompt.js loads when it needs it: a placement's renderer (once an answer"
            " names it), the member token's arrival and renewal, or Checkout (on a click)",
            **{"404": error("No module by that name (the core is prompt.js itself)")},
        ),
    },
    "/demo/article": {
        "get": {
            "summary": "An example article with the banner and prompt widgets embedded",
            "parameters": [
                LOCALE_QUERY,
                {
                    "name": "n",
                    "in": "query",
                    "required": False,
                    "description": "Which article of the demo series; the page links to n+1",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 999, "default": 1},
                },
                {
                    "name": "session_id",
                    "in": "query",
                    "required": False,
                    "description": "Ignored by the page: the widget's, back from Stripe Checkout "
                    "(so the page can be CHECKOUT_SUCCESS_URL)",
                    "schema": TEXT,
                },
            ],
            "responses": {"200": answer("HTML", TEXT, "text/html"), "400": _BAD_QUERY},
        }
    },
}

BANNER = obj(
    {
        "count": {"type": "integer", "minimum": 0},
        "count_display": {"type": "string", "examples": ["25,012", "25\u00a0012"]},
        "locale": {"type": "string", "enum": list(SUPPORTED_LOCALES)},
        "headline": TEXT,
        "message": TEXT,
        "cta": obj({"label": TEXT, "url": TEXT}),
        "goal": nullable(
            obj(
                {
                    "target": INTEGER,
                    "target_display": TEXT,
                    "progress": {"type": "number", "minimum": 0, "maximum": 1},
                    "remaining": {"type": "integer", "minimum": 0},
                    "deadline": {"type": ["string", "null"], "format": "date"},
                    "name": {"type": ["string", "null"]},
                },
                required=("target", "target_display", "progress", "remaining"),
            )
        ),
        "milestone": nullable(obj({"target": INTEGER, "reached_at": _TIME})),
        "stale": {
            "type": "boolean",
            "description": "True when Redis could not be read: the last good value.",
        },
        "updated_at": {
            **_TIME,
            "type": ["string", "null"],
            "description": "When the count last changed.",
        },
    }
)


def openapi_schemas(settings) -> dict:
    return {"Banner": BANNER}
