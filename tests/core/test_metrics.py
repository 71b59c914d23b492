"""GET /metrics: who may scrape it, what it counts, and that it sums every worker process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, multiprocess

from membership.core import metrics
from membership.core.runtime import runtime
from membership.stripe import events as stripe_events
from tests.support import stripe_payloads as sp
from tests.support.member_count import set_member_count
from tests.support.metrics import requests_total, samples, value
from tests.support.processes import ServiceProcess, wait_until

TOKEN = "metrics-token-0123456789abcdef"


OUTSIDE = {"REMOTE_ADDR": "203.0.113.7"}


def scrape(client, **kwargs) -> str:
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.data
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return response.get_data(as_text=True)


# --- Who may scrape ------------------------------------------------------------------


def test_loopback_may_scrape_by_default(client):
    assert "membership_http_requests_total" in scrape(client)  # the test client is 127.0.0.1
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200
    mapped = {"REMOTE_ADDR": "::ffff:127.0.0.1"}
    assert client.get("/metrics", environ_base=mapped).status_code == 200


def test_others_get_the_404_of_a_path_that_does_not_exist(client):
    denied = client.get("/metrics", environ_base=OUTSIDE)
    missing = client.get("/no-such-path", environ_base=OUTSIDE)
    assert denied.status_code == missing.status_code == 404
    assert denied.get_json()["error"]["code"] == missing.get_json()["error"]["code"] == "not_found"
    assert b"membership_" not in denied.data


def test_metrics_allow_names_the_networks(make_app):
    client = make_app(metrics_allow=("10.0.0.0/8", "2001:db8::/32")).test_client()
    assert client.get("/metrics").status_code == 404  # loopback is no longer in the list
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.20.30.40"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "2001:db8::5"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "11.0.0.1"}).status_code == 404


def test_a_bearer_token_opens_it_from_anywhere(make_app):
    client = make_app(metrics_token=TOKEN).test_client()
    good = {"Authorization": f"Bearer {TOKEN}"}
    assert client.get("/metrics", environ_base=OUTSIDE, headers=good).status_code == 200
    lower = {"Authorization": f"bearer {TOKEN}"}
    assert client.get("/metrics", environ_base=OUTSIDE, headers=lower).status_code == 200
    for wrong in (
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        "Bearer ",
        f"Basic {TOKEN}",
        TOKEN,
        "Bearer \u00e9\u00e9",
    ):
        response = client.get("/metrics", environ_base=OUTSIDE, headers={"Authorization": wrong})
        assert response.status_code == 404, wrong


def test_no_token_configured_means_no_token_accepted(client):
    response = client.get("/metrics", environ_base=OUTSIDE, headers={"Authorization": "Bearer "})
    assert response.status_code == 404


# --- What it counts ------------------------------------------------------------------


def test_requests_are_counted_by_route_never_by_raw_path(client):
    before = scrape(client)
    for i in range(3):
        assert client.get(f"/probe/{i}/wp-admin.php").status_code == 404
    client.get("/healthz")
    client.post("/healthz")  # 405: matched no rule either
    after = scrape(client)
    assert (
        requests_total(after, "unmatched", "404") - requests_total(before, "unmatched", "404") == 3
    )
    assert requests_total(after, "/healthz", "200") - requests_total(before, "/healthz", "200") == 1
    assert (
        requests_total(after, "unmatched", "405", "POST")
        - requests_total(before, "unmatched", "405", "POST")
        == 1
    )
    # No label holds a raw path (another test's /staff/probe routes are routes: they may).
    assert "wp-admin" not in after and 'endpoint="/probe' not in after
    count = value(
        after, "membership_http_request_duration_seconds_count", endpoint="/healthz", method="GET"
    )
    assert count >= 1
    assert (
        value(
            after,
            "membership_http_request_duration_seconds_bucket",
            endpoint="/healthz",
            method="GET",
            le="+Inf",
        )
        == count
    )


def test_webhook_events_by_type_and_outcome(client):
    created = sp.new_member_event()
    payload = sp.body(created)

    def post():
        return client.post(
            "/webhooks/stripe",
            data=payload,
            headers={"Stripe-Signature": sp.sign(payload), "Content-Type": "application/json"},
        )

    before = scrape(client)
    assert post().get_json()["outcome"] == "applied"
    assert post().get_json()["outcome"] == "duplicate"
    after = scrape(client)
    name, kind = "membership_webhook_events_total", created["type"]
    for outcome in ("applied", "duplicate"):
        assert (
            value(after, name, type=kind, outcome=outcome)
            - value(before, name, type=kind, outcome=outcome)
            == 1
        )
    assert value(after, "membership_members") == 1
    assert (
        requests_total(after, "/webhooks/stripe", "200", "POST")
        - requests_total(before, "/webhooks/stripe", "200", "POST")
        == 2
    )


def test_event_types_the_service_does_not_know_are_counted_as_other(client):
    """Found in review: every type a signed event named became a label value of its own, so
    events of ever new types grew /metrics without bound. The label's values are the types
    the service knows, and `other`."""
    known = {*stripe_events.HANDLERS, *stripe_events.IGNORED_TYPES}
    name = "membership_webhook_events_total"
    type_ = st.from_regex(r"[a-z_]{1,20}(\.[a-z_]{1,20}){0,3}", fullmatch=True)

    @settings(max_examples=25, deadline=None)
    @given(kinds=st.lists(type_.filter(lambda t: t not in stripe_events.HANDLERS), max_size=5))
    def deliver(kinds):
        before = samples(scrape(client))
        kinds = [*kinds, "made.up.type", "customer.updated"]
        for kind in kinds:
            payload = sp.body(sp.event(kind, {"id": sp.new_id("x")}))
            response = client.post(
                "/webhooks/stripe",
                data=payload,
                headers={"Stripe-Signature": sp.sign(payload), "Content-Type": "application/json"},
            )
            assert response.get_json()["outcome"] == "ignored", response.get_json()
        after = samples(scrape(client))
        labels = {dict(k)["type"] for (n, k) in after if n == name}
        assert labels <= known | {"other"}, labels - known
        counted = {
            kind: value(after, name, type=kind, outcome="ignored")
            - value(before, name, type=kind, outcome="ignored")
            for kind in labels
        }
        assert counted.get("other", 0) == sum(kind not in known for kind in kinds)
        assert counted["customer.updated"] == kinds.count("customer.updated")
        assert sum(counted.values()) == len(kinds)

    deliver()


def test_member_count_is_read_when_scraped(app, client, redis_client):
    assert ("membership_members", frozenset()) not in samples(scrape(client))  # unknown
    set_member_count(redis_client, runtime(app).keys, 25012)
    assert value(scrape(client), "membership_members") == 25012


def test_redis_errors_and_stale_banners_are_counted(outage_app, own_redis, redis_client):
    app = outage_app(banner_refresh_seconds=0, banner_retry_seconds=0)
    client = app.test_client()
    set_member_count(own_redis.client(), runtime(app).keys, 7)
    assert client.get("/v1/banner").get_json()["stale"] is False
    before = scrape(client)
    own_redis.kill()
    assert client.get("/v1/banner").get_json()["stale"] is True
    assert client.get("/v1/banner").get_json()["stale"] is True
    payload = sp.body(sp.new_member_event())
    response = client.post(
        "/webhooks/stripe",
        data=payload,
        headers={"Stripe-Signature": sp.sign(payload), "Content-Type": "application/json"},
    )
    assert response.status_code == 503
    after = scrape(client)  # the member count cannot be read: the series is left out
    assert (
        value(after, "membership_banner_stale_total")
        - value(before, "membership_banner_stale_total")
        == 2
    )
    name = "membership_redis_errors_total"
    assert value(after, name, kind="unavailable") - value(before, name, kind="unavailable") == 1
    assert ("membership_members", frozenset()) not in samples(after)


# --- Summed over the workers of the real server -------------------------------------


def _get(url: str, headers: dict | None = None) -> tuple[int, bytes]:
    # A new connection each time (urllib sends Connection: close), so the server's
    # workers share them out.
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _per_process(directory: Path, endpoint: str) -> dict[str, float]:
    """Each process's own count of GETs on `endpoint`, read from its file alone."""
    counts = {}
    for path in directory.glob("counter_*.db"):
        with tempfile.TemporaryDirectory() as alone:
            shutil.copy(path, alone)
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=alone)
            counts[path.stem] = sum(
                s.value
                for family in registry.collect()
                for s in family.samples
                if s.name == "membership_http_requests_total"
                and s.labels.get("endpoint") == endpoint
            )
    return counts


@pytest.mark.slow
def test_metrics_sum_every_worker_of_the_real_server(redis_url, tmp_path):
    data_dir = tmp_path / "var"
    service = ServiceProcess(
        {
            "REDIS_URL": redis_url,
            "MEMBERSHIP_DATA_DIR": str(data_dir),
            "STRIPE_WEBHOOK_SECRET": sp.WEBHOOK_SECRET,
            "METRICS_TOKEN": TOKEN,
        },
        workers=2,
        threads=2,
    ).start()
    try:
        directories = [p for p in metrics.servers_directory(data_dir).glob("*") if p.is_dir()]
        assert len(directories) == 1, directories  # the serve process's fresh directory
        directory = directories[0]

        # Many short requests from several clients at once, until both workers served some.
        total = 0
        with ThreadPoolExecutor(8) as pool:
            for _ in range(10):
                statuses = list(
                    pool.map(lambda _: _get(service.url + "/openapi.json")[0], range(80))
                )
                assert statuses == [200] * 80
                total += 80
                busy = [n for n in _per_process(directory, "/openapi.json").values() if n > 0]
                if len(busy) >= 2:
                    break
        assert len(busy) >= 2, "every request landed on one worker"

        # Signed webhooks: their outcomes, whichever worker took them.
        events = [sp.new_member_event() for _ in range(6)]
        for event in events:
            payload = sp.body(event)
            request = urllib.request.Request(
                service.url + "/webhooks/stripe",
                data=payload.encode(),
                headers={"Stripe-Signature": sp.sign(payload), "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                assert json.loads(response.read())["outcome"] == "applied"

        # Another process of the server (the supervisor's side) counts an embedded restart.
        subprocess.run(
            [
                sys.executable,
                "-c",
                "from membership.core import metrics; metrics.embedded_redis_restarted()",
            ],
            env={"PROMETHEUS_MULTIPROC_DIR": str(directory), "PATH": "/usr/bin:/bin"},
            check=True,
            timeout=30,
        )

        status, body = _get(service.url + "/metrics")  # 127.0.0.1: allowed by default
        assert status == 200
        text = body.decode()
        assert requests_total(text, "/openapi.json", "200") == total
        assert sum(_per_process(directory, "/openapi.json").values()) == total
        assert (
            value(
                text,
                "membership_http_request_duration_seconds_count",
                endpoint="/openapi.json",
                method="GET",
            )
            == total
        )
        assert value(
            text,
            "membership_webhook_events_total",
            type="customer.subscription.created",
            outcome="applied",
        ) == len(events)
        assert value(text, "membership_members") == len(events)
        assert value(text, "membership_embedded_redis_restarts_total") == 1

        # A worker dies: its files stay, and so do its counts in the sums.
        workers = service.worker_pids()
        os.kill(min(workers), signal.SIGKILL)
        wait_until(lambda: len(service.worker_pids() - workers) == 1, 15, "a worker in its place")
        status, body = _get(service.url + "/metrics")
        assert status == 200
        assert requests_total(body.decode(), "/openapi.json", "200") == total
        assert f"counter_{min(workers)}.db" in {p.name for p in directory.glob("counter_*.db")}
    finally:
        service.stop()


@pytest.mark.slow
def test_a_removed_metrics_directory_needs_a_restart_and_says_so(redis_url, tmp_path):
    """Removed under the running server, the directory is not made again: a scrape answers
    503 (not a 500 with a traceback) and the log names the directory and the restart."""
    data_dir = tmp_path / "var"
    env = {"REDIS_URL": redis_url, "MEMBERSHIP_DATA_DIR": str(data_dir), "LOG_LEVEL": "WARNING"}
    service = ServiceProcess(env, workers=1, threads=2).start()
    try:
        [directory] = [p for p in metrics.servers_directory(data_dir).glob("*") if p.is_dir()]
        assert _get(service.url + "/openapi.json")[0] == 200
        shutil.rmtree(directory)
        assert _get(service.url + "/openapi.json")[0] == 200  # the service itself goes on
        status, body = _get(service.url + "/metrics")
        assert status == 503, body[:300]
        assert json.loads(body)["error"]["code"] == "service_unavailable"
        assert not directory.exists()
        log = service.log.read_text()
        assert f"the directory {directory} was removed; restart membership serve" in log
        assert "Traceback" not in log
    finally:
        service.stop()


@pytest.mark.slow
def test_the_serve_process_counts_into_the_directory_too(tmp_path):
    """prometheus-client picks its multiprocess mode at import, from the environment: the
    serve process sets PROMETHEUS_MULTIPROC_DIR before anything imports it, so its own counts
    (embedded Redis restarts, by its supervisor) reach the sums like every worker's."""
    data_dir = tmp_path / "var"
    env = {"MEMBERSHIP_DATA_DIR": str(data_dir), "LOG_LEVEL": "WARNING"}
    service = ServiceProcess(env, workers=1, threads=2).start()
    try:
        [directory] = [p for p in metrics.servers_directory(data_dir).glob("*") if p.is_dir()]
        assert directory.name == str(service.process.pid)  # named by the serve process
        redis_pid = int((data_dir / "redis.pid").read_text())
        os.kill(redis_pid, signal.SIGKILL)
        wait_until(
            lambda: (
                (data_dir / "redis.pid").exists()
                and int((data_dir / "redis.pid").read_text()) != redis_pid
            ),
            10,
            "a new embedded Redis",
        )
        wait_until(
            lambda: (
                b"membership_embedded_redis_restarts_total 1.0" in _get(service.url + "/metrics")[1]
            ),
            10,
            "the restart in the scrape",
        )
        assert (directory / f"counter_{service.process.pid}.db").exists()
    finally:
        service.stop()


@pytest.mark.slow
def test_the_real_server_hides_metrics_from_strangers_without_the_token(redis_url, tmp_path):
    service = ServiceProcess(
        {
            "REDIS_URL": redis_url,
            "MEMBERSHIP_DATA_DIR": str(tmp_path / "var"),
            "METRICS_ALLOW": "192.0.2.0/24",  # not the test's own 127.0.0.1
            "METRICS_TOKEN": TOKEN,
        },
        workers=1,
        threads=2,
    ).start()
    try:
        status, body = _get(service.url + "/metrics")
        assert status == 404
        assert json.loads(body)["error"]["code"] == "not_found"
        status, body = _get(service.url + "/metrics", {"Authorization": "Bearer wrong-token-xyz"})
        assert status == 404
        status, body = _get(service.url + "/metrics", {"Authorization": f"Bearer {TOKEN}"})
        assert status == 200 and b"membership_http_requests_total" in body
    finally:
        service.stop()


# --- Where the serve process keeps the files ----------------------------------------------


@pytest.mark.slow
def test_the_serve_process_keeps_its_metrics_off_the_data_disk(redis_url, tmp_path):
    """They were under MEMBERSHIP_DATA_DIR/metrics/, where a full data disk killed the worker
    writing them (tests/system/test_full_disk.py): now on a memory filesystem, private, and gone
    when the server stops, with whatever a killed server left there before."""
    data_dir = tmp_path / "var"
    parent = metrics.servers_directory(data_dir)
    left = parent / "4242"  # a server on this data dir was killed: its directory is left
    left.mkdir(parents=True, mode=0o700)
    parent.chmod(0o700)
    (left / "counter_4242.db").write_bytes(b"\0" * 8)
    env = {"REDIS_URL": redis_url, "MEMBERSHIP_DATA_DIR": str(data_dir), "LOG_LEVEL": "WARNING"}
    service = ServiceProcess(env, workers=1, threads=2).start()
    try:
        [directory] = [p for p in parent.iterdir()]
        assert directory.name == str(service.process.pid)
        assert not left.exists()
        memory = os.environ.get("XDG_RUNTIME_DIR") or "/dev/shm"
        assert directory.is_relative_to(memory) and not directory.is_relative_to(data_dir)
        assert directory.stat().st_mode & 0o777 == parent.stat().st_mode & 0o777 == 0o700
        assert _get(service.url + "/healthz")[0] == 200
        assert list(directory.glob("counter_*.db"))
        assert not (data_dir / "metrics").exists()
    finally:
        service.stop()
    assert not directory.exists() and not parent.exists()


def test_a_planted_directory_in_the_shared_place_is_never_used(tmp_path, monkeypatch):
    """The memory filesystem is shared (/dev/shm): a directory of another user, one others may
    write to, or a symlink at the expected name is left alone, and a private one made instead."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    (tmp_path / "run").mkdir()
    data_dir = tmp_path / "var"
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "keep").write_text("not ours to remove")
    parent = metrics.servers_directory(data_dir)
    parent.symlink_to(target)
    made = metrics.fresh_directory(metrics.directory_for(data_dir))
    assert not made.is_relative_to(target) and made.parent.parent == parent.parent
    assert (target / "keep").exists()
    parent.unlink()
    parent.mkdir()
    parent.chmod(0o757)  # others may write there
    (parent / "keep").write_text("not removed either")
    other = metrics.fresh_directory(metrics.directory_for(data_dir))
    assert other.parent != parent and (parent / "keep").exists()
    assert made.stat().st_mode & 0o777 == other.stat().st_mode & 0o777 == 0o700
    parent.chmod(0o755)  # this user's, readable by others: made private
    named = metrics.directory_for(data_dir)
    assert named.parent == parent and not named.exists()  # named, not made
    assert named.name == str(os.getpid())  # the serve process's own
    ours = metrics.fresh_directory(named)
    assert ours == named and parent.stat().st_mode & 0o777 == 0o700
    assert not (parent / "keep").exists()  # this user's leftovers are cleared
    shutil.rmtree(ours)
    parent.chmod(0o757)  # opened to others between naming and making: never written in
    with pytest.raises(OSError):
        metrics.fresh_directory(named)
    assert not named.exists()
