"""Schemathesis hooks for tests/http/test_fuzz_http.py (loaded through SCHEMATHESIS_HOOKS).

Two rules of the service that JSON Schema cannot state, so a document exact in every
other way still calls such a request valid:

- A body's size in bytes: each endpoint reads at most so many (413 past it), however
  short each field is.
- A whole number written with a fraction (`100.0`): JSON Schema's `integer` takes it (the
  same number), the validators (marshmallow's strict Integer, msgspec's int) do not.
- A campaign's rules between its fields (CAMPAIGN_RULES: ends_at after starts_at, a variant
  id used once, articles_read's max at least its min), and a PUT's path naming the id of the
  document it sends: valid data gets the body's id in its path.

Valid data breaking any is not generated; invalid data is left as it is.
"""

from __future__ import annotations

import json

import schemathesis

from membership.checkout.http import MAX_BODY_BYTES as CHECKOUT_BYTES
from membership.members.http import MAX_BODY_BYTES as MEMBER_BYTES
from membership.prompts.campaigns import every_problem
from membership.prompts.event_api import MAX_BODY_BYTES as EVENT_BYTES
from membership.prompts.http import MAX_BODY_BYTES as PROMPT_BYTES

BODY_BYTES = {
    "/v1/prompt": PROMPT_BYTES,
    "/v1/prompt/events": EVENT_BYTES,
    "/v1/checkout": CHECKOUT_BYTES,
    "/v1/member/sign-in": MEMBER_BYTES,
    "/v1/member/token/refresh": MEMBER_BYTES,
    "/v1/member/portal": MEMBER_BYTES,
}

CAMPAIGN_RULES = ("must be after starts_at", "is used twice", "must be at least min")
CAMPAIGN_BODIES = ("/staff/api/campaigns", "/staff/api/campaigns/preview")
CAMPAIGN_PUT = "/staff/api/campaigns/{campaign_id}"


def _breaks_only_campaign_rules(body: object) -> bool:
    problems = every_problem(body)
    return bool(problems) and all(any(r in p for r in CAMPAIGN_RULES) for p in problems)


def _whole_float(value: object) -> bool:
    if isinstance(value, float):
        return value.is_integer()
    if isinstance(value, dict):
        return any(map(_whole_float, value.values()))
    if isinstance(value, list):
        return any(map(_whole_float, value))
    return False


@schemathesis.hook
def filter_case(context, case) -> bool:
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or case.body is None:
        return True
    if _whole_float(case.body):
        return False
    path = case.operation.path
    if path in (*CAMPAIGN_BODIES, CAMPAIGN_PUT) and _breaks_only_campaign_rules(case.body):
        return False
    limit = BODY_BYTES.get(path)
    return limit is None or len(json.dumps(case.body).encode()) <= limit


@schemathesis.hook
def map_case(context, case):
    meta = case.meta
    positive = meta is not None and meta.generation.mode.is_positive
    body_id = case.body.get("id") if isinstance(case.body, dict) else None
    if positive and case.operation.path == CAMPAIGN_PUT and isinstance(body_id, str):
        case.path_parameters = {**(case.path_parameters or {}), "campaign_id": body_id}
    return case
