"""The ledger's rules, as plain functions of plain data: every rule is written here once.

`load(command, reader)` names the records a command touches (the reader is the only I/O);
`decide(command, loaded, statuses)` turns them into a `Decision`: the records' new versions,
as (old, new) pairs. Every record contributes `count_of(record)` members and `counters_of` to
the `stats` counters, so a change adds new minus old (`deltas`) and a rebuild sums them.
The counting rules themselves: docs/ledger.md, "Counting rules".
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol

from membership.ledger import commands
from membership.ledger.model import (
    FINAL_STATUSES,
    Contribution,
    Contributor,
    Customer,
    EmailBucket,
    Offline,
    Record,
    SubRecord,
    Subscription,
    normalize_email,
)

# Statuses whose subscriptions count towards monthly recurring revenue (Stripe's
# own MRR excludes trials; past_due is still expected to pay).
MRR_STATUSES = frozenset({"active", "past_due"})
# Months per interval, for monthly normalization.
_MONTHS = {"day": 12 / 365, "week": 12 / 52, "month": 1, "year": 12}

# --- Subscriptions ---------------------------------------------------------


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


def sub_record(
    sub: Subscription, customer_deleted: bool, statuses: frozenset[str], opening: str = ""
) -> SubRecord:
    """How `sub` is stored: with its effective status, whether it counts now, and the
    status change that opened it (`SubRecord.opening`)."""
    status = effective_status(sub.status, customer_deleted)
    return SubRecord(sub, status, status in statuses, opening)


# --- Customers, emails, offline members ------------------------------------


def bucket_count(live: int, offline: bool) -> int:
    """How many members one email contributes: its member customers, or 1 for an
    offline member no member customer shares the email with."""
    return live + (1 if offline and live == 0 else 0)


def link_stands(
    customer: Customer, email: str | None, created: int, name: str | None = None
) -> bool:
    """Whether a checkout's (email, time) replaces the stored link: newer wins; same
    second, the greater address. The same address arriving later still stands (it
    moves the link's clock, so an older checkout with another address cannot then
    replace it): the result never depends on delivery order.

    A link without an email (a Stripe customer kept without one) only names a customer no
    email was linked to, newer name over older: any link with an email replaces it, and it
    replaces none, so the result still never depends on delivery order."""
    email = normalize_email(email)
    if not email:
        return (
            bool(name)
            and customer.email is None
            and ((created, name) > (customer.email_created, customer.name or ""))
        )
    if customer.email is None:
        return True
    return (created, email) > (customer.email_created, customer.email)


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


# --- One-time contributions -------------------------------------------------


def contributor_of(customer: str | None, email: str | None, key: str) -> str:
    """Who a contribution is from: the Stripe customer, else the email, else the payment."""
    if customer:
        return f"customer:{customer}"
    email = normalize_email(email)
    if email:
        return f"email:{email}"
    return f"payment:{key}"


def record_payment(old: Contribution | None, cmd: commands.RecordContribution) -> Contribution:
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


def record_refund(old: Contribution | None, cmd: commands.RecordRefund) -> Contribution:
    base = old or Contribution(key=cmd.key, currency=cmd.currency)
    return replace(base, refunded=max(base.refunded, cmd.amount_refunded))


def next_contribution(
    old: Contribution | None, cmd: commands.RecordContribution | commands.RecordRefund
):
    if isinstance(cmd, commands.RecordContribution):
        return record_payment(old, cmd)
    return record_refund(old, cmd)


# --- What a record contributes: the count and the counters ------------------


def count_of(record: Record | None) -> int:
    """Members this record accounts for: a member customer without an email, or an email."""
    if isinstance(record, Customer):
        return int(record.member and not record.email)
    if isinstance(record, EmailBucket):
        return bucket_count(record.live, record.is_offline)
    return 0


def counters_of(record: Record | None, statuses: frozenset[str]) -> dict[str, int]:
    """The `stats` counters this record adds to (field name -> amount)."""
    if isinstance(record, SubRecord):
        out = {f"subs:{record.status}": 1}
        if record.was_live(statuses):
            out[f"plan:{record.sub.plan_label}"] = 1
        currency, mrr = mrr_of(record.sub, record.status)
        if currency and mrr:
            out[f"mrr:{currency}"] = mrr
        return out
    if isinstance(record, Customer):
        return {"stripe_members": int(record.member)}
    if isinstance(record, EmailBucket):
        return {
            "offline_members": int(record.is_offline),
            "offline_also_in_stripe": int(record.is_offline and record.live > 0),
        }
    if isinstance(record, Contribution):
        if not record.currency:
            return {}
        return {
            f"contrib_sum:{record.currency}": record.net,
            f"contrib_count:{record.currency}": int(record.active),
        }
    if isinstance(record, Contributor):
        return {"contributors": int(record.active > 0)}
    return {}


Change = tuple[Record | None, Record]  # (stored before, to store)


def deltas(changes: Iterable[Change], statuses: frozenset[str]) -> tuple[int, dict[str, int]]:
    """(member count delta, counter deltas without zeros) of a decision's changes."""
    count = 0
    counters: dict[str, int] = {}
    for old, new in changes:
        count += count_of(new) - count_of(old)
        for sign, record in ((1, new), (-1, old)):
            for name, amount in counters_of(record, statuses).items():
                counters[name] = counters.get(name, 0) + sign * amount
    return count, {name: d for name, d in sorted(counters.items()) if d}


# --- Loading: which records a command touches --------------------------------


class Reader(Protocol):
    """Read access to stored records (absent customers, buckets, contributors come back empty)."""

    def subscription(self, sub_id: str) -> SubRecord | None: ...
    def customer(self, customer_id: str) -> Customer: ...
    def customer_subscriptions(self, customer_id: str) -> list[SubRecord]: ...
    def bucket(self, email: str) -> EmailBucket: ...
    def contribution(self, key: str) -> Contribution | None: ...
    def contributor(self, person: str) -> Contributor: ...


@dataclass(frozen=True)
class Loaded:
    sub: SubRecord | None = None
    customer: Customer | None = None
    customer_subs: tuple[SubRecord, ...] = ()
    buckets: Mapping[str, EmailBucket] = field(default_factory=dict)
    contribution: Contribution | None = None
    contributor: Contributor | None = None
    timeline_customer: str | None = None


def _buckets(reader: Reader, *emails: str | None) -> dict[str, EmailBucket]:
    return {e: reader.bucket(e) for e in emails if e}


def load(command: commands.Command, reader: Reader) -> Loaded:
    """Read what `decide` needs for `command`, in the order each read depends on the last."""
    if isinstance(command, commands.ApplySubscription):
        old = reader.subscription(command.sub.id)
        customer = reader.customer(old.sub.customer if old else command.sub.customer)
        return Loaded(sub=old, customer=customer, buckets=_buckets(reader, customer.email))
    if isinstance(command, commands.DeleteCustomer):
        customer = reader.customer(command.customer)
        subs = tuple(reader.customer_subscriptions(command.customer))
        return Loaded(
            customer=customer, customer_subs=subs, buckets=_buckets(reader, customer.email)
        )
    if isinstance(command, commands.LinkCustomer):
        customer = reader.customer(command.customer)
        buckets = {}
        if customer.member and link_stands(customer, command.email, command.created, command.name):
            buckets = _buckets(reader, customer.email, normalize_email(command.email))
        return Loaded(customer=customer, buckets=buckets)
    if isinstance(command, commands.RecordContribution | commands.RecordRefund):
        old = reader.contribution(command.key)
        person = next_contribution(old, command).person
        contributor = reader.contributor(person) if person else None
        return Loaded(contribution=old, contributor=contributor)
    if isinstance(command, commands.AddTimeline):
        customer = command.customer
        if not customer and command.payment_intent:
            paid = reader.contribution(command.payment_intent)
            customer = paid.customer if paid else None
        return Loaded(timeline_customer=customer)
    if isinstance(command, commands.AddOffline | commands.RemoveOffline):
        return Loaded(buckets=_buckets(reader, command.email))
    return Loaded()


# --- Deciding ------------------------------------------------------------------


@dataclass(frozen=True)
class Audit:
    """A staff change as the audit log records it (the actor comes from the caller)."""

    action: str
    target: str
    before: object = None
    after: object = None


@dataclass(frozen=True)
class Decision:
    """applied | stale | ignored | unchanged, the records to store, and what else to keep."""

    outcome: str
    detail: str = ""
    changes: tuple[Change, ...] = ()
    timeline: tuple[str | None, dict] | None = None  # (customer or None: unlinked, entry)
    audit: Audit | None = None


def _membership(
    customer: Customer,
    new_customer: Customer,
    buckets: Mapping[str, EmailBucket],
) -> list[Change]:
    """The customer's new record and, if its membership flips, its email's."""
    changes: list[Change] = [(customer, new_customer)]
    flip = int(new_customer.member) - int(customer.member)
    if flip and customer.email:
        bucket = buckets[customer.email]
        changes.append((bucket, replace(bucket, live=bucket.live + flip)))
    return changes


def _live_change(pairs: Iterable[tuple[SubRecord | None, SubRecord]], statuses) -> int:
    return sum(
        int(new.was_live(statuses)) - int(old.was_live(statuses) if old else False)
        for old, new in pairs
    )


STATUS_CHANGE = "subscription.status"  # a timeline entry: a subscription's status changed


def _subscription(cmd: commands.ApplySubscription, loaded: Loaded, statuses) -> Decision:
    old, customer, sub = loaded.sub, loaded.customer, cmd.sub
    if old is not None and not stands_over(sub, old.sub):
        return Decision("stale", f"{sub.id}: {old.sub.status}@{old.sub.created} stands")
    if old is not None:  # a subscription never changes customer
        sub = replace(sub, customer=old.sub.customer)
    record = sub_record(sub, customer.deleted_at is not None, statuses)
    live = customer.live + _live_change([(old, record)], statuses)
    changes = [(old, record), *_membership(customer, replace(customer, live=live), loaded.buckets)]
    before = old.status if old else "(new)"
    timeline = None
    if old is None or old.status != record.status:  # the status history a member page shows
        entry = {  # the timeline's key names the customer; no amount
            "kind": STATUS_CHANGE,
            "created": sub.created,
            "subscription": sub.id,
            "from": old.status if old else "",
            "to": record.status,
        }
        timeline = (sub.customer, entry)
    detail = f"{sub.id}: {before} -> {record.status}"
    return Decision("applied", detail, tuple(changes), timeline=timeline)


def _delete_customer(cmd: commands.DeleteCustomer, loaded: Loaded, statuses) -> Decision:
    customer = loaded.customer
    if customer.deleted_at is not None and customer.deleted_at <= cmd.created:
        return Decision("stale", f"{cmd.customer} already deleted")
    pairs = [(r, sub_record(r.sub, True, statuses)) for r in loaded.customer_subs]
    new_customer = replace(
        customer, deleted_at=cmd.created, live=customer.live + _live_change(pairs, statuses)
    )
    changes = [*pairs, *_membership(customer, new_customer, loaded.buckets)]
    return Decision(
        "applied", f"{cmd.customer} deleted, {len(pairs)} subscriptions", tuple(changes)
    )


def _link(cmd: commands.LinkCustomer, loaded: Loaded) -> Decision:
    customer = loaded.customer
    if not link_stands(customer, cmd.email, cmd.created, cmd.name):
        return Decision("stale", f"{cmd.customer}: a newer link stands")
    email = normalize_email(cmd.email)
    new_customer = replace(
        customer,
        email=email,
        email_created=cmd.created,
        name=cmd.name or None,
        metadata=json.dumps(dict(cmd.metadata), sort_keys=True),
    )
    changes: list[Change] = [(customer, new_customer)]
    if customer.member and email != customer.email:  # the person moves to the new email
        for address, step in ((customer.email, -1), (email, 1)):
            if address:
                bucket = loaded.buckets[address]
                changes.append((bucket, replace(bucket, live=bucket.live + step)))
    # Ids only: the detail is logged with every checkout webhook, and logs keep no addresses.
    if email is None:
        said = "name set, no email"
    elif email == customer.email:
        said = "email unchanged"
    else:
        said = "email changed" if customer.email else "email set"
    return Decision("applied", f"{cmd.customer}: {said}", tuple(changes))


def _contribution(
    cmd: commands.RecordContribution | commands.RecordRefund, loaded: Loaded
) -> Decision:
    old = loaded.contribution
    new = next_contribution(old, cmd)
    if old == new:
        return Decision("stale", f"contribution {cmd.key} unchanged")
    changes: list[Change] = [(old, new)]
    step = int(new.active) - int(old is not None and old.active)
    if new.person and step:
        person = loaded.contributor
        changes.append((person, replace(person, active=person.active + step)))
    return Decision(
        "applied", f"contribution {cmd.key}: net {new.net} {new.currency}", tuple(changes)
    )


def _timeline(cmd: commands.AddTimeline, loaded: Loaded) -> Decision:
    customer = loaded.timeline_customer
    entry = {
        "kind": cmd.kind,
        "created": cmd.created,
        "reference": cmd.reference,
        "customer": customer or None,
        "amount": cmd.amount,
        "currency": cmd.currency,
        **dict(cmd.detail),
    }
    return Decision("applied", f"{cmd.kind} {cmd.reference}", timeline=(customer, entry))


def _offline_fields(offline: Offline) -> dict:
    return {"name": offline.name, "reason": offline.reason, "added_at": offline.added_at}


def _offline(cmd: commands.AddOffline | commands.RemoveOffline, loaded: Loaded) -> Decision:
    bucket = loaded.buckets[cmd.email]
    adding = isinstance(cmd, commands.AddOffline)
    if bucket.is_offline == adding:
        state = "already" if adding else "not"
        return Decision("unchanged", f"{cmd.email} is {state} an offline member")
    if adding:
        offline = Offline(reason=cmd.reason, name=cmd.name, added_at=cmd.at)
        new = replace(bucket, offline=offline)
        audit = Audit("offline_member_added", cmd.email, None, _offline_fields(offline))
    else:
        new = replace(bucket, offline=None)
        before = _offline_fields(bucket.offline)
        audit = Audit("offline_member_removed", cmd.email, before, {"reason": cmd.reason})
    verb = "added" if adding else "removed"
    return Decision("applied", f"{cmd.email} {verb}", ((bucket, new),), audit=audit)


def decide(command: commands.Command, loaded: Loaded, statuses: frozenset[str]) -> Decision:
    """What `command` changes, given the records `load` read for it."""
    if isinstance(command, commands.ApplySubscription):
        return _subscription(command, loaded, statuses)
    if isinstance(command, commands.DeleteCustomer):
        return _delete_customer(command, loaded, statuses)
    if isinstance(command, commands.LinkCustomer):
        return _link(command, loaded)
    if isinstance(command, commands.RecordContribution | commands.RecordRefund):
        return _contribution(command, loaded)
    if isinstance(command, commands.AddTimeline):
        return _timeline(command, loaded)
    if isinstance(command, commands.AddOffline | commands.RemoveOffline):
        return _offline(command, loaded)
    if isinstance(command, commands.Ignore):
        return Decision("ignored", command.reason)
    raise TypeError(f"unknown command {command!r}")
