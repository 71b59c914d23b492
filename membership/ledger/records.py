"""The ledger's records in Redis: read for a checked commit (`RedisReader`), written whole by it
(`queue_records`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace

import redis

from membership.ledger import codec, rules
from membership.ledger.commands import (
    AddOffline,
    ApplySubscription,
    Command,
    DeleteCustomer,
    LinkCustomer,
    RecordContribution,
    RecordRefund,
    RemoveOffline,
)
from membership.ledger.model import (
    Contribution,
    Contributor,
    Customer,
    EmailBucket,
    SubRecord,
)
from membership.store import Keys, whole

TIMELINE_MAX = 200  # entries per customer timeline
# A field of the counters: LAYOUT once no customer's subscriptions are kept in a set of
# their own, as versions before kept them (a new ledger, or `ledger rebuild` folded them
# into the customers' records); until then the writer reads those sets too.
LAYOUT_FIELD, LAYOUT = "layout", 2


def read_hashes(client: redis.Redis, keys: Sequence[str]) -> list[dict]:
    """HGETALL of each key, in one round trip (no transaction)."""
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(key)
    return pipe.execute() if keys else []


def batches(items: Iterable[str], size: int) -> Iterator[list[str]]:
    """`items` in lists of `size` (the last one shorter)."""
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _record_id(name: str, prefix: str) -> str:
    """The id in a key named `<prefix><id>`; "" for another key under `prefix` (a
    customer's `:timeline`)."""
    rest = name[len(prefix) :]
    return "" if ":" in rest else rest


def record_ids(client: redis.Redis, prefix: str, batch: int) -> Iterator[list[str]]:
    """The ids of every record named `<prefix><id>`, in lists of at most `batch`, found by
    SCAN (each at least once; a record added meanwhile may or may not be)."""
    seen: set[str] = set()

    def fresh() -> Iterator[str]:
        for name in client.scan_iter(match=prefix + "*", count=batch):
            found = _record_id(name, prefix)
            if found and found not in seen:
                seen.add(found)
                yield found

    return batches(fresh(), batch)


_WHOLE = ("hgetall", "smembers")  # reads of a whole key: nothing read, no key


class RedisReader:
    """`rules.Reader` over Redis: several reads in one round trip on the transaction's
    connection, each remembered so the commit can check that it still gives the same
    (`checks`): the keys read as absent must still be, the others read the same."""

    def __init__(self, client: redis.Redis, pipe, keys: Keys, old_sets: bool = True) -> None:
        self.redis, self.pipe, self.keys = client, pipe, keys
        self.cache: dict[tuple, object] = {}
        self.old_sets = old_sets  # whether customers' subscription sets may still be kept
        self.checked: dict[tuple, int] = {}  # an MGET read -> how many of its first keys

    def read(self, watched: Sequence[tuple], unwatched: Sequence[tuple] = ()) -> list:
        """Run both lists of reads in one round trip (`whole.watch_and_read`); the
        `watched` ones (of an MGET: its first key, or as many as `checked` says) are
        checked by the commit. A read is a redis-py method's name and the command's
        arguments: `("hgetall", key)`."""
        todo = [r for r in watched if r not in self.cache]
        values = whole.watch_and_read(
            self.pipe, (), [(method.upper(), *args) for method, *args in (*todo, *unwatched)]
        )
        self.cache.update(zip(todo, values, strict=False))
        return [self.cache[r] for r in watched] + values[len(todo) :]

    def checks(self) -> tuple[list[str], list[list]]:
        """What the commit checks (`whole.Checked`): the keys read as absent, and the
        other reads with what they gave."""
        absent, same = [], []
        for read, value in self.cache.items():
            method, key, *args = read
            if method == "mget":  # of its first keys
                n = self.checked.get(read, 1)
                reads = [
                    ("get", name, [], one)
                    for name, one in zip(read[1 : n + 1], value[:n], strict=True)
                ]
            else:
                reads = [(method, key, args, value)]
            for method, key, args, value in reads:
                if (value is None and method == "get") or (method in _WHOLE and not value):
                    absent.append(key)
                else:
                    same.append([method.upper(), key, *args, whole.expected(method, value)])
        return absent, same

    def _one(self, read: tuple):
        return self.read([read])[0]

    def subscription(self, sub_id: str) -> SubRecord | None:
        key = self.keys.ledger_subscription(sub_id)
        return codec.sub_from_hash(key, self._one(("hgetall", key)), sub_id)

    def customer(self, customer_id: str) -> Customer:
        key = self.keys.ledger_customer(customer_id)
        return codec.customer_from_hash(key, customer_id, self._one(("hgetall", key)))

    def customer_subscriptions(self, customer_id: str) -> list[SubRecord]:
        raw = self._one(("hgetall", self.keys.ledger_customer(customer_id)))
        listed = ()
        if self.old_sets:
            listed = self._one(("smembers", self.keys.ledger_customer_subscriptions(customer_id)))
        ids = codec.customer_sub_ids(raw, listed)
        keys = [self.keys.ledger_subscription(s) for s in ids]
        raws = self.read([("hgetall", key) for key in keys]) if keys else []
        records = map(codec.sub_from_hash, keys, raws, ids)
        return [r for r in records if r is not None]

    def bucket(self, email: str) -> EmailBucket:
        key = self.keys.ledger_email(email)
        return codec.bucket_from_hash(key, email, self._one(("hgetall", key)))

    def contribution(self, key_: str) -> Contribution | None:
        key = self.keys.ledger_contribution(key_)
        return codec.contribution_from_hash(key, self._one(("hgetall", key)))

    def contributor(self, person: str) -> Contributor:
        key = self.keys.ledger_contributor(person)
        return codec.contributor_from(key, person, self._one(("get", key)))


def first_reads(command: Command, keys: Keys, old_sets: bool = True) -> list[tuple]:
    """The reads `rules.load` starts with, fetched with the guards in the first round trip.
    The member index's row sums the customer's subscriptions (index.prepare): the
    customer's record names them, and so does the set versions before kept (`old_sets`)."""
    if isinstance(command, ApplySubscription):
        sub = command.sub
        reads = [
            ("hgetall", keys.ledger_subscription(sub.id)),
            ("hgetall", keys.ledger_customer(sub.customer)),
        ]
        customer = sub.customer
    elif isinstance(command, DeleteCustomer | LinkCustomer):
        reads, customer = [("hgetall", keys.ledger_customer(command.customer))], command.customer
    else:
        return _other_reads(command, keys)
    if old_sets:
        reads.append(("smembers", keys.ledger_customer_subscriptions(customer)))
    return reads


def _other_reads(command: Command, keys: Keys) -> list[tuple]:
    if isinstance(command, RecordContribution | RecordRefund):
        return [("hgetall", keys.ledger_contribution(command.key))]
    if isinstance(command, AddOffline | RemoveOffline):
        return [("hgetall", keys.ledger_email(command.email))]
    return []


def opening_of(entry: dict) -> str:
    """A new subscription's first status change (a timeline entry) as its record keeps it."""
    event = entry.get("event")
    return f"{entry['created']} {entry['to']}" + (f" {event}" if event else "")


def opening_entry(record: SubRecord) -> dict | None:
    """The timeline entry of the status change that opened `record` (None: not kept in the
    record, as before; its customer's timeline holds it)."""
    if not record.opening:
        return None
    created, to, *event = record.opening.split(" ")
    entry = {"kind": rules.STATUS_CHANGE, "created": int(created), "subscription": record.id}
    entry.update({"from": "", "to": to}, **({"event": event[0]} if event else {}))
    return entry


def with_openings(entries: Sequence[dict], subs: Iterable[SubRecord]) -> list[dict]:
    """A customer's timeline (newest first) with each subscription's opening status change
    placed in it: after every entry not older than it."""
    out = list(entries)
    openings = (opening_entry(r) for r in subs)
    for opening in sorted((o for o in openings if o), key=lambda o: -o["created"]):
        at = next((i for i, e in enumerate(out) if _created(e) < opening["created"]), len(out))
        out.insert(at, opening)
    return out


def _created(entry: dict) -> int:
    created = entry.get("created")
    return created if isinstance(created, int) else 0


def queue_records(pipe, k: Keys, decision: rules.Decision, event_id: str | None = None) -> None:
    """Queue the decision's records (and timeline entry, naming the event that made it)
    onto `pipe` (the commit's writes). A new subscription's first status change is kept in its
    record (`opening`, carried by every rewrite), not in a timeline of its own."""
    timeline = decision.timeline
    if timeline is not None and event_id:
        timeline = (timeline[0], {**timeline[1], "event": event_id})
    # Each subscription is named in its customer's record, written with that record when
    # the decision changes it too (one HSET), else on its own.
    marks: dict[str, dict[str, str]] = {}
    for _, new in decision.changes:
        if isinstance(new, SubRecord):
            marks.setdefault(new.sub.customer, {})[codec.SUB_MARK + new.id] = ""
    for old, new in decision.changes:
        if isinstance(new, SubRecord):
            key = k.ledger_subscription(new.id)
            if old is not None:  # written whole: no field of the old record stays
                pipe.delete(key)
                new = replace(new, opening=new.opening or old.opening)
            elif timeline is not None and _opens(timeline[1], new):
                new = replace(new, opening=opening_of(timeline[1]))
                timeline = None
            pipe.hset(key, mapping=codec.sub_to_hash(new))
        elif isinstance(new, Customer):
            key = k.ledger_customer(new.id)
            values, cleared = codec.customer_to_hash(new, old)
            pipe.hset(key, mapping={**values, **marks.pop(new.id, {})})
            if cleared:
                pipe.hdel(key, *cleared)
        elif isinstance(new, EmailBucket):
            values, cleared = codec.bucket_to_hash(new)
            key = k.ledger_email(new.email)
            pipe.hset(key, mapping=values)
            if old is not None and old.is_offline != new.is_offline:
                if cleared:
                    pipe.hdel(key, *cleared)
                    pipe.srem(k.ledger_offline_members, new.email)
                else:
                    pipe.sadd(k.ledger_offline_members, new.email)
        elif isinstance(new, Contribution):
            pipe.hset(k.ledger_contribution(new.key), mapping=codec.contribution_to_hash(new))
        elif isinstance(new, Contributor):
            pipe.set(k.ledger_contributor(new.person), new.active)
    for customer_id, named in marks.items():
        pipe.hset(k.ledger_customer(customer_id), mapping=named)
    if timeline is not None:
        customer, entry = timeline
        key = k.ledger_customer_timeline(customer) if customer else k.ledger_unlinked_timeline
        pipe.lpush(key, json.dumps(entry, sort_keys=True, separators=(",", ":")))
        pipe.ltrim(key, 0, TIMELINE_MAX - 1)


def _opens(entry: dict, record: SubRecord) -> bool:
    """Whether a timeline entry is the first status change of the new `record`."""
    return (
        entry.get("kind") == rules.STATUS_CHANGE
        and entry.get("subscription") == record.id
        and entry.get("from") == ""
        and isinstance(entry.get("created"), int)
        and " " not in f"{entry.get('to')}{entry.get('event', '')}"
    )
