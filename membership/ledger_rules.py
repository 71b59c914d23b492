"""The member ledger's rules, as plain functions of plain data (no Redis, no clock).

Everything that decides the count lives here: which subscription state stands,
who is a member, how offline members and Stripe customers are matched, what a
subscription adds to MRR, what a one-time contribution nets. `membership.ledger`
loads the few records an event touches from Redis, calls these functions, and
writes what they return in one transaction; `MemoryLedger` applies the same
functions to dicts and is the reference the tests compare the Redis ledger with.

Counting rules (the contract of issue 3):

- A subscription's state is the one from the event with the greatest `created`;
  on the same second the later lifecycle stage wins (incomplete < trialing <
  active < past_due < unpaid < paused); on the same second and stage, the one
  applied last. `canceled` and `incomplete_expired` are final: once seen they
  stand against every non-final state, older or newer (between two final
  states the same created/stage order applies, canceled after incomplete_expired).
- A deleted customer's subscriptions end as finally as `canceled`: their
  effective status is `canceled` unless Stripe's own status is already final.
- A Stripe customer is a member when at least one subscription's effective
  status is in MEMBER_STATUSES; a customer counts once however many.
- An offline member (added by staff, by email) counts once, unless a Stripe
  customer with the same email (see `normalize_email`) is a member: then the
  person is counted once, as that Stripe customer.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

FINAL_STATUSES = frozenset({"canceled", "incomplete_expired"})
LIFECYCLE = ("incomplete", "trialing", "active", "past_due", "unpaid", "paused")
# Rank within one second: the lifecycle order, then the final states.
_RANK = {status: i for i, status in enumerate((*LIFECYCLE, "incomplete_expired", "canceled"))}
# Statuses whose subscriptions count towards monthly recurring revenue (Stripe's
# own MRR excludes trials; past_due is still expected to pay).
MRR_STATUSES = frozenset({"active", "past_due"})
# Months per interval, for monthly normalization.
_MONTHS = {"day": 12 / 365, "week": 12 / 52, "month": 1, "year": 12}

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


class LedgerInputError(ValueError):
    """Input a caller (staff, a sync) gave that the ledger cannot take; the message says why."""


# --- Subscriptions ---------------------------------------------------------


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


def stands_over(new: Subscription, old: Subscription | None) -> bool:
    """Whether `new` replaces `old` as the subscription's state (ties: the newcomer wins)."""
    if old is None:
        return True
    if old.final != new.final:
        return new.final
    return (new.created, new.rank) >= (old.created, old.rank)


def effective_status(stripe_status: str, customer_deleted: bool) -> str:
    """The status that counts: a deleted customer's subscriptions are `canceled`."""
    if customer_deleted and stripe_status not in FINAL_STATUSES:
        return "canceled"
    return stripe_status


def monthly_amount(amount: int, interval: str, interval_count: int = 1) -> int:
    """`amount` per `interval_count` `interval`s, as minor units per month (rounded)."""
    months = _MONTHS.get(interval)
    if not months or amount <= 0:
        return 0
    return round(amount / (months * max(interval_count, 1)))


def mrr_of(sub: Subscription, status: str) -> tuple[str, int]:
    """(currency, monthly minor units) this subscription adds to MRR in `status`."""
    if status not in MRR_STATUSES or not sub.currency:
        return sub.currency, 0
    return sub.currency, monthly_amount(sub.amount, sub.interval, sub.interval_count)


@dataclass(frozen=True)
class SubRecord:
    """A stored subscription: the state that stands, and the status that counts."""

    sub: Subscription
    status: str  # effective status
    # Whether it was counted when stored. The count was built with the member
    # statuses of that moment; leaving it we must undo exactly that, whatever
    # MEMBER_STATUSES says now. None: stored before the flag existed.
    live: bool | None = None

    @property
    def id(self) -> str:
        return self.sub.id

    def was_live(self, statuses: frozenset[str]) -> bool:
        return self.live if self.live is not None else self.status in statuses


# --- Customers, emails, offline members ------------------------------------


def normalize_email(email: str | None) -> str | None:
    """How emails are matched: trimmed and lower-cased, nothing else; None when empty."""
    if email is None:
        return None
    value = str(email).strip().lower()
    return value or None


def valid_email(email: str | None) -> str:
    """The normalized email, or LedgerInputError naming the problem."""
    value = normalize_email(email)
    if not value or len(value) > 254 or not _EMAIL.match(value):
        raise LedgerInputError(f"expected an email address like reader@example.org, got {email!r}")
    return value


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
class EmailBucket:
    """One email: how many member Stripe customers have it, and whether staff added it offline."""

    email: str
    live: int = 0
    offline: bool = False


def bucket_count(live: int, offline: bool) -> int:
    """How many members one email contributes: its member customers, or 1 for an
    offline member no member customer shares the email with."""
    return live + (1 if offline and live == 0 else 0)


def member_delta(was_member: bool, is_member: bool, bucket: EmailBucket | None) -> tuple[int, int]:
    """(count delta, bucket live delta) when a customer's membership changes."""
    change = int(is_member) - int(was_member)
    if bucket is None or change == 0:
        return change, 0
    before = bucket_count(bucket.live, bucket.offline)
    after = bucket_count(bucket.live + change, bucket.offline)
    return after - before, change


def count_members(
    customers: Iterable[tuple[str | None, bool]], offline_emails: Iterable[str]
) -> int:
    """The count from scratch: (email, is member) per Stripe customer, plus offline emails."""
    live_by_email: Counter[str] = Counter()
    without_email = 0
    for email, member in customers:
        if not member:
            continue
        email = normalize_email(email)
        if email:
            live_by_email[email] += 1
        else:
            without_email += 1
    offline = {normalize_email(e) for e in offline_emails}
    uncovered = sum(1 for e in offline if e and live_by_email[e] == 0)
    return without_email + sum(live_by_email.values()) + uncovered


# --- Commands: what an event (or staff, or a sync) asks of the ledger -------


@dataclass(frozen=True)
class ApplySubscription:
    sub: Subscription


@dataclass(frozen=True)
class LinkCustomer:
    """A checkout told us the customer's email, name and metadata."""

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
class Ignore:
    reason: str


Command = (
    ApplySubscription
    | LinkCustomer
    | DeleteCustomer
    | RecordContribution
    | RecordRefund
    | AddTimeline
    | Ignore
)


# --- Decisions: (what is stored, the command) -> what changes ----------------


@dataclass(frozen=True)
class SubChange:
    """One subscription's new record and what that does to its customer, MRR and count."""

    record: SubRecord
    was_live: bool
    is_live: bool
    mrr: tuple[tuple[str, int], ...]  # (currency, delta) pairs, zero deltas left out


def _mrr_change(old: SubRecord | None, new: SubRecord) -> tuple[tuple[str, int], ...]:
    deltas: Counter[str] = Counter()
    if old is not None:
        cur, value = mrr_of(old.sub, old.status)
        deltas[cur] -= value
    cur, value = mrr_of(new.sub, new.status)
    deltas[cur] += value
    return tuple((c, d) for c, d in sorted(deltas.items()) if c and d)


def change_subscription(
    old: SubRecord | None,
    new_sub: Subscription,
    customer_deleted: bool,
    member_statuses: Iterable[str],
) -> SubChange | None:
    """The change `new_sub` makes, or None when the stored state stands (stale)."""
    if old is not None and not stands_over(new_sub, old.sub):
        return None
    if old is not None:  # a subscription never changes customer
        new_sub = replace(new_sub, customer=old.sub.customer)
    statuses = frozenset(member_statuses)
    status = effective_status(new_sub.status, customer_deleted)
    record = SubRecord(new_sub, status, live=status in statuses)
    return SubChange(
        record=record,
        was_live=old is not None and old.was_live(statuses),
        is_live=record.live,
        mrr=_mrr_change(old, record),
    )


def end_for_deleted_customer(old: SubRecord, member_statuses: Iterable[str]) -> SubChange:
    """The change a `customer.deleted` makes to one of the customer's subscriptions."""
    statuses = frozenset(member_statuses)
    status = effective_status(old.sub.status, True)
    record = SubRecord(old.sub, status, live=status in statuses)
    return SubChange(
        record=record,
        was_live=old.was_live(statuses),
        is_live=record.live,
        mrr=_mrr_change(old, record),
    )


def link_stands(customer: Customer, email: str | None, created: int) -> bool:
    """Whether a checkout's (email, time) replaces the stored link: newer wins; same
    second, the greater address. The same address arriving later still stands (it
    moves the link's clock, so an older checkout with another address cannot then
    replace it): the result never depends on delivery order."""
    email = normalize_email(email)
    if not email:
        return False
    if customer.email is None:
        return True
    return (created, email) > (customer.email_created, customer.email)


# --- One-time contributions -------------------------------------------------


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


def contributor_of(customer: str | None, email: str | None, key: str) -> str:
    """Who a contribution is from: the Stripe customer, else the email, else the payment."""
    if customer:
        return f"customer:{customer}"
    email = normalize_email(email)
    if email:
        return f"email:{email}"
    return f"payment:{key}"


def record_payment(old: Contribution | None, cmd: RecordContribution) -> Contribution:
    base = old or Contribution(key=cmd.key)
    if base.paid:  # checkout.session.completed and async_payment_succeeded: same payment
        return base
    return replace(
        base,
        paid=True,
        amount=cmd.amount,
        currency=cmd.currency,
        person=contributor_of(cmd.customer, cmd.email, cmd.key),
        customer=cmd.customer,
        email=normalize_email(cmd.email),
        created=cmd.created,
        metadata=json.dumps(dict(cmd.metadata), sort_keys=True),
    )


def record_refund(old: Contribution | None, cmd: RecordRefund) -> Contribution:
    base = old or Contribution(key=cmd.key, currency=cmd.currency)
    return replace(base, refunded=max(base.refunded, cmd.amount_refunded))


@dataclass(frozen=True)
class ContributionChange:
    record: Contribution
    sums: tuple[tuple[str, int], ...]  # (currency, net delta)
    counts: tuple[tuple[str, int], ...]  # (currency, active contributions delta)
    person_delta: int  # change in the contributor's number of active contributions


def change_contribution(old: Contribution | None, new: Contribution) -> ContributionChange | None:
    """What replacing `old` by `new` changes, or None when nothing does."""
    if old == new:
        return None
    sums: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    if old is not None:
        sums[old.currency] -= old.net
        counts[old.currency] -= int(old.active)
    sums[new.currency] += new.net
    counts[new.currency] += int(new.active)
    was = old is not None and old.active
    return ContributionChange(
        record=new,
        sums=tuple((c, d) for c, d in sorted(sums.items()) if c and d),
        counts=tuple((c, d) for c, d in sorted(counts.items()) if c and d),
        person_delta=int(new.active) - int(was),
    )


def contributors_delta(person_active_before: int, person_delta: int) -> int:
    """Change in the number of contributors when one person's active contributions change."""
    after = person_active_before + person_delta
    return int(after > 0) - int(person_active_before > 0)


# --- The reference ledger, in memory ---------------------------------------


@dataclass
class MemoryLedger:
    """The ledger on dicts, with the same decisions as the Redis ledger.

    It is the executable statement of the rules: property tests feed it events
    in any order and compare; the Redis ledger is tested against it.
    """

    member_statuses: tuple[str, ...]
    subs: dict[str, SubRecord] = field(default_factory=dict)
    customers: dict[str, Customer] = field(default_factory=dict)
    offline: set[str] = field(default_factory=set)
    contributions: dict[str, Contribution] = field(default_factory=dict)
    count: int = 0
    mrr: Counter = field(default_factory=Counter)
    contribution_sums: Counter = field(default_factory=Counter)
    contributors: int = 0
    seen: set[str] = field(default_factory=set)

    def bucket(self, email: str | None) -> EmailBucket | None:
        if not email:
            return None
        live = sum(1 for c in self.customers.values() if c.email == email and c.member)
        return EmailBucket(email, live, email in self.offline)

    def apply_event(self, event_id: str, command: Command) -> str:
        """applied | stale | ignored | duplicate, as the Redis ledger answers."""
        if event_id in self.seen:
            return "duplicate"
        self.seen.add(event_id)
        return self.apply(command)

    def apply(self, command: Command) -> str:
        if isinstance(command, ApplySubscription):
            return self._subscription(command.sub)
        if isinstance(command, LinkCustomer):
            return self._link(command)
        if isinstance(command, DeleteCustomer):
            return self._delete(command)
        if isinstance(command, RecordContribution | RecordRefund):
            old = self.contributions.get(command.key)
            new = (
                record_payment(old, command)
                if isinstance(command, RecordContribution)
                else record_refund(old, command)
            )
            change = change_contribution(old, new)
            if change is None:
                return "stale"
            self.contributions[command.key] = new
            for cur, delta in change.sums:
                self.contribution_sums[cur] += delta
            return "applied"
        if isinstance(command, AddTimeline):
            return "applied"
        return "ignored"

    def _customer(self, customer_id: str) -> Customer:
        return self.customers.get(customer_id) or Customer(customer_id)

    def _take(self, customer: Customer, changes: list[SubChange]) -> None:
        live = customer.live + sum(int(c.is_live) - int(c.was_live) for c in changes)
        delta, _ = member_delta(customer.member, live > 0, self.bucket(customer.email))
        self.count += delta
        self.customers[customer.id] = replace(customer, live=live)
        for change in changes:
            self.subs[change.record.id] = change.record
            for cur, d in change.mrr:
                self.mrr[cur] += d

    def _subscription(self, sub: Subscription) -> str:
        old = self.subs.get(sub.id)
        customer = self._customer(old.sub.customer if old else sub.customer)
        change = change_subscription(
            old, sub, customer.deleted_at is not None, self.member_statuses
        )
        if change is None:
            return "stale"
        self._take(customer, [change])
        return "applied"

    def _link(self, cmd: LinkCustomer) -> str:
        customer = self._customer(cmd.customer)
        if not link_stands(customer, cmd.email, cmd.created):
            return "stale"
        email = normalize_email(cmd.email)
        if customer.member and email != customer.email:
            out, _ = member_delta(True, False, self.bucket(customer.email))
            self.customers[customer.id] = replace(customer, live=0)
            into, _ = member_delta(False, True, self.bucket(email))
            self.count += out + into
        self.customers[customer.id] = replace(
            customer, email=email, email_created=cmd.created, name=cmd.name
        )
        return "applied"

    def _delete(self, cmd: DeleteCustomer) -> str:
        customer = self._customer(cmd.customer)
        if customer.deleted_at is not None and customer.deleted_at <= cmd.created:
            return "stale"
        customer = replace(customer, deleted_at=cmd.created)
        changes = [
            end_for_deleted_customer(rec, self.member_statuses)
            for rec in self.subs.values()
            if rec.sub.customer == customer.id
        ]
        self._take(customer, changes)
        return "applied"

    def add_offline(self, email: str) -> bool:
        email = valid_email(email)
        if email in self.offline:
            return False
        self.count += bucket_count(self.bucket(email).live, True) - bucket_count(
            self.bucket(email).live, False
        )
        self.offline.add(email)
        return True

    def remove_offline(self, email: str) -> bool:
        email = valid_email(email)
        if email not in self.offline:
            return False
        live = self.bucket(email).live
        self.count += bucket_count(live, False) - bucket_count(live, True)
        self.offline.discard(email)
        return True

    def statuses(self) -> dict[str, str]:
        return {sub_id: rec.status for sub_id, rec in self.subs.items()}

    def recount(self) -> int:
        """The count from scratch (`count_members`), to check the incremental one."""
        return count_members(((c.email, c.member) for c in self.customers.values()), self.offline)
