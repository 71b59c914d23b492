"""The Stripe webhook write path, in process: what one event costs in Redis and in time.

Starts a throwaway redis-server on 127.0.0.1 and the real app (Flask test client, the
test configuration), then feeds signed events through POST /webhooks/stripe:

- `customer.subscription.created` for N new customers (the common case), then
- a mix on those members: renewals (`invoice.paid`) and updates (a later
  `customer.subscription.updated`, status unchanged or `past_due`).

For each phase it prints, per event: round trips (sends of redis-py's connections, counted
by a wrapper), Redis commands (server side, `INFO commandstats` deltas, which include the
commands scripts run), arguments packed (by redis-py, or by `store/whole.pack`), and events
per second beside a bare Flask JSON POST of a body of the same size in the same process
(alternating rounds), with the CPU each used per event (this process's, and the Redis
server's). Then the Redis memory per member by key family (`MEMORY USAGE` summed over the
family's keys, divided by N), per event record, and per log entry.

    .venv/bin/python bench/write_path.py [--members 2000] [--rounds 3] [--profile]

`--profile` instead feeds the new members' events once under cProfile and prints the top 30
functions by cumulative time and by own time (where a webhook's time goes).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import redis  # noqa: E402
from flask import Flask, jsonify, request  # noqa: E402
from redis.connection import Connection  # noqa: E402

from membership import create_app  # noqa: E402
from membership.store import whole  # noqa: E402
from tests.support import stripe_payloads as sp  # noqa: E402
from tests.support.processes import RedisServer  # noqa: E402

PREFIX = "bench"
HOUR = 3600


class Wire:
    """Counts what redis-py's connections send while `on`: sends (round trips: a pipeline
    or a command is one send, then its replies are read), arguments packed, and the seconds
    spent sending and reading replies (waiting on Redis: its work and the trip)."""

    def __init__(self) -> None:
        self.on = False
        self.sends = 0
        self.args = 0
        self.waited = 0.0

    def install(self) -> None:
        wire = self
        send, read, pack_one, pack_many = (
            Connection.send_packed_command,
            Connection.read_response,
            Connection.pack_command,
            Connection.pack_commands,
        )

        def send_packed_command(conn, command, check_health=True):
            if not wire.on:
                return send(conn, command, check_health)
            wire.sends += 1
            began = time.perf_counter()
            try:
                return send(conn, command, check_health)
            finally:
                wire.waited += time.perf_counter() - began

        def read_response(conn, *args, **kwargs):
            if not wire.on:
                return read(conn, *args, **kwargs)
            began = time.perf_counter()
            try:
                return read(conn, *args, **kwargs)
            finally:
                wire.waited += time.perf_counter() - began

        def pack_command(conn, *args):
            if wire.on:
                wire.args += len(args)
            return pack_one(conn, *args)

        def pack_commands(conn, commands):
            if wire.on:
                wire.args += sum(len(c) for c in commands)
            return pack_many(conn, commands)

        Connection.send_packed_command = send_packed_command
        Connection.read_response = read_response
        Connection.pack_command = pack_command
        Connection.pack_commands = pack_commands
        packs = whole.pack

        def pack(commands):  # the ledger's reads and commit, packed by hiredis
            if wire.on:
                wire.args += sum(len(c) for c in commands)
            return packs(commands)

        whole.pack = pack


def commands_run(client: redis.Redis) -> dict[str, int]:
    """Calls per command name since the server started (INFO itself excluded)."""
    stats = client.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): v["calls"] for name, v in stats.items()}
    calls.pop("info", None)
    return calls


def bare_app() -> Flask:
    app = Flask("bare")

    @app.post("/webhooks/stripe")
    def bare():
        request.get_json()
        return jsonify({"received": True})

    return app


def new_member_events(n: int) -> list[dict]:
    return [sp.new_member_event() for _ in range(n)]


def mixed_events(created: list[dict]) -> list[dict]:
    """For each member: an invoice paid an hour later, then every other member's
    subscription updated (same status, or past_due) two hours later."""
    out = []
    for i, event in enumerate(created):
        sub = event["data"]["object"]
        invoice = sp.invoice("invoice.paid", sub["customer"], sub["id"], created=sp.T0 + HOUR)
        out.append(invoice)
        if i % 2 == 0:
            status = "past_due" if i % 4 == 0 else sub["status"]
            updated = {**sub, "status": status}
            out.append(sp.subscription_event(updated, created=sp.T0 + 2 * HOUR))
    return out


def feed(client, bodies: list[str]) -> float:
    """POST each signed body; seconds taken. Any answer but 200 stops the bench."""
    signed = [(b, sp.sign(b)) for b in bodies]
    began = time.perf_counter()
    for body, header in signed:
        response = client.post(
            "/webhooks/stripe",
            data=body,
            headers={"Content-Type": "application/json", "Stripe-Signature": header},
        )
        if response.status_code != 200:
            raise SystemExit(f"{response.status_code}: {response.get_data(as_text=True)}")
    return time.perf_counter() - began


def measured(app, redis_client, wire: Wire, bodies: list[str]) -> dict:
    """Feed `bodies` once with counting on: per-event figures."""
    before = commands_run(redis_client)
    wire.sends = wire.args = 0
    wire.waited = 0.0
    wire.on = True
    try:
        seconds = feed(app.test_client(), bodies)
    finally:
        wire.on = False
    after = commands_run(redis_client)
    deltas = {name: after[name] - before.get(name, 0) for name in after}
    deltas = {name: n for name, n in deltas.items() if n}
    n = len(bodies)
    return {
        "round_trips": wire.sends / n,
        "commands": sum(deltas.values()) / n,
        "by_command": {name: calls / n for name, calls in sorted(deltas.items())},
        "args": wire.args / n,
        "us": seconds / n * 1e6,
        "waited_us": wire.waited / n * 1e6,
    }


def round_trip(client: redis.Redis, n: int = 2000) -> float:
    """The median microseconds of a PING: one round trip with no work in Redis."""
    times = []
    for _ in range(n):
        began = time.perf_counter()
        client.ping()
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1e6


def redis_cpu(client: redis.Redis) -> float:
    """Seconds of CPU the Redis server has used (user + system)."""
    cpu = client.info("cpu")
    return cpu["used_cpu_user"] + cpu["used_cpu_sys"]


def timed(client, bodies: list[str], redis_client: redis.Redis) -> dict:
    """One run of `feed`: events per second, and this process's and Redis's CPU per event
    (microseconds), which a loaded machine inflates less than the wall clock."""
    cpu, server = time.process_time(), redis_cpu(redis_client)
    seconds = feed(client, bodies)
    n = len(bodies)
    return {
        "per_second": n / seconds,
        "cpu_us": (time.process_time() - cpu) / n * 1e6,
        "redis_us": (redis_cpu(redis_client) - server) / n * 1e6,
    }


def speed(make_app, redis_client, bodies: list[str], rounds: int) -> tuple[dict, dict]:
    """Events per second and CPU per event, the real endpoint beside the bare one, each the
    median of `rounds` alternating runs (Redis flushed before each run of the real one)."""
    bare = bare_app().test_client()
    real, base = [], []
    for _ in range(rounds):
        base.append(timed(bare, bodies, redis_client))
        redis_client.flushall()
        real.append(timed(make_app().test_client(), bodies, redis_client))

    def median(runs: list[dict]) -> dict:
        return {name: statistics.median(run[name] for run in runs) for name in runs[0]}

    return median(real), median(base)


_ID = re.compile(r"(sub|cus|evt|in|pi|ch|price|prod)_[A-Za-z0-9]+")


def family(key: str) -> str:
    """A key with its ids replaced: `{bench}:ledger:sub:<sub>`."""
    key = _ID.sub(lambda m: f"<{m.group(1)}>", key)
    return re.sub(r"ledger:email:[^:]+", "ledger:email:<email>", key)


def memory(redis_client) -> dict[str, tuple[int, int]]:
    """Key family → (keys, bytes) by MEMORY USAGE (every element sampled)."""
    out: dict[str, tuple[int, int]] = {}
    for key in redis_client.scan_iter(match="*", count=1000):
        name = family(key)
        used = redis_client.memory_usage(key, samples=0) or 0
        keys, total = out.get(name, (0, 0))
        out[name] = (keys + 1, total + used)
    return out


def print_costs(title: str, figures: dict) -> None:
    print(f"\n{title}")
    print(
        f"  round trips {figures['round_trips']:.2f}, commands {figures['commands']:.1f}, "
        f"arguments {figures['args']:.0f} per event"
    )
    calls = ", ".join(f"{name} {n:.2f}" for name, n in figures["by_command"].items())
    print(f"  commands: {calls}")
    print(
        f"  {figures['us']:,.0f} us an event (counted, one run), of which waiting on Redis "
        f"(sending, its work, reading the replies) {figures['waited_us']:,.0f} us"
    )


def print_memory(families: dict, members: int, events: int) -> None:
    print(f"\nRedis memory after {members} members (MEMORY USAGE by key family)")
    print("| key family | keys | bytes | per member |")
    print("| --- | ---: | ---: | ---: |")
    long_term = 0
    for name, (keys, total) in sorted(families.items(), key=lambda kv: -kv[1][1]):
        per = total / members
        transient = ":ledger:event:" in name or ":ledger:events" in name
        if not transient:
            long_term += total
        print(f"| `{name}` | {keys:,} | {total:,} | {per:,.0f}{' (7 days)' if transient else ''} |")
    records = [v for n, v in families.items() if ":ledger:event:<evt>" in n]
    logs = [v for n, v in families.items() if ":ledger:events" in n]
    print(f"\nlong term per member: {long_term / members:,.0f} bytes")
    if records:
        keys, total = records[0]
        print(f"per event record (7 days): {total / keys:,.0f} bytes")
    if logs:
        print(f"per log entry, all log streams: {sum(t for _, t in logs) / events:,.0f} bytes")


def profile(app, bodies: list[str]) -> None:
    """Feed `bodies` once under cProfile; print the top 30 by cumulative and by own time."""
    client = app.test_client()
    profiler = cProfile.Profile()
    profiler.runcall(feed, client, bodies)
    stats = pstats.Stats(profiler, stream=sys.stdout)
    for order in ("cumulative", "tottime"):
        stats.sort_stats(order).print_stats(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=2000, help="new members fed (max 50000)")
    parser.add_argument("--rounds", type=int, default=3, help="timed runs of each endpoint")
    parser.add_argument("--keep", action="store_true", help="wait before stopping Redis")
    parser.add_argument("--profile", action="store_true", help="profile the new members' events")
    args = parser.parse_args()
    members = min(args.members, 50_000)

    created = new_member_events(members)
    new_bodies = [sp.body(e) for e in created]
    mix_bodies = [sp.body(e) for e in mixed_events(created)]
    server = RedisServer().start()
    wire = Wire()
    wire.install()
    data_dir = tempfile.mkdtemp(prefix="write-path-")

    def make_app():
        return create_app(
            {
                "redis_url": server.url,
                "redis_prefix": PREFIX,
                "data_dir": Path(data_dir),
                "stripe_webhook_secrets": (sp.WEBHOOK_SECRET,),
                "secret_key": "bench-" + "x" * 40,
                "log_level": "WARNING",
            }
        )

    client = redis.Redis.from_url(server.url, decode_responses=True)
    try:
        app = make_app()
        feed(app.test_client(), [sp.body(sp.new_member_event()) for _ in range(50)])  # warm
        client.flushall()
        if args.profile:
            profile(app, new_bodies)
            return
        first = measured(app, client, wire, new_bodies)
        families = memory(client)
        mix = measured(app, client, wire, mix_bodies)
        real, base = speed(make_app, client, new_bodies, args.rounds)
        ping = round_trip(client)
        if args.keep:
            input(f"Redis at {server.url}; Enter stops it ")
    finally:
        client.close()
        server.stop()

    size = statistics.mean(len(b) for b in new_bodies)
    print(f"{members} new members, body about {size:,.0f} bytes; {len(mix_bodies)} mixed events")
    print_costs("customer.subscription.created, new customer", first)
    print_costs("mix: invoice.paid and customer.subscription.updated", mix)
    print(
        f"\nin process: {real['per_second']:,.0f} events/s, bare Flask JSON POST "
        f"{base['per_second']:,.0f}/s: {real['per_second'] / base['per_second']:.2f}x "
        f"(median of {args.rounds})"
    )
    print(
        f"CPU per event: this process {real['cpu_us']:,.0f} us + Redis {real['redis_us']:,.0f} us;"
        f" bare {base['cpu_us']:,.0f} us"
    )
    print(
        f"Redis's part: 2 round trips (a PING takes {ping:,.0f} us) and {real['redis_us']:,.0f}"
        f" us of its CPU an event; at 0.5x an event may take {1e6 / base['per_second']:,.0f} us"
        f" beyond the bare POST's"
    )
    print_memory(families, members, members)


if __name__ == "__main__":
    main()
