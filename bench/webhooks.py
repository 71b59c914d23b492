"""Signed Stripe events per second through POST /webhooks/stripe, against a bare baseline.

Starts, on 127.0.0.1 only, a throwaway redis-server, the real service
(`membership serve`, gunicorn gthread) and a bare Flask app whose endpoint only
reads the body (bench/bare_app.py) under gunicorn with the same worker class,
workers, threads, timeout and keep-alive. Then, in rounds, client processes
POST the same signed, unique, Stripe-shaped events (a random newsroom's
subscription lifecycles, checkouts, refunds, invoices) to each, over keep-alive
connections, and it prints events/s for both and the ratio. Bounded: --events
per run and --max-seconds per run. Every process it starts is stopped by PID.

    .venv/bin/python bench/webhooks.py [--events 3000] [--clients 4] [--workers 2] [--threads 4]
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import random
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from membership.store import Keys, connect  # noqa: E402
from tests.support import stripe_payloads as sp  # noqa: E402
from tests.support.processes import BareFlaskProcess, RedisServer, ServiceProcess  # noqa: E402

PREFIX = "bench"


def _client(url: str, requests: list[tuple[str, str]], start_at: float, deadline: float):
    """POST pre-signed bodies over one keep-alive connection; (statuses, latencies, end)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    statuses: dict[int, int] = {}
    latencies = []
    while time.time() < start_at:
        time.sleep(0.001)
    for payload, header in requests:
        if time.time() > deadline:
            break
        began = time.perf_counter()
        conn.request(
            "POST",
            parts.path,
            body=payload.encode(),
            headers={"Content-Type": "application/json", "Stripe-Signature": header},
        )
        response = conn.getresponse()
        response.read()
        latencies.append(time.perf_counter() - began)
        statuses[response.status] = statuses.get(response.status, 0) + 1
    conn.close()
    return statuses, latencies, time.time()


def run(pool, url: str, bodies: list[str], clients: int, max_seconds: float) -> dict:
    signed = [(b, sp.sign(b)) for b in bodies]  # signing is the sender's cost, not timed
    start_at = time.time() + 0.5
    deadline = start_at + max_seconds
    futures = [
        pool.submit(_client, url, signed[i::clients], start_at, deadline) for i in range(clients)
    ]
    results = [f.result(timeout=max_seconds + 60) for f in futures]
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    for seen, lat, _ in results:
        latencies += lat
        for status, n in seen.items():
            statuses[status] = statuses.get(status, 0) + n
    elapsed = max(end for *_, end in results) - start_at
    ok = statuses.get(200, 0)
    latencies.sort()
    return {
        "ok": ok,
        "statuses": statuses,
        "seconds": elapsed,
        "per_second": ok / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99) - 1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000, help="events per run (max 20000)")
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (both servers)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker (both)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each, alternating")
    parser.add_argument("--max-seconds", type=float, default=60, help="cap per run")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    events_per_run = min(args.events, 20_000)
    max_seconds = min(args.max_seconds, 120)

    rng = random.Random(args.seed)
    events, _ = sp.random_world(rng, max(10, events_per_run // 4))
    bodies = [sp.body(e) for e in events[:events_per_run]]
    kinds: dict[str, int] = {}
    for e in events[:events_per_run]:
        kinds[e["type"]] = kinds.get(e["type"], 0) + 1

    redis_server = RedisServer().start()
    env = {
        "REDIS_URL": redis_server.url,
        "REDIS_PREFIX": PREFIX,
        "STRIPE_WEBHOOK_SECRET": sp.WEBHOOK_SECRET,
        "MEMBERSHIP_DATA_DIR": str(redis_server.dir / "var"),
        "LOG_LEVEL": "WARNING",
    }
    real = ServiceProcess(env, workers=args.workers, threads=args.threads)
    bare = BareFlaskProcess({}, workers=args.workers, threads=args.threads)
    client = connect(redis_server.url)
    results: dict[str, list[dict]] = {"bare": [], "real": []}
    try:
        real.start()
        bare.start()
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=args.clients, mp_context=ctx) as pool:
            # warm up both (imports, connection pools), not measured
            run(pool, bare.url + "/webhooks/stripe", bodies[:200], args.clients, 10)
            run(pool, real.url + "/webhooks/stripe", bodies[:200], args.clients, 10)
            for _ in range(args.rounds):
                client.flushall()  # every run applies every event afresh
                results["bare"].append(
                    run(pool, bare.url + "/webhooks/stripe", bodies, args.clients, max_seconds)
                )
                results["real"].append(
                    run(pool, real.url + "/webhooks/stripe", bodies, args.clients, max_seconds)
                )
                applied = client.xlen(Keys(PREFIX).ledger_event_log)
                assert applied == results["real"][-1]["ok"], (applied, results["real"][-1])
    finally:
        client.close()
        bare.stop()
        real.stop()
        redis_server.stop()

    def median(name, key):
        return statistics.median(r[key] for r in results[name])

    mix = ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))
    print(f"\n{len(bodies)} signed events per run ({mix})")
    print(
        f"gunicorn gthread, {args.workers} workers x {args.threads} threads; "
        f"{args.clients} client processes, keep-alive; {os.cpu_count()} CPUs; "
        f"median of {args.rounds} rounds\n"
    )
    print("| endpoint | events/s | p50 ms | p99 ms | statuses |")
    print("| --- | ---: | ---: | ---: | --- |")
    for name, label in (
        ("bare", "bare Flask, reads the body"),
        ("real", "POST /webhooks/stripe (verify + apply)"),
    ):
        statuses = results[name][-1]["statuses"]
        print(
            f"| {label} | {median(name, 'per_second'):,.0f} | {median(name, 'p50_ms'):.1f} "
            f"| {median(name, 'p99_ms'):.1f} | {statuses} |"
        )
    ratio = median("real", "per_second") / median("bare", "per_second")
    print(f"\nratio real / bare: {ratio:.2f}")


if __name__ == "__main__":
    main()
