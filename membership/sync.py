"""Reconciling the ledger with Stripe: what differs (pure) and making it match (shell).

Webhooks can be missed (an outage longer than Stripe's retries, a secret
misconfigured for a day); `membership sync` lists every subscription from the
API and repairs the ledger. It is safe while webhooks keep arriving: a listed
subscription is applied as a snapshot observed when the listing began, so the
ledger's ordering rules keep any state set by a newer webhook.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class StatusChange:
    subscription_id: str
    ledger_status: str
    stripe_status: str


@dataclass(frozen=True)
class Drift:
    missing: tuple[str, ...] = ()  # in Stripe, not in the ledger
    extra: tuple[str, ...] = ()  # in the ledger, unknown to Stripe
    status_differs: tuple[StatusChange, ...] = ()

    @property
    def clean(self) -> bool:
        return not (self.missing or self.extra or self.status_differs)

    def as_dict(self) -> dict:
        return {
            "missing": list(self.missing),
            "extra": list(self.extra),
            "status_differs": [
                {"id": c.subscription_id, "ledger": c.ledger_status, "stripe": c.stripe_status}
                for c in self.status_differs
            ],
        }


def compare(ledger: Mapping[str, str], stripe: Mapping[str, str]) -> Drift:
    """Subscription id -> status on each side; what would have to change for them to agree."""
    return Drift(
        missing=tuple(sorted(stripe.keys() - ledger.keys())),
        extra=tuple(sorted(ledger.keys() - stripe.keys())),
        status_differs=tuple(
            StatusChange(sid, ledger[sid], stripe[sid])
            for sid in sorted(ledger.keys() & stripe.keys())
            if ledger[sid] != stripe[sid]
        ),
    )


@dataclass
class SyncResult:
    drift: Drift
    listed: int
    applied: list[str] = field(default_factory=list)
    kept_newer: list[str] = field(default_factory=list)  # a newer webhook already stands


def collect(
    subscriptions: Iterable[dict], progress: Callable[[int], None] | None = None, every: int = 500
) -> dict[str, dict]:
    """Drain the listing into id -> subscription, reporting progress every `every` items."""
    listed: dict[str, dict] = {}
    for n, subscription in enumerate(subscriptions, start=1):
        listed[subscription["id"]] = subscription
        if progress is not None and n % every == 0:
            progress(n)
    return listed
