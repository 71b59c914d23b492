"""What may be asked of the ledger: one frozen command per kind of change."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from membership.ledger.model import Subscription


@dataclass(frozen=True)
class ApplySubscription:
    sub: Subscription


@dataclass(frozen=True)
class LinkCustomer:
    """A checkout (or a sync) told us the customer's email, name and metadata."""

    customer: str
    email: str | None
    name: str | None
    metadata: Mapping[str, str]
    created: int


@dataclass(frozen=True)
class DeleteCustomer:
    customer: str
    created: int


@dataclass(frozen=True)
class RecordContribution:
    """A paid one-time contribution, keyed by its payment intent (or checkout session)."""

    key: str
    amount: int
    currency: str
    customer: str | None
    email: str | None
    metadata: Mapping[str, str]
    created: int
    session: str = ""


@dataclass(frozen=True)
class RecordRefund:
    """A charge's cumulative refunded amount, for the contribution with the same key."""

    key: str
    amount_refunded: int
    currency: str
    created: int
    charge: str = ""


@dataclass(frozen=True)
class AddTimeline:
    """invoice.paid, invoice.payment_failed, charge.dispute.created: kept, not counted."""

    kind: str
    customer: str | None
    created: int
    reference: str
    amount: int = 0
    currency: str = ""
    detail: Mapping[str, str] = field(default_factory=dict)
    payment_intent: str | None = None  # lets a dispute find its contributor


@dataclass(frozen=True)
class AddOffline:
    """Staff make a (valid, normalized) email a member outside Stripe."""

    email: str
    reason: str
    name: str | None
    at: str  # ISO-8601 UTC


@dataclass(frozen=True)
class RemoveOffline:
    email: str
    reason: str


@dataclass(frozen=True)
class Ignore:
    reason: str


Command = (
    ApplySubscription
    | LinkCustomer
    | DeleteCustomer
    | RecordContribution
    | RecordRefund
    | AddTimeline
    | AddOffline
    | RemoveOffline
    | Ignore
)
