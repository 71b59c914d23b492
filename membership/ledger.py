"""The Redis-backed member ledger: every event applied exactly once, in any order.

The shell around `membership.ledger_rules`. For each event (or staff change, or
sync observation) it WATCHes and reads the few records the change touches (the
event's dedupe mark, the subscription, its customer, the customer's email), asks
the pure rules what changes, and writes all of it, the dedupe mark, the event
log entry and the count, in one MULTI/EXEC. A concurrent writer that touched
any of those records makes EXEC fail and the change is decided again from the
new state, so several processes on several hosts can deliver at once.

Why WATCH/MULTI and not one Lua script: the rules stay in Python, in one place,
tested without Redis; the only Lua is the count bookkeeping (`_BUMP`), which
runs inside the transaction.

The Redis client must decode responses (`decode_responses=True`, as
`membership.store.connect` makes it). Keys: see the Ledger section of
`membership.store.keys`.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from dataclasses import fields as dataclass_fields
from datetime import UTC, date, datetime, timedelta

import redis

from membership import stripe_events
from membership.ledger_rules import (
    AddTimeline,
    ApplySubscription,
    Command,
    Contribution,
    Customer,
    DeleteCustomer,
    EmailBucket,
    Ignore,
    LedgerInputError,
    LinkCustomer,
    RecordContribution,
    RecordRefund,
    SubChange,
    SubRecord,
    Subscription,
    bucket_count,
    change_contribution,
    change_subscription,
    contributors_delta,
    count_members,
    end_for_deleted_customer,
    link_stands,
    member_delta,
    mrr_of,
    normalize_email,
    record_payment,
    record_refund,
    valid_email,
)
from membership.store import UNAVAILABLE, Keys

log = logging.getLogger(__name__)

OUTCOMES = ("applied", "duplicate", "stale", "ignored", "failed")
# Outcomes that mean "this event id has been dealt with": a redelivery is a duplicate.
_DONE = frozenset({"applied", "stale", "ignored"})

EVENT_TTL = 7 * 86400  # dedupe marks and payloads: Stripe retries for up to 3 days
FAILED_EVENT_TTL = 30 * 86400  # failed events wait this long for a replay
EVENT_LOG_MAX = 100_000  # entries in the event log stream (approximate cap)
TIMELINE_MAX = 200  # entries per customer timeline
AUDIT_MAX = 10_000

# The count, its change time, the day's closing count and joins/leaves, together.
_BUMP = """
local delta = tonumber(ARGV[1])
local count = redis.call('INCRBY', KEYS[1], delta)
redis.call('SET', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[3], count)
if delta > 0 then
  redis.call('HINCRBY', KEYS[4], ARGV[3], delta)
else
  redis.call('HINCRBY', KEYS[5], ARGV[3], -delta)
end
return count
"""


class _AlreadyDone(Exception):
    """The event id was processed before: answer `duplicate`."""


class LedgerBusy(Exception):
    """Too many concurrent writers on the same records; retry later (answer 503)."""


# Errors after which the caller should retry the whole delivery: nothing was recorded.
RETRYABLE = (*UNAVAILABLE, LedgerBusy)


@dataclass(frozen=True)
class Outcome:
    """What one apply did.

    `outcome` is applied | duplicate | stale | ignored | failed for events, and
    applied | stale | unchanged for snapshots and offline members. `count_before`
    and `count_after` bracket this change (equal when it did not move the count).
    """

    outcome: str
    event_id: str | None = None
    event_type: str | None = None
    error: str | None = None
    count_before: int = 0
    count_after: int = 0
    detail: str = ""


@dataclass(frozen=True)
class _Event:
    id: str
    type: str
    created: int
    raw: str
    received: float
    replay: bool


@dataclass(frozen=True)
class _Result:
    outcome: str
    delta: int = 0
    detail: str = ""


# --- records <-> Redis hashes -------------------------------------------------


def _opt_int(value: str | None) -> int | None:
    return None if value in (None, "") else int(value)


def _fields_of(record) -> dict:
    """A flat dataclass's fields; asdict() would deep-copy every value, on the hot path."""
    return {f.name: getattr(record, f.name) for f in dataclass_fields(record)}


def _sub_to_hash(record: SubRecord) -> dict[str, str | int]:
    sub = record.sub
    values = _fields_of(sub)
    values["stripe_status"] = values.pop("status")
    values["status"] = record.status
    values["cancel_at_period_end"] = int(sub.cancel_at_period_end)
    values["mrr"] = mrr_of(sub, record.status)[1]
    if record.live is not None:
        values["live"] = int(record.live)
    return {k: ("" if v is None else v) for k, v in values.items()}


def _sub_from_hash(raw: Mapping[str, str]) -> SubRecord | None:
    if not raw:
        return None
    sub = Subscription(
        id=raw["id"],
        customer=raw["customer"],
        status=raw["stripe_status"],
        created=int(raw["created"]),
        price=raw.get("price", ""),
        plan=raw.get("plan", ""),
        amount=int(raw.get("amount") or 0),
        currency=raw.get("currency", ""),
        interval=raw.get("interval", ""),
        interval_count=int(raw.get("interval_count") or 1),
        quantity=int(raw.get("quantity") or 1),
        started=_opt_int(raw.get("started")),
        canceled_at=_opt_int(raw.get("canceled_at")),
        ended_at=_opt_int(raw.get("ended_at")),
        cancel_at_period_end=raw.get("cancel_at_period_end") == "1",
        current_period_end=_opt_int(raw.get("current_period_end")),
        source=raw.get("source", ""),
    )
    live = raw.get("live")
    return SubRecord(sub, raw["status"], live=None if live in (None, "") else live == "1")


def _customer_from_hash(customer_id: str, raw: Mapping[str, str]) -> Customer:
    return Customer(
        id=customer_id,
        email=raw.get("email") or None,
        email_created=int(raw.get("email_created") or 0),
        name=raw.get("name") or None,
        metadata=raw.get("metadata", ""),
        deleted_at=_opt_int(raw.get("deleted_at")),
        live=int(raw.get("live") or 0),
    )


def _contribution_to_hash(c: Contribution) -> dict[str, str | int]:
    values = _fields_of(c)
    values["paid"] = int(c.paid)
    return {k: ("" if v is None else v) for k, v in values.items()}


def _contribution_from_hash(raw: Mapping[str, str]) -> Contribution | None:
    if not raw:
        return None
    return Contribution(
        key=raw["key"],
        paid=raw.get("paid") == "1",
        amount=int(raw.get("amount") or 0),
        currency=raw.get("currency", ""),
        refunded=int(raw.get("refunded") or 0),
        person=raw.get("person", ""),
        customer=raw.get("customer") or None,
        email=raw.get("email") or None,
        created=int(raw.get("created") or 0),
        metadata=raw.get("metadata", ""),
    )


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


# --- the ledger -----------------------------------------------------------------


class Ledger:
    """The member ledger on one Redis.

    `Ledger(redis, keys, member_statuses)`; everything else is optional:
    `clock` (epoch seconds, for the event log and the daily history),
    `event_ttl` / `failed_event_ttl` (seconds a processed / failed event's dedupe
    mark and payload are kept), `max_attempts` (transaction retries under contention),
    `on_count_up` (called with the new count and the time whenever the count rises:
    the app marks goals reached with it).

    Writes: `apply_event`, `apply_subscription_snapshot`, `link_customer`,
    `add_offline_member`, `remove_offline_member`. Reads: `count`, `stats`,
    `history`, `subscriptions`, `customer`, `offline_members`, `timeline`,
    `events`, `failed_event_ids`, `stored_event`, `recount`.
    """

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        member_statuses: tuple[str, ...] | list[str],
        *,
        clock: Callable[[], float] = time.time,
        event_ttl: int = EVENT_TTL,
        failed_event_ttl: int = FAILED_EVENT_TTL,
        max_attempts: int = 64,
        on_count_up: Callable[[int, float], None] | None = None,
    ) -> None:
        self.redis = client
        self.keys = keys
        self.member_statuses = tuple(member_statuses)
        self.clock = clock
        self.event_ttl = event_ttl
        self.failed_event_ttl = failed_event_ttl
        self.max_attempts = max_attempts
        self.on_count_up = on_count_up  # (new count, epoch seconds) after a rise

    # --- writes ---------------------------------------------------------------

    def apply_event(
        self, event: Mapping, *, raw: str | None = None, replay: bool = False
    ) -> Outcome:
        """Apply one Stripe event (a verified envelope: id, type, created, data.object).

        At most once per event id: a redelivery answers `duplicate`. `raw` is the
        body as received (stored for replay; defaults to the event as JSON).
        `replay=True` marks the log entry as a replay (`membership events replay`);
        the dedupe rule is the same.

        Returns `failed` (with `error`) when the event cannot be handled: it is
        logged with its error and kept for replay, and not marked as applied.
        Raises the Redis connection errors (`membership.store.UNAVAILABLE`) and
        `LedgerBusy`: then nothing was recorded and the delivery should be retried.
        """
        meta = _Event(
            id=str(event["id"]),
            type=str(event["type"]),
            created=int(event["created"]),
            raw=raw if raw is not None else json.dumps(event, separators=(",", ":")),
            received=self.clock(),
            replay=replay,
        )
        try:
            return self._transaction(lambda pipe: self._apply_event(pipe, event, meta))
        except (*RETRYABLE, redis.RedisError):
            raise  # the store's trouble (down, read-only, out of memory), not the event's
        except Exception as exc:
            if not isinstance(exc, stripe_events.EventError):
                log.exception("event %s (%s) failed", meta.id, meta.type)
            return self._record_failure(meta, f"{type(exc).__name__}: {exc}")

    def apply_subscription_snapshot(self, subscription: Mapping, observed_at: int) -> Outcome:
        """Apply a subscription as an API listing showed it at `observed_at` (epoch seconds).

        For `membership sync`: the listing competes with webhook events by the same
        rules, as if it were an event created at `observed_at`, so a webhook newer
        than the listing is not overwritten (`stale`). Raises
        `stripe_events.EventError` when the object is not a readable subscription.
        """
        sub = stripe_events.subscription_from_object(
            subscription, created=int(observed_at), source=f"sync@{int(observed_at)}"
        )
        return self._transaction(lambda pipe: self._apply_command(pipe, ApplySubscription(sub)))

    def link_customer(
        self,
        customer_id: str,
        email: str,
        *,
        name: str | None = None,
        metadata: Mapping[str, str] | None = None,
        observed_at: int,
    ) -> Outcome:
        """Record a customer's email (as a checkout would), e.g. from a sync; newer wins."""
        command = LinkCustomer(customer_id, email, name, dict(metadata or {}), int(observed_at))
        return self._transaction(lambda pipe: self._apply_command(pipe, command))

    def add_offline_member(self, email: str, reason: str, name: str | None = None) -> Outcome:
        """Add a member outside Stripe (bank transfer, gift, comp): `applied`, or
        `unchanged` when the email already is one. Raises LedgerInputError on a
        bad email or an empty reason. Logged with its reason in the audit stream."""
        email = valid_email(email)
        reason = _reason(reason)
        return self._transaction(
            lambda pipe: self._offline(pipe, email, add=True, reason=reason, name=name)
        )

    def remove_offline_member(self, email: str, reason: str) -> Outcome:
        """Remove an offline member: `applied`, or `unchanged` when there is none."""
        email = valid_email(email)
        reason = _reason(reason)
        return self._transaction(
            lambda pipe: self._offline(pipe, email, add=False, reason=reason, name=None)
        )

    # --- reads ----------------------------------------------------------------

    def count(self) -> int:
        """The member count: one GET."""
        return int(self.redis.get(self.keys.member_count) or 0)

    def count_changed_at(self) -> str | None:
        return self.redis.get(self.keys.count_changed_at)

    def subscriptions(self, batch: int = 500) -> Iterator[SubRecord]:
        """Every stored subscription (any order): `.sub` is the state that stands
        (Stripe's status, the `created` of the event that set it, price...),
        `.status` the effective status that counts."""
        for ids in self._scan_batches(self.keys.ledger_subscriptions, batch):
            pipe = self.redis.pipeline(transaction=False)
            for sub_id in ids:
                pipe.hgetall(self.keys.ledger_subscription(sub_id))
            for raw in pipe.execute():
                record = _sub_from_hash(raw)
                if record is not None:
                    yield record

    def subscription(self, subscription_id: str) -> SubRecord | None:
        return _sub_from_hash(self.redis.hgetall(self.keys.ledger_subscription(subscription_id)))

    def customer(self, customer_id: str) -> Customer | None:
        raw = self.redis.hgetall(self.keys.ledger_customer(customer_id))
        return _customer_from_hash(customer_id, raw) if raw else None

    def customers(self, batch: int = 500) -> Iterator[Customer]:
        for ids in self._scan_batches(self.keys.ledger_customers, batch):
            pipe = self.redis.pipeline(transaction=False)
            for customer_id in ids:
                pipe.hgetall(self.keys.ledger_customer(customer_id))
            for customer_id, raw in zip(ids, pipe.execute(), strict=True):
                yield _customer_from_hash(customer_id, raw)

    def offline_members(self) -> list[dict]:
        """[{email, name, reason, added_at, also_in_stripe}] sorted by email."""
        emails = sorted(self.redis.smembers(self.keys.ledger_offline_members))
        pipe = self.redis.pipeline(transaction=False)
        for email in emails:
            pipe.hgetall(self.keys.ledger_email(email))
        out = []
        for email, raw in zip(emails, pipe.execute(), strict=True):
            out.append(
                {
                    "email": email,
                    "name": raw.get("offline_name") or None,
                    "reason": raw.get("offline_reason", ""),
                    "added_at": raw.get("offline_added_at", ""),
                    "also_in_stripe": int(raw.get("live") or 0) > 0,
                }
            )
        return out

    def timeline(self, customer_id: str | None, limit: int = 50) -> list[dict]:
        """A customer's invoices and disputes, newest applied first (None: the unlinked ones)."""
        key = (
            self.keys.ledger_customer_timeline(customer_id)
            if customer_id
            else self.keys.ledger_unlinked_timeline
        )
        return [json.loads(item) for item in self.redis.lrange(key, 0, limit - 1)]

    def stats(self) -> dict:
        """count, members by kind, subscriptions by status, live subscriptions by plan,
        MRR per currency (minor units, monthly), one-time contributions. O(subscriptions)."""
        by_status: Counter[str] = Counter()
        by_plan: Counter[str] = Counter()
        statuses = frozenset(self.member_statuses)
        for record in self.subscriptions():
            by_status[record.status] += 1
            if record.was_live(statuses):
                by_plan[record.sub.plan or record.sub.price or "(none)"] += 1
        stripe_members = sum(1 for c in self.customers() if c.member)
        offline = self.offline_members()
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(self.keys.member_count)
        pipe.get(self.keys.count_changed_at)
        pipe.hgetall(self.keys.ledger_mrr)
        pipe.hgetall(self.keys.ledger_contribution_totals)
        count, changed_at, mrr, totals = pipe.execute()
        return {
            "members": int(count or 0),
            "count_changed_at": changed_at,
            "stripe_members": stripe_members,
            "offline_members": len(offline),
            "offline_also_in_stripe": sum(1 for m in offline if m["also_in_stripe"]),
            "subscriptions_by_status": dict(sorted(by_status.items())),
            "members_by_plan": dict(sorted(by_plan.items())),
            "mrr": {cur: int(v) for cur, v in sorted(mrr.items()) if int(v)},
            "contributions": {
                "contributors": int(totals.get("contributors") or 0),
                "sum": _per_currency(totals, "sum:"),
                "count": _per_currency(totals, "count:"),
            },
        }

    def history(self, days: int = 30, today: date | None = None) -> list[dict]:
        """[{day, count, joins, leaves}] for the last `days` UTC days, oldest first;
        a day without changes carries the previous day's count."""
        today = today or datetime.fromtimestamp(self.clock(), UTC).date()
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(self.keys.ledger_history_count)
        pipe.hgetall(self.keys.ledger_history_joins)
        pipe.hgetall(self.keys.ledger_history_leaves)
        counts, joins, leaves = pipe.execute()
        first = today - timedelta(days=days - 1)
        earlier = [d for d in counts if d < first.isoformat()]
        current = int(counts[max(earlier)]) if earlier else 0
        rows = []
        for i in range(days):
            day = (first + timedelta(days=i)).isoformat()
            current = int(counts.get(day, current))
            rows.append(
                {
                    "day": day,
                    "count": current,
                    "joins": int(joins.get(day) or 0),
                    "leaves": int(leaves.get(day) or 0),
                }
            )
        return rows

    def events(self, outcome: str | None = None, limit: int = 50) -> list[dict]:
        """Event log entries, newest first: {entry, id, type, created, received,
        outcome, error, replay, detail}; only those with `outcome` when given."""
        if outcome is not None and outcome not in OUTCOMES:
            raise LedgerInputError(f"outcome must be one of {', '.join(OUTCOMES)}")
        out: list[dict] = []
        last = "+"
        while len(out) < limit:
            page = self.redis.xrevrange(self.keys.ledger_event_log, last, "-", count=500)
            if last != "+":
                page = page[1:]  # the range is inclusive
            if not page:
                break
            for entry_id, fields in page:
                if outcome is None or fields.get("outcome") == outcome:
                    out.append({"entry": entry_id, **fields})
                    if len(out) == limit:
                        break
            last = page[-1][0]
        return out

    def failed_event_ids(self) -> list[str]:
        """Ids of events whose latest outcome is `failed` (not yet applied), oldest first.

        Ids whose record (and payload) has expired are dropped first: they can no
        longer be replayed, only re-sent by Stripe or repaired by `sync`."""
        key = self.keys.ledger_failed_events
        pipe = self.redis.pipeline(transaction=False)
        pipe.zremrangebyscore(key, "-inf", f"({self.clock() - self.failed_event_ttl}")
        pipe.zrange(key, 0, -1)
        return list(pipe.execute()[1])

    def stored_event(self, event_id: str) -> dict | None:
        """The event as received (parsed JSON), while its record is kept; for replay."""
        raw = self.redis.hget(self.keys.ledger_event(event_id), "payload")
        return json.loads(raw) if raw else None

    def event_outcome(self, event_id: str) -> str | None:
        """The recorded outcome of an event id (None: never seen, or expired)."""
        return self.redis.hget(self.keys.ledger_event(event_id), "outcome")

    def recount(self) -> int:
        """The count recomputed from every customer and offline member (O(n)), to
        check the stored one."""
        customers = [(c.email, c.member) for c in self.customers()]
        return count_members(customers, self.redis.smembers(self.keys.ledger_offline_members))

    # --- transactions -----------------------------------------------------------

    def _transaction(self, body):
        for attempt in range(self.max_attempts):
            with self.redis.pipeline(transaction=True) as pipe:
                try:
                    outcome = body(pipe)
                except redis.WatchError:
                    time.sleep(random.uniform(0, min(0.002 * 2**attempt, 0.05)))
                    continue
            if self.on_count_up is not None and outcome.count_after > outcome.count_before:
                # After the commit: a crash here is mended by the banner's own check.
                self.on_count_up(outcome.count_after, self.clock())
            return outcome
        raise LedgerBusy(f"gave up after {self.max_attempts} conflicting attempts")

    def _watch_read(self, pipe, *reads: tuple) -> list:
        """WATCH the keys, then read them in one round trip (on another connection:
        the WATCH, set first, still catches every change after it)."""
        pipe.watch(*{read[1] for read in reads})
        reader = self.redis.pipeline(transaction=False)
        for method, *args in reads:
            getattr(reader, method)(*args)
        return reader.execute()

    def _watch_bucket(self, pipe, email: str | None) -> EmailBucket | None:
        if not email:
            return None
        (raw,) = self._watch_read(pipe, ("hgetall", self.keys.ledger_email(email)))
        return EmailBucket(email, int(raw.get("live") or 0), raw.get("offline") == "1")

    def _first_read(self, pipe, meta: _Event | None, *reads: tuple) -> list:
        """The command's first reads, with the event's dedupe mark in the same round
        trip; raises _AlreadyDone when the event id was processed before."""
        if meta is None:
            return self._watch_read(pipe, *reads) if reads else []
        done, *values = self._watch_read(
            pipe, ("hget", self.keys.ledger_event(meta.id), "outcome"), *reads
        )
        if done in _DONE:
            raise _AlreadyDone(done)
        return values

    def _apply_event(self, pipe, event: Mapping, meta: _Event) -> Outcome:
        return self._apply_command(pipe, stripe_events.to_command(event), meta)

    def _apply_command(self, pipe, command: Command, meta: _Event | None = None) -> Outcome:
        try:
            if isinstance(command, ApplySubscription):
                result = self._subscription(pipe, command.sub, meta)
            elif isinstance(command, DeleteCustomer):
                result = self._delete_customer(pipe, command, meta)
            elif isinstance(command, LinkCustomer):
                result = self._link(pipe, command, meta)
            elif isinstance(command, RecordContribution | RecordRefund):
                result = self._contribution(pipe, command, meta)
            elif isinstance(command, AddTimeline):
                result = self._timeline(pipe, command, meta)
            elif isinstance(command, Ignore):
                self._first_read(pipe, meta)
                pipe.multi()
                result = _Result("ignored", detail=command.reason)
            else:  # pragma: no cover - every command type is handled above
                raise TypeError(f"unknown command {command!r}")
        except _AlreadyDone as done:
            pipe.multi()
            result = _Result("duplicate", detail=f"already {done}")
        return self._finish(pipe, meta, result)

    def _finish(self, pipe, meta: _Event | None, result: _Result) -> Outcome:
        """Queue the bookkeeping every change shares, EXEC, and report."""
        now = meta.received if meta else self.clock()
        k = self.keys
        if result.delta:
            pipe.eval(
                _BUMP,
                5,
                k.member_count,
                k.count_changed_at,
                k.ledger_history_count,
                k.ledger_history_joins,
                k.ledger_history_leaves,
                result.delta,
                _iso(now),
                _day(now),
            )
        if meta is not None:
            if result.outcome != "duplicate":
                event_key = k.ledger_event(meta.id)
                pipe.hset(
                    event_key,
                    mapping={
                        "type": meta.type,
                        "created": meta.created,
                        "received": _iso(meta.received),
                        "outcome": result.outcome,
                        "error": "",
                        "detail": result.detail,
                        "payload": meta.raw,
                    },
                )
                pipe.expire(event_key, self.event_ttl)
                pipe.zrem(k.ledger_failed_events, meta.id)
            self._log(pipe, meta, result.outcome, detail=result.detail)
        pipe.get(k.member_count)
        after = int(pipe.execute()[-1] or 0)
        return Outcome(
            outcome=result.outcome,
            event_id=meta.id if meta else None,
            event_type=meta.type if meta else None,
            count_before=after - result.delta,
            count_after=after,
            detail=result.detail,
        )

    def _log(self, pipe, meta: _Event, outcome: str, *, error: str = "", detail: str = ""):
        pipe.xadd(
            self.keys.ledger_event_log,
            {
                "id": meta.id,
                "type": meta.type,
                "created": meta.created,
                "received": _iso(meta.received),
                "outcome": outcome,
                "error": error,
                "replay": int(meta.replay),
                "detail": detail,
            },
            maxlen=EVENT_LOG_MAX,
            approximate=True,
        )

    def _record_failure(self, meta: _Event, error: str) -> Outcome:
        event_key = self.keys.ledger_event(meta.id)

        def body(pipe):
            (done,) = self._watch_read(pipe, ("hget", event_key, "outcome"))
            pipe.multi()
            if done in _DONE:  # processed before (or concurrently): it stays processed
                self._log(pipe, meta, "duplicate", detail=f"already {done}")
                pipe.get(self.keys.member_count)
                count = int(pipe.execute()[-1] or 0)
                return Outcome("duplicate", meta.id, meta.type, None, count, count)
            pipe.hset(
                event_key,
                mapping={
                    "type": meta.type,
                    "created": meta.created,
                    "received": _iso(meta.received),
                    "outcome": "failed",
                    "error": error[:2000],
                    "detail": "",
                    "payload": meta.raw,
                },
            )
            pipe.expire(event_key, self.failed_event_ttl)
            pipe.zadd(self.keys.ledger_failed_events, {meta.id: meta.received})
            self._log(pipe, meta, "failed", error=error[:2000])
            pipe.get(self.keys.member_count)
            count = int(pipe.execute()[-1] or 0)
            return Outcome("failed", meta.id, meta.type, error, count, count)

        return self._transaction(body)

    # --- one method per command: watch + read, decide (pure), MULTI + queue -----

    def _queue_sub_changes(
        self, pipe, customer: Customer, bucket: EmailBucket | None, changes: list[SubChange]
    ) -> int:
        """Queue subscription changes and their effect on the customer; return the count delta."""
        k = self.keys
        live = customer.live + sum(int(c.is_live) - int(c.was_live) for c in changes)
        delta, bucket_delta = member_delta(customer.member, live > 0, bucket)
        for change in changes:
            record = change.record
            pipe.hset(k.ledger_subscription(record.id), mapping=_sub_to_hash(record))
            pipe.sadd(k.ledger_subscriptions, record.id)
            pipe.sadd(k.ledger_customer_subscriptions(customer.id), record.id)
            for currency, amount in change.mrr:
                pipe.hincrby(k.ledger_mrr, currency, amount)
        fields = {"id": customer.id, "live": live, "source": "stripe"}
        if customer.deleted_at is not None:
            fields["deleted_at"] = customer.deleted_at
        pipe.hset(k.ledger_customer(customer.id), mapping=fields)
        pipe.sadd(k.ledger_customers, customer.id)
        if bucket_delta:
            pipe.hincrby(k.ledger_email(bucket.email), "live", bucket_delta)
        return delta

    def _subscription(self, pipe, sub: Subscription, meta: _Event | None) -> _Result:
        k = self.keys
        sub_raw, customer_raw = self._first_read(
            pipe,
            meta,
            ("hgetall", k.ledger_subscription(sub.id)),
            ("hgetall", k.ledger_customer(sub.customer)),
        )
        old = _sub_from_hash(sub_raw)
        customer_id = old.sub.customer if old else sub.customer
        if customer_id != sub.customer:  # the stored customer is the subscription's
            (customer_raw,) = self._watch_read(pipe, ("hgetall", k.ledger_customer(customer_id)))
        customer = _customer_from_hash(customer_id, customer_raw)
        bucket = self._watch_bucket(pipe, customer.email)
        change = change_subscription(
            old, sub, customer.deleted_at is not None, self.member_statuses
        )
        pipe.multi()
        if change is None:
            return _Result("stale", detail=f"{sub.id}: {old.sub.status}@{old.sub.created} stands")
        delta = self._queue_sub_changes(pipe, customer, bucket, [change])
        before = old.status if old else "(new)"
        return _Result("applied", delta, f"{sub.id}: {before} -> {change.record.status}")

    def _delete_customer(self, pipe, cmd: DeleteCustomer, meta: _Event | None) -> _Result:
        k = self.keys
        customer_raw, sub_ids = self._first_read(
            pipe,
            meta,
            ("hgetall", k.ledger_customer(cmd.customer)),
            ("smembers", k.ledger_customer_subscriptions(cmd.customer)),
        )
        customer = _customer_from_hash(cmd.customer, customer_raw)
        if customer.deleted_at is not None and customer.deleted_at <= cmd.created:
            pipe.multi()
            return _Result("stale", detail=f"{cmd.customer} already deleted")
        sub_ids = sorted(sub_ids)
        records = []
        if sub_ids:
            raws = self._watch_read(pipe, *(("hgetall", k.ledger_subscription(s)) for s in sub_ids))
            records = [r for r in map(_sub_from_hash, raws) if r is not None]
        bucket = self._watch_bucket(pipe, customer.email)
        customer = replace(customer, deleted_at=cmd.created)
        changes = [end_for_deleted_customer(r, self.member_statuses) for r in records]
        pipe.multi()
        delta = self._queue_sub_changes(pipe, customer, bucket, changes)
        return _Result("applied", delta, f"{cmd.customer} deleted, {len(changes)} subscriptions")

    def _link(self, pipe, cmd: LinkCustomer, meta: _Event | None) -> _Result:
        k = self.keys
        (raw,) = self._first_read(pipe, meta, ("hgetall", k.ledger_customer(cmd.customer)))
        customer = _customer_from_hash(cmd.customer, raw)
        if not link_stands(customer, cmd.email, cmd.created):
            pipe.multi()
            return _Result("stale", detail=f"{cmd.customer}: a newer link stands")
        email = normalize_email(cmd.email)
        moves = customer.member and email != customer.email
        old_bucket = self._watch_bucket(pipe, customer.email) if moves else None
        new_bucket = self._watch_bucket(pipe, email) if moves else None
        delta = 0
        pipe.multi()
        if moves:
            out, d_old = member_delta(True, False, old_bucket)
            into, d_new = member_delta(False, True, new_bucket)
            delta = out + into
            if old_bucket is not None:
                pipe.hincrby(k.ledger_email(old_bucket.email), "live", d_old)
            pipe.hincrby(k.ledger_email(email), "live", d_new)
        pipe.hset(
            k.ledger_customer(cmd.customer),
            mapping={
                "id": cmd.customer,
                "email": email,
                "email_created": cmd.created,
                "name": cmd.name or "",
                "metadata": json.dumps(dict(cmd.metadata), sort_keys=True),
                "source": "stripe",
            },
        )
        pipe.sadd(k.ledger_customers, cmd.customer)
        return _Result("applied", delta, f"{cmd.customer}: email {email}")

    def _contribution(
        self, pipe, cmd: RecordContribution | RecordRefund, meta: _Event | None
    ) -> _Result:
        k = self.keys
        (raw,) = self._first_read(pipe, meta, ("hgetall", k.ledger_contribution(cmd.key)))
        old = _contribution_from_hash(raw)
        if isinstance(cmd, RecordContribution):
            new = record_payment(old, cmd)
        else:
            new = record_refund(old, cmd)
        change = change_contribution(old, new)
        if change is None:
            pipe.multi()
            return _Result("stale", detail=f"contribution {cmd.key} unchanged")
        contributors = 0
        if new.person and change.person_delta:
            person_key = k.ledger_contributor(new.person)
            (active,) = self._watch_read(pipe, ("get", person_key))
            contributors = contributors_delta(int(active or 0), change.person_delta)
        pipe.multi()
        pipe.hset(k.ledger_contribution(cmd.key), mapping=_contribution_to_hash(new))
        for currency, amount in change.sums:
            pipe.hincrby(k.ledger_contribution_totals, f"sum:{currency}", amount)
        for currency, n in change.counts:
            pipe.hincrby(k.ledger_contribution_totals, f"count:{currency}", n)
        if new.person and change.person_delta:
            pipe.incrby(k.ledger_contributor(new.person), change.person_delta)
        if contributors:
            pipe.hincrby(k.ledger_contribution_totals, "contributors", contributors)
        return _Result("applied", 0, f"contribution {cmd.key}: net {new.net} {new.currency}")

    def _timeline(self, pipe, cmd: AddTimeline, meta: _Event | None) -> _Result:
        k = self.keys
        self._first_read(pipe, meta)
        customer = cmd.customer
        if not customer and cmd.payment_intent:
            customer = self.redis.hget(k.ledger_contribution(cmd.payment_intent), "customer")
        entry = {
            "kind": cmd.kind,
            "created": cmd.created,
            "reference": cmd.reference,
            "customer": customer or None,
            "amount": cmd.amount,
            "currency": cmd.currency,
            **dict(cmd.detail),
        }
        key = k.ledger_customer_timeline(customer) if customer else k.ledger_unlinked_timeline
        pipe.multi()
        pipe.lpush(key, json.dumps(entry, sort_keys=True))
        pipe.ltrim(key, 0, TIMELINE_MAX - 1)
        return _Result("applied", 0, f"{cmd.kind} {cmd.reference}")

    def _offline(self, pipe, email: str, *, add: bool, reason: str, name: str | None) -> Outcome:
        k = self.keys
        bucket = self._watch_bucket(pipe, email)
        pipe.multi()
        if bucket.offline == add:
            state = "already" if add else "not"
            result = _Result("unchanged", detail=f"{email} is {state} an offline member")
        else:
            now = self.clock()
            delta = bucket_count(bucket.live, add) - bucket_count(bucket.live, not add)
            if add:
                pipe.hset(
                    k.ledger_email(email),
                    mapping={
                        "offline": 1,
                        "offline_name": name or "",
                        "offline_reason": reason,
                        "offline_added_at": _iso(now),
                    },
                )
                pipe.sadd(k.ledger_offline_members, email)
            else:
                pipe.hdel(
                    k.ledger_email(email),
                    "offline",
                    "offline_name",
                    "offline_reason",
                    "offline_added_at",
                )
                pipe.srem(k.ledger_offline_members, email)
            pipe.xadd(
                k.ledger_audit,
                {
                    "action": "offline_member_added" if add else "offline_member_removed",
                    "email": email,
                    "name": name or "",
                    "reason": reason,
                    "at": _iso(now),
                },
                maxlen=AUDIT_MAX,
                approximate=True,
            )
            result = _Result("applied", delta, f"{email} {'added' if add else 'removed'}")
        return self._finish(pipe, None, result)

    def _scan_batches(self, key: str, batch: int) -> Iterator[list[str]]:
        ids: list[str] = []
        for member in self.redis.sscan_iter(key, count=batch):
            ids.append(member)
            if len(ids) >= batch:
                yield ids
                ids = []
        if ids:
            yield ids


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise LedgerInputError("a reason is required (e.g. 'bank transfer, invoice 2026-114')")
    return reason[:500]


def _per_currency(totals: Mapping[str, str], prefix: str) -> dict[str, int]:
    return {
        name[len(prefix) :]: int(value)
        for name, value in sorted(totals.items())
        if name.startswith(prefix) and int(value)
    }


def ledger_for(runtime) -> Ledger:
    """The ledger of a running app (`membership.runtime.runtime()`): a rise in the
    count marks the goals it reaches."""
    from membership import goals

    def reach_goals(count: int, at: float) -> None:
        goals.mark_reached(runtime.redis, runtime.keys, count, datetime.fromtimestamp(at, UTC))

    return Ledger(
        runtime.redis, runtime.keys, runtime.settings.member_statuses, on_count_up=reach_goals
    )
