"""A Stripe event into the ledger: the event becomes a command here (`events.to_command`),
and the ledger's writer applies that command, logging the event with it."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

from membership.ledger import Outcome, Writer
from membership.ledger.writer import Delivery
from membership.stripe.events import EventError, InvalidEvent, to_command, type_label

log = logging.getLogger(__name__)


def apply_event(
    writer: Writer,
    event: Mapping,
    *,
    raw: str | None = None,
    replay: bool = False,
    actor: str | None = None,
) -> Outcome:
    """Apply one verified Stripe event (id, type, created, data.object) to the ledger.

    At most once per event id: a redelivery answers `duplicate`. `raw` is the body as
    received (kept for replay). `replay=True` marks the log entry as a replay
    (`membership events replay`, audited under `actor`).

    Returns `failed` (with `error`) when the event cannot be handled: it is logged with
    its error and kept for replay. Raises `InvalidEvent` for values Stripe never sends
    (nothing is stored), and what `Writer.apply_event` raises.
    """
    delivery = Delivery(
        id=str(event["id"]),
        type=str(event["type"]),
        created=int(event["created"]),
        payload=event,
        raw=raw if raw is not None else json.dumps(event, separators=(",", ":")),
        label=type_label(str(event["type"])),
        replay=replay,
    )
    try:
        command = to_command(event)
    except InvalidEvent:
        raise
    except Exception as exc:  # EventError, or a handler's bug: the event waits for a replay
        if not isinstance(exc, EventError):
            log.exception("event %s (%s) failed", delivery.id, delivery.type)
        return writer.fail_event(delivery, f"{type(exc).__name__}: {exc}")
    return writer.apply_event(delivery, command, actor=actor)
