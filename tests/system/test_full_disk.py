"""A full data disk costs writes, never reads.

Before: with MEMBERSHIP_DATA_DIR full, the first request that added a metrics series killed
its worker (SIGBUS in prometheus-client's mapped files under MEMBERSHIP_DATA_DIR/metrics/),
and the workers started in its place died in create_app, because the embedded Redis on the
same disk answered MISCONF: nothing listened until space was freed. Now the metrics files
live on a memory filesystem, off the data disk; workers start whatever Redis answers,
the banner keeps answering, /healthz stays 200, writes get 503 with Retry-After, /readyz and
the log say the disk is full, and all of it heals once there is room.

Each test fills a filesystem of its own: a small tmpfs mounted for it (the tests run as root;
without the right to mount they are skipped, saying so).
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis

from membership.core import metrics
from membership.core.errors import DISK_RETRY_AFTER_SECONDS, refuses_writes
from membership.core.health import DISK_FULL
from membership.store import connect
from membership.store.embedded import redis_server_binary
from tests.support import stripe_payloads as sp
from tests.support.processes import ServiceProcess, pid_alive, wait_until

# --- A small filesystem, filled on demand -----------------------------------------------


class SmallDisk:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.filler = path / "filler"

    def fill(self) -> None:
        """Write zeros until the filesystem refuses another byte."""
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for chunk in (b"\0" * 65536, b"\0" * 4096, b"\0"):
                while True:
                    try:
                        os.write(fd, chunk)
                    except OSError as exc:
                        assert exc.errno == errno.ENOSPC, exc
                        break
        finally:
            os.close(fd)
        assert os.statvfs(self.path).f_bavail == 0

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)


def _mount_small(path: Path, size: str) -> SmallDisk:
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill (needs root): {result.stderr.strip()}")
    return SmallDisk(path)


def _unmount(disk: SmallDisk) -> None:
    disk.free()
    subprocess.run(["umount", str(disk.path)], capture_output=True)
    if os.path.ismount(disk.path):  # something still holds it: detach it all the same
        subprocess.run(["umount", "-l", str(disk.path)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path):
    disk = _mount_small(tmp_path / "disk", "4m")
    yield disk
    _unmount(disk)


# --- A real redis-server whose directory fills ------------------------------------------


@pytest.fixture
def full_disk_redis(small_disk):
    """A redis-server as the embedded one runs (append-only, fsync every second) on the
    small disk, and a way to make it refuse writes: fill the disk, then write."""
    socket = small_disk.path / "redis.sock"
    command = [
        redis_server_binary(),
        "--port", "0", "--unixsocket", str(socket), "--dir", str(small_disk.path),
        "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(unix_socket_path=str(socket), decode_responses=True, socket_timeout=5)

    def answers():
        try:
            return client.ping()
        except redis.exceptions.ConnectionError:
            return False

    wait_until(answers, 10, "redis-server on the small disk")

    def refusing() -> redis.exceptions.ResponseError:
        """Fill the disk and write until Redis refuses (its AOF cannot grow): that error."""
        small_disk.fill()
        for i in range(200):
            try:
                client.set(f"filler:{i}", "x" * 2000)
            except redis.exceptions.ResponseError as exc:
                return exc
            time.sleep(0.01)
        raise AssertionError("Redis kept taking writes on a full disk")

    try:
        yield f"unix://{socket}", client, refusing, small_disk
    finally:
        small_disk.free()
        process.kill()
        process.wait(10)


def test_what_a_full_disk_makes_redis_answer_is_told_apart(full_disk_redis):
    url, client, refusing, _ = full_disk_redis
    client.set("s", "v")
    plain = refusing()
    assert str(plain).startswith("MISCONF") and refuses_writes(plain)
    with pytest.raises(redis.exceptions.ResponseError) as in_transaction:
        client.pipeline(transaction=True).get("s").set("t", 1).execute()
    assert "caused error: MISCONF" in str(in_transaction.value)
    assert refuses_writes(in_transaction.value)
    with pytest.raises(redis.exceptions.ResponseError) as in_script:
        client.eval("return redis.call('set', KEYS[1], 'v')", 1, "u")
    assert refuses_writes(in_script.value)
    with pytest.raises(redis.exceptions.ResponseError) as ping:
        client.ping()  # Redis refuses PING too while it refuses writes
    assert refuses_writes(ping.value)
    assert client.get("s") == "v"  # reads go on
    # and through the service's own client too: on a new connection redis-py checks it with
    # a PING first, which Redis refuses now; that check failed the read it came before.
    assert connect(url).get("s") == "v"
    with pytest.raises(redis.exceptions.ResponseError) as wrong_type:
        client.lrange("s", 0, -1)  # a read (a write would be refused for the disk first)
    assert str(wrong_type.value).startswith("WRONGTYPE")
    assert not refuses_writes(wrong_type.value)


def test_the_app_on_a_redis_with_a_full_disk(make_app, full_disk_redis):
    """Writes are 503 writes_refused with Retry-After, counted as kind="disk"; reads go on;
    /readyz says the disk is full; all of it heals once there is room."""
    from tests.support.member_count import set_member_count

    url, client, refusing, disk = full_disk_redis
    app = make_app(redis_url=url, banner_refresh_seconds=0, banner_retry_seconds=0)
    http = app.test_client()
    from membership.core.runtime import runtime

    set_member_count(client, runtime(app).keys, 7)
    assert http.get("/v1/banner").get_json()["count"] == 7
    refusing()

    payload = sp.body(sp.new_member_event())
    webhook = http.post("/webhooks/stripe", data=payload, headers=_signed(payload))
    assert webhook.status_code == 503
    assert webhook.get_json()["error"]["code"] == "writes_refused"
    assert webhook.headers["Retry-After"] == str(DISK_RETRY_AFTER_SECONDS)
    banner = http.get("/v1/banner")
    assert banner.status_code == 200 and banner.get_json()["count"] == 7
    prompt = http.post("/v1/prompt", json={"reader": "r_3f9c2a1b7d4e"})
    assert prompt.status_code == 200, prompt.get_data(as_text=True)  # a decision only reads
    ready = http.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["error"]["message"] == DISK_FULL
    assert http.get("/healthz").status_code == 200
    scraped = http.get("/metrics").get_data(as_text=True)
    assert 'membership_redis_errors_total{kind="disk"} 1.0' in scraped

    disk.free()
    wait_until(lambda: http.get("/readyz").status_code == 200, 10, "/readyz after freeing space")
    webhook = http.post("/webhooks/stripe", data=payload, headers=_signed(payload))
    assert webhook.status_code == 200, webhook.get_data(as_text=True)
    assert http.get("/v1/banner").get_json()["count"] == 8


def _signed(payload: str) -> dict:
    return {"Stripe-Signature": sp.sign(payload), "Content-Type": "application/json"}


# --- The real server, its embedded Redis on the small disk ------------------------------


def _call(url: str, data: bytes | None = None, headers: dict | None = None):
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def _webhook(service):
    payload = sp.body(sp.new_member_event())
    return _call(service.url + "/webhooks/stripe", payload.encode(), _signed(payload))


@pytest.mark.slow
def test_a_full_data_disk_costs_writes_never_reads(small_disk):
    data_dir = small_disk.path / "var"
    service = ServiceProcess(
        {"MEMBERSHIP_DATA_DIR": str(data_dir), "STRIPE_WEBHOOK_SECRET": sp.WEBHOOK_SECRET},
        workers=2,
        threads=2,
    )
    redis_pid = None
    try:
        service.start()
        redis_pid = int((data_dir / "redis.pid").read_text())
        metrics_dir = next(metrics.servers_directory(data_dir).iterdir())
        assert not metrics_dir.is_relative_to(data_dir)  # off the data disk
        for _ in range(3):
            assert _webhook(service)[0] == 200
        workers = service.worker_pids()
        assert len(workers) == 2

        small_disk.fill()
        # Redis takes a write it cannot persist yet (held in memory, as with every
        # appendfsync everysec), then refuses writes: 503 with Retry-After, nothing stored.
        refused = None
        deadline = time.monotonic() + 15  # Redis finds out at its next write to the AOF
        while refused is None and time.monotonic() < deadline:
            status, headers, body = _webhook(service)
            if status != 200:
                refused = status, headers, json.loads(body)
            else:
                time.sleep(0.05)
        assert refused is not None, "the webhooks were all taken on a full disk"
        status, headers, body = refused
        assert status == 503 and body["error"]["code"] == "writes_refused"
        assert headers["Retry-After"] == str(DISK_RETRY_AFTER_SECONDS)
        count = redis.Redis(unix_socket_path=str(data_dir / "redis.sock")).get("{membership}:count")
        count = int(count)

        # Reads go on, from every worker; new metrics series are made in plenty.
        for i in range(120):
            status, _, body = _call(service.url + f"/v1/banner?locale={('en', 'uk')[i % 2]}")
            assert status == 200, (body, service.log.read_text()[-3000:])
            assert json.loads(body)["count"] == count
            assert _call(service.url + f"/probe/{i}")[0] == 404
            assert _call(service.url + "/healthz")[0] == 200
            assert _call(service.url + "/openapi.json")[0] == 200
        status, _, body = _call(service.url + "/readyz")
        assert status == 503 and json.loads(body)["error"]["message"] == DISK_FULL
        status, _, body = _call(service.url + "/metrics")
        assert status == 200 and b'membership_redis_errors_total{kind="disk"}' in body
        assert service.worker_pids() == workers  # none died

        # A worker started now (one was killed) comes up although Redis answers MISCONF.
        killed = min(workers)
        os.kill(killed, signal.SIGKILL)
        wait_until(lambda: len(service.worker_pids() - workers) == 1, 10, "a worker in place of it")
        [replacement] = service.worker_pids() - workers
        wait_until(
            lambda: (metrics_dir / f"counter_{replacement}.db").exists(),
            15,
            "the new worker to build its app",
        )
        time.sleep(1)
        assert replacement in service.worker_pids()
        for _ in range(20):
            assert _call(service.url + "/v1/banner")[0] == 200

        small_disk.free()  # and everything heals
        wait_until(lambda: _call(service.url + "/readyz")[0] == 200, 15, "/readyz with room again")
        assert _webhook(service)[0] == 200
        wait_until(
            lambda: json.loads(_call(service.url + "/v1/banner")[2])["count"] == count + 1,
            5,
            "the banner to count the new member",
        )
    finally:
        small_disk.free()
        service.stop()
        if redis_pid is not None and pid_alive(redis_pid):  # it could not save and stop
            os.kill(redis_pid, signal.SIGKILL)
    log = service.log.read_text()
    assert "Bus error" not in log
    assert log.count("Unexpected exit from worker") == 1, log[-3000:]  # the one killed
    assert "not ready: Redis refuses writes it cannot persist (is its disk full?)" in log
    assert "Redis refused a write it cannot persist (is its disk full?)" in log


@pytest.mark.slow
def test_a_server_stopped_while_the_disk_is_full_leaves_no_metrics_behind(small_disk):
    """Redis cannot save on its way out then, and its stop raised before the metrics
    directory (now on a memory filesystem, where it costs memory) was removed."""
    data_dir = small_disk.path / "var"
    service = ServiceProcess(
        {"MEMBERSHIP_DATA_DIR": str(data_dir), "STRIPE_WEBHOOK_SECRET": sp.WEBHOOK_SECRET},
        workers=1,
        threads=2,
    )
    redis_pid = None
    try:
        service.start()
        redis_pid = int((data_dir / "redis.pid").read_text())
        parent = metrics.servers_directory(data_dir)
        assert list(parent.iterdir())
        small_disk.fill()
        for _ in range(20):  # until Redis holds writes it cannot persist
            if _webhook(service)[0] == 503:
                break
        service.stop()
        assert not parent.exists()
    finally:
        small_disk.free()
        service.stop()
        if redis_pid is not None and pid_alive(redis_pid):  # it could not save, so not stop
            os.kill(redis_pid, signal.SIGKILL)


def test_a_dev_secret_key_the_disk_refuses_is_not_left_empty(small_disk):
    """Without SECRET_KEY, the first start writes one to the data dir. On a full disk that
    write fails, and it leaves no empty key behind that every later start would refuse."""
    from membership.core.config import load_settings

    env = {"MEMBERSHIP_DATA_DIR": str(small_disk.path / "var")}
    (small_disk.path / "var").mkdir()
    small_disk.fill()
    with pytest.raises(OSError) as refused:
        load_settings(env)
    assert refused.value.errno == errno.ENOSPC
    assert list((small_disk.path / "var").iterdir()) == []
    small_disk.free()
    key = load_settings(env).secret_key
    assert len(key) >= 32 and (small_disk.path / "var" / "secret_key").read_text() == key
