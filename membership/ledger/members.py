"""The Members page's read side: search, a member's page, the CSV export, and the pure views of
what was read (`row_view`, `member_view`, `status_history`). Nothing here writes but the
export's audit entry. All of it reads the member index (`membership.ledger.index`).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import redis

from membership.core import audit
from membership.ledger import codec
from membership.ledger.events import iso, read_records
from membership.ledger.index import NONE, SEP, Row, lex_range, tokens
from membership.ledger.model import Contribution, Customer, Offline, SubRecord, normalize_email
from membership.ledger.records import read_hashes, with_openings
from membership.ledger.rules import STATUS_CHANGE
from membership.store import Keys

CUSTOMER_ID = re.compile(r"^cus_[A-Za-z0-9]{1,250}$")
LIMIT_MAX = 100
CHUNK = 500  # name entries read per round trip while filtering on the other words
CHUNKS_PER_PAGE = 4  # a page stops there and hands back a cursor: bounded work per call
EXPORT_BATCH = 1000
COLUMNS = ("email", "name", "source", "status", "since", "plan", "amount", "customer")
# Stripe's zero-decimal currencies: their minor unit is the unit.
ZERO_DECIMAL = frozenset(
    [
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    ]
)
# OWASP's CSV injection list (and ASVS's NUL): a spreadsheet may run a cell that starts
# with one of these.
FORMULA_START = "=+-@\t\r\0"
# Where a spreadsheet may start a new cell: the comma, and what its import dialog offers
# besides (semicolon, tab, space, pipe), every other whitespace and line break included.
_CELL_START = re.compile(
    r"(^|[,;|\s])"  # the value's start, or a separator
    r'(?=[\s"]*[' + re.escape(FORMULA_START) + r"])"  # then a formula start, perhaps after
    # spaces (trimmed on import) and double quotes (a quoted cell's own)
)


class BadCursor(ValueError):
    """A cursor this module did not hand out (answer 400)."""


@dataclass(frozen=True)
class Page:
    rows: tuple[Row, ...]
    cursor: str | None  # pass back for the next page; None: no more


# --- search ---------------------------------------------------------------------------


def _cursor(phase: str, member: str) -> str:
    return base64.urlsafe_b64encode(f"{phase}{SEP}{member}".encode()).decode()


def _uncursor(cursor: str) -> tuple[str, str]:
    try:
        phase, _, member = base64.urlsafe_b64decode(cursor.encode()).decode().partition(SEP)
    except (ValueError, UnicodeError) as exc:
        raise BadCursor("cursor: not one this search handed out") from exc
    if phase not in ("email", "name") or (phase == "email" and not member):
        raise BadCursor("cursor: not one this search handed out")
    return phase, member


def _range(prefix: str, after: str | None) -> tuple[bytes, bytes]:
    # Bytes, not str: 0xff is above every UTF-8 byte, so [prefix, prefix+0xff] is the prefix.
    low = b"(" + after.encode() if after else b"[" + prefix.encode()
    return low, b"[" + prefix.encode() + b"\xff"


def _row_id(member: str) -> str:
    return member.rpartition(SEP)[2]


def _name_match(member: str, words: list[str], first: str) -> bool:
    """Whether every query word starts a word of the entry's name, and the entry is the
    name's first word matching the range's word (so a name with two such words is listed
    once). Decided from the entry alone: `<word>\\0<the name's words>\\0<row id>`."""
    token, _, rest = member.partition(SEP)
    own = rest.rpartition(SEP)[0].split(" ")
    if not all(any(t.startswith(w) for t in own) for w in words):
        return False
    return token == min(t for t in own if t.startswith(first))


class MemberSearch:
    """`search(query, limit, cursor)`, `member(who)`, `export_lines()` over one Redis."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.redis, self.keys = client, keys

    def rows(self, row_ids: list[str]) -> list[Row | None]:
        if not row_ids:
            return []
        raws = self.redis.hmget(self.keys.ledger_index_rows, row_ids)
        return [Row.from_json(raw) if raw else None for raw in raws]

    def customers_with_email(self, email: str) -> list[str]:
        """The Stripe customers the ledger holds with exactly this (normalized) email."""
        members = self.redis.zrangebylex(
            self.keys.ledger_index_entries, *lex_range("email", f"{email}{SEP}"), 0, LIMIT_MAX
        )
        rows = self.rows([_row_id(m) for m in members])
        return [r.customer for r in rows if r and r.email == email and r.customer]

    def search(self, query: str, *, limit: int = 50, cursor: str | None = None) -> Page:
        """Rows whose email starts with the query, then rows whose name has words starting
        with each of the query's words (a `cus_` id prefix: `Queries.search`). Ordered by
        email, then by name word; `cursor` continues where a page ended. Work per call is
        bounded, so a page may be short, even empty, and still carry a cursor: offer "more"
        while the cursor is not None."""
        q = (query or "").strip()
        limit = max(1, min(int(limit), LIMIT_MAX))
        if not q:
            return Page((), None)
        phase, after = _uncursor(cursor) if cursor else ("email", None)
        email = normalize_email(q) or ""
        by_email = " " not in email
        out: list[Row] = []
        if phase == "email" and by_email:
            low, high = lex_range("email", email, after)
            members = self.redis.zrangebylex(
                self.keys.ledger_index_entries, low, high, start=0, num=limit + 1
            )
            out = [r for r in self.rows([_row_id(m) for m in members[:limit]]) if r]
            if len(members) > limit:
                return Page(tuple(out), _cursor("email", members[limit - 1]))
            if len(out) == limit:  # the name matches start on the next page
                return Page(tuple(out), _cursor("name", ""))
        if phase == "email":
            after = None
        return self._by_name(q, email if by_email else None, out, limit, after or None)

    def _by_name(self, q, email_prefix, out: list[Row], limit: int, after) -> Page:
        words = tokens(q)
        if not words:
            return Page(tuple(out), None)
        first = max(words, key=len)  # the longest word narrows the range most
        # One word: most entries match (all but names listed by email already), so read a
        # page or two; more words: a chunk.
        chunk = CHUNK if len(words) > 1 else max(limit + 1, 100)
        for _ in range(CHUNKS_PER_PAGE):
            low, high = lex_range("name", first, after)
            members = self.redis.zrangebylex(
                self.keys.ledger_index_entries, low, high, start=0, num=chunk
            )
            matched = [m for m in members if _name_match(m[1:], words, first)]
            for member, row in zip(matched, self.rows([_row_id(m) for m in matched]), strict=True):
                if row is None or (email_prefix and row.email.startswith(email_prefix)):
                    continue  # listed among the email matches already
                out.append(row)
                if len(out) == limit:
                    return Page(tuple(out), _cursor("name", member))
            if len(members) < chunk:
                return Page(tuple(out), None)
            after = members[-1]
        return Page(tuple(out), _cursor("name", after))

    # --- a member's page --------------------------------------------------------------

    def member(self, who: str) -> MemberPage | None:
        """A member by Stripe customer id or email: every Stripe customer with that email
        (or the one customer), its subscriptions, invoices and disputes, the events that set
        the subscriptions' states (while the event log keeps them), and the offline record.
        None when the ledger knows nobody by that id or email."""
        who = (who or "").strip()
        if CUSTOMER_ID.match(who):
            found = self._customer(who)
            if found is None:
                return None
            ids, email = [who], found[0].email
        else:
            email = normalize_email(who)
            if not email:
                return None
            low, high = lex_range("email", email + SEP)
            members = self.redis.zrangebylex(self.keys.ledger_index_entries, low, high)
            ids = [m[len("stripe:") :] for m in map(_row_id, members) if m.startswith("stripe:")]
        offline = self._offline(email) if email else None
        customers = tuple(self._customer_page(cid) for cid in ids)
        if not customers and offline is None:
            return None
        rows = [f"stripe:{cid}" for cid in ids] + ([f"offline:{email}"] if offline else [])
        return MemberPage(
            email=email or "",
            rows=tuple(r for r in self.rows(rows) if r),
            customers=tuple(c for c in customers if c is not None),
            offline=offline,
            contributions=self._contributions(f"email:{email}") if email else (),
        )

    def _contributions(self, person: str) -> tuple[Contribution, ...]:
        """A contributor's one-time contributions, each with its refunded total."""
        low, high = _range(person + SEP, None)
        found = self.redis.zrangebylex(self.keys.ledger_index_contributions, low, high)
        names = [self.keys.ledger_contribution(_row_id(m)) for m in found]
        raws = read_hashes(self.redis, names)
        records = (codec.contribution_from_hash(n, r) for n, r in zip(names, raws, strict=True))
        return tuple(sorted((c for c in records if c), key=lambda c: (c.created, c.key)))

    def _customer(self, cid: str) -> tuple[Customer, list[str]] | None:
        """The customer and its subscription ids (None: no such customer)."""
        key = self.keys.ledger_customer(cid)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(key)
        pipe.smembers(self.keys.ledger_customer_subscriptions(cid))
        raw, listed = pipe.execute()
        if not raw:
            return None
        return codec.customer_from_hash(key, cid, raw), codec.customer_sub_ids(raw, listed)

    def _offline(self, email: str) -> Offline | None:
        key = self.keys.ledger_email(email)
        return codec.bucket_from_hash(key, email, self.redis.hgetall(key)).offline

    def _customer_page(self, cid: str) -> CustomerPage | None:
        k = self.keys
        found = self._customer(cid)
        if found is None:
            return None
        customer, sub_ids = found
        pipe = self.redis.pipeline(transaction=False)
        for sid in sub_ids:
            pipe.hgetall(k.ledger_subscription(sid))
        pipe.lrange(k.ledger_customer_timeline(cid), 0, -1)
        *raws, timeline = pipe.execute()
        subs = [
            codec.sub_from_hash(k.ledger_subscription(sid), raw, sid)
            for sid, raw in zip(sub_ids, raws, strict=True)
        ]
        subs = [s for s in subs if s is not None]
        entries = tuple(with_openings([json.loads(item) for item in timeline], subs))
        touched = {s.sub.source for s in subs} | {e.get("event", "") for e in entries}
        sources = sorted(e for e in touched if e.startswith("evt_"))
        events = tuple(
            {"id": eid, "outcome": record.get("outcome"), "received": record.get("received")}
            for eid, record in zip(sources, read_records(self.redis, k, sources), strict=True)
        )
        return CustomerPage(
            customer=customer,
            subscriptions=tuple(subs),
            timeline=entries,
            events=events,
            contributions=self._contributions(f"customer:{cid}"),
        )

    # --- the CSV export -----------------------------------------------------------------

    def current_rows(self, batch: int = EXPORT_BATCH) -> Iterator[Row]:
        """Every current member's row (Stripe and offline), by email (those without one
        last), `batch` at a time, from the email entry of every row. Not a snapshot:
        a member who joins or leaves while it runs may be in it or not."""
        key = self.keys.ledger_index_entries
        low, high = lex_range("email")
        while True:
            members = self.redis.zrangebylex(key, low, high, start=0, num=batch)
            ids = [m[1 + len(NONE) :] if m[1:].startswith(NONE) else _row_id(m) for m in members]
            for row in self.rows(ids):
                if row is not None and row.current:
                    yield row
            if len(members) < batch:
                return
            low = b"(" + members[-1].encode()

    def audited_export(self, *, actor: str, at: float) -> Iterator[str]:
        """Record the export in the audit log now (a Redis failure raises here, before any
        line is sent), then return the lines to stream: no download goes unrecorded."""
        rows = codec.count_from(self.keys.member_count, self.redis.get(self.keys.member_count)) or 0
        record_export(self.redis, self.keys, actor=actor, rows=rows, at=at)
        return self.export_lines()

    def export_lines(self, batch: int = EXPORT_BATCH) -> Iterator[str]:
        """The CSV export, line by line (header first, CRLF endings as RFC 4180 says)."""
        buffer = io.StringIO()
        writer = _csv_writer(buffer)
        yield csv_line(COLUMNS)
        for row in self.current_rows(batch):
            buffer.seek(0)
            buffer.truncate()
            writer.writerow(export_cells(row))
            yield buffer.getvalue()


@dataclass(frozen=True)
class CustomerPage:
    customer: Customer
    subscriptions: tuple[SubRecord, ...]  # each subscription's standing state
    timeline: tuple[dict, ...]  # status changes, invoices paid and failed, disputes: newest first
    events: tuple[dict, ...]  # {id, outcome, received} of the events that touched them
    contributions: tuple[Contribution, ...] = ()  # one-time, by this customer: amount, refunded


@dataclass(frozen=True)
class MemberPage:
    """What the ledger keeps of one person. Not kept, so not shown: status changes from
    before 2026-11-26 (only the state that stands and the event that set it), an event's
    payload after 7 days (the log's limit), each refund on its own (a contribution keeps
    its refunded total), and events that changed nothing. `contributions`: those given
    under the email alone (a customer's own are on its `CustomerPage`)."""

    email: str
    rows: tuple[Row, ...]
    customers: tuple[CustomerPage, ...]
    offline: Offline | None
    contributions: tuple[Contribution, ...] = ()


# --- pure helpers -----------------------------------------------------------------------


def amount_text(amount: int, currency: str) -> str:
    """`8.00 EUR`; zero-decimal currencies without decimals; "" without a currency."""
    if not currency:
        return ""
    if currency.lower() in ZERO_DECIMAL:
        return f"{amount} {currency.upper()}"
    return f"{amount // 100}.{amount % 100:02d} {currency.upper()}"


def safe_cell(value: str) -> str:
    """A cell a spreadsheet shows as text, however it splits it (OWASP's CSV injection
    advice): a formula character at the start, or after any separator a spreadsheet may
    split on, gets a single quote before it (`Olena;=1+1` -> `Olena;'=1+1`)."""
    if not any(c in value for c in FORMULA_START):  # most cells: nothing to look for
        return value
    return _CELL_START.sub(r"\1'", value)


def export_cells(row: Row) -> tuple[str, ...]:
    values = (
        row.email,
        row.name,
        row.source,
        row.status,
        row.since,
        row.plan,
        amount_text(row.amount, row.currency),
        row.customer,
    )
    return tuple(safe_cell(v) for v in values)


def _csv_writer(out):
    """Every cell quoted: a separator or quote in a value stays inside its cell."""
    return csv.writer(out, quoting=csv.QUOTE_ALL)


def csv_line(cells) -> str:
    out = io.StringIO()
    _csv_writer(out).writerow(cells)
    return out.getvalue()


def record_export(client: redis.Redis, keys: Keys, *, actor: str, rows: int, at: float) -> None:
    """The audit entry of one export: who, and how many current members it holds. An export
    changes nothing else, so the entry is written on its own, before the first line."""
    audit.record(
        client,
        keys,
        actor=audit.check_actor(actor),
        action="members_exported",
        target="members.csv",
        after={"rows": rows},
        at=at,
    )


# --- what the Members page and its JSON show (pure) --------------------------------------

INVOICE_KINDS = {
    "invoice.paid": "invoice paid",
    "invoice.payment_failed": "payment failed",
    "charge.dispute.created": "dispute opened",
}


def when(epoch: int | None) -> str:
    """`2026-05-28 20:26` (UTC), or "" for none."""
    if not epoch:
        return ""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class Shown:
    """How the views write a time (epoch seconds) and an amount (minor units, currency):
    plain UTC text and `8.00 EUR` here and in the JSON; the staff pages pass their own
    (Babel, in the viewer's zone)."""

    time: Callable[[int], object] = when
    money: Callable[[int, str], object] = amount_text

    def at(self, epoch: int | None):
        return self.time(epoch) if epoch else ""

    def amount(self, amount: int, currency: str):
        return self.money(amount, currency) if currency else ""


PLAIN = Shown()


def row_view(row: Row, shown: Shown = PLAIN) -> dict:
    """A search result as the page lists it; `who` is the id of the member's page."""
    return {
        "who": row.customer or row.email,
        "email": row.email,
        "name": row.name,
        "source": row.source,
        "status": row.status,
        "since": row.since,
        "joined": shown.at(row.joined) or row.since,
        "plan": row.plan,
        "amount": shown.amount(row.amount, row.currency),
        "current": row.current,
    }


def row_json(row: Row) -> dict:
    """A row for JSON: when it joined in ISO 8601 UTC as every time in the API (empty: never)."""
    return {
        **asdict(row),
        "amount_text": amount_text(row.amount, row.currency),
        "joined": iso(row.joined) if row.joined else "",
    }


def status_history(
    record: SubRecord, timeline: tuple[dict, ...] = (), shown: Shown = PLAIN
) -> list[dict]:
    """A subscription's steps, oldest first, from what the ledger keeps: its start, the
    cancellation asked and the end (dates Stripe gives on the subscription), the status that
    stands and the event that set it, its invoices paid and failed, and each change of
    status (with its event) the ledger recorded (since 2026-11-26: older ones were not
    kept)."""
    sub = record.sub
    steps = []
    if sub.started:
        steps.append((sub.started, "started", ""))
    if sub.canceled_at and not sub.final:
        steps.append((sub.canceled_at, "cancellation asked", ""))
    for entry in timeline:
        if entry.get("subscription") != sub.id:
            continue
        if entry.get("kind") in INVOICE_KINDS:
            amount = shown.amount(int(entry.get("amount") or 0), entry.get("currency") or "")
            steps.append((entry["created"], INVOICE_KINDS[entry["kind"]], amount))
        elif entry.get("kind") == STATUS_CHANGE:
            change = f"{entry.get('from') or 'new'} → {entry.get('to')}"
            steps.append((entry["created"], f"status {change}", entry.get("event", "")))
    if sub.ended_at:
        steps.append((sub.ended_at, "ended", ""))
    counts = "counts" if record.live else "does not count"
    steps.append((sub.created, f"now {sub.status}", f"{counts}; set by {sub.source}"))
    steps.sort(key=lambda step: step[0])
    return [{"at": shown.at(at), "what": what, "detail": detail} for at, what, detail in steps]


def _contribution_view(c: Contribution, shown: Shown) -> dict:
    return {
        "key": c.key,
        "at": shown.at(c.created),
        "paid": c.paid,
        "amount": shown.amount(c.amount, c.currency),
        "refunded": shown.amount(c.refunded, c.currency) if c.refunded else "",
        "net": shown.amount(c.net, c.currency),
    }


def _customer_view(page: CustomerPage, shown: Shown) -> dict:
    c = page.customer
    subs = sorted(page.subscriptions, key=lambda r: (r.sub.started or 0, r.id))
    return {
        "id": c.id,
        "email": c.email or "",
        "name": c.name or "",
        "member": c.member,
        "deleted": shown.at(c.deleted_at),
        "subscriptions": [
            {
                "id": r.id,
                "status": r.status,
                "plan": r.sub.plan_label,
                "amount": shown.amount(r.sub.amount, r.sub.currency),
                "interval": r.sub.interval,
                "period_end": shown.at(r.sub.current_period_end),
                "cancel_at_period_end": r.sub.cancel_at_period_end,
                "history": status_history(r, page.timeline, shown),
            }
            for r in subs
        ],
        "invoices": [
            {
                "at": shown.at(e.get("created")),
                "what": INVOICE_KINDS.get(e.get("kind", ""), e.get("kind", "")),
                "reference": e.get("reference", ""),
                "amount": shown.amount(int(e.get("amount") or 0), e.get("currency") or ""),
            }
            for e in page.timeline
            if e.get("kind") != STATUS_CHANGE  # shown in the subscription's history
        ],
        "events": list(page.events),
        "contributions": [_contribution_view(x, shown) for x in page.contributions],
    }


def member_view(page: MemberPage, shown: Shown = PLAIN) -> dict:
    """The member's page: their index rows, each customer, the offline record,
    contributions and, apart, every refunded contribution."""
    customers = [_customer_view(c, shown) for c in page.customers]
    every = [*page.contributions, *(x for c in page.customers for x in c.contributions)]
    offline = page.offline
    return {
        "email": page.email,
        "name": next((r.name for r in page.rows if r.name), ""),
        "rows": [row_view(r, shown) for r in page.rows],
        "customers": customers,
        "offline": asdict(offline) if offline else None,
        "contributions": [_contribution_view(x, shown) for x in page.contributions],
        "refunds": [_contribution_view(x, shown) for x in every if x.refunded],
    }


def member_json(page: MemberPage) -> dict:
    """The MemberPage as JSON, each subscription with its `status_history`."""
    body = asdict(page)
    for customer, out in zip(page.customers, body["customers"], strict=True):
        for record, sub in zip(customer.subscriptions, out["subscriptions"], strict=True):
            sub["status_history"] = status_history(record, customer.timeline)
    body["rows"] = [row_json(r) for r in page.rows]
    return body
