"""The OpenAPI document of every HTTP endpoint, served at GET /openapi.json.

Paths, descriptions and answers are written by hand. The request bodies come from what
reads them: POST /v1/prompt's from its msgspec Struct, POST /v1/checkout's fields from its
marshmallow schema (apispec), and, served by an app, what depends on its settings (the
return_url origins, the plans and limits Checkout sells) from those settings. The member
bodies are read by hand-written code; their schemas here are checked against it.
tests/http/test_openapi.py checks that the document is valid OpenAPI 3.1, that its paths and
methods are exactly the app's routes and that the request schemas take what the validators
take; tests/http/test_fuzz_http.py, that the service accepts what the document calls valid and
refuses what it calls invalid.
"""

from __future__ import annotations

import re

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, current_app, jsonify

from membership.checkout import request as checkout_request
from membership.core.config import PRICED_PLANS, SUPPORTED_LOCALES, Settings
from membership.core.i18n import LOCALE_TAG, LOCALE_TAG_MAX
from membership.core.runtime import runtime
from membership.ledger.model import MAX_EMAIL
from membership.members import rules as member_rules
from membership.prompts import request as prompt_request

bp = Blueprint("openapi", __name__)

REF = "#/components/schemas/{name}"


def _ref(name: str) -> dict:
    return {"$ref": REF.format(name=name)}


_ERROR = _ref("Error")


def _error(description: str, *, retry: bool = False) -> dict:
    response = {"description": description, "content": {"application/json": {"schema": _ERROR}}}
    if retry:
        response["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
    return response


_LOCALE = {
    "name": "locale",
    "in": "query",
    "required": False,
    "description": "Language of the copy: any locale tag (en-US, uk_UA.UTF-8) is reduced to "
    "a language served (uk-UA: uk), one we do not speak gets English.",
    "schema": {
        "type": "string",
        "default": "en",
        "pattern": f"^(?:{LOCALE_TAG.pattern})?$",
        "maxLength": LOCALE_TAG_MAX,
        "examples": list(SUPPORTED_LOCALES),
    },
}

# The body of POST /v1/prompt, generated from the Struct that decodes it.
_PROMPT_REQUEST, _PROMPT_SCHEMAS = prompt_request.schema_components("#/components/schemas/{name}")

_SCHEMAS = {
    **_PROMPT_SCHEMAS,
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "examples": ["invalid_signature"]},
                    "message": {"type": "string"},
                },
            }
        },
    },
    "Banner": {
        "type": "object",
        "required": [
            "count", "count_display", "locale", "headline", "message", "cta", "goal",
            "milestone", "stale", "updated_at",
        ],
        "properties": {
            "count": {"type": "integer", "minimum": 0},
            "count_display": {"type": "string", "examples": ["25,012", "25\u00a0012"]},
            "locale": {"type": "string", "enum": list(SUPPORTED_LOCALES)},
            "headline": {"type": "string"},
            "message": {"type": "string"},
            "cta": {
                "type": "object",
                "required": ["label", "url"],
                "properties": {"label": {"type": "string"}, "url": {"type": "string"}},
            },
            "goal": {
                "oneOf": [
                    {"type": "null"},
                    {
                        "type": "object",
                        "required": ["target", "target_display", "progress", "remaining"],
                        "properties": {
                            "target": {"type": "integer"},
                            "target_display": {"type": "string"},
                            "progress": {"type": "number", "minimum": 0, "maximum": 1},
                            "remaining": {"type": "integer", "minimum": 0},
                            "deadline": {"type": ["string", "null"], "format": "date"},
                            "name": {"type": ["string", "null"]},
                        },
                    },
                ]
            },
            "milestone": {
                "oneOf": [
                    {"type": "null"},
                    {
                        "type": "object",
                        "required": ["target", "reached_at"],
                        "properties": {
                            "target": {"type": "integer"},
                            "reached_at": {"type": "string", "format": "date-time"},
                        },
                    },
                ]
            },
            "stale": {
                "type": "boolean",
                "description": "True when Redis could not be read: the last good value.",
            },
            "updated_at": {
                "type": ["string", "null"],
                "format": "date-time",
                "description": "When the count last changed.",
            },
        },
    },
    "PromptAnswer": {
        "type": "object",
        "required": ["prompts", "holdout"],
        "properties": {
            "prompts": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": [
                        "placement", "campaign", "variant", "headline", "body", "cta",
                        "banner", "dismissible", "token",
                    ],
                    "properties": {
                        "placement": {"enum": ["banner", "inline", "modal", "gate"]},
                        "campaign": {"type": "string"},
                        "variant": {"type": "string"},
                        "headline": {"type": "string"},
                        "body": {"type": ["string", "null"]},
                        "cta": {
                            "type": "object",
                            "required": ["label", "url", "checkout"],
                            "properties": {
                                "label": {"type": "string"}, "url": {"type": "string"},
                                "checkout": {
                                    "type": "boolean",
                                    "description": "true: the ask goes through POST "
                                    "/v1/checkout (url is JOIN_URL, the fallback); false: "
                                    "staff chose url for this variant, follow it",
                                },
                            },
                        },
                        "banner": {
                            "oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Banner"}]
                        },
                        "dismissible": {"type": "boolean"},
                        "token": {"type": "string"},
                    },
                },
            },
            "holdout": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["campaign", "placement", "token"],
                    "properties": {
                        "campaign": {"type": "string"},
                        "placement": {
                            "enum": ["banner", "inline", "modal", "gate"],
                            "description": "Where the ask would have been: the widget reports "
                            "the holdout once that place is on screen, as it reports a view.",
                        },
                        "token": {"type": "string"},
                    },
                },
            },
            "debug": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["campaign", "placement", "result", "filters"],
                    "properties": {
                        "campaign": {"type": "string"},
                        "placement": {"type": "string"},
                        "result": {"enum": ["shown", "holdout", "rejected", "outranked"]},
                        "variant": {"type": ["string", "null"]},
                        "bucket": {"type": ["integer", "null"]},
                        "filters": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["name", "passed", "reason"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "passed": {"type": "boolean"},
                                    "reason": {"type": "string"},
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}  # fmt: skip

# Loose on purpose: an event of any shape inside an object is answered (rejected), not refused.
_PROMPT_EVENTS = {
    "type": "object",
    "required": ["events"],
    "properties": {
        "events": {
            "type": "array",
            # Not `maxItems`: 51 events are often over 16 KiB, a 413, which schemathesis
            # counts as invalid data accepted (it expects a 400 or 422).
            "description": "At most 50 events (more: 400)",
            "items": {
                "type": "object",
                "properties": {
                    "type": {"examples": ["view", "click", "dismiss", "holdout"]},
                    "token": {"description": "From the /v1/prompt answer (24 h)"},
                },
            },
        }
    },
}

_MEMBER_TOKEN = {
    "description": "A member token (send it as `member` to /v1/prompt)",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["token", "expires_at", "member"],
                "properties": {
                    "token": {"type": "string"},
                    "expires_at": {
                        "type": "string",
                        "format": "date-time",
                        "description": "At most 7 days ahead",
                    },
                    "member": {"const": True},
                },
            }
        }
    },
}
_RETURN_URL = _ref("ReturnUrl")
_SIGN_IN = {
    "type": "object",
    "required": ["email", "return_url"],
    "properties": {
        "email": {
            "type": "string",
            # members.rules.parse_sign_in: at most 254 characters, one @, no spaces (printable
            # ASCII here: the service also takes letters of other scripts, but no control or
            # format character)
            "pattern": r"^[!-?A-~]+@[!-?A-~]+$",
            "maxLength": MAX_EMAIL,
            "examples": ["reader@example.org"],
        },
        "return_url": _RETURN_URL,
        "locale": {"anyOf": [_LOCALE["schema"], {"type": "null"}], "examples": ["uk", "en"]},
    },
}
_TOKEN_BODY = {
    "type": "object",
    "required": ["token"],
    "properties": {
        "token": {"type": "string", "minLength": 1, "maxLength": member_rules.MAX_TOKEN}
    },
}

_PATHS = {
    "/healthz": {
        "get": {
            "summary": "Liveness: the process is up",
            "responses": {"200": {"description": "Up"}},
        }
    },
    "/readyz": {
        "get": {
            "summary": "Readiness: Redis answers",
            "responses": {
                "200": {
                    "description": "Ready; `ledger` is `needs_rebuild` after a failed write",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "status": {"const": "ready"},
                                    "redis": {"const": "ok"},
                                    "ledger": {"enum": ["ok", "needs_rebuild"]},
                                },
                            }
                        }
                    },
                },
                "503": _error("Redis is unreachable", retry=True),
            },
        }
    },
    "/webhooks/stripe": {
        "post": {
            "summary": "Stripe webhook: verified, applied to the member ledger exactly once",
            "parameters": [
                {
                    "name": "Stripe-Signature",
                    "in": "header",
                    "required": True,
                    "description": "t=<unix time>,v1=<HMAC-SHA256 of t.body>, as Stripe signs",
                    "schema": {"type": "string", "minLength": 1},
                }
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            "responses": {
                "200": {
                    "description": "Applied, stale, duplicate or ignored",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "id": {"type": "string"},
                                    "outcome": {
                                        "type": "string",
                                        "enum": ["applied", "stale", "duplicate", "ignored"],
                                    },
                                },
                            }
                        }
                    },
                },
                "400": _error(
                    "Missing, forged or stale signature; not UTF-8 JSON; not an event; created "
                    "after it was signed; a value Stripe never sends (nothing stored)"
                ),
                "413": _error("Body over 1 MiB"),
                "500": _error("The event could not be applied whole; logged as failed for replay"),
                "503": _error(
                    "Redis unreachable, no webhook secret configured, the ledger busy or "
                    "rebuilding, or a stored record corrupt (nothing recorded)",
                    retry=True,
                ),
            },
        }
    },
    "/v1/banner": {
        "get": {
            "summary": "The member banner: count, goal, progress and localized copy",
            "parameters": [
                _LOCALE,
                {"name": "If-None-Match", "in": "header", "schema": {"type": "string"}},
            ],
            "responses": {
                "200": {
                    "description": "The banner (cacheable; `stale` when Redis is down)",
                    "headers": {
                        "ETag": {"schema": {"type": "string"}},
                        "Cache-Control": {"schema": {"type": "string"}},
                    },
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Banner"}}
                    },
                },
                "304": {"description": "Not modified"},
                "400": _error("Unknown or malformed query parameter"),
                "503": _error("No count was ever seen on this host", retry=True),
            },
        },
        "options": {
            "summary": "CORS preflight (origins in ALLOWED_ORIGINS only)",
            "responses": {"204": {"description": "Preflight answer"}},
        },
    },
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
                    "schema": {"type": "string", "enum": ["1", "0", "true", "false", ""]},
                }
            ],
            "security": [{}, {"staffToken": []}],
            "requestBody": {
                "required": True,
                "description": "At most 16 KiB; unknown fields are ignored.",
                "content": {"application/json": {"schema": _PROMPT_REQUEST}},
            },
            "responses": {
                "200": {
                    "description": "The prompts (at most one per placement) and the holdout; "
                    "`Cache-Control: private, no-store`",
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/PromptAnswer"}
                        }
                    },
                },
                "400": _error("Malformed JSON, or a field that does not validate (named)"),
                "403": _error("?debug=1 without a valid staff token"),
                "413": _error("Body over 16 KiB"),
                "415": _error("Not Content-Type: application/json"),
            },
        }
    },
    "/static/banner.js": {
        "get": {
            "summary": "The embeddable banner widget",
            "responses": {
                "200": {
                    "description": "JavaScript",
                    "content": {"text/javascript": {"schema": {"type": "string"}}},
                },
                "304": {"description": "Not modified"},
            },
        }
    },
    "/static/prompt.js": {
        "get": {
            "summary": "The embeddable paywall-prompt widget (asks /v1/prompt once per page view)",
            "responses": {
                "200": {
                    "description": "JavaScript",
                    "content": {"text/javascript": {"schema": {"type": "string"}}},
                },
                "304": {"description": "Not modified"},
            },
        }
    },
    "/demo/article": {
        "get": {
            "summary": "An example article with the banner and prompt widgets embedded",
            "parameters": [
                _LOCALE,
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
                    "schema": {"type": "string"},
                },
            ],
            "responses": {
                "200": {
                    "description": "HTML",
                    "content": {"text/html": {"schema": {"type": "string"}}},
                },
                "400": _error("Unknown or malformed query parameter"),
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
            "requestBody": {
                "required": True,
                "content": {
                    media: {"schema": _PROMPT_EVENTS}
                    for media in ("application/json", "text/plain")
                },
            },
            "responses": {
                "202": {
                    "description": "Counted (duplicates once) or rejected, event by event",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["accepted", "rejected"],
                                "properties": {
                                    "accepted": {"type": "integer", "minimum": 0},
                                    "rejected": {"type": "integer", "minimum": 0},
                                },
                            }
                        }
                    },
                },
                "400": _error(
                    "Not UTF-8 JSON, no `events` list, over 50 events, or an event "
                    "that is not an object (the field is named)"
                ),
                "413": _error("Body over 16 KiB"),
                "415": _error("Not Content-Type: application/json or text/plain"),
                "429": _error("Over RATE_LIMIT_PROMPT_EVENTS for this address", retry=True),
                "503": _error("Redis unreachable or refusing; nothing counted", retry=True),
            },
        }
    },
    "/v1/checkout": {
        "post": {
            "summary": "A Stripe Checkout Session for a reader who clicked an ask",
            "description": "Subscription mode with the STRIPE_PRICES price for `monthly` and "
            "`yearly`; payment mode for `once` (`amount` in minor units, CHECKOUT_ONCE_MIN to "
            "CHECKOUT_ONCE_MAX, `currency` one of CHECKOUT_CURRENCIES, the first by default). A "
            "valid prompt or holdout `token` (24 h) attributes the session to its campaign and "
            "variant; a forged or expired one is ignored. The reader's `locale` is passed when "
            "Checkout speaks it, else `auto`. Nothing refused here reaches Stripe. "
            "Rate-limited per client address (RATE_LIMIT_CHECKOUT).",
            "requestBody": {
                "required": True,
                "description": "At most 4 KiB; unknown fields are ignored.",
                "content": {"application/json": {"schema": _ref("CheckoutRequest")}},
            },
            "responses": {
                "200": {
                    "description": "Go to `url` (Stripe Checkout)",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["url"],
                                "properties": {
                                    "url": {
                                        "type": "string",
                                        "examples": ["https://checkout.stripe.com/c/pay/cs_..."],
                                    }
                                },
                            }
                        }
                    },
                },
                "400": _error(
                    "Not JSON, an unknown or unpriced plan, a missing or out-of-limits amount, "
                    "a currency not configured, a malformed field (the field is named)"
                ),
                "413": _error("Body over 4 KiB"),
                "415": _error("Not Content-Type: application/json"),
                "429": _error("Over RATE_LIMIT_CHECKOUT for this address", retry=True),
                "502": _error(
                    "Stripe refused or failed (its error code and parameter named), or answered "
                    "something other than a session with an https:// url (`stripe_bad_answer`)"
                ),
                "503": _error("STRIPE_API_KEY is not set (`stripe_not_configured`)"),
                "504": _error("Stripe did not answer in time (the whole answer within 10 s)"),
            },
        }
    },
    "/v1/member/token": {
        "get": {
            "summary": "A member token after Stripe Checkout, the session the proof",
            "description": "The success page calls it with the `session_id` Stripe put in "
            "CHECKOUT_SUCCESS_URL. Stripe is asked for the session (its subscription, customer "
            "and payment intent expanded); when it is complete and paid, within a day of its "
            "completion, the answer is a token: subscription mode (the subscription active or "
            "trialing), for the subscription's customer (`cus_...`); payment mode (a one-time "
            "contribution), `once:cus_...` when the session created that customer, else "
            "`once:cs_...`. Never an email: an address typed at Checkout proves nothing. "
            "Works before the webhook has arrived; the ledger still decides the count. Shares "
            "RATE_LIMIT_CHECKOUT's budget per client address.",
            "parameters": [
                {
                    "name": "session_id",
                    "in": "query",
                    "required": True,
                    "schema": {"type": "string", "pattern": "^cs_[A-Za-z0-9_]{1,252}$"},
                }
            ],
            "responses": {
                "200": _MEMBER_TOKEN,
                "400": _error("`session_id` missing or not a Checkout Session id"),
                "404": _error("The session is open, unpaid, expired or unknown to Stripe"),
                "410": _error("The session completed over a day ago (`session_too_old`)"),
                "429": _error("Over RATE_LIMIT_CHECKOUT for this address", retry=True),
                "502": _error("Stripe refused or failed, or answered what it should not"),
                "503": _error("STRIPE_API_KEY is not set (`stripe_not_configured`)"),
                "504": _error("Stripe did not answer in time (the whole answer within 10 s)"),
            },
        }
    },
    "/v1/member/sign-in": {
        "post": {
            "summary": "Mail a one-time sign-in link to a member",
            "description": "Every well-formed request gets the same 202, member or not, as "
            "fast: the lookup and the mail happen after the answer. A current member (a "
            "Stripe customer's email as the ledger knows it, or an offline member) gets an "
            "email (English or Ukrainian by `locale`) with `PUBLIC_URL/v1/member/verify?code=` "
            "good once, for 15 minutes. Rate-limited per client address (RATE_LIMIT_SIGN_IN) "
            "and per email asked for (RATE_LIMIT_SIGN_IN_EMAIL), whether a member or not. The "
            "form the 410 page posts (`application/x-www-form-urlencoded`) is answered with a "
            "page.",
            "requestBody": {
                "required": True,
                "description": "At most 8 KiB; unknown fields are ignored.",
                "content": {
                    media: {"schema": _SIGN_IN}
                    for media in ("application/json", "application/x-www-form-urlencoded")
                },
            },
            "responses": {
                "202": {
                    "description": "Accepted: if the email is a member's, a link is on its way",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["accepted", "link_minutes"],
                                "properties": {
                                    "accepted": {"const": True},
                                    "link_minutes": {"type": "integer", "examples": [15]},
                                },
                            }
                        },
                        "text/html": {"schema": {"type": "string"}},
                    },
                },
                "400": {
                    "description": "A malformed email, a return_url not on an ALLOWED_ORIGINS "
                    "origin, a bad locale (the field is named); a page for the form",
                    "content": {
                        "application/json": {"schema": _ERROR},
                        "text/html": {"schema": {"type": "string"}},
                    },
                },
                "413": _error("Body over 8 KiB"),
                "415": _error("Not JSON or a form"),
                "429": {
                    "description": "Over RATE_LIMIT_SIGN_IN for this address, or "
                    "RATE_LIMIT_SIGN_IN_EMAIL for this email",
                    "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                    "content": {
                        "application/json": {"schema": _ERROR},
                        "text/html": {"schema": {"type": "string"}},
                    },
                },
                "503": _error(
                    "SMTP_URL is not set (`mail_not_configured`), too many requests queued "
                    "(`sign_in_busy`), or Redis unreachable",
                    retry=True,
                ),
            },
        }
    },
    "/v1/member/verify": {
        "get": {
            "summary": "The sign-in link of the email",
            "description": "A good link redirects (303) to its `return_url` with "
            "`#member_token=<token>` (the widget stores it). A link used before, older than 15 "
            "minutes or unknown answers 410 with a short page that says so and offers a new "
            "link.",
            "parameters": [
                {
                    "name": "code",
                    "in": "query",
                    "required": True,
                    "schema": {"type": "string", "minLength": 1},
                }
            ],
            "responses": {
                "303": {
                    "description": "Signed in: to `return_url#member_token=...`",
                    "headers": {"Location": {"schema": {"type": "string"}}},
                },
                "400": _error("`code` missing"),
                "410": {
                    "description": "Used, expired or unknown: a page to ask for a new link",
                    "content": {"text/html": {"schema": {"type": "string"}}},
                },
                "503": _error("Redis unreachable", retry=True),
            },
        }
    },
    "/v1/member/token/refresh": {
        "post": {
            "summary": "A fresh member token while the ledger still counts the member",
            "description": "The widget calls it a day before its token expires. A "
            "`cus_...` token is renewed while that customer has a subscription that counts, "
            "an `email:` token while the ledger counts that email (a member customer has it, "
            "or an offline member). A token from a one-time contribution (`once:`) is not "
            "renewed (401 `not_renewable`): it ends after its 7 days.",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _TOKEN_BODY}},
            },
            "responses": {
                "200": _MEMBER_TOKEN,
                "400": _error("Not JSON or no `token` string"),
                "401": _error(
                    "The token is forged, malformed or expired (`invalid_token`), the "
                    "membership has ended (`membership_ended`), or it is a one-time "
                    "contribution's (`not_renewable`)"
                ),
                "413": _error("Body over 8 KiB"),
                "415": _error("Not Content-Type: application/json"),
                "503": _error("Redis unreachable", retry=True),
            },
        }
    },
    "/v1/member/portal": {
        "post": {
            "summary": "A Stripe Billing Portal session for the member's customer",
            "description": "Update card, change plan, cancel. A `cus_...` token: that "
            "customer's, while the ledger counts it. An `email:` token (made only by a sign-in "
            "link clicked from that mailbox, or by staff): a customer the ledger counts with "
            "that email. A one-time contribution's `once:cus_...` token: the customer its Checkout "
            "created; `once:cs_...`: nothing to manage (409). Shares RATE_LIMIT_CHECKOUT's "
            "budget per client address.",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            **_TOKEN_BODY,
                            "required": ["token", "return_url"],
                            "properties": {
                                **_TOKEN_BODY["properties"],
                                "return_url": _RETURN_URL,
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": {
                    "description": "Go to `url` (Stripe's Billing Portal)",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["url"],
                                "properties": {"url": {"type": "string"}},
                            }
                        }
                    },
                },
                "400": _error("Not JSON, no `token`, a return_url not on an allowed origin"),
                "401": _error("The token is invalid or expired, or the membership has ended"),
                "409": _error(
                    "Not a Stripe membership (an offline member): contact the newsroom; or a "
                    "one-time contribution without a customer (`nothing_to_manage`)"
                ),
                "413": _error("Body over 8 KiB"),
                "415": _error("Not Content-Type: application/json"),
                "429": _error("Over RATE_LIMIT_CHECKOUT for this address", retry=True),
                "502": _error("Stripe refused or failed, or answered what it should not"),
                "503": _error("STRIPE_API_KEY is not set, or Redis unreachable", retry=True),
                "504": _error("Stripe did not answer in time (the whole answer within 10 s)"),
            },
        }
    },
    "/staff/api/me": {
        "get": {
            "summary": "Who is calling the staff API: email, role, and how (session or token)",
            "description": "Every /staff/api/ route takes a staff member's personal token "
            "(`Authorization: Bearer mst_...`, made on /staff/me, shown once) or the "
            "dashboard's session cookie (writes then need the CSRF token), and the same role "
            "rules as the pages: 401 signed out, 403 above one's role.",
            "security": [{"staffToken": []}],
            "responses": {
                "200": {
                    "description": "The caller",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["email", "role", "via"],
                                "properties": {
                                    "email": {"type": "string"},
                                    "role": {"enum": ["viewer", "editor", "admin"]},
                                    "via": {"enum": ["session", "token"]},
                                },
                            }
                        }
                    },
                },
                "401": _error("No valid token or session"),
            },
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics, summed over every worker process",
            "description": "Only from METRICS_ALLOW networks or with `Authorization: Bearer "
            "$METRICS_TOKEN`; anyone else gets 404, as for a path that does not exist.",
            "security": [{}, {"metricsToken": []}],
            "responses": {
                "200": {
                    "description": "Prometheus text exposition format 0.0.4",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                "404": _error("Not from an allowed network and no valid token"),
            },
        }
    },
    "/openapi.json": {
        "get": {
            "summary": "This document",
            "responses": {"200": {"description": "OpenAPI 3.1 document"}},
        }
    },
}


def _staff_paths() -> dict:
    from membership.staff.areas import openapi_paths  # imported late: it needs the blueprint

    return openapi_paths()


# --- What depends on the settings: where a reader may return, what Checkout sells ---------

# The printable ASCII a return_url's path, query and fragment may hold in the document
# (members.rules.return_url: no space, quote, backslash or angle bracket).
_URL_REST = r"""(?:[/?#][!#-&(-;=?-\[\]-_a-~]*)?"""


def _return_url(settings: Settings | None) -> dict:
    """A return_url: an http(s) URL on an ALLOWED_ORIGINS origin (members.rules.return_url)."""
    origins = settings.allowed_origins if settings is not None else ()
    origin = "|".join(map(re.escape, origins)) or r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?"
    return {
        "type": "string",
        "description": "An http(s) URL on an ALLOWED_ORIGINS origin; its #fragment is dropped",
        "pattern": f"^(?:{origin}){_URL_REST}(?!\\n)$",
        "maxLength": member_rules.MAX_URL,
        "examples": [f"{origins[0] if origins else 'https://news.example'}/2026/11/26/story"],
    }


_CHECKOUT_WORDS = {
    "amount": "Minor units; only with plan once",
    "currency": "Only with plan once",
    "token": "A prompt's or a holdout's token",
}


def _anchored(pattern: str) -> str:
    """A marshmallow Regexp (re.match: from the start; `\\Z`: the very end) as JSON Schema."""
    body = pattern.removesuffix(r"\Z")
    return f"^(?:{body})" + (r"(?!\n)$" if body != pattern else "")


def from_marshmallow(schema: type) -> dict:
    """The JSON Schema of a marshmallow schema's fields (apispec), its Regexp patterns as
    marshmallow matches them."""
    spec = APISpec("membership", "0", "3.1.0", plugins=[MarshmallowPlugin()])
    spec.components.schema(schema.__name__, schema=schema)
    generated = spec.to_dict()["components"]["schemas"][schema.__name__]
    for field in generated["properties"].values():
        if "pattern" in field:
            field["pattern"] = _anchored(field["pattern"])
    return generated


def _checkout_request(settings: Settings | None) -> dict:
    """The body of POST /v1/checkout: the fields from the marshmallow schema that loads them
    (apispec), then, with the settings, what `checkout.request.parse` checks after it: a
    priced plan without amount or currency, or `once` within the configured limits."""
    body = from_marshmallow(checkout_request.BodySchema)
    fields = body["properties"]
    for name, field in fields.items():
        if name in _CHECKOUT_WORDS:
            field["description"] = _CHECKOUT_WORDS[name]
    fields["locale"]["examples"] = ["uk", "en-GB"]
    if settings is None:
        return body
    offer = checkout_request.Offer.from_settings(settings)
    once = {
        **body,
        "required": ["plan", "amount"],
        "properties": {
            **fields,
            "plan": {"const": "once"},
            "amount": {
                "type": "integer",
                "minimum": offer.once_min,
                "maximum": offer.once_max,
                "description": fields["amount"]["description"],
            },
            "currency": {
                **{k: v for k, v in fields["currency"].items() if k != "pattern"},
                "enum": [*offer.currencies, *(c.upper() for c in offer.currencies), None],
            },
        },
    }
    priced = [plan for plan in PRICED_PLANS if plan in offer.prices]
    if not priced:
        return once
    subscription = {
        **body,
        "properties": {
            **fields,
            "plan": {"enum": priced},
            "amount": {"type": "null", "description": fields["amount"]["description"]},
            "currency": {"type": "null", "description": fields["currency"]["description"]},
        },
    }
    return {"oneOf": [subscription, once]}


def document(version: str, settings: Settings | None = None) -> dict:
    """The document; with the settings, the bodies that depend on them (return_url's
    origins, the plans and limits of Checkout) say exactly what this service takes."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "membership",
            "version": version,
            "description": "Member ledger, goal banner and paywall prompts for newsrooms.",
        },
        "paths": {**_PATHS, **_staff_paths()},
        "components": {
            "schemas": {
                **_SCHEMAS,
                "ReturnUrl": _return_url(settings),
                "CheckoutRequest": _checkout_request(settings),
            },
            "securitySchemes": {
                "metricsToken": {"type": "http", "scheme": "bearer"},
                "staffToken": {"type": "http", "scheme": "bearer"},
            },
        },
    }


@bp.get("/openapi.json")
def openapi_json():
    from importlib.metadata import PackageNotFoundError, version

    try:
        current = version("membership")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        current = "0"
    return jsonify(document(current, runtime(current_app).settings))
