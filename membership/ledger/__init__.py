"""The member ledger: a write side, a read side and an event log over one Redis.

Its modules, its rules and its keys: docs/ledger.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from membership.ledger.events import OUTCOMES, EventLog
from membership.ledger.model import LedgerInputError
from membership.ledger.queries import Queries
from membership.ledger.writer import (
    RETRYABLE,
    LedgerBusy,
    LedgerCorrupt,
    LedgerWriteFailed,
    Outcome,
    Writer,
)

__all__ = [
    "OUTCOMES",
    "RETRYABLE",
    "EventLog",
    "Ledger",
    "LedgerBusy",
    "LedgerCorrupt",
    "LedgerInputError",
    "LedgerWriteFailed",
    "Outcome",
    "Queries",
    "Writer",
    "ledger_for",
]


@dataclass(frozen=True)
class Ledger:
    """One Redis's ledger: `writer` changes it, `queries` read it, `events` is its event log."""

    writer: Writer
    queries: Queries
    events: EventLog

    @classmethod
    def on(cls, client, keys, member_statuses, **writer_options) -> Ledger:
        events = EventLog(client, keys, clock=writer_options.get("clock", time.time))
        writer = Writer(client, keys, member_statuses, log=events, **writer_options)
        return cls(writer, Queries(client, keys), events)


def ledger_for(runtime) -> Ledger:
    """The ledger of a running app (`membership.core.runtime.runtime()`), with the
    subscribers (goals, metrics) and transaction hooks (conversions) registered at app start."""
    return Ledger.on(
        runtime.redis,
        runtime.keys,
        runtime.settings.member_statuses,
        subscribers=runtime.ledger_subscribers,
        hooks=runtime.ledger_hooks,
    )
