"""`membership serve` refuses what it cannot do with one line, before starting anything."""

import os
import socket
import subprocess
import sys
import time

import pytest

from tests.support.processes import REPO, free_port, run_cli

pytestmark = pytest.mark.slow


def test_an_address_in_use_is_one_line_and_no_embedded_redis_is_left(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "STRIPE_"))}
        env["MEMBERSHIP_DATA_DIR"] = str(tmp_path / "var")
        result = subprocess.run(
            [sys.executable, "-m", "membership.cli", "serve", "--port", str(port)],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    line = f"Error: cannot listen on 127.0.0.1:{port}: Address already in use"
    assert result.stderr.strip() == line
    assert not (tmp_path / "var" / "redis.pid").exists()


def _corrupt_aof(data_dir):
    """An embedded Redis's data with a damaged command in the middle of its append-only file."""
    import redis

    from membership.store.embedded import EmbeddedRedis

    embedded = EmbeddedRedis(data_dir)
    embedded.ensure_running()
    client = redis.Redis.from_url(embedded.url)
    for i in range(40):
        client.set(f"before:{i}", "x" * 20)
    client.close()
    embedded.stop()
    aof = data_dir / "appendonly.aof"
    whole = aof.read_bytes()
    damaged = whole[: len(whole) // 2] + b"garbage!\r\n" + whole[len(whole) // 2 :]
    aof.write_bytes(damaged)
    (data_dir / "dump.rdb").unlink(missing_ok=True)
    return aof, damaged


def test_serve_on_a_corrupt_aof_says_what_redis_said_and_how_to_repair_it_at_once(tmp_path):
    data_dir = tmp_path / "var"
    _corrupt_aof(data_dir)
    started = time.monotonic()
    result = run_cli(data_dir, "serve", "--port", str(free_port()))
    took = time.monotonic() - started
    assert result.returncode == 1
    # Waiting out Redis's start-up (15 s) and then its stop (10 s) took 25 s; the rest is
    # starting Python twice, which a loaded machine stretches.
    assert took < 15, f"took {took:.1f}s: serve waited for a Redis that had already exited"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Bad file format reading the append only file" in lines[0]
    assert "overcommit" not in lines[0]
    assert "membership redis check-aof --fix" in lines[0]
    assert not (data_dir / "redis.pid").exists() or not _alive(data_dir / "redis.pid")


def test_check_aof_reports_then_repairs_the_file_keeping_a_copy(tmp_path):
    data_dir = tmp_path / "var"
    aof, damaged = _corrupt_aof(data_dir)

    check = run_cli(data_dir, "redis", "check-aof")
    assert check.returncode == 1
    assert "AOF is not valid" in check.stdout
    assert aof.read_bytes() == damaged  # a check changes nothing

    refused = run_cli(data_dir, "redis", "check-aof", "--fix", stdin="n\n")
    assert refused.returncode == 1
    assert aof.read_bytes() == damaged
    assert not list(data_dir.glob("appendonly.aof.*.bak"))

    fixed = run_cli(data_dir, "redis", "check-aof", "--fix", stdin="y\n")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    copies = list(data_dir.glob("appendonly.aof.*.bak"))
    assert [c.read_bytes() for c in copies] == [damaged]
    assert str(copies[0].name) in fixed.stdout
    assert len(aof.read_bytes()) < len(damaged)

    # The repaired file loads: what came before the damage is there.
    import redis

    from membership.store.embedded import EmbeddedRedis

    embedded = EmbeddedRedis(data_dir)
    embedded.ensure_running()
    try:
        client = redis.Redis.from_url(embedded.url)
        assert client.get("before:0") == b"x" * 20
        client.close()
    finally:
        embedded.stop()


def test_check_aof_refuses_while_the_embedded_redis_runs(tmp_path):
    from membership.store.embedded import EmbeddedRedis

    data_dir = tmp_path / "var"
    embedded = EmbeddedRedis(data_dir)
    embedded.ensure_running()
    try:
        result = run_cli(data_dir, "redis", "check-aof", "--fix", stdin="y\n")
    finally:
        embedded.stop()
    assert result.returncode == 1
    assert "running" in result.stderr
    assert not list(data_dir.glob("appendonly.aof.*.bak"))


def _alive(pidfile) -> bool:
    try:
        os.kill(int(pidfile.read_text()), 0)
    except (ProcessLookupError, ValueError):
        return False
    return True


def test_a_restart_on_a_corrupt_aof_is_logged_once_with_the_cause(tmp_path, caplog):
    """The server's supervisor, when Redis cannot come back: what Redis said, once, no
    traceback every half second; the attempts that follow come less and less often."""
    import logging

    from membership.store.embedded import EmbeddedRedis
    from membership.store.supervisor import Supervisor

    data_dir = tmp_path / "var"
    _corrupt_aof(data_dir)
    embedded = EmbeddedRedis(data_dir)
    caplog.set_level(logging.ERROR, logger="membership.store.supervisor")
    started = []
    real_start = embedded._start
    embedded._start = lambda timeout: started.append(time.monotonic()) or real_start(timeout)
    supervisor = Supervisor(embedded, interval=0.05).start()
    try:
        time.sleep(2)
    finally:
        supervisor.stop()
    records = [r for r in caplog.records if r.name == "membership.store.supervisor"]
    assert len(records) == 1, [r.getMessage() for r in records]
    assert "Bad file format reading the append only file" in records[0].getMessage()
    assert records[0].exc_info is None
    assert 3 <= len(started) <= 8, started  # 0.05, 0.1, 0.2, 0.4, 0.8 s apart: not 40 tries
    assert not embedded.is_running() and not embedded.process_alive()
