"""Reconciling the ledger with Stripe (docs/ledger.md): what differs (pure) and making it
match (shell). A listed subscription is applied as a snapshot observed when the listing
began, so the ledger's ordering rules keep any state set by a newer webhook. The listing is
compared a page at a time as Stripe's pages arrive: a run holds the listed ids and, until
ending the extra subscriptions can no longer be refused, the repairs it will make; never
the listing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import islice

from membership.core import audit
from membership.ledger import Ledger
from membership.ledger.commands import ApplySubscription, LinkCustomer
from membership.ledger.model import SubRecord, normalize_email
from membership.stripe.events import customer_name, subscription_from_object


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


# Listed subscriptions compared at a time: Stripe's page. Only one batch of the listing is
# held; of the rest, its ids (and the repairs `Repairs` holds).
BATCH = 100
PROGRESS_EVERY = 500
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


@dataclass
class Scan:
    """What one pass over the listing found: the listed ids, the drift among them, and how
    many of the listed were open in the ledger (`matched`)."""

    listed: set[str] = field(default_factory=set)
    missing: list[str] = field(default_factory=list)
    differs: list[StatusChange] = field(default_factory=list)
    unrepairable: list[str] = field(default_factory=list)
    matched: int = 0


class Repairs:
    """The snapshots and customer links an applied sync makes, into `result`. Held while
    ending the extra subscriptions may yet be refused (nothing may change before that), and
    written as they come once it cannot be: when at most `prune_refusal`'s share of the
    subscriptions open at the start (`open_before`) is still unlisted. So a first sync (an
    empty ledger) or one that finds most of the ledger early holds a batch at most."""

    def __init__(self, ledger: Ledger, result: SyncResult, open_before: int, force: bool):
        self.ledger, self.result, self.open_before = ledger, result, open_before
        self.writing = force
        self.snapshots: list[ApplySubscription] = []
        self.links: dict[str, LinkCustomer] = {}

    def batch_done(self, found: Scan) -> None:
        if not self.writing and found.listed:
            unlisted = self.open_before - found.matched
            self.writing = prune_refusal(unlisted, self.open_before, len(found.listed)) is None
        if self.writing:
            self.write()

    def write(self) -> None:
        for command in self.links.values():
            if self.ledger.writer.apply(command).outcome == "applied":
                self.result.linked.append(command.customer)
        for command in self.snapshots:
            outcome = self.ledger.writer.apply(command).outcome
            (self.result.applied if outcome == "applied" else self.result.kept_newer).append(
                command.sub.id
            )
        self.links, self.snapshots = {}, []


def scan(
    ledger: Ledger,
    listing: Iterable[dict],
    *,
    observed_at: int,
    repairs: Repairs | None = None,
    progress: Callable[[int], None] | None = None,
) -> Scan:
    """Compare the listing with the ledger a batch at a time as it is read (the listing is
    an iterator over Stripe's pages), reporting progress every PROGRESS_EVERY."""
    found, read = Scan(), 0
    items = iter(listing)
    while batch := list(islice(items, BATCH)):
        stripe = {s["id"]: s for s in batch if s["id"] not in found.listed}
        found.listed.update(stripe)
        records = ledger.queries.subscriptions_by_id(list(stripe))
        found.matched += sum(1 for r in records.values() if r is not None and not r.sub.final)
        drift = compare(
            {sid: r.sub.status for sid, r in records.items() if r is not None},
            {sid: s["status"] for sid, s in stripe.items()},
        )
        found.missing += drift.missing
        found.differs += drift.status_differs
        # A final status stands against every later state, a listing's too (the rules).
        found.unrepairable += [
            c.subscription_id for c in drift.status_differs if records[c.subscription_id].sub.final
        ]
        if repairs is not None:
            repairs.links.update(_links(ledger, stripe.values(), observed_at, repairs.links))
            for sid in (*drift.missing, *(c.subscription_id for c in drift.status_differs)):
                repairs.snapshots.append(_snapshot(stripe[sid], observed_at))
            repairs.batch_done(found)
        if progress is not None:
            for mark in range(
                (read // PROGRESS_EVERY + 1) * PROGRESS_EVERY, read + len(batch) + 1, PROGRESS_EVERY
            ):
                progress(mark)
        read += len(batch)
    return found


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
    result = SyncResult(drift=Drift(), listed=0)
    repairs = None
    if apply:
        open_before = sum(1 for r in ledger.queries.subscriptions() if not r.sub.final)
        repairs = Repairs(ledger, result, open_before, force)
    found = scan(ledger, listing, observed_at=observed_at, repairs=repairs, progress=progress)
    # An ended subscription Stripe no longer lists is history, not drift: it counts for nothing.
    extras: list[SubRecord] = []
    open_in_ledger = 0
    for record in ledger.queries.subscriptions():
        if not record.sub.final:
            open_in_ledger += 1
            if record.id not in found.listed:
                extras.append(record)
    extras.sort(key=lambda record: record.id)
    result.drift = Drift(
        missing=tuple(sorted(found.missing)),
        extra=tuple(record.id for record in extras),
        status_differs=tuple(sorted(found.differs, key=lambda c: c.subscription_id)),
    )
    result.listed = len(found.listed)
    result.unrepairable = sorted(found.unrepairable)
    if repairs is None:
        return result

    # Once repairs are being written the listing had shown enough of the ledger: not refused.
    refusal = prune_refusal(len(extras), open_in_ledger, len(found.listed))
    if refusal and not repairs.writing:
        raise SyncRefused(refusal)
    repairs.write()

    for record in extras:
        if record.sub.created >= observed_at - EXTRA_GRACE_SECONDS:
            result.kept_newer.append(record.id)
            continue
        gone = {
            "id": record.id,
            "object": "subscription",
            "customer": record.sub.customer,
            "status": "canceled",
            "ended_at": observed_at,
            "items": {"data": []},
        }
        outcome = ledger.writer.apply(_snapshot(gone, observed_at))
        (result.applied if outcome.outcome == "applied" else result.kept_newer).append(record.id)
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


def _snapshot(subscription: Mapping, observed_at: int) -> ApplySubscription:
    """A subscription as the listing showed it at `observed_at`: it competes with webhook
    events by the same rules, as if it were an event created then, so a webhook newer than
    the listing is not overwritten (`stale`)."""
    sub = subscription_from_object(
        subscription, created=int(observed_at), source=f"sync@{int(observed_at)}"
    )
    return ApplySubscription(sub)


def _links(
    ledger: Ledger, listed: Iterable[Mapping], observed_at: int, linking: Mapping[str, LinkCustomer]
) -> dict[str, LinkCustomer]:
    """The links of the listed subscriptions' expanded customers whose email the ledger does
    not have yet, or for a customer without one, whose name (nor `linking`, the links found
    before), by customer id."""
    customers = {
        customer["id"]: customer
        for customer in (subscription.get("customer") for subscription in listed)
        if isinstance(customer, Mapping)
        and not customer.get("deleted")
        and (customer.get("email") or customer_name(customer.get("name")))
        and customer["id"] not in linking
    }
    known = ledger.queries.customers_by_id(list(customers))

    def news(cid: str, customer: Mapping) -> bool:
        email = normalize_email(customer.get("email"))
        if known[cid] is None:
            return True
        if email:
            return known[cid].email != email
        return known[cid].email is None and known[cid].name != customer_name(customer["name"])

    return {
        cid: LinkCustomer(
            cid,
            customer.get("email"),
            customer_name(customer.get("name")),
            dict(customer.get("metadata") or {}),
            int(observed_at),
        )
        for cid, customer in customers.items()
        if news(cid, customer)
    }
