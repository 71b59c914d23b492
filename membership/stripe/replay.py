"""Replaying stored webhook events: one by id, or every failed one, always audited.

A replay is applied by the same rules as a delivery (an event already applied answers
`duplicate`), and the ledger's writer audits it in its own transaction when the event
reached a decision (applied, stale, ignored). A replay that changes nothing (a duplicate,
one that fails again, one the store could not take) is audited here, afterwards, so
every replay by a staff member leaves an entry, whatever came of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from membership.core import audit
from membership.ledger import RETRYABLE, Ledger, LedgerWriteFailed
from membership.ledger.events import DONE
from membership.stripe.apply import apply_event
from membership.stripe.events import InvalidEvent

NOT_APPLIED = "not_applied"  # the writer raised: nothing of the event was recorded
REPLAY_BATCH = 200  # failed events replayed by one request at most (oldest first)


@dataclass(frozen=True)
class Replayed:
    event_id: str
    outcome: str  # one of events.OUTCOMES, or NOT_APPLIED
    error: str = ""

    @property
    def succeeded(self) -> bool:
        return self.outcome in DONE or self.outcome == "duplicate"

    def as_dict(self) -> dict:
        return {"id": self.event_id, "outcome": self.outcome, "error": self.error}


class UnknownEvent(LookupError):
    """No stored payload for this id: never received, or its record expired."""


def replay(ledger: Ledger, event_id: str, *, actor: str) -> Replayed:
    """Apply the stored event `event_id` again, as `actor`. Raises UnknownEvent when
    nothing is stored for it (nothing is audited: there was nothing to replay)."""
    audit.check_actor(actor)
    event = ledger.events.stored(event_id)
    if event is None:
        raise UnknownEvent(event_id)
    before = ledger.events.outcome_of(event_id)
    try:
        outcome = apply_event(ledger.writer, event, replay=True, actor=actor)
    except (InvalidEvent, *RETRYABLE, LedgerWriteFailed) as exc:
        result = Replayed(event_id, NOT_APPLIED, f"{type(exc).__name__}: {exc}")
    else:
        result = Replayed(event_id, outcome.outcome, outcome.error or outcome.detail or "")
        if outcome.outcome in DONE:
            return result  # audited by the writer, with the change
    _audit_unapplied(ledger, result, before, actor)
    return result


def replay_failed(
    ledger: Ledger, *, actor: str, limit: int = REPLAY_BATCH
) -> tuple[list[Replayed], int]:
    """Replay the oldest `limit` failed events; returns what came of each and how many
    failed events were left unreplayed by the limit."""
    ids = ledger.events.failed_ids()
    results = []
    for event_id in ids[:limit]:
        try:
            results.append(replay(ledger, event_id, actor=actor))
        except UnknownEvent:  # expired between the listing and the read
            results.append(Replayed(event_id, NOT_APPLIED, "no stored payload (expired)"))
    return results, max(0, len(ids) - limit)


def _audit_unapplied(ledger: Ledger, result: Replayed, before: str | None, actor: str) -> None:
    writer = ledger.writer
    audit.record(
        writer.redis,
        writer.keys,
        actor=actor,
        action="event_replayed",
        target=result.event_id,
        before={"outcome": before},
        after={"outcome": result.outcome, "error": result.error[:500]},
        at=writer.clock(),
    )
