"""POST /webhooks/stripe: verify, deduplicate, apply, answer.

The statuses it answers, and when, are in docs/http-api.md: 400 with nothing stored for
anything unsigned or not an event Stripe sends, 200 once the event's effect is in Redis,
503 with Retry-After when nothing could be recorded, 500 with the event kept for replay.
"""

from __future__ import annotations

import json
import logging
import re
import time

import msgspec
import stripe
from flask import Blueprint, Response, jsonify, request

from membership.core.errors import RETRY_AFTER_SECONDS, ApiError, error_response
from membership.core.runtime import runtime
from membership.ledger import LedgerBusy, LedgerCorrupt, LedgerWriteFailed, ledger_for
from membership.stripe.apply import apply_event
from membership.stripe.events import InvalidEvent, envelope_errors

bp = Blueprint("webhooks", __name__)
log = logging.getLogger(__name__)

_RETRY = {"Retry-After": str(RETRY_AFTER_SECONDS)}


THIN_EVENT = "v2.core.event"


def _signed_timestamp(header: str) -> int:
    """The header's timestamp exactly as the SDK reads it (the first `t=`), once verified."""
    items = [item.split("=", 2) for item in header.split(",")]
    return int(next(item[1] for item in items if item[0] == "t"))


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _has_lone_surrogate(payload: str, event) -> bool:
    """JSON may escape a lone surrogate (`\\ud800`), which no UTF-8 store can take."""
    if not _SURROGATE_ESCAPE.search(payload):  # the usual case: one scan, no copy
        return False
    try:
        json.dumps(event, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def verify(payload: str, header: str | None, secrets: tuple[str, ...], tolerance: int) -> int:
    """The signed timestamp; ApiError(400) unless one of `secrets` signed `payload`
    within `tolerance`."""
    if not header:
        raise ApiError(400, "missing_signature", "the Stripe-Signature header is missing")
    stale = False
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(payload, header, secret, tolerance)
        except stripe.SignatureVerificationError as exc:
            stale = stale or "tolerance" in str(exc)
            continue
        except (TypeError, ValueError):  # e.g. non-ASCII in the header: hmac refuses to compare
            continue
        signed_at = _signed_timestamp(header)
        if signed_at > time.time() + tolerance:
            raise ApiError(
                400, "stale_signature", "the signature's timestamp is too far in the future"
            )
        return signed_at
    if stale:
        raise ApiError(
            400,
            "stale_signature",
            f"the signature's timestamp is more than {tolerance} s old (a replayed request?)",
        )
    raise ApiError(400, "invalid_signature", "the Stripe-Signature header does not match the body")


@bp.post("/webhooks/stripe")
def stripe_webhook():
    rt = runtime()
    settings = rt.settings
    if not settings.stripe_webhook_secrets:
        return error_response(
            503,
            "webhook_secret_not_configured",
            "STRIPE_WEBHOOK_SECRET is not configured; the event was not processed",
            _RETRY,
        )
    body = request.get_data(cache=False)
    try:
        payload = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_body", "the body is not UTF-8 text") from None
    tolerance = settings.stripe_webhook_tolerance
    signed_at = verify(
        payload, request.headers.get("Stripe-Signature"), settings.stripe_webhook_secrets, tolerance
    )
    event = _parse(payload)
    if isinstance(event, dict) and event.get("object") == THIN_EVENT:
        log.info("stripe thin event %s ignored", str(event.get("id"))[:255])
        return jsonify(id=event.get("id"), outcome="ignored")
    problems = envelope_errors(event)
    if problems:
        raise ApiError(
            400, "not_an_event", f"the body is not a Stripe event: {json.dumps(problems)}"
        )
    if event["created"] > signed_at + tolerance:
        raise ApiError(
            400,
            "created_after_signing",
            f"the event's created time is more than {tolerance} s after its signature's",
        )
    try:
        outcome = apply_event(ledger_for(rt).writer, event, raw=payload)
    except InvalidEvent as exc:
        raise ApiError(400, "invalid_event", f"the event is not one Stripe sends: {exc}") from None
    except LedgerBusy:
        return error_response(
            503, "ledger_busy", "too many concurrent updates; try again shortly", _RETRY
        )
    except LedgerCorrupt:
        return error_response(
            503,
            "ledger_corrupt",
            "a stored record this event depends on is corrupt; nothing was written",
            _RETRY,
        )
    except LedgerWriteFailed:
        return error_response(
            500,
            "event_failed",
            f"event {event['id']} could not be written whole and was logged for replay",
        )
    if log.isEnabledFor(logging.INFO):
        _log_outcome(event, outcome)
    if outcome.outcome == "failed":
        return error_response(
            500,
            "event_failed",
            f"event {outcome.event_id} could not be applied and was logged for replay",
        )
    return _answer(outcome.event_id, outcome.outcome)


def _answer(event_id: str, outcome: str) -> Response:
    """`{"id": ..., "outcome": ...}`, as `jsonify` writes it, without its per-call setup."""
    body = json.dumps({"id": event_id, "outcome": outcome}, separators=(",", ":"))
    return Response(body + "\n", mimetype="application/json")


def _log_outcome(event: dict, outcome) -> None:
    log.info(
        "stripe %s %s: %s%s%s",
        event["type"],  # as sent (the outcome's is `other` for a type the service does not know)
        outcome.event_id,
        outcome.outcome,
        f" ({outcome.detail})" if outcome.detail else "",
        f"; members {outcome.count_before} -> {outcome.count_after}"
        if outcome.count_after != outcome.count_before
        else "",
    )


def _parse(payload: str):
    """The body's JSON: read by msgspec, which gives what `json.loads` gives for every body
    it takes (and takes no lone surrogate); what it refuses (also NaN, 1e400, which
    `json.loads` reads) is read by `json.loads` and answered as before."""
    try:
        return msgspec.json.decode(payload)
    except (msgspec.DecodeError, RecursionError):  # ValidationError is a DecodeError
        pass
    try:
        event = json.loads(payload)
    except (ValueError, RecursionError):  # RecursionError: nested beyond the parser's depth
        raise ApiError(400, "invalid_json", "the body is not JSON") from None
    if _has_lone_surrogate(payload, event):
        raise ApiError(400, "invalid_json", "the body is not UTF-8 JSON text (a lone surrogate)")
    return event
