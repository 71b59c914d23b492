"""The ledger's read side: the count (None when Redis holds none: unknown, never zero), `stats`
from the counters the writer keeps, history and the stored records. Nothing here writes.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import redis

from membership.ledger import codec
from membership.ledger.index import (
    JOINED_DIGITS,
    NAMED,
    NONE,
    SEP,
    Row,
    lex_range,
    stored,
    stored_current,
)
from membership.ledger.members import BadCursor, MemberPage, MemberSearch, Page
from membership.ledger.model import Customer, EmailBucket, SubRecord
from membership.ledger.records import read_hashes, record_ids, with_openings
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
        a day without changes carries the previous day's count. Each day is one key
        (`codec.history_day`); days versions before kept in hashes read too, added to it."""
        today = today or datetime.now(UTC).date()
        first = today - timedelta(days=days - 1)
        # The days after the window too (up to tomorrow, UTC): the first day with changes
        # says what the count was before it.
        upto = min(max(today, datetime.now(UTC).date()) + timedelta(days=1), today + _AFTER)
        names = [(first + timedelta(days=i)).isoformat() for i in range((upto - first).days + 1)]
        pipe = self.redis.pipeline(transaction=False)
        pipe.execute_command("MGET", *(self.keys.ledger_history_day(d) for d in names))
        pipe.get(self.keys.member_count)
        for key in (self.keys.ledger_history_count, self.keys.ledger_history_joins):
            pipe.hgetall(key)
        pipe.hgetall(self.keys.ledger_history_leaves)
        pipe.hgetall(self.keys.ledger_history_moves)
        kept, now, counts, joins, leaves, moves = pipe.execute()  # the hashes: as kept before
        kept = {
            d: _day(self.keys.ledger_history_day(d), raw)
            for d, raw in zip(names, kept, strict=True)
        }
        changed = next((d for d in names if kept[d] or d in counts), None)
        if changed is None:  # no change since the window began: the count stands
            current = codec.count_from(self.keys.member_count, now) or 0
        elif kept[changed]:
            current = kept[changed][3]
        else:
            earlier = [d for d in counts if d < first.isoformat()]
            current = int(counts[max(earlier)]) if earlier else 0
        rows = []
        for day in names[:days]:
            own = kept[day] or (int(counts.get(day, current)), 0, 0, 0)
            current = own[0]
            rows.append(
                {
                    "day": day,
                    "count": current,
                    "joins": own[1] + int(joins.get(day) or 0) + int(moves.get(f"+{day}") or 0),
                    "leaves": own[2] + int(leaves.get(day) or 0) + int(moves.get(f"-{day}") or 0),
                }
            )
        return rows

    # --- the Members page (membership/ledger/members.py) -------------------------

    def search(self, query: str, *, limit: int = 50, cursor: str | None = None) -> Page:
        """Members by email prefix, name word prefixes, or a prefix of a `cus_...` id (by
        id); paginated."""
        q = (query or "").strip()
        if ID_PREFIX.match(q):
            return MemberList(self.redis, self.keys).by_id(q, limit=limit, cursor=cursor)
        return MemberSearch(self.redis, self.keys).search(q, limit=limit, cursor=cursor)

    def members(self, filters: Filters | None = None, **options) -> Page:
        """The list of members (`MemberList.page`): newest first, or by name or email."""
        return MemberList(self.redis, self.keys).page(filters or Filters(), **options)

    def member(self, who: str) -> MemberPage | None:
        """One person's page, by Stripe customer id or email (None: unknown)."""
        return MemberSearch(self.redis, self.keys).member(who)

    def member_export(self) -> MemberSearch:
        """`.audited_export(actor=..., at=...)` / `.export_lines()`: the CSV, streamed."""
        return MemberSearch(self.redis, self.keys)

    # --- records ---------------------------------------------------------------

    def subscription(self, subscription_id: str) -> SubRecord | None:
        key = self.keys.ledger_subscription(subscription_id)
        return codec.sub_from_hash(key, self.redis.hgetall(key), subscription_id)

    def subscriptions(self, batch: int = 1000) -> Iterator[SubRecord]:
        """Every stored subscription (any order): `.sub` is the state that stands
        (Stripe's status, the `created` of the event that set it, price...),
        `.status` the effective status that counts."""
        for ids in record_ids(self.redis, self.keys.ledger_subscription(""), batch):
            keys = [self.keys.ledger_subscription(s) for s in ids]
            for sid, key, raw in zip(ids, keys, read_hashes(self.redis, keys), strict=True):
                record = codec.sub_from_hash(key, raw, sid)
                if record is not None:
                    yield record

    def subscriptions_by_id(self, ids: list[str]) -> dict[str, SubRecord | None]:
        """The stored subscription of each id (None: none), read in one round trip."""
        keys = [self.keys.ledger_subscription(s) for s in ids]
        raws = read_hashes(self.redis, keys)
        return {s: codec.sub_from_hash(k, r, s) for s, k, r in zip(ids, keys, raws, strict=True)}

    def customers_by_id(self, ids: list[str]) -> dict[str, Customer | None]:
        """The stored customer of each id (None: none), read in one round trip."""
        keys = [self.keys.ledger_customer(c) for c in ids]
        raws = read_hashes(self.redis, keys)
        return {
            c: codec.customer_from_hash(k, c, r) if r else None
            for c, k, r in zip(ids, keys, raws, strict=True)
        }

    def customer(self, customer_id: str) -> Customer | None:
        key = self.keys.ledger_customer(customer_id)
        raw = self.redis.hgetall(key)
        return codec.customer_from_hash(key, customer_id, raw) if raw else None

    def customers(self, batch: int = 1000) -> Iterator[Customer]:
        for ids in record_ids(self.redis, self.keys.ledger_customer(""), batch):
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
        """A customer's invoices, disputes and status changes, newest applied first (None:
        the unlinked ones)."""
        if not customer_id:
            key = self.keys.ledger_unlinked_timeline
            return [json.loads(item) for item in self.redis.lrange(key, 0, limit - 1)]
        key = self.keys.ledger_customer(customer_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.lrange(self.keys.ledger_customer_timeline(customer_id), 0, limit - 1)
        pipe.hgetall(key)
        pipe.smembers(self.keys.ledger_customer_subscriptions(customer_id))
        listed, raw, old_set = pipe.execute()
        ids = codec.customer_sub_ids(raw, old_set)
        names = [self.keys.ledger_subscription(s) for s in ids]
        subs = map(codec.sub_from_hash, names, read_hashes(self.redis, names), ids)
        entries = with_openings([json.loads(item) for item in listed], filter(None, subs))
        return entries[:limit]


# --- the list of members -------------------------------------------------------------------

ID_PREFIX = re.compile(r"^cus_[A-Za-z0-9]{0,250}$")
SORTS = ("joined", "name", "email")
SCAN_MAX = 2000  # index entries one page reads at most
_GROW = 4  # each read after the first is this much larger (up to SCAN_MAX)


def _midnight(day: date) -> int:
    return int(datetime.combine(day, time(), UTC).timestamp())


@dataclass(frozen=True)
class Filters:
    """Which rows the list shows: None or "" is any; joined between two UTC days, both in."""

    current: bool | None = None
    source: str = ""
    plan: str = ""
    status: str = ""
    joined_from: date | None = None
    joined_to: date | None = None

    def span(self) -> tuple[float, float]:
        """Joined between (epoch seconds, both in); a row without a date has none."""
        low = _midnight(self.joined_from) if self.joined_from else 1
        high = _midnight(self.joined_to) + 86_399 if self.joined_to else math.inf
        return low, high

    def keeps(self, row: Row) -> bool:
        return self.holds(vars(row))

    def needles(self) -> tuple[str, ...]:
        """Text every stored row the filters keep holds (its status and plan as JSON
        strings): rows without it are dropped before they are decoded."""
        return tuple(json.dumps(v) for v in (self.status, self.plan) if v)

    def holds(self, row: Mapping) -> bool:
        """Whether a row's fields (a Row's, or `index.stored`) pass every filter."""
        if self.joined_from or self.joined_to:
            low, high = self.span()
            if not low <= row.get("joined", 0) <= high:
                return False
        return (
            (self.current is None or row["current"] == self.current)
            and (not self.source or row["source"] == self.source)
            and (not self.plan or row["plan"] == self.plan)
            and (not self.status or row["status"] == self.status)
        )


def _encode(state: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(state).encode()).decode()


def _decode(cursor: str, shape: list) -> list:
    """A cursor's state; BadCursor unless it has the types of `shape` and its first values."""
    try:
        state = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, UnicodeError, binascii.Error):
        state = None
    if (
        not isinstance(state, list)
        or len(state) != len(shape)
        or state[:2] != shape[:2]
        or not all(_fits(v, s) for v, s in zip(state, shape, strict=True))
    ):
        raise BadCursor("cursor: not one this list handed out for this sort")
    return state


def _fits(value, like) -> bool:
    """Whether a cursor's value is of its place's type (a bool is no number) and one Redis
    takes: a number from 0 below 2**53, text without lone surrogates."""
    if type(value) is not type(like):
        return False
    if isinstance(value, int) and not isinstance(value, bool):
        return 0 <= value < 2**53
    if isinstance(value, str):
        return not any("\ud800" <= c <= "\udfff" for c in value)
    return True


class MemberList:
    """The rows of members (who have joined: a subscription started, an offline member
    added), newest first or by name or email, read in the sort's own index entries; filters
    are tested on the rows (HMGET in batches as the walk goes). A page reads at most
    SCAN_MAX entries, so a rare filter may give a short page, even an empty one, with a
    cursor: offer more while the cursor is not None."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.redis, self.keys = client, keys

    def page(
        self,
        filters: Filters,
        *,
        sort: str = "joined",
        descending: bool | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        if sort not in SORTS:
            raise ValueError(f"sort: one of {', '.join(SORTS)}")
        descending = sort == "joined" if descending is None else descending
        state = _decode(cursor, [sort, descending, ""]) if cursor else None
        step = self._walk(sort, filters, descending, state[2] if state else None)
        out: list[Row] = []
        scanned, chunk, needles = 0, limit + 1, filters.needles()
        while True:
            found, reached, exhausted = step(chunk)
            scanned += chunk
            if filters.source:  # a row id says its source: no need to read the row
                found = [(p, i) for p, i in found if i.startswith(f"{filters.source}:")]
            raws = self._raw([row_id for _, row_id in found])
            for (position, _), raw in zip(found, raws, strict=True):
                if not raw or not all(n in raw for n in needles):
                    continue
                if filters.current is not None and stored_current(raw) is (not filters.current):
                    continue
                row = stored(raw)
                if not row.get("joined") or not filters.holds(row):
                    continue
                out.append(Row(**row))
                if len(out) == limit:
                    more = not exhausted or position is not found[-1][0]
                    return Page(
                        tuple(out), _encode([sort, descending, *position]) if more else None
                    )
            if exhausted:
                return Page(tuple(out), None)
            if scanned >= SCAN_MAX:
                return Page(tuple(out), _encode([sort, descending, *reached]))
            chunk = min(chunk * _GROW, SCAN_MAX - scanned)

    def _raw(self, row_ids: list[str]) -> list[str | None]:
        return self.redis.hmget(self.keys.ledger_index_rows, row_ids) if row_ids else []

    def _walk(self, sort: str, filters: Filters, descending: bool, last: str | None):
        """Steps through the sort's entries of the index in order (the joined ones: by
        time, then row id, inside the joined-between filter): each step gives [((entry,),
        row id)] for the entries that list a row, the position reached, and whether the
        range is exhausted."""
        key = self.keys.ledger_index_entries
        low, high = lex_range(sort)
        if sort == "name":
            high = b"(n" + NAMED.encode()  # a customer's NAMED entry lists no row here
        elif sort == "joined":
            since, until = filters.span()
            low = b"[j" + f"{int(since):0{JOINED_DIGITS}d}".encode()
            if until != math.inf:
                high = b"(j" + f"{int(until) + 1:0{JOINED_DIGITS}d}".encode()

        def step(chunk: int):
            nonlocal last
            after = b"(" + last.encode() if last else None
            if descending:
                raw = self.redis.zrevrangebylex(key, after or high, low, 0, chunk)
            else:
                raw = self.redis.zrangebylex(key, after or low, high, 0, chunk)
            found = []
            for entry in raw:
                last, own = entry, entry[1:]
                if own.startswith(NONE):
                    found.append(((entry,), own[len(NONE) :]))
                elif sort != "name":
                    found.append(((entry,), own.partition(SEP)[2]))
                else:
                    word, spoken, row_id = own.split(SEP)
                    if spoken.partition(" ")[0] == word:  # the name's first word: once a row
                        found.append(((entry,), row_id))
            return found, (last,), len(raw) < chunk

        return step

    def by_id(self, prefix: str, *, limit: int = 50, cursor: str | None = None) -> Page:
        """Stripe customers whose id starts with `prefix`, by id; `cursor`: the last one."""
        after = _decode(cursor, ["id", False, ""])[2] if cursor else None
        key = self.keys.ledger_index_entries
        ids: set[str] = set()
        for mark in (NONE, NAMED):
            low, high = lex_range("name", f"{mark}stripe:{prefix}", after and f"n{mark}{after}")
            found = self.redis.zrangebylex(key, low, high, 0, limit + 1)
            ids.update(m[1 + len(mark) :] for m in found)
        listed = sorted(ids)[:limit]
        rows = tuple(Row.from_json(raw) for raw in self._raw(listed) if raw)
        more = len(ids) > limit
        return Page(rows, _encode(["id", False, listed[-1]]) if more else None)


_AFTER = timedelta(days=400)  # days after a window read to find the count before it


def _day(key: str, raw: str | None) -> tuple[int, int, int, int] | None:
    """A day of the history, or None (no change that day, or garbled: not shown)."""
    try:
        return codec.history_day_from(key, raw)
    except codec.CorruptRecord:
        return None
