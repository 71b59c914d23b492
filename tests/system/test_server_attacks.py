"""Attacks on the real server and its embedded Redis, as an operator's accidents or an
attacker would make them: each test stops only processes it started,
by PID, and is bounded in time.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.processes import REPO, ServiceProcess, free_port, readyz_status, wait_until

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
    return readyz_status(service.url)


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


_SLOW_TO_LOAD = """
import sys, time
from membership.cli import server

def load():
    time.sleep(4)  # a worker still loading the app when the stop comes
    return lambda environ, start_response: []

server.run(load, host="127.0.0.1", port=int(sys.argv[1]), workers=1, threads=1)
"""


def test_a_stop_while_a_worker_loads_the_app_is_not_lost(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-c", _SLOW_TO_LOAD, str(free_port())],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    workers: set[int] = set()
    try:
        wait_until(lambda: children.read_text().split(), 10, "the worker to be forked")
        workers = {int(pid) for pid in children.read_text().split()}
        time.sleep(0.5)
        stopped = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(30)
        # Before: the worker's SIGTERM was lost while it loaded; the server waited its
        # 20 s kill timeout (past `docker stop`'s 10 s, which then kills everything).
        assert time.monotonic() - stopped < 5
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        for pid in workers:
            _kill(pid)


# A worker forked by the serve process that has not loaded the app yet: granian's handlers,
# inherited from the serve process, would only set a flag in the worker's copy.
_FORKS_A_LOADING_WORKER = """
import os, signal, time
from membership.cli.server import stop_promptly_until_loaded

signal.signal(signal.SIGTERM, lambda *args: None)  # the serve process's own handler
stop_promptly_until_loaded()
child = os.fork()
if child == 0:
    time.sleep(20)  # loading the app
    os._exit(0)
os.kill(child, signal.SIGTERM)
started = time.monotonic()
_, status = os.waitpid(child, 0)
print(os.WTERMSIG(status) if os.WIFSIGNALED(status) else -1, time.monotonic() - started)
"""


def test_a_stop_ends_a_worker_still_loading_the_app_at_once():
    """Earlier than the test above: a stop that reached a worker between its fork and the app's
    loader was lost, and the server's shutdown waited 20 s to kill it (found by the suite's
    timings)."""
    out = subprocess.run(
        [sys.executable, "-c", _FORKS_A_LOADING_WORKER],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.split()  # fmt: skip
    assert int(out[0]) == 15  # SIGTERM's default action ended it
    assert float(out[1]) < 5
