"""The embedded Redis belongs to the `membership serve` process that started it.

Workers come and go (a SIGHUP reload, a killed worker) and the embedded Redis
keeps its PID; if it dies, the server restarts it and /readyz recovers by
itself; a second server refuses the data directory; a CLI command run while
the server's Redis is down never starts (and then stops) one of its own.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from membership.core import metrics
from membership.store.embedded import EmbeddedRedis
from membership.store.ownership import ServerLock
from tests.support.processes import (
    REPO,
    ServiceProcess,
    free_port,
    pid_alive,
    readyz_status,
    run_cli,
    wait_until,
)

pytestmark = pytest.mark.slow


def _ready(service) -> int:
    return readyz_status(service.url)


def _redis_pid(data_dir) -> int:
    return int((data_dir / "redis.pid").read_text())


def _new_redis_pid(data_dir, old: int) -> bool:
    """Whether redis.pid names a Redis other than `old` (the file may be rewritten meanwhile)."""
    try:
        return _redis_pid(data_dir) != old
    except (FileNotFoundError, ValueError):
        return False


def _serve(data_dir) -> ServiceProcess:
    service = ServiceProcess({"MEMBERSHIP_DATA_DIR": str(data_dir)}, workers=2).start()
    try:
        wait_until(lambda: len(service.worker_pids()) == 2, 10, "two workers")
    except TimeoutError:
        service.stop()
        raise
    return service


@pytest.fixture(scope="module")
def _module_server(tmp_path_factory):
    """One `membership serve` for the tests below that leave it running: each kills a worker,
    its Redis or runs a command beside it, and the server brings itself back (what they
    test), so sharing it saves a server's start and stop per test."""
    data_dir = tmp_path_factory.mktemp("served") / "var"
    service = _serve(data_dir)
    yield service, data_dir
    service.stop()


@pytest.fixture
def served(_module_server):
    """The module's server as each test starts on it: running, two workers, /readyz 200 (its
    embedded Redis answering), whatever the test before it killed."""
    service, data_dir = _module_server
    assert service.process.poll() is None, service.log.read_text()[-3000:]
    wait_until(lambda: len(service.worker_pids()) == 2, 30, "two workers")
    wait_until(lambda: _ready(service) == 200, 30, "/readyz")
    return service, data_dir


def test_a_killed_worker_and_a_hup_reload_keep_the_embedded_redis(served):
    service, data_dir = served
    redis_pid = _redis_pid(data_dir)
    first = service.worker_pids()

    victim = min(first)
    os.kill(victim, signal.SIGTERM)
    try:
        wait_until(
            lambda: victim not in service.worker_pids() and len(service.worker_pids()) == 2,
            30,
            "the killed worker to be replaced",
        )
    except TimeoutError as exc:
        raise AssertionError(
            f"{exc}; workers {first} then {service.worker_pids()}:\n"
            + service.log.read_text()[-3000:]
        ) from None
    wait_until(lambda: _ready(service) == 200, 10, "/readyz after the worker was replaced")
    assert _redis_pid(data_dir) == redis_pid and pid_alive(redis_pid)

    before_hup = service.worker_pids()
    os.kill(service.process.pid, signal.SIGHUP)
    statuses = []
    deadline = time.monotonic() + 30
    while not (service.worker_pids().isdisjoint(before_hup) and len(service.worker_pids()) == 2):
        assert time.monotonic() < deadline, "SIGHUP did not replace the workers within 30 s"
        statuses.append(_ready(service))
        time.sleep(0.05)
    statuses.append(_ready(service))
    assert set(statuses) == {200}, statuses  # no 503 while the workers are reloaded
    assert _redis_pid(data_dir) == redis_pid and pid_alive(redis_pid)
    assert service.process.poll() is None


def test_a_killed_embedded_redis_is_restarted_and_readyz_recovers(served):
    service, data_dir = served
    restarts = service.log.read_text().count("restarted it")  # by the tests before
    old = _redis_pid(data_dir)
    os.kill(old, signal.SIGKILL)
    killed = time.monotonic()
    wait_until(lambda: _new_redis_pid(data_dir, old), 5, "a new embedded Redis")
    wait_until(lambda: _ready(service) == 200, 5, "/readyz to recover by itself")
    assert time.monotonic() - killed < 5
    new = _redis_pid(data_dir)
    assert new != old and pid_alive(new)
    # The supervisor logs once the new server answers, so /readyz may turn 200 first.
    wait_until(
        lambda: service.log.read_text().count("restarted it") == restarts + 1,
        5,
        "the restart's log line",
    )


def test_the_server_stops_its_embedded_redis_only_at_the_very_end(tmp_path):
    data_dir = tmp_path / "var"
    service = _serve(data_dir)  # its own: this test stops it
    try:
        redis_pid = _redis_pid(data_dir)
    finally:
        service.stop()
    assert service.process.returncode == 0
    wait_until(lambda: not pid_alive(redis_pid), 10, "the embedded Redis to stop")
    left = metrics.servers_directory(data_dir)  # where serve's workers kept their metrics
    assert not left.exists() or not any(left.iterdir())


def test_a_second_server_on_the_same_data_dir_refuses(served):
    service, data_dir = served
    second = run_cli(data_dir, "serve", "--port", "1", timeout=30)  # refused before binding
    assert second.returncode == 1
    assert "refusing to start a second server" in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1
    assert _ready(service) == 200


def test_a_cli_command_during_an_outage_waits_for_the_server_never_stops_its_redis(served):
    service, data_dir = served
    os.kill(_redis_pid(data_dir), signal.SIGKILL)
    result = run_cli(data_dir, "stats", "--json")
    assert result.returncode == 0, result.stderr
    json.loads(result.stdout)
    time.sleep(0.5)  # today the command stopped the Redis it started at its exit
    assert _ready(service) == 200
    assert pid_alive(_redis_pid(data_dir))


def test_a_cli_command_never_starts_the_redis_of_a_server_that_owns_the_data_dir(tmp_path):
    data_dir = tmp_path / "var"
    lock = ServerLock(data_dir).acquire()  # this test process plays the server
    try:
        started = time.monotonic()
        result = run_cli(data_dir, "stats")
        took = time.monotonic() - started
    finally:
        lock.release()
    assert result.returncode == 1
    assert "is not answering" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert took < 20
    assert not EmbeddedRedis(data_dir).is_running()
    assert not (data_dir / "redis.pid").exists()


# --- Only `membership serve` owns an embedded Redis ---------------------------------


def _env(data_dir):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "STRIPE_"))}
    env["MEMBERSHIP_DATA_DIR"] = str(data_dir)
    return env


def _redis_servers_in(data_dir) -> set[int]:
    """redis-server processes working in `data_dir` (their cwd), whoever started them."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/cwd") == str(data_dir.resolve()) and os.readlink(
                f"/proc/{entry}/exe"
            ).endswith("redis-server"):
                found.add(int(entry))
        except OSError:
            continue
    return found


def _gunicorn(data_dir, port):
    command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}"]
    command += ["--workers", "1", "--no-control-socket", "membership.wsgi:app"]
    return subprocess.Popen(
        command,
        env=_env(data_dir),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _end(process) -> tuple[str, str]:
    """Stop a process this test started (its whole group) and return its output."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            return process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
    return process.communicate(timeout=30)


def test_gunicorn_with_no_serve_running_exits_and_starts_no_redis(tmp_path):
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    gunicorn = _gunicorn(data_dir, free_port())
    try:
        _out, err = gunicorn.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        _out, err = _end(gunicorn)
    finally:
        left = _redis_servers_in(data_dir)
        for pid in left:  # started by the gunicorn this test ran
            os.kill(pid, signal.SIGKILL)
    assert gunicorn.returncode not in (None, 0), "gunicorn kept running without a Redis it may use"
    assert not left, f"a redis-server was left running in {data_dir}: {left}"
    assert not (data_dir / "redis.pid").exists()
    # The app's last line says what to do; only gunicorn's own lines about the worker and
    # its shutdown come after it ("Worker exiting", "Reason: Worker failed to boot.").
    lines = err.strip().splitlines()
    said = [i for i, line in enumerate(lines) if "REDIS_URL" in line and "membership serve" in line]
    assert said, err[-3000:]
    after = lines[said[-1] + 1 :]
    assert all(re.search(r"Worker|Shutting down: Master|Reason:", line) for line in after), after


def test_a_script_calling_create_app_with_no_serve_running_stops_with_one_clear_line(tmp_path):
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    try:
        result = subprocess.run(
            [sys.executable, "-c", "from membership import create_app; create_app()"],
            env=_env(data_dir),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        left = _redis_servers_in(data_dir)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
    assert result.returncode != 0
    assert not left
    last = result.stderr.strip().splitlines()[-1]
    assert "REDIS_URL" in last and "membership serve" in last, result.stderr


def test_gunicorn_beside_a_running_serve_uses_its_redis_and_leaves_it_running(served):
    service, data_dir = served
    redis_pid = _redis_pid(data_dir)
    port = free_port()
    gunicorn = _gunicorn(data_dir, port)
    try:
        wait_until(lambda: readyz_status(f"http://127.0.0.1:{port}") == 200, 20, "gunicorn")
        assert gunicorn.poll() is None
    finally:
        _end(gunicorn)
    assert _redis_servers_in(data_dir) == {redis_pid}
    assert pid_alive(redis_pid) and _ready(service) == 200
    os.kill(redis_pid, signal.SIGKILL)  # still the server's to bring back
    wait_until(lambda: _ready(service) == 200, 5, "the server to restart its Redis")


# --- The supervisor trusts redis.pid only for our own redis-server ------------------


def test_a_stale_pidfile_naming_an_unrelated_live_process_is_not_trusted(tmp_path):
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        (data_dir / "redis.pid").write_text(f"{stranger.pid}\n")
        assert not EmbeddedRedis(data_dir).process_alive()
    finally:
        stranger.kill()
        stranger.wait(5)


def test_the_supervisor_restarts_redis_whose_stale_pidfile_names_a_live_stranger(served):
    service, data_dir = served
    old = _redis_pid(data_dir)
    stranger = subprocess.Popen(["sleep", "60"])  # what the reused pid now belongs to
    try:
        # A SIGKILLed Redis leaves its pidfile; its pid taken by another process meanwhile.
        (data_dir / "redis.pid").write_text(f"{stranger.pid}\n")
        os.kill(old, signal.SIGKILL)
        wait_until(lambda: _ready(service) == 200, 5, "the supervisor to restart Redis")
        new = _redis_pid(data_dir)
        assert new not in (old, stranger.pid) and pid_alive(new)
        assert stranger.poll() is None  # left alone
    finally:
        stranger.kill()
        stranger.wait(5)
