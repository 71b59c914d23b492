"""Benchmark: GET /v1/banner beside a bare Flask endpoint on two servers, same run.

    .venv/bin/python bench/banner.py [--duration 5] [--rounds 3] [--clients 4] [--wrk]

Starts a throwaway redis-server and three servers on 127.0.0.1, 2 workers x 4
threads each: the service under `membership serve` (granian;
tests/processes.ServiceProcess), bench/bare_app.py under the same granian
settings, and bench/bare_app.py under the former server (gunicorn gthread,
keep-alive 5 s). The bare app's one endpoint returns a constant JSON body of the
same size as the banner's. Then it alternates timed rounds (bare gunicorn, bare
granian, banner 200, banner 304, ...) driven by a few client processes, each one
keep-alive raw-socket connection sending requests back to back, and prints
requests/s (median of rounds), p50/p99 latency, the ratios to the bare endpoint
on the same server and on gunicorn, and the Redis commands per second the banner
cost (INFO commandstats delta over the round). Everything is bounded in time and
stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import keepalive  # noqa: E402
from bench.keepalive import get, pct, redis_calls  # noqa: E402
from membership.goals import rules as goal_rules  # noqa: E402
from membership.goals import store as goals  # noqa: E402
from membership.store import Keys  # noqa: E402
from tests.support.member_count import set_member_count  # noqa: E402
from tests.support.processes import BareFlaskProcess, RedisServer, ServiceProcess  # noqa: E402

WORKERS, THREADS = 2, 4  # the former gunicorn setup; --threads sets granian's


def _round(pool, clients, port, path, headers, duration, redis_client):
    start_at = time.time() + 0.5
    before = redis_calls(redis_client)
    results = pool.map(
        keepalive.client, [(port, [get(path, headers)], 0, start_at, duration)] * clients
    )
    redis_cmds = redis_calls(redis_client) - before
    latencies = [x for r in results for x in r]
    return len(latencies) / duration, latencies, redis_cmds / duration


_WRK_LATENCY = re.compile(r"^\s*(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_WRK_UNIT_NS = {"us": 1e3, "ms": 1e6, "s": 1e9}


def _round_wrk(port, path, headers, duration, redis_client):
    """One round driven by wrk (C, 2 threads, 32 connections):
    the Python clients share the two CPUs with the servers and cap what they can show."""
    command = ["wrk", "-t2", "-c32", f"-d{duration:g}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    before = redis_calls(redis_client)
    out = subprocess.run(
        [*command, f"http://127.0.0.1:{port}{path}"],
        capture_output=True,
        text=True,
        timeout=duration + 30,
        check=True,
    ).stdout
    redis_cmds = redis_calls(redis_client) - before
    if "Non-2xx or 3xx responses" in out:
        raise RuntimeError(f"{path}: wrk saw errors:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    # p50 and p99 as two "latencies" in ns, so the report's percentiles read them back.
    found = {q: float(v) * _WRK_UNIT_NS[u] for q, v, u in _WRK_LATENCY.findall(out)}
    return rps, [int(found["50"])] * 50 + [int(found["99"])] * 50, redis_cmds / duration


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument(
        "--threads", type=int, default=4, help="threads per worker of the granian servers"
    )
    parser.add_argument(
        "--wrk",
        action="store_true",
        help="drive the rounds with wrk -t2 -c32 (apt-get install wrk) instead of Python clients",
    )
    args = parser.parse_args()
    if args.wrk and shutil.which("wrk") is None:
        parser.error("--wrk needs wrk on PATH (apt-get install wrk)")
    if not (0 < args.duration <= 60 and 0 < args.rounds <= 10 and 0 < args.clients <= 16):
        parser.error("keep it bounded: duration <= 60, rounds <= 10, clients <= 16")

    redis = RedisServer().start()
    rc = redis.client()
    keys = Keys()
    set_member_count(rc, keys, 25012)
    goals.add(
        rc,
        keys,
        goal_rules.parse_goal({"target": 25000}),
        now="2026-11-20T10:00:00Z",
        actor="bench",
    )
    goals.add(
        rc, keys, goal_rules.parse_goal({"target": 30000, "deadline": "2099-12-31"}), actor="bench"
    )
    tmp = Path(tempfile.mkdtemp(prefix="membership-bench-"))
    service = bare = baseline = None
    try:
        service = ServiceProcess(
            {
                "REDIS_URL": redis.url,
                "MEMBERSHIP_DATA_DIR": str(tmp / "var"),
                "LOG_LEVEL": "WARNING",
            },
            workers=WORKERS,
            threads=args.threads,
        ).start()
        c = http.client.HTTPConnection("127.0.0.1", service.port, timeout=5)
        c.request("GET", "/v1/banner")
        response = c.getresponse()
        banner_body = response.read()
        etag = response.getheader("ETag")
        body_file = tmp / "body.json"
        body_file.write_bytes(banner_body)
        bare = BareFlaskProcess(
            {"BENCH_BODY_FILE": str(body_file)}, workers=WORKERS, threads=args.threads
        ).start()
        baseline = BareFlaskProcess(
            {"BENCH_BODY_FILE": str(body_file)},
            workers=WORKERS,
            threads=THREADS,
            server="gunicorn",
        ).start()
        bare_port = bare.port
        c = http.client.HTTPConnection("127.0.0.1", bare_port, timeout=5)
        c.request("GET", "/bare")
        bare_body = c.getresponse().read()
        assert json.loads(bare_body) == json.loads(banner_body)

        cases = [
            ("bare Flask, gunicorn", baseline.port, "/bare", {}),
            ("bare Flask, granian", bare_port, "/bare", {}),
            ("/v1/banner (200)", service.port, "/v1/banner", {}),
            ("/v1/banner (304)", service.port, "/v1/banner", {"If-None-Match": etag}),
        ]
        results = {name: ([], [], []) for name, *_ in cases}
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(args.clients) as pool:
            for _ in range(args.rounds):
                for name, port, path, headers in cases:
                    if args.wrk:
                        rps, lat, redis_rate = _round_wrk(port, path, headers, args.duration, rc)
                    else:
                        rps, lat, redis_rate = _round(
                            pool, args.clients, port, path, headers, args.duration, rc
                        )
                    results[name][0].append(rps)
                    results[name][1].extend(lat)
                    results[name][2].append(redis_rate)

        gunicorn_rps = statistics.median(results[cases[0][0]][0])
        bare_rps = statistics.median(results[cases[1][0]][0])
        print(
            f"\nmembership banner benchmark: granian {WORKERS} workers x {args.threads} threads, "
            f"gunicorn {WORKERS} x {THREADS}, on 127.0.0.1, "
            f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f} at the end, "
            + ("wrk -t2 -c32" if args.wrk else f"{args.clients} keep-alive client processes")
            + f", {args.rounds} rounds x {args.duration:g} s per "
            "endpoint, interleaved; the banner runs on granian (membership serve)"
        )
        print(f"body: banner {len(banner_body)} bytes, bare {len(bare_body)} bytes\n")
        header = (
            f"{'endpoint':<22}{'req/s':>8}{'rounds min-max':>16}{'p50 ms':>8}{'p99 ms':>8}"
            f"{'vs bare':>9}{'vs gunicorn':>13}{'Redis cmd/s':>13}"
        )
        print(header)
        print("-" * len(header))
        for name, *_ in cases:
            rps_list, lat, redis_rates = results[name]
            rps = statistics.median(rps_list)
            redis_rate = "-" if name.startswith("bare") else f"{statistics.median(redis_rates):.1f}"
            spread = f"{min(rps_list):.0f}-{max(rps_list):.0f}"
            print(
                f"{name:<22}{rps:>8.0f}{spread:>16}{pct(lat, 0.5):>8.2f}{pct(lat, 0.99):>8.2f}"
                f"{rps / bare_rps:>8.2f}x{rps / gunicorn_rps:>12.2f}x{redis_rate:>13}"
            )
        print(
            "\nvs bare: against the bare app on granian; vs gunicorn: against the bare app on "
            "the former server (gunicorn gthread 2x4).\nRedis cmd/s: all commands Redis served "
            "during the banner rounds (INFO commandstats delta / round time), whatever the "
            "request rate."
        )
    finally:
        for process in (baseline, bare):
            if process is not None:
                process.stop()
        if service is not None:
            service.stop()
        redis.stop()


if __name__ == "__main__":
    main()
