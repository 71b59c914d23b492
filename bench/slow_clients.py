"""Benchmark: the banner for a well-behaved reader while hostile clients hold connections.

    .venv/bin/python bench/slow_clients.py [--duration 15] [--slow 200] [--idle 200]

Starts a throwaway redis-server and, one after the other, the service under
`membership serve` (granian) and under the former server (gunicorn gthread,
2 workers x 4 threads, keep-alive 5 s; bench/bare_app.py --server gunicorn
--app service). Against each: first the reader alone, then `--slow` connections
that send their headers one line every 5 s (reconnecting when dropped) and
`--idle` connections that send nothing, while the reader sends GET /v1/banner on
a fresh connection every 50 ms with a 2 s timeout. Prints answered, failed and
p50/p99/max latency. Everything is bounded in time and stopped by PID.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from membership.store import Keys  # noqa: E402
from tests.support.member_count import set_member_count  # noqa: E402
from tests.support.processes import (  # noqa: E402
    BareFlaskProcess,
    RedisServer,
    ServiceProcess,
    SlowClients,
    percentile,
    probe,
)


def _row(name: str, latencies: list[float], failures: list[str], extra: str = "") -> str:
    if latencies:
        stats = (
            f"{percentile(latencies, 0.5) * 1000:>8.1f}{percentile(latencies, 0.99) * 1000:>8.1f}"
            f"{max(latencies) * 1000:>8.1f}"
        )
    else:
        stats = f"{'-':>8}{'-':>8}{'-':>8}"
    kinds = sorted({f.split(":")[0] for f in failures})
    return (
        f"{name:<50}{len(latencies):>6}{len(failures):>6}{stats}  {extra}"
        f"{' failures: ' + ', '.join(kinds) if kinds else ''}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of probing")
    parser.add_argument("--slow", type=int, default=200)
    parser.add_argument("--idle", type=int, default=200)
    args = parser.parse_args()
    if not (0 < args.duration <= 60 and 0 <= args.slow <= 1000 and 0 <= args.idle <= 1000):
        parser.error("keep it bounded: duration <= 60, slow and idle <= 1000")

    redis = RedisServer().start()
    set_member_count(redis.client(), Keys(), 25012)
    tmp = Path(tempfile.mkdtemp(prefix="membership-bench-"))
    env = {"REDIS_URL": redis.url, "MEMBERSHIP_DATA_DIR": str(tmp / "var"), "LOG_LEVEL": "WARNING"}
    servers = [
        ("membership serve (granian 2x4)", lambda: ServiceProcess(env, workers=2, threads=4)),
        (
            "former server (gunicorn gthread 2x4)",
            lambda: BareFlaskProcess(env, 2, 4, server="gunicorn", app="service"),
        ),
    ]
    print(
        f"\nslow clients benchmark: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; "
        f"{args.slow} slow-header + {args.idle} idle connections; reader: GET /v1/banner, "
        f"fresh connection every 50 ms, 2 s timeout, {args.duration:g} s\n"
    )
    header = f"{'server / scenario':<50}{'ok':>6}{'fail':>6}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}"
    print(header)
    print("-" * len(header))
    try:
        for name, make in servers:
            server = make().start()
            try:
                lat, fail = probe(server.port, "/v1/banner", min(5.0, args.duration))
                print(_row(f"{name}, alone", lat, fail), flush=True)
                attack = SlowClients(server.port, slow=args.slow, idle=args.idle).start()
                try:
                    time.sleep(0.5)
                    lat, fail = probe(server.port, "/v1/banner", args.duration)
                    held = attack.open_count()
                finally:
                    attack.stop()
                print(
                    _row(
                        f"{name}, under attack",
                        lat,
                        fail,
                        f"(held {held}, reconnects {attack.reconnects})",
                    ),
                    flush=True,
                )
            finally:
                server.stop()
    finally:
        redis.stop()


if __name__ == "__main__":
    main()
