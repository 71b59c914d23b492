"""Reconciling the ledger with Stripe (docs/ledger.md): what differs (pure) and making it
match (shell). A listed subscription is applied as a snapshot observed when the listing
began, so the ledger's ordering rules keep any state set by a newer webhook.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from membership.core import audit
from membership.ledger import Ledger
from membership.ledger.commands import ApplySubscription, LinkCustomer
from membership.ledger.model import normalize_email
from membership.stripe.events import subscription_from_object


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
    unrepairable: list[str] = field(default_factory=list)  # final in the ledger, not in Stripe
    linked: list[str] = field(default_factory=list)  # customers whose email was linked


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
# Ending subscriptions is final, so a listing that would end many is suspect: the
# wrong account or mode (a test key), or a key that cannot see them all.
PRUNE_LIMIT_SHARE = 0.25
PRUNE_LIMIT_FLOOR = 10


class SyncRefused(Exception):
    """The listing looks incomplete; nothing was changed. The message says why."""


def prune_refusal(extras: int, open_in_ledger: int, listed: int) -> str | None:
    """Why ending `extras` subscriptions would be unsafe, or None when it is fine."""
    if extras and listed == 0:
        return (
            f"Stripe listed no subscriptions, but the ledger has {open_in_ledger} open ones: "
            "is STRIPE_API_KEY for this account and mode (live/test)?"
        )
    if extras > PRUNE_LIMIT_FLOOR and extras > PRUNE_LIMIT_SHARE * open_in_ledger:
        return (
            f"{extras} of the ledger's {open_in_ledger} open subscriptions are unknown to "
            "Stripe; ending them cannot be undone. Check STRIPE_API_KEY, or pass --force"
        )
    return None


def run(
    ledger: Ledger,
    listing: Iterable[dict],
    *,
    observed_at: int,
    apply: bool,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> SyncResult:
    """Compare the ledger with a full listing taken from `observed_at`; repair it when `apply`
    (docs/ledger.md, "Reconciling with Stripe"). Raises SyncRefused, having changed nothing,
    when ending the extra subscriptions looks unsafe (`prune_refusal`) and not `force`."""
    listed = collect(listing, progress)
    # An ended subscription Stripe no longer lists is history, not drift: it counts for nothing.
    records = {
        record.id: record
        for record in ledger.queries.subscriptions()
        if record.id in listed or not record.sub.final
    }
    drift = compare(
        {sid: record.sub.status for sid, record in records.items()},
        {sid: sub["status"] for sid, sub in listed.items()},
    )
    result = SyncResult(drift=drift, listed=len(listed))
    # A final status stands against every later state, a listing's too (the counting rules).
    result.unrepairable = [
        c.subscription_id for c in drift.status_differs if records[c.subscription_id].sub.final
    ]
    if not apply:
        return result

    open_in_ledger = sum(1 for r in records.values() if not r.sub.final)
    refusal = prune_refusal(len(drift.extra), open_in_ledger, len(listed))
    if refusal and not force:
        raise SyncRefused(refusal)

    emails = {c.id: c.email for c in ledger.queries.customers()}
    for subscription in listed.values():
        customer = subscription.get("customer")
        if _link_customer(ledger, customer, emails, observed_at):
            result.linked.append(customer["id"])

    for sid in (*drift.missing, *(c.subscription_id for c in drift.status_differs)):
        outcome = _apply_snapshot(ledger, listed[sid], observed_at)
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
        outcome = _apply_snapshot(ledger, gone, observed_at)
        (result.applied if outcome.outcome == "applied" else result.kept_newer).append(sid)
    return result


@dataclass(frozen=True)
class AuditedSync:
    result: SyncResult
    members_before: int | None
    members_after: int | None


def run_audited(
    ledger: Ledger,
    listing: Iterable[dict],
    *,
    actor: str,
    observed_at: int,
    apply: bool,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> AuditedSync:
    """`run` with the member count before and after, an applied sync audited
    (`sync_applied`) under `actor`: the one door of the CLI and the dashboard."""
    actor = audit.check_actor(actor)
    before = ledger.queries.count()
    result = run(
        ledger, listing, observed_at=observed_at, apply=apply, force=force, progress=progress
    )
    after = ledger.queries.count()
    if apply:
        audit.record(
            ledger.writer.redis,
            ledger.writer.keys,
            actor=actor,
            action="sync_applied",
            target="stripe",
            before={"members": before},
            after={
                "members": after,
                "applied": len(result.applied),
                "kept_newer": len(result.kept_newer),
                "linked_customers": len(result.linked),
            },
        )
    return AuditedSync(result, before, after)


def _apply_snapshot(ledger: Ledger, subscription: Mapping, observed_at: int):
    """Apply a subscription as the listing showed it at `observed_at`: it competes with
    webhook events by the same rules, as if it were an event created then, so a webhook
    newer than the listing is not overwritten (`stale`)."""
    sub = subscription_from_object(
        subscription, created=int(observed_at), source=f"sync@{int(observed_at)}"
    )
    return ledger.writer.apply(ApplySubscription(sub))


def _link_customer(
    ledger: Ledger, customer, known: Mapping[str, str | None], observed_at: int
) -> bool:
    """Link an expanded customer's email when the ledger does not have it yet."""
    if not isinstance(customer, Mapping) or customer.get("deleted") or not customer.get("email"):
        return False
    if known.get(customer["id"]) == normalize_email(customer["email"]):
        return False
    command = LinkCustomer(
        customer["id"],
        customer["email"],
        customer.get("name"),
        dict(customer.get("metadata") or {}),
        int(observed_at),
    )
    outcome = ledger.writer.apply(command)
    return outcome.outcome == "applied"
