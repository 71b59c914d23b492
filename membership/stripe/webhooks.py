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
from collections.abc import Callable

import msgspec
from stripe import SignatureVerificationError, WebhookSignature  # once: stripe's names are lazy
from werkzeug.wsgi import get_input_stream

from membership.core import errors
from membership.core.errors import RETRY_AFTER_SECONDS, ApiError
from membership.core.runtime import runtime
from membership.http.outer import Endpoint
from membership.ledger import LedgerBusy, LedgerCorrupt, LedgerWriteFailed, ledger_for
from membership.stripe.apply import apply_event
from membership.stripe.events import InvalidEvent, envelope_errors

log = logging.getLogger(__name__)

PATH = "/webhooks/stripe"
_RETRY = {"Retry-After": str(RETRY_AFTER_SECONDS)}
_JSON = (("Content-Type", "application/json"),)
# Flask's automatic answer to OPTIONS (an empty HTML page; the outer layer adds its headers).
_OPTIONS = (("Content-Type", "text/html; charset=utf-8"), ("Allow", "POST, OPTIONS"))


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
            WebhookSignature.verify_header(payload, header, secret, tolerance)
        except SignatureVerificationError as exc:
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


class WebhookEndpoint(Endpoint):
    """The WSGI endpoint of `/webhooks/stripe`, answered without a Flask request (the outer
    layer, membership.http.outer, gives it its request id, headers, body limit and metrics),
    as Flask answered it: POST, the automatic OPTIONS, a 405 naming both for the rest."""

    path = PATH

    def __init__(self, app) -> None:
        self.app = app

    def preflight(self, environ: dict, start_response: Callable) -> list[bytes]:
        start_response("200 OK", [*_OPTIONS, ("Content-Length", "0")])
        return []

    def handle(self, environ: dict) -> tuple[bytes, list]:
        stream = get_input_stream(environ, max_content_length=errors.MAX_BODY_BYTES)
        event_id, outcome = receive(
            runtime(self.app), stream.read(), environ.get("HTTP_STRIPE_SIGNATURE")
        )
        # as jsonify wrote it (keys sorted: a thin event's id may be anything)
        body = json.dumps(
            {"id": event_id, "outcome": outcome}, separators=(",", ":"), sort_keys=True
        )
        data = (body + "\n").encode("ascii")
        return data, [*_JSON, ("Content-Length", str(len(data)))]


def receive(rt, body: bytes, signature: str | None) -> tuple[str, str]:
    """One delivery: the event's id and outcome once its effect is in Redis (or it was
    ignored); ApiError for every other answer."""
    settings = rt.settings
    if not settings.stripe_webhook_secrets:
        raise ApiError(
            503,
            "webhook_secret_not_configured",
            "STRIPE_WEBHOOK_SECRET is not configured; the event was not processed",
            headers=_RETRY,
        )
    try:
        payload = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_body", "the body is not UTF-8 text") from None
    tolerance = settings.stripe_webhook_tolerance
    signed_at = verify(payload, signature, settings.stripe_webhook_secrets, tolerance)
    event = _parse(payload)
    if isinstance(event, dict) and event.get("object") == THIN_EVENT:
        log.info("stripe thin event %s ignored", str(event.get("id"))[:255])
        return event.get("id"), "ignored"
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
    outcome = _apply(rt, event, payload)
    if log.isEnabledFor(logging.INFO):
        _log_outcome(event, outcome)
    if outcome.outcome == "failed":
        raise ApiError(
            500,
            "event_failed",
            f"event {outcome.event_id} could not be applied and was logged for replay",
        )
    return outcome.event_id, outcome.outcome


def _apply(rt, event: dict, payload: str):
    try:
        return apply_event(ledger_for(rt).writer, event, raw=payload)
    except InvalidEvent as exc:
        raise ApiError(400, "invalid_event", f"the event is not one Stripe sends: {exc}") from None
    except LedgerBusy:
        raise ApiError(
            503, "ledger_busy", "too many concurrent updates; try again shortly", headers=_RETRY
        ) from None
    except LedgerCorrupt:
        raise ApiError(
            503,
            "ledger_corrupt",
            "a stored record this event depends on is corrupt; nothing was written",
            headers=_RETRY,
        ) from None
    except LedgerWriteFailed:
        raise ApiError(
            500,
            "event_failed",
            f"event {event['id']} could not be written whole and was logged for replay",
        ) from None


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
