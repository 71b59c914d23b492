"""Benchmark: the Members page's search and CSV export at 200,000 members, against a naive
SCAN-and-filter over the same data in the same run.

    .venv/bin/python bench/member_search.py [--members 200000] [--calls 300] [--quick]

Starts a throwaway redis-server, writes a ledger of `--members` members with
`bench/ledger.py`'s generator (records only), gives every customer a name from a small
list of first and last names (so name words are shared by thousands, as real ones are),
and builds the member index, the count and the counters with `ledger rebuild` (rows in the
shape the writer keeps them: the same `index.customer_row`). Then it times, interleaved,
`--calls` of each search through `Queries.search` (a page of 50): an email prefix that
matches one reader, a common last-name prefix, two words, an exact `cus_...`, a `cus_`
prefix, and page 20
of an email prefix matching most members (reached by following cursors; the call timed is
the 20th page alone). The baseline is what a page would do without the index: SCAN every
customer hash and filter by email prefix in Python (`--naive` runs, the slowest part).
Last, the whole CSV export is drained (rows/s, MB/s, peak Python memory by tracemalloc) and
checked to hold exactly the member count's rows, and the member index's memory is printed
per member, key by key (MEMORY USAGE). Exits 1 if a check fails. The redis-server
is stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.ledger import PREFIX, generate  # noqa: E402
from membership.core.config import DEFAULT_MEMBER_STATUSES  # noqa: E402
from membership.ledger import Queries  # noqa: E402
from membership.ledger.rebuild import rebuild  # noqa: E402
from membership.ledger.records import record_ids  # noqa: E402
from membership.store import Keys, connect  # noqa: E402
from tests.support.processes import RedisServer  # noqa: E402

FIRST = [
    "Anna",
    "Olena",
    "Maria",
    "Petro",
    "Ivan",
    "Oksana",
    "Taras",
    "Iryna",
    "Andrii",
    "Sofia",
    "Mykola",
    "Daria",
    "Yulia",
    "Liam",
    "Emma",
    "Noah",
    "Olivia",
    "Lukas",
    "Zoë",
    "José",
    "Chloé",
    "Hannah",
    "Jonas",
    "Marta",
    "Pavel",
    "Nina",
]
LAST = [
    "Kovalenko",
    "Shevchenko",
    "Bondarenko",
    "Tkachenko",
    "Kravchenko",
    "Melnyk",
    "Oliinyk",
    "Boyko",
    "Smith",
    "Müller",
    "García",
    "Rossi",
    "Dubois",
    "Nowak",
    "Novák",
    "Jensen",
    "Silva",
    "Kowalski",
    "Horvat",
    "Moroz",
    "Lysenko",
    "Savchenko",
    "Rudenko",
    "Marchenko",
    "Petrenko",
    "Kuzmenko",
    "Pavlenko",
    "Levchenko",
]


def name_customers(client, keys: Keys, seed: int) -> None:
    rng = random.Random(seed)
    pipe = client.pipeline(transaction=False)
    customers = (c for ids in record_ids(client, keys.ledger_customer(""), 2000) for c in ids)
    for n, cid in enumerate(customers, 1):
        pipe.hset(keys.ledger_customer(cid), "name", f"{rng.choice(FIRST)} {rng.choice(LAST)}")
        if n % 2000 == 0:
            pipe.execute()
    pipe.execute()


def naive_search(client, keys: Keys, prefix: str, limit: int = 50) -> list[dict]:
    """A page without the index: every customer hash, filtered by email prefix."""
    out = []
    names = []
    for key in client.scan_iter(match=keys.ledger_customer("*"), count=2000):
        if key.endswith((":subs", ":timeline")):
            continue
        names.append(key)
        if len(names) == 2000:
            out += _filter(client, names, prefix)
            names = []
    out += _filter(client, names, prefix)
    return sorted(out, key=lambda r: r.get("email", ""))[:limit]


def _filter(client, names, prefix):
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(name)
    return [r for r in pipe.execute() if r.get("email", "").startswith(prefix)]


def cursor_for_page(queries: Queries, query: str, page: int) -> str | None:
    cursor = None
    for _ in range(page - 1):
        cursor = queries.search(query, cursor=cursor).cursor
        if cursor is None:
            raise SystemExit(f"{query!r} has fewer than {page} pages")
    return cursor


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=200_000)
    parser.add_argument("--calls", type=int, default=300, help="timed calls per search kind")
    parser.add_argument("--naive", type=int, default=3, help="timed naive SCAN searches")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="5,000 members, 100 calls")
    args = parser.parse_args()
    if args.quick:
        args.members, args.calls = 5000, 100
    if not (1000 <= args.members <= 1_000_000 and 10 <= args.calls <= 5000):
        parser.error("keep it bounded: 1,000-1,000,000 members, 10-5,000 calls")
    if not 1 <= args.naive <= 20:
        parser.error("keep it bounded: 1-20 naive searches")
    statuses = frozenset(DEFAULT_MEMBER_STATUSES)
    keys = Keys(PREFIX)
    server = RedisServer().start()
    client = connect(server.url)
    problems = []
    try:
        print(f"{args.members:,} members: writing records...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        world = generate(client, keys, args.members, statuses, args.seed, False)
        name_customers(client, keys, args.seed)
        generated = time.perf_counter() - t0
        t0 = time.perf_counter()
        report = rebuild(client, keys, statuses, actor="bench")
        build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        checked = rebuild(client, keys, statuses, actor="bench")
        check_s = time.perf_counter() - t0
        if not checked.unchanged:
            problems.append(f"check rebuild rewrote {checked.differed}")
        print(
            f"  written in {generated:.1f} s; rebuild with the index {build_s:.1f} s "
            f"({report.differed.get('member index', 0):,} index writes), check {check_s:.1f} s",
            file=sys.stderr,
            flush=True,
        )
        queries = Queries(client, keys)
        rng = random.Random(args.seed)
        customer_ids = next(record_ids(client, keys.ledger_customer(""), 5000), [])
        with_email = [e for e, _ in world.customers if e]
        deep_cursor = cursor_for_page(queries, "reader", 20)
        kinds = {
            "email prefix (1 match)": lambda: queries.search(rng.choice(with_email)[:-8]),
            "last-name prefix 'kov'": lambda: queries.search("kov"),
            "two words 'olena sh'": lambda: queries.search("olena sh"),
            "exact cus_ id": lambda: queries.search(rng.choice(customer_ids)),
            "cus_ id prefix 'cus_00012'": lambda: queries.search("cus_00012"),
            "page 20 of 'reader'": lambda: queries.search("reader", cursor=deep_cursor),
        }
        for check, want in (
            (len(queries.search("kov").rows), 50),
            (len(queries.search("reader", cursor=deep_cursor).rows), 50),
            (all("olena" in r.name.lower() for r in queries.search("olena sh").rows), True),
        ):
            if check != want:
                problems.append(f"search check: got {check!r}, expected {want!r}")
        times: dict[str, list[float]] = {k: [] for k in kinds}
        for _ in range(args.calls):
            for name, call in kinds.items():
                t0 = time.perf_counter()
                call()
                times[name].append((time.perf_counter() - t0) * 1000)
        naive = []
        for _ in range(args.naive):
            t0 = time.perf_counter()
            naive_search(client, keys, "reader1")
            naive.append((time.perf_counter() - t0) * 1000)

        t0 = time.perf_counter()
        lines = size = 0
        for line in queries.member_export().export_lines():
            lines += 1
            size += len(line.encode())
        export_s = time.perf_counter() - t0
        # Memory on a separate pass (tracemalloc slows Python down): what streaming holds.
        tracemalloc.start()
        for n, _ in enumerate(queries.member_export().export_lines()):
            if n == 20_000:
                break
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        if lines - 1 != queries.count():
            problems.append(f"export: {lines - 1} rows, count {queries.count()}")

        print(f"\n{args.members:,} members, {args.calls} calls per search, a page of 50\n")
        print("| search | p50 ms | p99 ms | mean ms |")
        print("| --- | ---: | ---: | ---: |")
        for name, samples in times.items():
            print(
                f"| {name} | {pct(samples, 0.5):.3f} | {pct(samples, 0.99):.3f} | "
                f"{statistics.fmean(samples):.3f} |"
            )
        print(
            f"| baseline: SCAN + filter, no index ({args.naive} runs) | {pct(naive, 0.5):.0f} | "
            f"{pct(naive, 0.99):.0f} | {statistics.fmean(naive):.0f} |"
        )
        print(
            f"\nexport: {lines - 1:,} rows, {size / 1e6:.1f} MB in {export_s:.2f} s "
            f"({(lines - 1) / export_s:,.0f} rows/s), peak Python memory over 20,000 rows "
            f"{peak / 1e6:.1f} MB; rebuild with the index {build_s:.1f} s (build), "
            f"{check_s:.1f} s (check); Redis "
            f"{client.info('memory')['used_memory_human']}"
        )
        index = {
            name: client.memory_usage(getattr(keys, f"ledger_index_{name}"), samples=0) or 0
            for name in ("rows", "entries")
        }
        each = ", ".join(f"{name} {size / args.members:.0f}" for name, size in index.items())
        print(
            f"member index, bytes a member (MEMORY USAGE): {each}; "
            f"all {sum(index.values()) / args.members:.0f}"
        )
    finally:
        client.close()
        server.stop()
    if problems:
        print("\n".join(["PROBLEMS:", *problems]), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
