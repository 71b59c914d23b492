"""Benchmark: GET /v1/banner under gunicorn beside a bare Flask endpoint, same run.

    .venv/bin/python bench/banner.py [--duration 5] [--rounds 3] [--clients 4]

Starts a throwaway redis-server and two servers on 127.0.0.1, both gunicorn with
`membership serve`'s settings (gthread, 2 workers x 4 threads, keep-alive 5 s):
the service itself (tests/processes.ServiceProcess) and bench/bare_app.py, whose
one endpoint returns a constant JSON body of the same size as the banner's. Then
it alternates timed rounds (bare, banner 200, banner 304, ...) driven by a few
client processes, each one keep-alive http.client connection sending requests
back to back, and prints requests/s (median of rounds), p50/p99 latency, the
ratio to the bare endpoint, and the Redis commands per second the banner cost
(INFO commandstats delta over the round). Everything is bounded in time and
stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from membership import goals  # noqa: E402
from membership.store import Keys  # noqa: E402
from tests.member_count import set_member_count  # noqa: E402
from tests.processes import BareFlaskProcess, RedisServer, ServiceProcess  # noqa: E402

WORKERS, THREADS = 2, 4


def _client(args) -> list[int]:
    """One keep-alive connection, requests back to back from start_at for `duration` seconds."""
    port, path, headers, start_at, duration = args
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/healthz")
    conn.getresponse().read()
    latencies: list[int] = []
    while time.time() < start_at:
        time.sleep(0.001)
    end = start_at + duration
    now = time.perf_counter_ns
    while time.time() < end:
        t0 = now()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status not in (200, 304):
            raise RuntimeError(f"{path}: HTTP {response.status}")
        latencies.append(now() - t0)
    conn.close()
    return latencies


def _redis_calls(client) -> int:
    stats = client.info("commandstats")
    return sum(v["calls"] for k, v in stats.items() if k not in ("cmdstat_info",))


def _round(pool, clients, port, path, headers, duration, redis_client):
    start_at = time.time() + 0.5
    before = _redis_calls(redis_client)
    results = pool.map(_client, [(port, path, headers, start_at, duration)] * clients)
    redis_cmds = _redis_calls(redis_client) - before
    latencies = [x for r in results for x in r]
    return len(latencies) / duration, latencies, redis_cmds / duration


def _pct(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    args = parser.parse_args()
    if not (0 < args.duration <= 60 and 0 < args.rounds <= 10 and 0 < args.clients <= 16):
        parser.error("keep it bounded: duration <= 60, rounds <= 10, clients <= 16")

    redis = RedisServer().start()
    rc = redis.client()
    keys = Keys()
    set_member_count(rc, keys, 25012)
    goals.add(
        rc, keys, goals.parse_goal({"target": 25000}), now="2026-11-20T10:00:00Z", actor="bench"
    )
    goals.add(
        rc, keys, goals.parse_goal({"target": 30000, "deadline": "2099-12-31"}), actor="bench"
    )
    tmp = Path(tempfile.mkdtemp(prefix="membership-bench-"))
    service = bare = None
    try:
        service = ServiceProcess(
            {
                "REDIS_URL": redis.url,
                "MEMBERSHIP_DATA_DIR": str(tmp / "var"),
                "LOG_LEVEL": "WARNING",
            },
            workers=WORKERS,
            threads=THREADS,
        ).start()
        c = http.client.HTTPConnection("127.0.0.1", service.port, timeout=5)
        c.request("GET", "/v1/banner")
        response = c.getresponse()
        banner_body = response.read()
        etag = response.getheader("ETag")
        body_file = tmp / "body.json"
        body_file.write_bytes(banner_body)
        bare = BareFlaskProcess(
            {"BENCH_BODY_FILE": str(body_file)}, workers=WORKERS, threads=THREADS
        ).start()
        bare_port = bare.port
        c = http.client.HTTPConnection("127.0.0.1", bare_port, timeout=5)
        c.request("GET", "/bare")
        bare_body = c.getresponse().read()
        assert json.loads(bare_body) == json.loads(banner_body)

        cases = [
            ("bare Flask constant", bare_port, "/bare", {}),
            ("/v1/banner (200)", service.port, "/v1/banner", {}),
            ("/v1/banner (304)", service.port, "/v1/banner", {"If-None-Match": etag}),
        ]
        results = {name: ([], [], []) for name, *_ in cases}
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(args.clients) as pool:
            for _ in range(args.rounds):
                for name, port, path, headers in cases:
                    rps, lat, redis_rate = _round(
                        pool, args.clients, port, path, headers, args.duration, rc
                    )
                    results[name][0].append(rps)
                    results[name][1].extend(lat)
                    results[name][2].append(redis_rate)

        bare_rps = statistics.median(results[cases[0][0]][0])
        print(
            f"\nmembership banner benchmark: gunicorn gthread {WORKERS} workers x {THREADS} "
            f"threads on 127.0.0.1, {os.cpu_count()} CPUs, {args.clients} keep-alive client "
            f"processes, {args.rounds} rounds x {args.duration:g} s per endpoint, interleaved"
        )
        print(f"body: banner {len(banner_body)} bytes, bare {len(bare_body)} bytes\n")
        header = (
            f"{'endpoint':<22}{'req/s':>8}{'rounds min-max':>16}{'p50 ms':>8}{'p99 ms':>8}"
            f"{'vs bare':>9}{'Redis cmd/s':>13}"
        )
        print(header)
        print("-" * len(header))
        for name, *_ in cases:
            rps_list, lat, redis_rates = results[name]
            rps = statistics.median(rps_list)
            redis_rate = "-" if name.startswith("bare") else f"{statistics.median(redis_rates):.1f}"
            spread = f"{min(rps_list):.0f}-{max(rps_list):.0f}"
            print(
                f"{name:<22}{rps:>8.0f}{spread:>16}{_pct(lat, 0.5):>8.2f}{_pct(lat, 0.99):>8.2f}"
                f"{rps / bare_rps:>8.2f}x{redis_rate:>13}"
            )
        print(
            "\nRedis cmd/s: all commands Redis served during the banner rounds "
            "(INFO commandstats delta / round time), whatever the request rate."
        )
    finally:
        if bare is not None:
            bare.stop()
        if service is not None:
            service.stop()
        redis.stop()


if __name__ == "__main__":
    main()
