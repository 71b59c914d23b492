"""POST /webhooks/stripe: verify, deduplicate, apply, answer.

- No STRIPE_WEBHOOK_SECRET: 503 `webhook_secret_not_configured` (Stripe keeps
  the events and retries).
- The signature is checked by the stripe SDK (`WebhookSignature.verify_header`)
  over the raw body against each configured secret in turn (rotation), with
  STRIPE_WEBHOOK_TOLERANCE. Missing, forged or stale: 400, nothing stored. A
  signed timestamp more than the tolerance in the future is refused as well.
- A verified body that is not JSON, or not a Stripe event: 400.
- 200 only once the event's effect is in Redis (`applied`, `stale`), or it is
  a `duplicate` or `ignored`. Redis unreachable or too contended: 503 with
  Retry-After, nothing recorded (Stripe retries). Any other failure: 500, and
  the event is logged `failed` with its error, for replay.
"""

from __future__ import annotations

import json
import logging
import time

import stripe
from flask import Blueprint, jsonify, request

from membership.errors import RETRY_AFTER_SECONDS, ApiError, error_response
from membership.ledger import LedgerBusy, ledger_for
from membership.runtime import runtime
from membership.stripe_events import envelope_errors

bp = Blueprint("webhooks", __name__)
log = logging.getLogger(__name__)

_RETRY = {"Retry-After": str(RETRY_AFTER_SECONDS)}


def _signed_timestamp(header: str) -> int | None:
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def verify(payload: str, header: str | None, secrets: tuple[str, ...], tolerance: int) -> None:
    """Raise ApiError(400) unless one of `secrets` signed `payload` within `tolerance`."""
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
        if signed_at is not None and signed_at > time.time() + tolerance:
            raise ApiError(
                400, "stale_signature", "the signature's timestamp is too far in the future"
            )
        return
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
    verify(
        payload,
        request.headers.get("Stripe-Signature"),
        settings.stripe_webhook_secrets,
        settings.stripe_webhook_tolerance,
    )
    try:
        event = json.loads(payload)
    except (ValueError, RecursionError):  # RecursionError: nested beyond the parser's depth
        raise ApiError(400, "invalid_json", "the body is not JSON") from None
    problems = envelope_errors(event)
    if problems:
        raise ApiError(
            400, "not_an_event", f"the body is not a Stripe event: {json.dumps(problems)}"
        )
    try:
        outcome = ledger_for(rt).apply_event(event, raw=payload)
    except LedgerBusy:
        return error_response(
            503, "ledger_busy", "too many concurrent updates; try again shortly", _RETRY
        )
    log.info(
        "stripe %s %s: %s%s%s",
        outcome.event_type,
        outcome.event_id,
        outcome.outcome,
        f" ({outcome.detail})" if outcome.detail else "",
        f"; members {outcome.count_before} -> {outcome.count_after}"
        if outcome.count_after != outcome.count_before
        else "",
    )
    if outcome.outcome == "failed":
        return error_response(
            500,
            "event_failed",
            f"event {outcome.event_id} could not be applied and was logged for replay: "
            f"{outcome.error}",
        )
    return jsonify(id=outcome.event_id, outcome=outcome.outcome)
