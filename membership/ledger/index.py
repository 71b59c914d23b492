"""The member index: one row per Stripe customer and per offline member, for staff search
and the list of members (by when they joined, by name, by email).

A row is a pure function of the ledger's records (`customer_row`, `offline_row`), so the writer
keeps it in the change's own transaction (`prepare`: old rows from the records as they were,
new rows from the decision; no index key is WATCHed) and `ledger rebuild` derives every row
anew (`plan_rebuild`). Its keys and their members: docs/ledger.md, "What is kept in Redis".
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from membership.ledger import rules
from membership.ledger.model import Contribution, Customer, EmailBucket, SubRecord
from membership.store import Keys

SEP = "\x00"  # between a sort key and its row id: below every character a key holds
# Above every character a name or an email holds. `NONE<row id>`: a row without a name (in
# the name entries) or without an email (in the email entries), listed after every name or email;
# `NAMED<row id>`: a Stripe customer with a name, so that `NAMED`/`NONE` + `stripe:cus_...`
# find every customer by a prefix of its id.
NONE = "\U0010ffff\x01"
NAMED = "\U0010ffff\x02"
_TOKEN = re.compile(r"\w+")


@dataclass(frozen=True)
class Row:
    id: str
    email: str
    name: str
    source: str  # stripe | offline
    status: str
    since: str  # YYYY-MM-DD, or ""
    plan: str
    amount: int  # minor units per billing interval
    currency: str
    current: bool  # counted as a member now (the export's rows)
    customer: str = ""
    joined: int = 0  # epoch seconds: the subscription's start, the offline member's addition

    @property
    def blank(self) -> bool:
        """A customer the ledger knows nothing to list by: no email, name or subscription."""
        return not (self.email or self.name or self.status or self.current)

    def to_json(self) -> str:
        """The stored row: its values in `_STORED` order, without names (source and
        customer follow from the id), about half the bytes of an object."""
        return _ENCODER.encode([getattr(self, name) for name in _STORED])

    @classmethod
    def from_json(cls, raw: str) -> Row:
        values = json.loads(raw)
        if isinstance(values, dict):  # as stored before `ledger rebuild` rewrote it
            return cls(**values)
        row_id, email, name, status, since, plan, amount, currency, current, joined = values
        source, _, customer = row_id.partition(":")
        customer = customer if source == "stripe" else ""
        return cls(row_id, email, name, source, status, since, plan, amount, currency,
                   bool(current), customer, joined)  # fmt: skip


def stored_current(raw: str) -> bool | None:
    """Whether a stored row counts, read off its text without decoding it (None: a row
    stored as an object, before `ledger rebuild` rewrote it)."""
    return raw.rsplit(",", 2)[1] == "true" if raw.startswith("[") else None


def stored(raw: str) -> dict:
    """A stored row's fields by name (cheaper than a Row, for a list that filters many)."""
    values = json.loads(raw)
    if isinstance(values, dict):  # as stored before `ledger rebuild` rewrote it
        return values
    row = dict(zip(_STORED, values, strict=True))
    source, _, customer = row["id"].partition(":")
    row["source"], row["customer"] = source, customer if source == "stripe" else ""
    row["current"] = bool(row["current"])
    return row


_STORED = ("id", "email", "name", "status", "since", "plan", "amount", "currency", "current",
           "joined")  # fmt: skip
_ENCODER = json.JSONEncoder(separators=(",", ":"))


def tokens(name: str | None) -> list[str]:
    """A name's search tokens: accents dropped, case folded, split at non-word characters."""
    return sorted(set(_TOKEN.findall(_folded(name)))) if name else []


def name_words(name: str | None) -> list[str]:
    """A name's words in their order, each once, folded as `tokens` folds them: the name
    sort's key."""
    return list(dict.fromkeys(_TOKEN.findall(_folded(name)))) if name else []


def _folded(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text)
    return "".join(c for c in plain if not unicodedata.combining(c)).casefold()


def _day(epoch: int | None) -> str:
    return datetime.fromtimestamp(epoch, UTC).date().isoformat() if epoch else ""


def _epoch(iso: str) -> int:
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return 0
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def customer_row(customer: Customer, subs: Iterable[SubRecord]) -> Row:
    """The row of a Stripe customer: a member shows its oldest counted subscription,
    anyone else the subscription whose state is the latest."""
    subs = sorted(subs, key=lambda r: (r.sub.started or 0, r.id))
    live = [r for r in subs if r.live]
    main = live[0] if live else max(subs, key=lambda r: (r.sub.created, r.id), default=None)
    return Row(
        id=f"stripe:{customer.id}",
        email=customer.email or "",
        name=customer.name or "",
        source="stripe",
        status=main.status if main else "",
        since=_day(main.sub.started) if main else "",
        plan=main.sub.plan_label if main else "",
        amount=main.sub.amount if main else 0,
        currency=main.sub.currency if main else "",
        current=customer.member,
        customer=customer.id,
        joined=(main.sub.started or 0) if main else 0,
    )


def offline_row(bucket: EmailBucket) -> Row | None:
    """An offline member's row; it counts (is current) unless a member customer shares the
    email, and then says so in its status."""
    if bucket.offline is None:
        return None
    return Row(
        id=f"offline:{bucket.email}",
        email=bucket.email,
        name=bucket.offline.name or "",
        source="offline",
        status="offline" if bucket.live == 0 else "offline_in_stripe",
        since=bucket.offline.added_at[:10],
        plan="offline",
        amount=0,
        currency="",
        current=bucket.live == 0,
        joined=_epoch(bucket.offline.added_at),
    )


# Every entry of the index is in one sorted set (`keys.ledger_index_entries`, scores 0, in
# lex order), its family's letter first: so a change of a row is one ZREM and one ZADD.
FAMILY = {"email": "e", "name": "n", "joined": "j"}
JOINED_DIGITS = 10  # epoch seconds, zero-padded: the lex order is the time order


def entries(row: Row | None) -> set[str]:
    """The entries a row puts into the index (each family's letter first); a blank row
    puts none."""
    if row is None or row.blank:
        return set()
    words = name_words(row.name)
    # The whole folded name rides along, so a search filters on further words without
    # fetching rows, and the name sort walks the entries of each name's first word.
    spoken = " ".join(words)
    out = {f"n{t}{SEP}{spoken}{SEP}{row.id}" for t in words}
    if not words or row.customer:
        out.add(f"n{NAMED if words else NONE}{row.id}")
    out.add(f"e{row.email}{SEP}{row.id}" if row.email else f"e{NONE}{row.id}")
    if row.joined:  # the list of members: who has had a subscription or offline membership
        out.add(f"j{row.joined:0{JOINED_DIGITS}d}{SEP}{row.id}")
    return out


def lex_range(which: str, prefix: str = "", after: str | None = None) -> tuple[bytes, bytes]:
    """A ZRANGEBYLEX range of the family's entries that start with `prefix`, from after the
    entry `after` (as stored) when given. Bytes, not str: 0xff is above every UTF-8 byte."""
    start = (FAMILY[which] + prefix).encode()
    low = b"(" + after.encode() if after else b"[" + start
    return low, b"[" + start + b"\xff"


# Kept by versions before, one sorted set a family (`joined` scored by the time); `ledger
# rebuild` writes their entries into the one set and deletes them.
RETIRED = ("email", "name", "joined", "current")


def retired_key(keys: Keys, which: str) -> str:
    return {
        "email": keys.ledger_index_email,
        "name": keys.ledger_index_name,
        "joined": keys.ledger_index_joined,
        "current": keys.ledger_index_current,
    }[which]


def contribution_entry(c: Contribution | None) -> str | None:
    """`<person>\\0<payment>`: a member's page finds a person's contributions by its range."""
    return f"{c.person}{SEP}{c.key}" if c is not None and c.person else None


# --- the writer's side ------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """Rows before and after one decision, by row id (None: no row)."""

    rows: tuple[tuple[str, Row | None, Row | None], ...]
    contributions: tuple[str, ...] = ()  # entries to add (a contribution's person never changes)

    def queue(self, pipe, keys: Keys) -> None:
        """Queue the index writes inside MULTI (ZREM/ZADD/HSET/HDEL: none fails on keys of
        the right type; EXEC's replies are checked by the writer): one ZREM and one ZADD of
        every row's entries."""
        gone: set[str] = set()
        added: set[str] = set()
        for _, old, new in self.rows:
            before, after = entries(old), entries(new)
            gone |= before - after
            added |= after - before
        if gone - added:
            pipe.zrem(keys.ledger_index_entries, *sorted(gone - added))
        if added - gone:
            pipe.zadd(keys.ledger_index_entries, dict.fromkeys(sorted(added - gone), 0))
        for row_id, old, new in self.rows:
            if new is None:
                pipe.hdel(keys.ledger_index_rows, row_id)
            elif new != old:
                pipe.hset(keys.ledger_index_rows, row_id, new.to_json())
        if self.contributions:
            pipe.zadd(keys.ledger_index_contributions, dict.fromkeys(self.contributions, 0))


def prepare(decision: rules.Decision, reader: rules.Reader) -> Change:
    """The index rows a decision changes. Reads (through the writer's WATCHing reader) the
    subscriptions of each customer it touches, since a row sums all of them."""
    customers: dict[str, tuple[Customer | None, Customer | None]] = {}
    new_subs: dict[str, SubRecord] = {}
    out = []
    paid = []
    for old, new in decision.changes:
        if isinstance(new, Customer):
            customers[new.id] = (old, new)
        elif isinstance(new, SubRecord):
            new_subs[new.id] = new
            customers.setdefault(new.sub.customer, (None, None))
        elif isinstance(new, EmailBucket):
            before, after = offline_row(old) if old else None, offline_row(new)
            if before != after:
                out.append((f"offline:{new.email}", before, after))
        elif isinstance(new, Contribution):
            entry = contribution_entry(new)
            if entry and entry != contribution_entry(old):
                paid.append(entry)
    for cid, (old_customer, new_customer) in sorted(customers.items()):
        stored = reader.customer_subscriptions(cid)
        if old_customer is None:
            old_customer = new_customer = reader.customer(cid)
        known = {r.id for r in stored}
        after = [new_subs.get(r.id, r) for r in stored]
        after += [
            r for i, r in sorted(new_subs.items()) if r.sub.customer == cid and i not in known
        ]
        before, now = customer_row(old_customer, stored), customer_row(new_customer, after)
        if before != now:
            out.append((f"stripe:{cid}", before, now))
    return Change(tuple(out), tuple(paid))


# --- `ledger rebuild`'s side ---------------------------------------------------------


@dataclass(frozen=True)
class RebuildPlan:
    rows_set: dict[str, str]  # row id -> JSON to store
    rows_deleted: list[str]
    added: dict[str, list[str]]  # "entries" or "contributions" -> members to add
    removed: dict[str, list[str]]  # the same, and each RETIRED set's members (deleted)

    @property
    def changed(self) -> int:
        return (
            len(self.rows_set)
            + len(self.rows_deleted)
            + sum(len(v) for v in self.added.values())
            + sum(len(v) for v in self.removed.values())
        )


def expected_rows(
    customers: Iterable[Customer], subs: Iterable[SubRecord], buckets: Iterable[EmailBucket]
) -> dict[str, Row]:
    by_customer: dict[str, list[SubRecord]] = {}
    for record in subs:
        by_customer.setdefault(record.sub.customer, []).append(record)
    rows = {}
    for customer in customers:
        row = customer_row(customer, by_customer.get(customer.id, []))
        rows[row.id] = row
    for bucket in buckets:
        row = offline_row(bucket)
        if row is not None:
            rows[row.id] = row
    return rows


def plan_rebuild(
    rows: dict[str, Row],
    contributions: Iterable[Contribution],
    stored_rows: dict[str, str],
    stored_sets: dict[str, set[str]],
) -> RebuildPlan:
    """What to write so the stored index equals the one derived from the records."""
    want: dict[str, set[str]] = {w: set() for w in _SETS}
    want["contributions"] = {e for e in map(contribution_entry, contributions) if e}
    for row in rows.values():
        want["entries"] |= entries(row)
    rows_set = {}
    for row_id, row in rows.items():
        text = row.to_json()
        if stored_rows.get(row_id) != text:
            rows_set[row_id] = text
    removed = {w: sorted(stored_sets.get(w, set()) - want[w]) for w in want}
    removed.update({w: sorted(stored_sets.get(w, ())) for w in RETIRED})
    return RebuildPlan(
        rows_set=rows_set,
        rows_deleted=sorted(set(stored_rows) - set(rows)),
        added={w: sorted(want[w] - stored_sets.get(w, set())) for w in want},
        removed=removed,
    )


_SETS = ("entries", "contributions")


def _set_key(keys: Keys, which: str) -> str:
    if which in _SETS:
        return keys.ledger_index_entries if which == "entries" else keys.ledger_index_contributions
    return retired_key(keys, which)


def queue_rebuild(pipe, keys: Keys, plan: RebuildPlan, batch: int = 10_000) -> None:
    """Queue a rebuild plan inside MULTI, in commands of at most `batch` arguments."""
    items = sorted(plan.rows_set.items())
    for i in range(0, len(items), batch):
        pipe.hset(keys.ledger_index_rows, mapping=dict(items[i : i + batch]))
    for i in range(0, len(plan.rows_deleted), batch):
        pipe.hdel(keys.ledger_index_rows, *plan.rows_deleted[i : i + batch])
    for which in RETIRED:
        if plan.removed.get(which):
            pipe.unlink(retired_key(keys, which))
    for which in _SETS:
        key, removed, added = _set_key(keys, which), plan.removed[which], plan.added[which]
        for i in range(0, len(removed), batch):
            pipe.zrem(key, *removed[i : i + batch])
        for i in range(0, len(added), batch):
            pipe.zadd(key, dict.fromkeys(added[i : i + batch], 0))


def read_stored(client, keys: Keys, batch: int = 5000) -> tuple[dict[str, str], dict]:
    """The stored index (for a rebuild): rows, and the members of each sorted set, the
    RETIRED ones' too, read in batches."""
    rows = dict(client.hscan_iter(keys.ledger_index_rows, count=batch))
    sets = {
        which: {m for m, _ in client.zscan_iter(_set_key(keys, which), count=batch)}
        for which in (*_SETS, *RETIRED)
    }
    return rows, sets
