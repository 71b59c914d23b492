"""Benchmark: `stats` latency and `ledger rebuild` time at 1k and 200k members, same run.

    .venv/bin/python bench/ledger.py [--sizes 1000,200000] [--calls 2000] [--quick]

Starts a throwaway redis-server on 127.0.0.1 and, for each size, FLUSHALLs it
and writes a ledger of that many members directly (the codec's hashes under a
`Keys("bench")` prefix, pipelined in batches, no webhooks): customers with one
subscription (some two; some canceled, unpaid, deleted... so records outnumber
members), ~70% with an email (a few shared by two customers), a few hundred
offline members (some under a member customer's email), one-time contributions
with partial and full refunds, six plans in two currencies. The count and the
`stats` counters are NOT written: `membership.ledger.rebuild.rebuild` builds
them (timed: "build"), then runs again on the now correct ledger (timed:
"check", which must report it unchanged). The count must equal the member
count the generator knows it made (member customers, two with one email being
two members, docs/ledger.md, + offline emails no member customer has),
computed here without the ledger's rules; the run exits 1 otherwise.

Then `Queries.stats()` is timed (p50, p99, mean) against a bare round trip of
the same shape through the same client (MULTI GET GET HGETALL of a 5-field hash,
HGETALL of an absent hash, EXEC), interleaved in rounds, and the table shows
the ratio to that baseline and the ratio of `stats` p50 at the largest size to
the smallest (goal: under 1.5, under 20 ms at both; rebuild under 60 s at 200k).
`--stale-live` writes the records without the derived `live` flags (as an
older version stored them), so the build rewrites every record too.
The redis-server is stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from membership.core.config import DEFAULT_MEMBER_STATUSES  # noqa: E402
from membership.ledger import Queries, codec  # noqa: E402
from membership.ledger.model import (  # noqa: E402
    Contribution,
    Customer,
    EmailBucket,
    Offline,
    SubRecord,
    Subscription,
)
from membership.ledger.rebuild import rebuild  # noqa: E402
from membership.store import Keys, connect  # noqa: E402
from tests.support.processes import RedisServer  # noqa: E402

PREFIX = "bench"
BATCH = 1000  # customers (or emails, contributions) per pipeline
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
DAY = 86_400

# (price id, nickname, amount per interval in minor units, currency, interval, interval_count)
PLANS = (
    ("price_monthly_eur", "Monthly", 800, "eur", "month", 1),
    ("price_yearly_eur", "Yearly", 8000, "eur", "year", 1),
    ("price_supporter_eur", "Supporter", 2000, "eur", "month", 1),
    ("price_student_eur", "Student", 1800, "eur", "month", 3),
    ("price_monthly_uah", "Monthly UAH", 15000, "uah", "month", 1),
    ("price_yearly_uah", "Yearly UAH", 150000, "uah", "year", 1),
)
PLAN_WEIGHTS = (45, 20, 8, 7, 14, 6)
# A customer's first subscription: Stripe statuses with their share.
FIRST_STATUSES = (
    ("active", 850),
    ("trialing", 40),
    ("past_due", 30),
    ("canceled", 45),
    ("unpaid", 15),
    ("incomplete_expired", 8),
    ("paused", 6),
    ("incomplete", 6),
)
SECOND_STATUSES = (("canceled", 70), ("active", 20), ("past_due", 5), ("unpaid", 5))
FINAL = frozenset({"canceled", "incomplete_expired"})


def _pick(rng: random.Random, table) -> str:
    return rng.choices([s for s, _ in table], weights=[w for _, w in table])[0]


@dataclass
class World:
    """What was generated, kept small: enough to know the count without the ledger's rules."""

    customers: list[tuple[str | None, bool]] = field(default_factory=list)  # (email, member)
    offline: list[str] = field(default_factory=list)
    subscriptions: int = 0
    contributions: int = 0
    contributors: int = 0
    emails: int = 0  # email hashes written (customer emails and offline members)

    def expected_count(self) -> int:
        """Member customers (two with one email are two members: docs/ledger.md, "A person
        counts once") + offline emails that no member customer has."""
        member_emails = {email for email, member in self.customers if member and email}
        uncovered = {e for e in self.offline if e not in member_emails}
        return self.member_customers + len(uncovered)

    @property
    def member_customers(self) -> int:
        return sum(1 for _, member in self.customers if member)


def _subscription(rng, cid: str, index: int, status: str, started: int) -> Subscription:
    price, nickname, amount, currency, interval, interval_count = rng.choices(
        PLANS, weights=PLAN_WEIGHTS
    )[0]
    quantity = 2 if rng.random() < 0.03 else 1
    created = started + rng.randint(0, 300 * DAY)
    ended = created if status in FINAL else None
    return Subscription(
        id=f"sub_{cid[4:]}_{index}",
        customer=cid,
        status=status,
        created=created,
        price=price,
        plan=nickname,
        amount=amount * quantity,
        currency=currency,
        interval=interval,
        interval_count=interval_count,
        quantity=quantity,
        started=started,
        canceled_at=ended,
        ended_at=ended,
        cancel_at_period_end=status == "active" and rng.random() < 0.05,
        current_period_end=created + 30 * DAY,
        source=f"evt_{rng.getrandbits(64):016x}",
    )


def generate(client, keys: Keys, members: int, statuses: frozenset[str], seed: int, stale: bool):
    """Write a ledger of exactly `members` members (by construction; checked after)."""
    rng = random.Random(seed)
    world = World()
    offline_n = min(300, max(20, members // 20))
    covered_n = offline_n // 3  # offline members under a member customer's email
    shared_n = offline_n // 10  # under a non-member customer's email: they still count
    target = members - (offline_n - covered_n)  # persons the customers must make
    member_emails: set[str] = set()
    emails_seen: list[str] = []
    live_by_email: Counter[str] = Counter()
    persons = 0
    i = 0
    pipe = client.pipeline(transaction=False)
    batch_customers: list[str] = []
    batch_subs: list[str] = []
    contributors: Counter[str] = Counter()

    def flush():
        if batch_customers:
            pipe.sadd(keys.ledger_customers, *batch_customers)
        if batch_subs:
            pipe.sadd(keys.ledger_subscriptions, *batch_subs)
        pipe.execute()
        batch_customers.clear()
        batch_subs.clear()

    while persons < target:
        cid = f"cus_{i:07d}"
        i += 1
        started = T0 - rng.randint(0, 3 * 365 * DAY)
        email = None
        if rng.random() < 0.7:
            if emails_seen and rng.random() < 0.02:
                email = rng.choice(emails_seen)  # a second customer with the same email
            else:
                email = f"reader{i}@example.org"
                emails_seen.append(email)
        deleted = rng.random() < 0.005
        subs_statuses = [_pick(rng, FIRST_STATUSES)]
        if rng.random() < 0.15:
            subs_statuses.append(_pick(rng, SECOND_STATUSES))
        live = 0
        for s, status in enumerate(subs_statuses):
            sub = _subscription(rng, cid, s, status, started)
            effective = "canceled" if deleted and status not in FINAL else status
            counts = effective in statuses
            live += counts
            record = SubRecord(sub, effective, live=None if stale else counts)
            pipe.hset(keys.ledger_subscription(sub.id), mapping=codec.sub_to_hash(record))
            pipe.hset(keys.ledger_customer(cid), codec.SUB_MARK + sub.id, "")
            batch_subs.append(sub.id)
        world.subscriptions += len(subs_statuses)
        member = live > 0
        customer = Customer(
            id=cid,
            email=email,
            email_created=started if email else 0,
            name=f"Reader {i}" if email else None,
            metadata=json.dumps({"source": rng.choice(("site", "newsletter", "event"))}),
            deleted_at=T0 - rng.randint(0, 30 * DAY) if deleted else None,
            live=live,
        )
        values, _ = codec.customer_to_hash(customer)
        if stale:
            del values["live"]
        pipe.hset(keys.ledger_customer(cid), mapping=values)
        batch_customers.append(cid)
        world.customers.append((email, member))
        if email:
            live_by_email[email] += int(member)
        if member:
            persons += 1
            if email:
                member_emails.add(email)
        if rng.random() < 0.06:  # a one-time contribution, from the customer or its email
            for _ in range(rng.choice((1, 1, 1, 2))):
                world.contributions += 1
                key = f"pi_{world.contributions:07d}"
                amount = rng.choice((1000, 2500, 5000, 777))
                refunded = rng.choices(
                    (0, amount // 3, amount // 2, amount), weights=(75, 12, 8, 5)
                )[0]
                by_email = email is not None and rng.random() < 0.3
                person = f"email:{email}" if by_email else f"customer:{cid}"
                contribution = Contribution(
                    key=key,
                    paid=True,
                    amount=amount,
                    currency=rng.choice(("eur", "eur", "uah")),
                    refunded=refunded,
                    person=person,
                    customer=None if by_email else cid,
                    email=email,
                    created=started + rng.randint(0, 100 * DAY),
                    metadata="{}",
                )
                pipe.hset(
                    keys.ledger_contribution(key), mapping=codec.contribution_to_hash(contribution)
                )
                contributors[person] += int(contribution.active)
        if len(batch_customers) >= BATCH:
            flush()
    flush()

    # Offline members: under member customers' emails, non-member customers' emails, new ones.
    non_member = sorted({e for e, _ in world.customers if e} - member_emails)
    world.offline = rng.sample(sorted(member_emails), covered_n) + rng.sample(
        non_member, min(shared_n, len(non_member))
    )
    world.offline += [f"offline{j}@example.net" for j in range(offline_n - len(world.offline))]
    offline = set(world.offline)
    buckets = sorted(set(live_by_email) | offline)
    for n, email in enumerate(buckets, 1):
        bucket = EmailBucket(
            email,
            live=live_by_email[email],
            offline=Offline("bank transfer", f"Reader {email}", "2026-01-02T10:00:00Z")
            if email in offline
            else None,
        )
        values, _ = codec.bucket_to_hash(bucket)
        if stale:
            del values["live"]
        if values:
            pipe.hset(keys.ledger_email(email), mapping=values)
            world.emails += 1
        if n % BATCH == 0:
            pipe.execute()
    if world.offline:
        pipe.sadd(keys.ledger_offline_members, *world.offline)
    for n, (person, active) in enumerate(sorted(contributors.items()), 1):
        pipe.set(keys.ledger_contributor(person), active)
        if n % BATCH == 0:
            pipe.execute()
    pipe.execute()
    world.contributors = len(contributors)
    return world


def _ms(ns: list[int], q: float) -> float:
    ordered = sorted(ns)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6


def time_calls(client, keys: Keys, calls: int, rounds: int) -> tuple[list[int], list[int]]:
    """(stats latencies, baseline latencies) in ns, interleaved in `rounds` after a warm-up."""
    queries = Queries(client, keys)
    base = f"{{{PREFIX}}}:baseline"
    client.set(f"{base}:a", "1234567")
    client.set(f"{base}:b", "2026-01-01T00:00:00Z")
    client.hset(f"{base}:hash", mapping={f"field{i}": i * 1000 for i in range(5)})
    client.delete(f"{base}:empty")

    def baseline():
        pipe = client.pipeline(transaction=True)
        pipe.get(f"{base}:a")
        pipe.get(f"{base}:b")
        pipe.hgetall(f"{base}:hash")
        pipe.hgetall(f"{base}:empty")
        return pipe.execute()

    for _ in range(max(20, calls // 10)):
        queries.stats()
        baseline()
    now = time.perf_counter_ns
    stats_ns: list[int] = []
    base_ns: list[int] = []
    per_round = max(1, calls // rounds)
    for _ in range(rounds):
        for fn, out in ((baseline, base_ns), (queries.stats, stats_ns)):
            for _ in range(per_round):
                t0 = now()
                fn()
                out.append(now() - t0)
    return stats_ns, base_ns


def run_size(client, keys: Keys, members: int, args, statuses: frozenset[str]) -> dict:
    client.flushall()
    t0 = time.perf_counter()
    world = generate(client, keys, members, statuses, args.seed + members, args.stale_live)
    generated = time.perf_counter() - t0
    expected = world.expected_count()
    problems = []
    if expected != members:
        problems.append(f"generated {expected} members, meant {members}")
    dbsize = client.dbsize()

    t0 = time.perf_counter()
    built = rebuild(client, keys, statuses, actor="bench")
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    checked = rebuild(client, keys, statuses, actor="bench")
    check_s = time.perf_counter() - t0

    stats = Queries(client, keys).stats()
    checks = (
        ("build: count", built.count_after, expected),
        ("check: unchanged", checked.unchanged, True),
        ("check: count", checked.count_after, expected),
        ("stats: members", stats["members"], expected),
        ("stats: needs_rebuild", stats["needs_rebuild"], None),
        ("stats: stripe_members", stats["stripe_members"], world.member_customers),
        ("stats: offline_members", stats["offline_members"], len(set(world.offline))),
        (
            "stats: subscriptions",
            sum(stats["subscriptions_by_status"].values()),
            world.subscriptions,
        ),
    )
    problems += [
        f"{name}: got {got!r}, expected {want!r}" for name, got, want in checks if got != want
    ]
    if built.unchanged:
        problems.append("build: the first rebuild found nothing to write")

    stats_ns, base_ns = time_calls(client, keys, args.calls, args.rounds)
    return {
        "members": expected,
        "world": world,
        "generated_s": generated,
        "keys": dbsize,
        "records": built.records,
        "records_checked": checked.records,
        "rewritten": built.differed,
        "counters": len(client.hgetall(keys.ledger_counters)),
        "build_s": build_s,
        "check_s": check_s,
        "stats_ns": stats_ns,
        "base_ns": base_ns,
        "stats": stats,
        "memory": client.info("memory")["used_memory_human"],
        "problems": problems,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,200000", help="members, comma-separated")
    parser.add_argument("--calls", type=int, default=2000, help="stats calls per size (timed)")
    parser.add_argument("--rounds", type=int, default=10, help="stats/baseline alternations")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--stale-live",
        action="store_true",
        help="write records without their live flags: the build rewrites them all",
    )
    parser.add_argument("--quick", action="store_true", help="sizes 1000,5000 and 200 calls")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.calls, args.rounds = "1000,5000", 200, 4
    try:
        sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error("--sizes: whole numbers, e.g. 1000,200000")
    if not sizes or not all(100 <= s <= 1_000_000 for s in sizes):
        parser.error("keep it bounded: sizes between 100 and 1,000,000 members")
    if not (10 <= args.calls <= 20_000 and 1 <= args.rounds <= args.calls):
        parser.error("keep it bounded: 10 <= calls <= 20000, 1 <= rounds <= calls")
    statuses = frozenset(DEFAULT_MEMBER_STATUSES)
    keys = Keys(PREFIX)

    server = RedisServer().start()
    client = connect(server.url)
    results = []
    try:
        for size in sizes:
            print(f"{size:,} members: writing records...", file=sys.stderr, flush=True)
            results.append(run_size(client, keys, size, args, statuses))
            r = results[-1]
            print(
                f"  {r['keys']:,} keys in {r['generated_s']:.1f} s, rebuild "
                f"{r['build_s']:.2f} s + check {r['check_s']:.2f} s",
                file=sys.stderr,
                flush=True,
            )
        version = client.info("server")["redis_version"]
    finally:
        client.close()
        server.stop()

    print(
        f"\nmembership ledger benchmark: redis-server {version} on 127.0.0.1, "
        f"{os.cpu_count()} CPUs, member statuses {','.join(sorted(statuses))}"
        f"{', records written without live flags' if args.stale_live else ''}"
    )
    print(
        f"stats: {args.calls} calls per size after a warm-up, interleaved in {args.rounds} "
        "rounds with the baseline (MULTI GET GET HGETALL(5 fields) HGETALL(absent) EXEC, "
        "same client)\n"
    )
    print(
        "| members | customers | subs | email hashes | offline | contributions "
        "| keys written | records rebuild read | Redis memory |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        w = r["world"]
        print(
            f"| {r['members']:,} | {len(w.customers):,} | {w.subscriptions:,} | {w.emails:,} "
            f"| {len(w.offline):,} | {w.contributions:,} | {r['keys']:,} | {r['records']:,} "
            f"| {r['memory']} |"
        )
    print(
        "\n| members | rebuild build s | records/s | rebuild check s | records/s "
        "| stats p50 ms | p99 | mean | baseline p50 ms | p99 | stats/baseline p50 |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        s, b = r["stats_ns"], r["base_ns"]
        print(
            f"| {r['members']:,} | {r['build_s']:.2f} | {r['records'] / r['build_s']:,.0f} "
            f"| {r['check_s']:.2f} | {r['records_checked'] / r['check_s']:,.0f} "
            f"| {_ms(s, 0.5):.3f} | {_ms(s, 0.99):.3f} | {statistics.mean(s) / 1e6:.3f} "
            f"| {_ms(b, 0.5):.3f} | {_ms(b, 0.99):.3f} | {_ms(s, 0.5) / _ms(b, 0.5):.2f}x |"
        )
    small, large = results[0], results[-1]
    scale = _ms(large["stats_ns"], 0.5) / _ms(small["stats_ns"], 0.5)
    normalized = scale / (_ms(large["base_ns"], 0.5) / _ms(small["base_ns"], 0.5))
    print(
        f"\nstats p50 at {large['members']:,} / at {small['members']:,} members: {scale:.2f} "
        f"(goal: under 1.5); the same divided by the baseline's own ratio: {normalized:.2f}"
    )
    worst_p50 = max(_ms(r["stats_ns"], 0.5) for r in results)
    print(f"stats p50, worst size: {worst_p50:.3f} ms (goal: under 20 ms)")
    print(
        f"rebuild at {large['members']:,} members: {large['build_s']:.1f} s to build, "
        f"{large['check_s']:.1f} s to check (goal: under 60 s); first rebuild rewrote "
        f"{large['rewritten'] or 'nothing but the count and counters'}; "
        f"{large['counters']} counter fields"
    )
    problems = [f"{r['members']:,} members: {p}" for r in results for p in r["problems"]]
    if problems:
        print("\nFAILED:\n  " + "\n  ".join(problems))
        sys.exit(1)
    print("\ncorrect at every size: rebuilt count = generated count, check unchanged, stats agree")


if __name__ == "__main__":
    main()
