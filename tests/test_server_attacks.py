"""Attacks on the real server and its embedded Redis, as an operator's accidents or an
attacker would make them (issue 8 review): each test stops only processes it started,
by PID, and is bounded in time.
"""

import contextlib
import os
import signal
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.processes import ServiceProcess, wait_until

pytestmark = pytest.mark.slow


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _ready(service) -> int:
    try:
        with urllib.request.urlopen(service.url + "/readyz", timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def test_a_killed_serve_process_takes_its_workers_and_a_new_one_starts_on_its_port(tmp_path):
    data_dir = tmp_path / "var"
    first = ServiceProcess({"MEMBERSHIP_DATA_DIR": str(data_dir)}, workers=2).start()
    second = None
    workers: set[int] = set()
    redis_pid = None
    try:
        wait_until(lambda: len(first.worker_pids()) == 2, 10, "two workers")
        workers = first.worker_pids()
        redis_pid = int((data_dir / "redis.pid").read_text())

        first.process.kill()  # kill -9: no shutdown of anything
        first.process.wait(10)
        # Before: the workers lived on as orphans, still answering on the port, so a new
        # `membership serve` there failed with "Address already in use".
        wait_until(lambda: not any(_alive(pid) for pid in workers), 25, "the orphaned workers")

        second = ServiceProcess({"MEMBERSHIP_DATA_DIR": str(data_dir)}, workers=2)
        second.port = first.port
        second.start()
        wait_until(lambda: _ready(second) == 200, 10, "/readyz on the new server")
        # The embedded Redis the killed server left behind is taken over, not doubled.
        assert int((data_dir / "redis.pid").read_text()) == redis_pid
    finally:
        if second is not None:
            second.stop()
        for pid in workers:
            _kill(pid)
        if redis_pid is not None and _alive(redis_pid):
            _kill(redis_pid)
