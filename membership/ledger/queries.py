"""The ledger's read side: the count (None when Redis holds none: unknown, never zero), `stats`
from the counters the writer keeps, history and the stored records. Nothing here writes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta

import redis

from membership.ledger import codec
from membership.ledger.members import MemberPage, MemberSearch, Page
from membership.ledger.model import Customer, EmailBucket, SubRecord
from membership.ledger.records import batches, read_hashes
from membership.store import Keys

# The counters hash carries this field once it was built by this version's writer
# from an empty ledger, or by `ledger rebuild`; without it the counters are not
# to be trusted (a ledger written by an older version: run `ledger rebuild`).
SCHEMA_FIELD = "schema"
SCHEMA = 1


def queue_count(pipe, keys: Keys) -> None:
    """Queue the count's two reads (count, changed_at) on a pipeline; see `count_from`."""
    pipe.get(keys.member_count)
    pipe.get(keys.count_changed_at)


def count_from(keys: Keys, raw: str | None) -> int | None:
    """The count read by `queue_count`: None when Redis holds none; CorruptRecord if garbled."""
    return codec.count_from(keys.member_count, raw)


def count_keys(keys: Keys) -> tuple[str, ...]:
    """The keys to WATCH for a decision that depends on the count (e.g. adding a goal)."""
    return (keys.member_count,)


def count(client: redis.Redis, keys: Keys) -> int | None:
    """The member count (one GET), None when unknown."""
    return count_from(keys, client.get(keys.member_count))


def _per(counters: Mapping[str, int], prefix: str) -> dict[str, int]:
    return {
        name[len(prefix) :]: value
        for name, value in sorted(counters.items())
        if name.startswith(prefix) and value
    }


class Queries:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys

    def count(self) -> int | None:
        return count(self.redis, self.keys)

    def count_changed_at(self) -> str | None:
        return self.redis.get(self.keys.count_changed_at)

    def stats(self) -> dict:
        """The count and what it is made of, from the counters: O(1) in members.

        members (None: unknown), members through Stripe and offline, subscriptions by
        status, live subscriptions by plan, MRR per currency (minor units, monthly),
        one-time contributions, and `needs_rebuild` (None, or why the counters may be
        wrong)."""
        k = self.keys
        pipe = self.redis.pipeline(transaction=True)
        queue_count(pipe, k)
        pipe.hgetall(k.ledger_counters)
        pipe.hgetall(k.ledger_needs_rebuild)
        raw_count, changed_at, raw_counters, needed = pipe.execute()
        members = count_from(k, raw_count)
        counters = codec.counters_from(k.ledger_counters, raw_counters)
        if not needed and members is not None and counters.get(SCHEMA_FIELD) != SCHEMA:
            needed = {"reason": "the counters were not built by this version"}
        return {
            "members": members,
            "count_changed_at": changed_at,
            "stripe_members": counters.get("stripe_members", 0),
            "offline_members": counters.get("offline_members", 0),
            "offline_also_in_stripe": counters.get("offline_also_in_stripe", 0),
            "subscriptions_by_status": _per(counters, "subs:"),
            "members_by_plan": _per(counters, "plan:"),
            "mrr": _per(counters, "mrr:"),
            "contributions": {
                "contributors": counters.get("contributors", 0),
                "sum": _per(counters, "contrib_sum:"),
                "count": _per(counters, "contrib_count:"),
            },
            "needs_rebuild": dict(needed) if needed else None,
        }

    def needs_rebuild(self) -> dict | None:
        """Why the counters may be wrong ({since, reason}), or None; cleared by a rebuild."""
        return self.redis.hgetall(self.keys.ledger_needs_rebuild) or None

    def history(self, days: int = 30, today: date | None = None) -> list[dict]:
        """[{day, count, joins, leaves}] for the last `days` UTC days, oldest first;
        a day without changes carries the previous day's count."""
        today = today or datetime.now(UTC).date()
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

    # --- the Members page (membership/ledger/members.py) -------------------------

    def search(self, query: str, *, limit: int = 50, cursor: str | None = None) -> Page:
        """Members by email prefix, name word prefixes, or exact `cus_...`; paginated."""
        return MemberSearch(self.redis, self.keys).search(query, limit=limit, cursor=cursor)

    def member(self, who: str) -> MemberPage | None:
        """One person's page, by Stripe customer id or email (None: unknown)."""
        return MemberSearch(self.redis, self.keys).member(who)

    def member_export(self) -> MemberSearch:
        """`.audited_export(actor=..., at=...)` / `.export_lines()`: the CSV, streamed."""
        return MemberSearch(self.redis, self.keys)

    # --- records ---------------------------------------------------------------

    def subscription(self, subscription_id: str) -> SubRecord | None:
        key = self.keys.ledger_subscription(subscription_id)
        return codec.sub_from_hash(key, self.redis.hgetall(key))

    def subscriptions(self, batch: int = 1000) -> Iterator[SubRecord]:
        """Every stored subscription (any order): `.sub` is the state that stands
        (Stripe's status, the `created` of the event that set it, price...),
        `.status` the effective status that counts."""
        for ids in batches(
            self.redis.sscan_iter(self.keys.ledger_subscriptions, count=batch), batch
        ):
            keys = [self.keys.ledger_subscription(s) for s in ids]
            for key, raw in zip(keys, read_hashes(self.redis, keys), strict=True):
                record = codec.sub_from_hash(key, raw)
                if record is not None:
                    yield record

    def customer(self, customer_id: str) -> Customer | None:
        key = self.keys.ledger_customer(customer_id)
        raw = self.redis.hgetall(key)
        return codec.customer_from_hash(key, customer_id, raw) if raw else None

    def customers(self, batch: int = 1000) -> Iterator[Customer]:
        for ids in batches(self.redis.sscan_iter(self.keys.ledger_customers, count=batch), batch):
            keys = [self.keys.ledger_customer(c) for c in ids]
            for cid, key, raw in zip(ids, keys, read_hashes(self.redis, keys), strict=True):
                yield codec.customer_from_hash(key, cid, raw)

    def email_bucket(self, email: str) -> EmailBucket:
        """One normalized email's member customers (`live`) and offline member (None)."""
        key = self.keys.ledger_email(email)
        return codec.bucket_from_hash(key, email, self.redis.hgetall(key))

    def offline_members(self) -> list[dict]:
        """[{email, name, reason, added_at, also_in_stripe}] sorted by email."""
        emails = sorted(self.redis.smembers(self.keys.ledger_offline_members))
        keys = [self.keys.ledger_email(e) for e in emails]
        out = []
        for email, key, raw in zip(emails, keys, read_hashes(self.redis, keys), strict=True):
            bucket = codec.bucket_from_hash(key, email, raw)
            offline = bucket.offline
            out.append(
                {
                    "email": email,
                    "name": offline.name if offline else None,
                    "reason": offline.reason if offline else "",
                    "added_at": offline.added_at if offline else "",
                    "also_in_stripe": bucket.live > 0,
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
