"""Who runs what on a data dir: the `membership serve` holding `serve.lock`, and whether the
pid in `redis.pid` is still a redis-server working there.

A `membership serve` holds `<data_dir>/serve.lock` for its whole life (`ServerLock`); while
it does, it alone starts, restarts and stops the embedded Redis (membership.store.embedded).
`redis.pid` is trusted only for a live redis-server working in the data dir (`runs_here`): a
Redis killed with SIGKILL leaves its pidfile, and its pid may since belong to anything.
"""

from __future__ import annotations

import errno
import fcntl
import os
from contextlib import suppress
from pathlib import Path


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
            raise DataDirInUse(self.path.parent, read_pid(self.path)) from None
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
        return read_pid(path) or -1
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def process_alive(pid: int) -> bool:
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


def runs_here(pid: int, data_dir: Path) -> bool:
    """True while `pid` is a redis-server working in `data_dir`, not some process that was
    given the pid of a dead one (redis-server runs in its `dir`: the data dir)."""
    if not process_alive(pid):
        return False
    if not os.path.isdir("/proc/self"):
        return True  # no /proc: trust kill(0)
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:  # gone meanwhile, or another user's process: not ours
        return False
    return Path(exe).name.startswith("redis-server") and Path(cwd) == data_dir
