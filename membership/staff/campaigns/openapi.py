"""The OpenAPI paths of /staff/api/campaigns, and the Campaign document they take and
answer: generated from CampaignSchema (apispec), with what its own checks add that JSON
Schema can say (the copy's shape per targeted locale, a gate only with placement gate, a
weight above 0). The order of the times, unique variant ids and max >= min are left to the
validator."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from membership.core import i18n
from membership.core.config import SUPPORTED_LOCALES
from membership.core.openapi import (
    INTEGER,
    TEXT,
    answer,
    error,
    from_marshmallow,
    json_body,
    obj,
    ref,
)
from membership.core.text import UNSAFE_CATEGORIES
from membership.prompts import campaigns, store
from membership.staff.apidoc import in_path, in_query, op, read_refusals
from membership.staff.campaigns.api import MAX_RESULT_DAYS

_ID = in_path("campaign_id", "^[a-z0-9][a-z0-9-]{0,63}$")
_DOC = ref("Campaign")
# Time with a zone; days to 28 and years from 1000 so that every match has a UTC time.
_TIME = {
    "type": ["string", "null"],
    "default": None,
    "pattern": r"^[1-9][0-9]{3}-(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])T(?:[01][0-9]|2[0-3])"
    r":[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])(?!\n)$",
    "examples": ["2026-12-01T00:00:00Z"],
}


@lru_cache(maxsize=1)
def _unsafe() -> str:
    """A character class body of what core.text refuses (planes 0, 1 and 14 hold all), but
    lone surrogates, which no JSON Schema string holds."""
    points = [*range(0x20000), *range(0xE0000, 0xF0000)]
    unsafe = UNSAFE_CATEGORIES - {"Cs"}
    bad = [c for c in points if unicodedata.category(chr(c)) in unsafe]
    ranges: list[list[int]] = []
    for c in bad:
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])
    return "".join(_escape(a) + (f"-{_escape(b)}" if b > a else "") for a, b in ranges)


def _escape(c: int) -> str:
    return f"\\u{c:04x}" if c <= 0xFFFF else chr(c)


def _text(pattern: str, max_length: int) -> dict:
    return {"type": "string", "minLength": 1, "maxLength": max_length, "pattern": pattern}


def _template_text() -> dict:
    """A template: text, `{{`, `}}` and the placeholders; not blank."""
    names = "|".join(sorted(campaigns.PLACEHOLDERS))
    token = rf"[^{{}}{_unsafe()}]|\{{\{{|\}}\}}|\{{(?:{names})\}}"
    solid = rf"[^\s{{}}{_unsafe()}]|\{{\{{|\}}\}}|\{{(?:{names})\}}"
    return _text(rf"^(?:{token})*(?:{solid})(?:{token})*(?!\n)$", 300)


def _template(locale: str) -> dict:
    """A template or its plural forms in `locale` (with an `other` form)."""
    text = ref("CampaignTemplate")
    forms = sorted(i18n.plural_categories(locale))
    plural = obj({f: text for f in forms}, ("other",), additionalProperties=False)
    return {"oneOf": [text, plural]}


def _copy() -> dict:
    fields = {
        loc: obj(
            {f: _template(loc) for f in campaigns.COPY_FIELDS},
            campaigns.REQUIRED_COPY_FIELDS,
            additionalProperties=False,
        )
        for loc in SUPPORTED_LOCALES
    }
    words = "Per locale, headline, body (optional) and cta: each a template or its plural forms"
    return obj(fields, (), additionalProperties=False, description=words)


def _targeted(locale: str) -> dict:
    """Every variant has copy in `locale` when the campaign targets it (or every locale)."""
    copy = {"properties": {"copy": {"required": [locale]}}}
    return {
        "if": {"properties": {"locales": {"contains": {"const": locale}}}},
        "then": {"properties": {"variants": {"items": copy}}},
    }


def _words(kind: str) -> dict:
    unsafe = _unsafe()
    items = {
        "word": _text(rf"^[^{unsafe}]*[^\s{unsafe}][^{unsafe}]*(?!\n)$", 100),
        "domain": {
            "type": "string",
            "maxLength": 253,
            "pattern": f"^(?:{campaigns.DOMAIN.pattern.replace('a-z', 'a-zA-Z')})(?!\\n)$",
        },
        "country": {"type": "string", "pattern": "^[A-Za-z]{2}(?!\\n)$"},
    }[kind]
    listed = {"type": "array", "items": items}
    return obj({"include": listed, "exclude": listed}, (), additionalProperties=False)


def openapi_schemas() -> dict:
    """The Campaign document (CampaignSchema's fields, and what JSON Schema can add) and
    its copy's CampaignTemplate."""
    doc = from_marshmallow(campaigns.CampaignSchema)
    fields = doc["properties"]
    unsafe = _unsafe()
    fields["name"]["pattern"] = rf"^[^{unsafe}]*[^\s{unsafe}][^{unsafe}]*(?!\n)$"
    fields["starts_at"] = fields["ends_at"] = _TIME
    fields["locales"]["uniqueItems"] = True
    audience = fields["audience"]["properties"]
    for part, kind in (("sections", "word"), ("tags", "word"), ("referrers", "domain")):
        audience[part] = _words(kind)
    audience["countries"] = _words("country")
    fields["gate"]["properties"]["dismissible"] = {"type": "boolean"}
    variants = fields["variants"]
    variant = variants["items"]["properties"]
    variant["id"]["not"] = {"const": campaigns.RESERVED_VARIANT}
    variant["copy"] = _copy()
    variant["cta_url"] = {
        "type": ["string", "null"],
        "default": None,
        "maxLength": 2000,
        "pattern": r"^https?://(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}"
        r"(?:/[A-Za-z0-9._~%/-]*)?(?!\n)$",
    }
    variants["contains"] = {"properties": {"weight": {"minimum": 1}}}
    is_gate = {"required": ["placement"], "properties": {"placement": {"const": "gate"}}}
    doc["allOf"] = [
        *(_targeted(loc) for loc in SUPPORTED_LOCALES),
        {
            "if": is_gate,
            "then": {"required": ["gate"], "properties": {"gate": {"type": "object"}}},
            "else": {"properties": {"gate": {"type": "null"}}},
        },
    ]
    doc["description"] = (
        "As `membership campaigns show ID --json` prints it and `campaigns apply` takes it; "
        "validation errors name the field path, e.g. `variants[1].copy.uk.headline: missing`."
    )
    return {"Campaign": doc, "CampaignTemplate": _template_text()}


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
                {
                    "name": "If-Match",
                    "in": "header",
                    "required": False,
                    "description": "The version it replaces, quoted as its ETag",
                    "schema": {**TEXT, "pattern": '^(?:\\*|"[^"]*")$'},
                },
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
