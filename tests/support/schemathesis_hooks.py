"""Schemathesis hooks for tests/http/test_fuzz_http.py (loaded through SCHEMATHESIS_HOOKS).

Two rules of the service that JSON Schema cannot state, so a document exact in every
other way still calls such a request valid:

- A body's size in bytes: each endpoint reads at most so many (413 past it), however
  short each field is.
- A whole number written with a fraction (`100.0`): JSON Schema's `integer` takes it (the
  same number), the validators (marshmallow's strict Integer, msgspec's int) do not.

Valid data breaking either is not generated; invalid data is left as it is.
"""

from __future__ import annotations

import json

import schemathesis

from membership.checkout.http import MAX_BODY_BYTES as CHECKOUT_BYTES
from membership.members.http import MAX_BODY_BYTES as MEMBER_BYTES
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
    limit = BODY_BYTES.get(case.operation.path)
    return limit is None or len(json.dumps(case.body).encode()) <= limit
