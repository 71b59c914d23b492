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


# A ledger state set this close to the listing's start may postdate the listing
# (Stripe lists newest first), so it is never judged "extra" on this run.
EXTRA_GRACE_SECONDS = 60


def run(
    ledger,
    listing: Iterable[dict],
    *,
    observed_at: int,
    apply: bool,
    progress: Callable[[int], None] | None = None,
) -> SyncResult:
    """Compare the ledger with a full listing taken from `observed_at`; repair it when `apply`.

    Missing and differing subscriptions are applied as snapshots observed at
    `observed_at`, so the ledger's rules keep any newer webhook state. An extra
    subscription (unknown to Stripe) is ended only if its state predates the
    listing by a margin; otherwise it may simply be newer than the listing.
    """
    listed = collect(listing, progress)
    # An ended subscription Stripe no longer lists is history, not drift: it counts for nothing.
    records = {
        record.id: record
        for record in ledger.subscriptions()
        if record.id in listed or not record.sub.final
    }
    drift = compare(
        {sid: record.sub.status for sid, record in records.items()},
        {sid: sub["status"] for sid, sub in listed.items()},
    )
    result = SyncResult(drift=drift, listed=len(listed))
    if not apply:
        return result

    for sid in (*drift.missing, *(c.subscription_id for c in drift.status_differs)):
        subscription = listed[sid]
        _link_customer(ledger, subscription.get("customer"), observed_at)
        outcome = ledger.apply_subscription_snapshot(subscription, observed_at)
        (result.applied if outcome.outcome == "applied" else result.kept_newer).append(sid)

    for sid in drift.extra:
        record = records[sid]
        if record.sub.created >= observed_at - EXTRA_GRACE_SECONDS:
            result.kept_newer.append(sid)
            continue
        gone = {
            "id": sid,
            "object": "subscription",
            "customer": record.sub.customer,
            "status": "canceled",
            "ended_at": observed_at,
            "items": {"data": []},
        }
        outcome = ledger.apply_subscription_snapshot(gone, observed_at)
        (result.applied if outcome.outcome == "applied" else result.kept_newer).append(sid)
    return result


def _link_customer(ledger, customer, observed_at: int) -> None:
    """An expanded customer carries the email that matches offline members; keep it."""
    if isinstance(customer, Mapping) and customer.get("email") and not customer.get("deleted"):
        ledger.link_customer(
            customer["id"],
            customer["email"],
            name=customer.get("name"),
            metadata=customer.get("metadata") or {},
            observed_at=observed_at,
        )
