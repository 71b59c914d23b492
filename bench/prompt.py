"""Benchmark: POST /v1/prompt beside a bare Flask endpoint on the same server, same run.

    .venv/bin/python bench/prompt.py [--duration 5] [--rounds 3] [--clients 4]

Starts a throwaway redis-server with 20 live campaigns (every placement; audiences by
section, tag, referrer, country, articles read; some copy needing the count and the goal),
the service under `membership serve` (granian, 2 workers x 4 threads) and bench/bare_app.py
under the same server settings, whose `POST /bare` parses the same JSON body and returns a
constant JSON of the size of a real prompt answer. Requests are realistic: a random reader,
a 90-day history, 50 views and a few dismissals, a random section, tags and referrer; 500
different bodies, sent in turn.

Rounds alternate (bare, bare in the service app, prompt, events) and are driven by a few
client processes, each one keep-alive raw-socket connection sending requests back to back.
It prints requests/s (median of rounds), p50/p99, the ratio to the bare endpoint, each
server's own CPU time per request (from /proc: on a machine shared with other work, req/s
moves with the neighbours' load, CPU per request much less) and its ratio, the Redis
commands per decision (INFO commandstats delta over the prompt rounds / decisions; the goal
is 0: the refresher's once-a-second reads are all there is), and events/s for
/v1/prompt/events (batches of 10 real tokens, RATE_LIMIT_PROMPT_EVENTS=off, and
PROMPT_EVENTS_PER_ADDRESS so high that every event counts). "bare in service app" is the
bare route inside the service app: what the service's per-request work (the outer layer,
membership/http/outer.py) and Flask's cost a route, apart from the decision. `/v1/prompt`
is a plain WSGI endpoint behind that same outer layer (membership/prompts/http.py).
Bounded in time; every process it starts is stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import keepalive  # noqa: E402
from bench.keepalive import pct, post, redis_calls  # noqa: E402
from membership.goals import rules as goal_rules  # noqa: E402
from membership.goals import store as goals  # noqa: E402
from membership.prompts import campaigns as campaign_docs  # noqa: E402
from membership.prompts import store  # noqa: E402
from membership.store import Keys  # noqa: E402
from tests.support.member_count import set_member_count  # noqa: E402
from tests.support.processes import BareFlaskProcess, RedisServer, ServiceProcess  # noqa: E402

WORKERS, THREADS = 2, 4
BODIES = 500
EVENTS_PER_CALL = 10
SECTIONS = ["war", "politics", "business", "culture", "opinion", "obituaries"]
TAGS = ["kursk", "kyiv", "kharkiv", "elections", "energy", "sanctions", "frontline"]
REFERRERS = ["https://t.co/x", "https://www.google.com/", "https://news.example/a", None]
COUNTRIES = ["UA", "PL", "DE", "US", "GB"]
COPY = [
    {
        "en": {"headline": "You have read {articles_read} articles", "cta": "Join"},
        "uk": {"headline": "Ви прочитали {articles_read} статей", "cta": "Долучитися"},
    },
    {
        "en": {"headline": {"one": "{count} member", "other": "{count} members"}, "cta": "Join"},
        "uk": {
            "headline": {
                "one": "{count} учасник",
                "few": "{count} учасники",
                "many": "{count} учасників",
                "other": "{count} учасника",
            },
            "cta": "Долучитися",
        },
    },
    {
        "en": {"headline": "{remaining} to go to {goal}", "body": "{publication}", "cta": "Join"},
        "uk": {"headline": "Ще {remaining} до {goal}", "body": "{publication}", "cta": "Так"},
    },
]


def campaign(i: int, rng: random.Random) -> dict:
    placement = ["inline", "banner", "modal", "gate"][i % 4]
    audience = {
        "readers": "non-members",
        "sections": {"include": [], "exclude": ["obituaries"]},
        "tags": {"include": rng.sample(TAGS, 2) if i % 5 == 1 else [], "exclude": []},
        "articles_read": {"min": 1 + i % 6, "max": None, "days": 30},
        "referrers": {"include": [], "exclude": ["news.example"] if i % 3 == 0 else []},
        "countries": {"include": ["UA", "PL"] if i % 7 == 2 else [], "exclude": []},
    }
    return {
        "id": f"campaign-{i:02d}",
        "name": f"Campaign {i}",
        "status": "live",
        "priority": i % 6,
        "starts_at": "2026-01-01T00:00:00Z",
        "ends_at": None,
        "placement": placement,
        "locales": ["en", "uk"],
        "audience": audience,
        "frequency": {
            "max_views": 4 + i % 5,
            "per_days": 30,
            "min_hours_between": 12,
            "after_dismiss_days": 7,
        },
        "control_share": 0.1,
        "gate": {"dismissible": True, "free_articles": 5} if placement == "gate" else None,
        "variants": [
            {"id": "a", "weight": 1, "copy": COPY[i % 3]},
            {"id": "b", "weight": 1, "copy": COPY[(i + 1) % 3]},
        ],
    }


def prompt_body(rng: random.Random, now: datetime, ids: list[str]) -> dict:
    today = now.date()
    history = {
        (today - timedelta(days=d)).isoformat(): rng.randint(1, 6)
        for d in range(90)
        if d == 0 or rng.random() < 0.6
    }

    def seen(n: int) -> list[dict]:
        ats = sorted(now - timedelta(minutes=rng.randint(60, 60 * 24 * 60)) for _ in range(n))
        return [
            {"campaign": rng.choice(ids), "at": at.strftime("%Y-%m-%dT%H:%M:%SZ")}
            for at in reversed(ats)
        ]

    reader = "r_" + "".join(rng.choice("abcdef0123456789") for _ in range(16))
    return {
        "reader": reader,
        "locale": rng.choice(["en", "uk"]),
        "page": {
            "section": rng.choice(SECTIONS),
            "tags": rng.sample(TAGS, 2),
            "referrer": rng.choice(REFERRERS),
            "type": "article",
        },
        "history": {"articles": history},
        "views": seen(50),
        "dismissed": seen(3),
    }


def _scripts(client) -> int:
    """Script calls Redis served: one per round trip of /v1/prompt/events."""
    stats = client.info("commandstats")
    return sum(stats.get(k, {}).get("calls", 0) for k in ("cmdstat_evalsha", "cmdstat_eval"))


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by a server: its process and its workers."""
    total = 0
    for p in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # a worker that exited meanwhile
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _round(pool, clients, server, requests, duration, redis_client):
    start_at = time.time() + 0.5
    scripts = _scripts(redis_client)
    before = redis_calls(redis_client)
    cpu = cpu_seconds(server.process.pid)
    jobs = [
        (server.port, requests, k * len(requests) // clients, start_at, duration)
        for k in range(clients)
    ]
    results = pool.map(keepalive.client, jobs)
    cpu = cpu_seconds(server.process.pid) - cpu
    redis_cmds = redis_calls(redis_client) - before
    scripts = _scripts(redis_client) - scripts
    latencies = [x for r in results for x in r]
    return len(latencies), latencies, redis_cmds, scripts, cpu


def _tokens(port: int, bodies: list[dict], want: int) -> list[str]:
    """Real decision tokens, from real decisions."""
    found: list[str] = []
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for body in bodies:
        c.request("POST", "/v1/prompt", json.dumps(body), {"Content-Type": "application/json"})
        answer = json.loads(c.getresponse().read())
        found += [p["token"] for p in answer["prompts"]]
        if len(found) >= want:
            break
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    args = parser.parse_args()
    if not (0 < args.duration <= 60 and 0 < args.rounds <= 10 and 0 < args.clients <= 16):
        parser.error("keep it bounded: duration <= 60, rounds <= 10, clients <= 16")

    rng = random.Random(20261126)
    redis = RedisServer().start()
    rc = redis.client()
    keys = Keys()
    set_member_count(rc, keys, 25012)
    goals.add(
        rc, keys, goal_rules.parse_goal({"target": 30000, "deadline": "2099-12-31"}), actor="b"
    )
    docs = [campaign(i, rng) for i in range(20)]
    store.apply(rc, keys, campaign_docs.parse_list(docs), actor="bench")
    ids = [d["id"] for d in docs]
    now = datetime.now(UTC)
    bodies = [prompt_body(rng, now, ids) for _ in range(BODIES)]
    encoded = [json.dumps(b).encode() for b in bodies]

    tmp = Path(tempfile.mkdtemp(prefix="membership-bench-"))
    service = bare = hooks = None
    try:
        service = ServiceProcess(
            {
                "REDIS_URL": redis.url,
                "MEMBERSHIP_DATA_DIR": str(tmp / "var"),
                "LOG_LEVEL": "WARNING",
                "RATE_LIMIT_PROMPT_EVENTS": "off",
                # Every event from this one address: counted, not refused as excess.
                "PROMPT_EVENTS_PER_ADDRESS": "1000000000",
            },
            workers=WORKERS,
            threads=THREADS,
        ).start()
        # A typical answer, for the bare endpoint to return the same number of bytes.
        c = http.client.HTTPConnection("127.0.0.1", service.port, timeout=5)
        sizes = []
        for body in encoded[:50]:
            c.request("POST", "/v1/prompt", body, {"Content-Type": "application/json"})
            answer = c.getresponse().read()
            sizes.append((len(answer), answer))
        sizes.sort()
        typical = sizes[len(sizes) // 2][1]
        shown = sum(1 for _, a in sizes if json.loads(a)["prompts"])
        body_file = tmp / "body.json"
        body_file.write_bytes(typical)
        bare = BareFlaskProcess(
            {"BENCH_BODY_FILE": str(body_file)}, workers=WORKERS, threads=THREADS
        ).start()
        # The same bare route inside the service app: what its per-request hooks cost.
        hooks = BareFlaskProcess(
            {
                "BENCH_BODY_FILE": str(body_file),
                "REDIS_URL": redis.url,
                "MEMBERSHIP_DATA_DIR": str(tmp / "var-hooks"),
                "LOG_LEVEL": "WARNING",
            },
            workers=WORKERS,
            threads=THREADS,
            app="service-bare",
        ).start()

        tokens = _tokens(service.port, bodies, 10 * EVENTS_PER_CALL * 50)
        batches = [
            json.dumps(
                {"events": [{"type": "view", "token": t} for t in tokens[i : i + EVENTS_PER_CALL]]}
            ).encode()
            for i in range(0, len(tokens) - EVENTS_PER_CALL + 1, EVENTS_PER_CALL)
        ]
        cases = [
            ("bare Flask POST", bare, [post("/bare", b) for b in encoded]),
            ("bare in service app", hooks, [post("/bare", b) for b in encoded]),
            ("/v1/prompt", service, [post("/v1/prompt", b) for b in encoded]),
            ("/v1/prompt/events", service, [post("/v1/prompt/events", b) for b in batches]),
        ]
        results = {name: ([], [], [], [], []) for name, *_ in cases}
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(args.clients) as pool:
            for _ in range(args.rounds):
                for name, server, requests in cases:
                    n, lat, cmds, scripts, cpu = _round(
                        pool, args.clients, server, requests, args.duration, rc
                    )
                    results[name][0].append(n / args.duration)
                    results[name][1].extend(lat)
                    results[name][2].append(cmds / max(n, 1))
                    results[name][3].append(scripts / max(n, 1))
                    results[name][4].append(cpu / max(n, 1))

        bare_rps = statistics.median(results["bare Flask POST"][0])
        bare_cpu = statistics.median(results["bare Flask POST"][4])
        print(
            f"\nmembership prompt benchmark: granian {WORKERS} workers x {THREADS} threads on "
            f"127.0.0.1, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f} at the end, "
            f"{args.clients} keep-alive client processes, {args.rounds} rounds x "
            f"{args.duration:g} s per endpoint, interleaved"
        )
        print(
            f"20 live campaigns; {BODIES} request bodies (90-day history, 50 views), median "
            f"{statistics.median(len(b) for b in encoded)} bytes; {shown} of 50 sampled "
            f"decisions show a prompt; answer {len(typical)} bytes (bare: the same body)\n"
        )
        header = (
            f"{'endpoint':<20}{'req/s':>8}{'rounds min-max':>16}{'p50 ms':>8}{'p99 ms':>8}"
            f"{'vs bare':>9}{'CPU us/req':>12}{'vs bare':>9}{'Redis cmd/req':>15}"
            f"{'scripts/req':>13}"
        )
        print(header)
        print("-" * len(header))
        for name, *_ in cases:
            rps_list, lat, per_request, scripts, cpu_list = results[name]
            rps = statistics.median(rps_list)
            cpu = statistics.median(cpu_list)
            cmds = "-" if "bare" in name else f"{statistics.median(per_request):.4f}"
            calls = "-" if "bare" in name else f"{statistics.median(scripts):.2f}"
            spread = f"{min(rps_list):.0f}-{max(rps_list):.0f}"
            print(
                f"{name:<20}{rps:>8.0f}{spread:>16}{pct(lat, 0.5):>8.2f}{pct(lat, 0.99):>8.2f}"
                f"{rps / bare_rps:>8.2f}x{cpu * 1e6:>12.0f}{bare_cpu / cpu:>8.2f}x{cmds:>15}"
                f"{calls:>13}"
            )
        events_rps = statistics.median(results["/v1/prompt/events"][0])
        print(
            f"\n/v1/prompt/events: {events_rps * EVENTS_PER_CALL:.0f} events/s "
            f"({EVENTS_PER_CALL} per call; tokens repeat after {len(batches)} calls, so most "
            "are duplicates after the first round: counted once, still one round trip).\n"
            "Redis cmd/req: every command Redis served during the rounds (INFO commandstats "
            "delta, commands inside scripts included) / requests answered; for /v1/prompt that "
            "is the refresher's reads only.\nscripts/req: EVALSHA calls per request, the "
            "round trips of /v1/prompt/events.\nCPU us/req: the server's CPU time (its "
            "process and workers, user + system, from /proc) / requests answered, median of "
            "rounds; its 'vs bare' (bare's / this) is the req/s ratio a server with the CPUs to "
            "itself would see, steadier than req/s on a shared machine.\nbare in service app: "
            "the bare route added to the service app (bench/bare_app.py --app service-bare): "
            "what the outer layer (request id, security headers, body limit, metrics) and "
            "Flask's own work cost a route.\n/v1/prompt: a plain WSGI endpoint behind the same "
            "outer layer, no Flask request."
        )
    finally:
        for server in (bare, hooks):
            if server is not None:
                server.stop()
        if service is not None:
            service.stop()
        redis.stop()


if __name__ == "__main__":
    main()
