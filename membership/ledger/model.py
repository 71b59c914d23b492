"""What the ledger stores, as plain frozen records (no Redis, no clock, no rules)."""

from __future__ import annotations

import re
from dataclasses import dataclass

FINAL_STATUSES = frozenset({"canceled", "incomplete_expired"})
LIFECYCLE = ("incomplete", "trialing", "active", "past_due", "unpaid", "paused")
# Rank within one second: the lifecycle order, then the final states.
_RANK = {status: i for i, status in enumerate((*LIFECYCLE, "incomplete_expired", "canceled"))}

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
MAX_EMAIL = 254


class LedgerInputError(ValueError):
    """Input a caller (staff, a sync) gave that the ledger cannot take; the message says why."""


def normalize_email(email: str | None) -> str | None:
    """How emails are matched: trimmed and lower-cased, nothing else; None when empty."""
    if email is None:
        return None
    value = str(email).strip().lower()
    return value or None


def valid_email(email: str | None) -> str:
    """The normalized email, or LedgerInputError naming the problem."""
    value = normalize_email(email)
    if (
        not value
        or len(value) > MAX_EMAIL
        or not _EMAIL.match(value)
        or any(ord(c) < 32 or ord(c) == 127 for c in value)
    ):
        raise LedgerInputError(f"expected an email address like reader@example.org, got {email!r}")
    return value


@dataclass(frozen=True)
class Subscription:
    """One subscription as one event (or one API listing) showed it.

    `status` is Stripe's status in that event; `created` is the event's
    `created` (or the time a listing was observed): the clock the rules compare.
    Amounts are minor units per billing interval, all items and quantities included.
    """

    id: str
    customer: str
    status: str
    created: int
    price: str = ""
    plan: str = ""
    amount: int = 0
    currency: str = ""
    interval: str = ""
    interval_count: int = 1
    quantity: int = 1
    started: int | None = None
    canceled_at: int | None = None
    ended_at: int | None = None
    cancel_at_period_end: bool = False
    current_period_end: int | None = None
    source: str = ""  # the event id, or "sync@<observed_at>"

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def rank(self) -> int:
        return _RANK.get(self.status, -1)

    @property
    def plan_label(self) -> str:
        return self.plan or self.price or "(none)"


@dataclass(frozen=True)
class SubRecord:
    """A stored subscription: the state that stands, and the status that counts."""

    sub: Subscription
    status: str  # effective status
    # Whether it was counted when stored. The count was built with the member
    # statuses of that moment; leaving it we must undo exactly that, whatever
    # MEMBER_STATUSES says now (`ledger rebuild` applies a new list). None: stored
    # before the flag existed.
    live: bool | None = None
    # The status change that opened it, `<created> <status>[ <event id>]`, kept in its
    # record rather than in its customer's timeline ("": written before, when the timeline
    # held it).
    opening: str = ""

    @property
    def id(self) -> str:
        return self.sub.id

    def was_live(self, statuses: frozenset[str]) -> bool:
        return self.live if self.live is not None else self.status in statuses


@dataclass(frozen=True)
class Customer:
    """What the ledger knows of a Stripe customer.

    `live` is how many of its subscriptions currently count (the customer is a
    member when it is above zero); `email_created` is the clock of the event
    that set the email, so an older checkout cannot overwrite a newer one.
    """

    id: str
    email: str | None = None
    email_created: int = 0
    name: str | None = None
    metadata: str = ""  # JSON object
    deleted_at: int | None = None
    live: int = 0

    @property
    def member(self) -> bool:
        return self.live > 0


@dataclass(frozen=True)
class Offline:
    """Why staff made an email an offline member (bank transfer, gift, comp)."""

    reason: str
    name: str | None = None
    added_at: str = ""  # ISO-8601 UTC


@dataclass(frozen=True)
class EmailBucket:
    """One email: how many member Stripe customers have it, and its offline member, if any."""

    email: str
    live: int = 0
    offline: Offline | None = None

    @property
    def is_offline(self) -> bool:
        return self.offline is not None


@dataclass(frozen=True)
class Contribution:
    """A one-time contribution: paid (amount, person) and refunded are set by
    different events, in either order; the refund only ever grows."""

    key: str
    paid: bool = False
    amount: int = 0
    currency: str = ""
    refunded: int = 0
    person: str = ""
    customer: str | None = None
    email: str | None = None
    created: int = 0
    metadata: str = ""  # JSON object

    @property
    def net(self) -> int:
        return max(self.amount - self.refunded, 0) if self.paid else 0

    @property
    def active(self) -> bool:
        return self.net > 0


@dataclass(frozen=True)
class Contributor:
    """One person (customer, email or payment) and how many of their contributions are active."""

    person: str
    active: int = 0


Record = SubRecord | Customer | EmailBucket | Contribution | Contributor
