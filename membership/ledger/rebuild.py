"""`ledger rebuild`: the count, the counters and the member index recomputed from the records.

It writes only what differs, in one transaction WATCHing the ledger's version; after
`OPTIMISTIC_TRIES` conflicts it takes the rebuild lock (writers answer 503 meanwhile).
Why and when: docs/ledger.md, "Rebuilding the count and the counters".
"""

from __future__ import annotations

import gc
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import redis

from membership.core import audit
from membership.ledger import codec, rules
from membership.ledger import index as member_index
from membership.ledger.events import day, iso
from membership.ledger.model import Contributor, Customer, EmailBucket, SubRecord
from membership.ledger.queries import SCHEMA, SCHEMA_FIELD
from membership.ledger.records import LAYOUT, LAYOUT_FIELD, batches, read_hashes
from membership.ledger.writer import LedgerBusy, Outcome
from membership.store import Keys, whole

OPTIMISTIC_TRIES = 3
LOCK_SECONDS = 300
BATCH = 1000


@dataclass
class Plan:
    """What the stored records say the derived values should be, and what differs."""

    records: int = 0
    writes: list[tuple[str, object]] = field(default_factory=list)  # (kind, record) to store
    offline_index: tuple[set[str], set[str]] = field(default_factory=lambda: (set(), set()))
    counters: dict[str, int] = field(default_factory=dict)
    counters_before: dict[str, str] = field(default_factory=dict)
    count: int = 0
    count_before: str | None = None
    version_garbled: bool = False  # the banner's version cannot be INCRed: set it anew
    index: member_index.RebuildPlan | None = None  # the member index's writes
    unnamed: list[tuple[str, str]] = field(default_factory=list)  # (customer, subscription)
    old_sets: list[str] = field(default_factory=list)  # customers' sets, as kept before
    differed: Counter = field(default_factory=Counter)

    @property
    def counters_differ(self) -> dict[str, tuple[str | None, int]]:
        names = sorted(set(self.counters) | set(self.counters_before))
        return {
            n: (self.counters_before.get(n), self.counters.get(n, 0))
            for n in names
            if self.counters_before.get(n) != str(self.counters.get(n, 0))
            and not (n not in self.counters_before and self.counters.get(n, 0) == 0)
        }

    @property
    def count_differs(self) -> bool:
        return self.count_before != str(self.count)

    @property
    def unchanged(self) -> bool:
        return not (
            self.writes
            or self.unnamed
            or self.old_sets
            or any(self.offline_index)
            or self.counters_differ
            or self.version_garbled
            or (self.index is not None and self.index.changed)
        ) and (not self.count_differs)


@dataclass(frozen=True)
class Report:
    unchanged: bool
    records: int
    differed: dict[str, int]  # kind of record -> how many were rewritten
    counters: dict[str, tuple[str | None, int]]  # counter -> (stored, recomputed)
    count_before: int | None
    count_after: int
    locked: bool  # whether writers had to wait (the optimistic tries kept conflicting)

    def as_dict(self) -> dict:
        """As `membership ledger rebuild --json` and the dashboard's operations show it."""
        return {
            "unchanged": self.unchanged,
            "records": self.records,
            "rewritten": self.differed,
            "counters": {n: {"was": b, "now": a} for n, (b, a) in self.counters.items()},
            "members_before": self.count_before,
            "members_after": self.count_after,
            "writers_waited": self.locked,
        }


def rebuild(
    client: redis.Redis,
    keys: Keys,
    member_statuses: Iterable[str],
    *,
    actor: str,
    progress: Callable[[int], None] | None = None,
    subscribers: Iterable[Callable[[Outcome], None]] = (),
    clock: Callable[[], float] = time.time,
) -> Report:
    """Recompute and store the derived values; raises LedgerBusy if another rebuild holds
    the lock, codec.CorruptRecord if a record cannot be read at all (nothing written)."""
    audit.check_actor(actor)
    statuses = frozenset(member_statuses)

    def optimistic(pipe) -> whole.Write:
        plan = _plan(client, keys, statuses, progress)
        return whole.Write(lambda pipe: _queue(pipe, keys, plan, actor, clock()), plan)

    # Every change of the ledger INCRs the banner's version: a writer in between starts over.
    plan = _transaction(client, optimistic, keys.banner_version, OPTIMISTIC_TRIES, lambda: None)
    if plan is not None:
        return _finish(plan, False, subscribers, clock())
    token = secrets.token_hex(8)
    if not client.set(keys.ledger_rebuild_lock, token, nx=True, ex=LOCK_SECONDS):
        raise LedgerBusy("another ledger rebuild is running")
    expired = LedgerBusy("the rebuild lock expired before the commit")

    def locked(pipe) -> whole.Write:
        plan = _plan(client, keys, statuses, progress)
        if pipe.get(keys.ledger_rebuild_lock) != token:
            raise expired
        return whole.Write(lambda pipe: _queue(pipe, keys, plan, actor, clock(), True), plan)

    try:
        plan = _transaction(client, locked, keys.ledger_rebuild_lock, 1, expired)
    finally:
        if client.get(keys.ledger_rebuild_lock) == token:
            client.delete(keys.ledger_rebuild_lock)
    return _finish(plan, True, subscribers, clock())


def _transaction(client: redis.Redis, body, watched: str, attempts: int, busy):
    """The commit as one whole transaction (store/whole.py), WATCHing `watched`."""
    return whole.transaction(
        client,
        body,
        watch=(watched,),
        attempts=attempts,
        busy=busy,
        refused=lambda errors: redis.ResponseError(
            f"ledger rebuild: {len(errors)} write(s) failed: {errors[0]}"
        ),
    )


def _finish(plan: Plan, locked: bool, subscribers, at: float) -> Report:
    try:
        before = codec.count_from("count", plan.count_before)
    except codec.CorruptRecord:  # a garbled count is what a rebuild mends
        before = None
    report = Report(
        unchanged=plan.unchanged,
        records=plan.records,
        differed=dict(plan.differed),
        counters=plan.counters_differ,
        count_before=before,
        count_after=plan.count,
        locked=locked,
    )
    outcome = Outcome("rebuilt", count_before=before, count_after=plan.count, at=at)
    for subscriber in subscribers:
        subscriber(outcome)
    return report


# --- reading --------------------------------------------------------------------


def records_about(client: redis.Redis, keys: Keys) -> int:
    """About how many records a rebuild reads (a progress bar's length): the subscriptions
    the counters count, a customer for each, and the offline members."""
    counters = client.hgetall(keys.ledger_counters)
    numbers = {n: int(v) for n, v in counters.items() if v.isascii() and v.isdigit()}
    subs = sum(v for n, v in numbers.items() if n.startswith("subs:"))
    return 2 * subs + numbers.get("offline_members", 0)


def _read_records(client, keys: Keys, progress, named: dict, old_sets: list) -> tuple:
    """Every subscription, customer, email, contribution and contributor as stored, found
    by one SCAN of the ledger's keys; into `named` each customer's subscriptions its record
    names, into `old_sets` the customers' subscription sets versions before kept. Values
    the rebuild derives anew (live counts) are read leniently: a corrupt one is replaced,
    not fatal."""
    sub_prefix, customer_prefix = keys.ledger_subscription(""), keys.ledger_customer("")
    email_prefix = keys.ledger_email("")
    contribution_prefix = keys.ledger_contribution("")
    contributor_prefix = keys.ledger_contributor("")
    subs: dict[str, tuple[str, SubRecord]] = {}
    customers: dict[str, tuple[str, Customer]] = {}
    emails, contributions, contributors = {}, {}, {}
    hashed = (sub_prefix, customer_prefix, email_prefix, contribution_prefix)
    for names in batches(client.scan_iter(match=keys.ledger_pattern, count=BATCH), BATCH):
        old_sets += [n for n in names if n.endswith(":subs") and n.startswith(customer_prefix)]
        names = [n for n in names if not n.endswith((":subs", ":timeline"))]  # no records
        hashes = [n for n in names if n.startswith(hashed)]
        raws = dict(zip(hashes, read_hashes(client, hashes), strict=True))
        people = [n for n in names if n.startswith(contributor_prefix)]
        actives = dict(zip(people, client.mget(people), strict=True)) if people else {}
        for name in names:
            if name.startswith(sub_prefix):
                raw = raws[name]
                record = codec.sub_from_hash(name, raw, name[len(sub_prefix) :])
                if record is not None:
                    subs[record.id] = (codec.sub_field(raw, "live", ""), record)
            elif name.startswith(customer_prefix):
                cid, raw = name[len(customer_prefix) :], raws[name]
                customers[cid] = (raw.get("live", ""), _customer(name, cid, raw))
                named[cid] = set(codec.customer_sub_ids(raw))
            elif name.startswith(email_prefix):
                email = name[len(email_prefix) :]
                raw = raws[name]
                emails[email] = (raw.get("live", ""), _bucket(name, email, raw))
            elif name.startswith(contribution_prefix):
                record = codec.contribution_from_hash(name, raws[name])
                if record is not None:
                    contributions[record.key] = record
            elif name.startswith(contributor_prefix):
                contributors[name[len(contributor_prefix) :]] = actives[name]
        progress(len(hashes))
    return subs, customers, emails, contributions, contributors


def _customer(name: str, cid: str, raw: dict) -> Customer:
    return codec.customer_from_hash(name, cid, {**raw, "live": ""})


def _bucket(name: str, email: str, raw: dict) -> EmailBucket:
    return codec.bucket_from_hash(name, email, {**raw, "live": ""})


# --- deciding ---------------------------------------------------------------------


def _plan(client, keys: Keys, statuses: frozenset[str], progress) -> Plan:
    # Hundreds of thousands of small records and no cycles among them: the cyclic
    # collector would only rescan them (docs/benchmarks.md, "The ledger").
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _plan_all(client, keys, statuses, progress)
    finally:
        if enabled:
            gc.enable()


def _plan_all(client, keys: Keys, statuses: frozenset[str], progress) -> Plan:
    plan = Plan()
    subs, customers, emails, contributions, people = _read_records(
        client, keys, progress or (lambda n: None), named := {}, plan.old_sets
    )
    # Each subscription is named in its customer's record (versions before kept a set)
    plan.unnamed = sorted(
        (record.sub.customer, sid)
        for sid, (_, record) in subs.items()
        if sid not in named.get(record.sub.customer, ())
    )
    if plan.unnamed:
        plan.differed["subscription named by its customer"] = len(plan.unnamed)
    if plan.old_sets:
        plan.differed["customer's subscription set"] = len(plan.old_sets)
    plan.records = len(subs) + len(customers) + len(emails) + len(contributions)
    members = _plan_members(plan, subs, customers, emails, statuses)
    # The offline flag lives in the email's hash; the set is its index.
    indexed = set(client.smembers(keys.ledger_offline_members))
    offline = {t.email for t in members if isinstance(t, EmailBucket) and t.is_offline}
    plan.offline_index = (offline - indexed, indexed - offline)
    rows = member_index.expected_rows(
        (t for t in members if isinstance(t, Customer)),
        (t for t in members if isinstance(t, SubRecord)),
        (t for t in members if isinstance(t, EmailBucket)),
    )
    stored_index = member_index.read_stored(client, keys)
    plan.index = member_index.plan_rebuild(rows, contributions.values(), *stored_index)
    if plan.index.changed:
        plan.differed["member index"] = plan.index.changed
    targets = [*members, *_plan_contributors(plan, contributions, people)]
    plan.differed.update(kind for kind, _ in plan.writes)
    if any(plan.offline_index):
        plan.differed["offline index"] = sum(len(s) for s in plan.offline_index)
    counters: Counter[str] = Counter()
    for record in targets:
        counters.update(rules.counters_of(record, statuses))
        plan.count += rules.count_of(record)
    plan.counters = {n: v for n, v in sorted(counters.items()) if v}
    plan.counters[SCHEMA_FIELD] = SCHEMA
    plan.counters[LAYOUT_FIELD] = LAYOUT
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(keys.ledger_counters)
    pipe.get(keys.member_count)
    pipe.get(keys.banner_version)
    plan.counters_before, plan.count_before, version = pipe.execute()
    try:
        codec.version_from(keys.banner_version, version)
    except codec.CorruptRecord:
        plan.version_garbled = True
        plan.differed["banner version"] = 1
    return plan


def _plan_members(plan: Plan, stored_subs, stored_customers, stored_emails, statuses) -> list:
    """Each subscription, customer and email as the writer would have kept it; the ones whose
    stored live count (or status) differs go to `plan.writes`."""
    customers = {cid: c for cid, (_, c) in stored_customers.items()}
    live_by_customer: Counter[str] = Counter()
    targets: list[rules.Record] = []
    for stored_live, record in stored_subs.values():
        owner = customers.get(record.sub.customer) or Customer(record.sub.customer)
        deleted = owner.deleted_at is not None
        target = rules.sub_record(record.sub, deleted, statuses, record.opening)
        live_by_customer[record.sub.customer] += int(target.live)
        if target.status != record.status or stored_live != str(int(target.live)):
            plan.writes.append(("subscription", target))
        targets.append(target)
    live_by_email: Counter[str] = Counter()
    for cid in set(customers) | set(live_by_customer):
        stored_live, customer = stored_customers.get(cid, ("", Customer(cid)))
        target = replace(customer, live=live_by_customer[cid])
        if target.member and target.email:
            live_by_email[target.email] += 1
        if stored_live != str(target.live):
            plan.writes.append(("customer", target))
        targets.append(target)
    for email in set(stored_emails) | set(live_by_email):
        stored_live, bucket = stored_emails.get(email, ("", EmailBucket(email)))
        target = replace(bucket, live=live_by_email[email])
        if stored_live != str(target.live) and (stored_live or target.live):
            plan.writes.append(("email", target))
        targets.append(target)
    return targets


def _plan_contributors(plan: Plan, contributions: dict, stored_people: dict) -> list:
    """The contributions and each contributor's active count; differing counts to rewrite."""
    active_by_person: Counter[str] = Counter()
    for record in contributions.values():
        if record.person:
            active_by_person[record.person] += int(record.active)
    targets: list[rules.Record] = list(contributions.values())
    for person in set(stored_people) | set(active_by_person):
        target = Contributor(person, active_by_person[person])
        stored = stored_people.get(person)
        if stored != str(target.active) and (stored or target.active):
            plan.writes.append(("contributor", target))
        targets.append(target)
    return targets


# --- writing -----------------------------------------------------------------------


# The day's history (`codec.history_day`) with the count ARGV[1]: its joins and leaves
# kept, or a day begun at ARGV[2] (a garbled day, or a key of another type, is begun anew).
_DAY = """
local day = redis.pcall('GET', KEYS[1])
local _, joins, leaves, opening = tostring(day):match('^(%-?%d+) (%d+) (%d+) (%-?%d+)$')
if not joins then joins, leaves, opening = 0, 0, ARGV[2] end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. joins .. ' ' .. leaves .. ' ' .. opening)
"""


def _queue(pipe, keys: Keys, plan: Plan, actor: str, now: float, release_lock=False) -> None:
    """Queue the plan's writes, its audit entry, and the lock's release when held."""
    differ = plan.counters_differ
    for kind, record in plan.writes:
        if kind == "subscription":  # written whole: no field of the old record stays
            pipe.delete(keys.ledger_subscription(record.id))
            pipe.hset(keys.ledger_subscription(record.id), mapping=codec.sub_to_hash(record))
        elif kind == "customer":
            pipe.hset(keys.ledger_customer(record.id), "live", record.live)
        elif kind == "email":
            pipe.hset(keys.ledger_email(record.email), "live", record.live)
        elif kind == "contributor":
            pipe.set(keys.ledger_contributor(record.person), record.active)
    for cid, sid in plan.unnamed:
        pipe.hset(keys.ledger_customer(cid), codec.SUB_MARK + sid, "")
    for i in range(0, len(plan.old_sets), BATCH):
        pipe.unlink(*plan.old_sets[i : i + BATCH])
    if plan.index is not None:
        member_index.queue_rebuild(pipe, keys, plan.index)
    added, removed = plan.offline_index
    if added:
        pipe.sadd(keys.ledger_offline_members, *sorted(added))
    if removed:
        pipe.srem(keys.ledger_offline_members, *sorted(removed))
    if differ:
        pipe.delete(keys.ledger_counters)
        pipe.hset(keys.ledger_counters, mapping=plan.counters)
    if plan.count_differs:
        pipe.set(keys.member_count, plan.count)
        pipe.set(keys.count_changed_at, iso(now))
        # The day's history keeps its joins and leaves: `writer._BUMP` keeps the rest.
        before = plan.count_before or "0"
        before = before if before.lstrip("-").isdigit() else plan.count  # garbled: mended
        today = keys.ledger_history_day(day(now))
        pipe.execute_command("EVAL", _DAY, 1, today, plan.count, before)
    if plan.version_garbled:
        # Milliseconds since the epoch: above any version counted one change at a time,
        # so the banner's last good file cannot outrank what Redis holds from now on.
        pipe.set(keys.banner_version, int(now * 1000))
    elif not plan.unchanged:
        pipe.incr(keys.banner_version)
    # and what versions before kept: a version of their own, every subscription's and
    # every customer's id in a set (records are found by SCAN now)
    pipe.delete(keys.ledger_needs_rebuild, keys.ledger_version)
    # UNLINK: the sets may be large; Redis frees them after EXEC, in the background
    pipe.unlink(keys.ledger_subscriptions, keys.ledger_customers)
    if release_lock:
        pipe.delete(keys.ledger_rebuild_lock)
    audit.queue(
        pipe,
        keys,
        actor=actor,
        action="ledger_rebuilt",
        target="ledger",
        before={"count": plan.count_before, "counters": {n: b for n, (b, _) in differ.items()}},
        after={
            "count": plan.count,
            "counters": {n: a for n, (_, a) in differ.items()},
            "rewritten": dict(plan.differed),
        },
        at=now,
    )
