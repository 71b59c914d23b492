"""Real processes for tests and benchmarks: a redis-server and the service under its server.

Both bind 127.0.0.1 on a free port, are started and stopped by PID, and are
bounded in time, so nothing outlives the test run that made it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import redis

from membership.store.embedded import redis_server_binary

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pid_alive(pid: int) -> bool:
    """Whether a process `pid` exists (signal 0)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def kill(process: subprocess.Popen | None) -> None:
    """SIGKILL a child still running, and reap it."""
    if process is not None and process.poll() is None:
        process.kill()
        process.wait(10)


def terminate(process: subprocess.Popen | None) -> None:
    """SIGTERM a child still running; SIGKILL it if it has not exited within 10 s."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            kill(process)


def run_cli(data_dir, *args, timeout=60, stdin=None, env=None) -> subprocess.CompletedProcess:
    """`membership ARGS` in its own process on `data_dir`, with no Redis, Stripe or membership
    setting of the host's but those of `env`; its output captured as text."""
    settings = ("REDIS_", "STRIPE_", "MEMBERSHIP_")
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(settings)}
    full_env["MEMBERSHIP_DATA_DIR"] = str(data_dir)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "membership.cli", *args],
        env=full_env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
    )


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


class RedisServer:
    """A throwaway redis-server on a free TCP port; kill() and start() keep the port.

    `persistent=True` turns on the append-only file with fsync on every write, so
    a kill() loses nothing Redis acknowledged and start() brings it all back.
    `unix_socket=True` listens only on `path`, a socket in its own directory.
    """

    def __init__(
        self, port: int | None = None, *, persistent: bool = False, unix_socket: bool = False
    ) -> None:
        self.port = 0 if unix_socket else port or free_port()
        self.persistent = persistent
        self.dir = Path(tempfile.mkdtemp(prefix="membership-redis-"))
        self.path = self.dir / "redis.sock" if unix_socket else None
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        if self.path is not None:
            return f"unix://{self.path}?db=0"
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        if self.path is not None:
            return redis.Redis(
                unix_socket_path=str(self.path), decode_responses=True, socket_timeout=5
            )
        return redis.Redis(port=self.port, decode_responses=True, socket_timeout=5)

    def start(self) -> RedisServer:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                redis_server_binary(),
                "--port",
                str(self.port),
                *(["--unixsocket", str(self.path)] if self.path else ["--bind", "127.0.0.1"]),
                "--dir",
                str(self.dir),
                "--save",
                "",
                "--appendonly",
                "yes" if self.persistent else "no",
                "--appendfsync",
                "always",
                "--daemonize",
                "no",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._answers, 10, f"redis-server on {self.path or self.port}")
        return self

    def flush(self) -> None:
        """Empty it, starting it again first if a test killed it."""
        if self.process is None or self.process.poll() is not None:
            self.start()
        self.client().flushall()

    def _answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.exceptions.ConnectionError:
            return False

    def kill(self) -> None:
        """Stop it abruptly, as a crash or a network cut would."""
        kill(self.process)

    def stop(self) -> None:
        terminate(self.process)
        shutil.rmtree(self.dir, ignore_errors=True)


class ServerProcess:
    """An HTTP server in a subprocess on a free 127.0.0.1 port, stopped by its PID."""

    name = "server"

    def __init__(self, env: dict[str, str], workers: int = 2, threads: int = 4) -> None:
        self.port = free_port()
        self.env = env
        self.workers = workers
        self.threads = threads
        self.process: subprocess.Popen | None = None
        self.log = Path(tempfile.mkstemp(prefix=f"membership-{self.name}-", suffix=".log")[1])
        atexit.register(self.log.unlink, missing_ok=True)  # tests read it after stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 30) -> ServerProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "STRIPE_"))}
        env.update(self.env)
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, *self.command()],
                env=env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(self._healthy, timeout, f"the {self.name} on port {self.port}")
        return self

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited early:\n{self.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


class ServiceProcess(ServerProcess):
    """`membership serve` (granian) with the given environment."""

    name = "service"

    def command(self) -> list[str]:
        return [
            "-m", "membership.cli", "serve",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--workers", str(self.workers), "--threads", str(self.threads),
        ]  # fmt: skip

    def worker_pids(self) -> set[int]:
        """The server's live worker processes: its direct children (forked by any of its
        threads), but its embedded redis-server and any child that has exited (a zombie not
        reaped yet)."""
        pids = set()
        for children in Path(f"/proc/{self.process.pid}/task").glob("*/children"):
            try:
                pids.update(int(pid) for pid in children.read_text().split())
            except OSError:  # a thread that ended meanwhile
                continue
        return {pid for pid in pids if _is_worker(pid)}


def _is_worker(pid: int) -> bool:
    try:
        exe = Path(os.readlink(f"/proc/{pid}/exe"))
    except OSError:  # gone, or a zombie (no exe)
        return False
    return not exe.name.startswith("redis-server")


class BareFlaskProcess(ServerProcess):
    """The benchmarks' baseline (bench/bare_app.py): `server` is "granian" or "gunicorn".

    `app="service"` serves the real app instead of the bare one (REDIS_URL in `env`).
    """

    name = "bare-flask"

    def __init__(
        self,
        env: dict[str, str],
        workers: int = 2,
        threads: int = 4,
        *,
        server: str = "granian",
        app: str = "bare",
    ) -> None:
        super().__init__(env, workers, threads)
        self.server = server
        self.app = app

    def command(self) -> list[str]:
        return [
            str(REPO / "bench" / "bare_app.py"),
            "--port", str(self.port),
            "--workers", str(self.workers), "--threads", str(self.threads),
            "--server", self.server, "--app", self.app,
        ]  # fmt: skip


class SlowClients:
    """Hostile connections, in one background thread, until stop().

    - `slow` sockets each send a request line, then one more header line every
      `interval` seconds, never finishing their headers (slowloris); when the
      server drops one, it reconnects, as an attacker would.
    - `idle` sockets connect and send nothing; reconnected when dropped.
    """

    def __init__(
        self, port: int, *, slow: int = 200, idle: int = 200, interval: float = 5.0
    ) -> None:
        self.port = port
        self.slow, self.idle, self.interval = slow, idle, interval
        self.reconnects = 0
        self._stop = threading.Event()
        self._socks: dict[socket.socket, str] = {}
        self._thread = threading.Thread(target=self._run, name="slow-clients", daemon=True)

    def _open(self, kind: str) -> None:
        s = socket.socket()
        s.setblocking(True)
        s.settimeout(2)
        try:
            s.connect(("127.0.0.1", self.port))
            if kind == "slow":
                s.sendall(b"GET /v1/banner HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            s.setblocking(False)
        except OSError:
            s.close()
            return
        self._socks[s] = kind

    def start(self) -> SlowClients:
        for _ in range(self.slow):
            self._open("slow")
        for _ in range(self.idle):
            self._open("idle")
        self._thread.start()
        return self

    def _run(self) -> None:
        n = 0
        while not self._stop.wait(self.interval):
            n += 1
            for s, kind in list(self._socks.items()):
                dropped = False
                try:
                    if s.recv(4096) == b"":
                        dropped = True
                except BlockingIOError:
                    pass
                except OSError:
                    dropped = True
                if not dropped and kind == "slow":
                    try:
                        s.send(b"X-Slow-%d: %d\r\n" % (n, n))
                    except OSError:
                        dropped = True
                if dropped:
                    del self._socks[s]
                    s.close()
                    self.reconnects += 1
            for kind, want in (("slow", self.slow), ("idle", self.idle)):
                for _ in range(want - sum(1 for k in self._socks.values() if k == kind)):
                    if self._stop.is_set():
                        break
                    self._open(kind)

    def open_count(self) -> int:
        return len(self._socks)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        for s in list(self._socks):
            s.close()
        self._socks.clear()


def probe(port: int, path: str, duration: float, *, timeout: float = 2.0, pause: float = 0.05):
    """A well-behaved reader: one fresh connection per GET for `duration` seconds.

    Returns (latencies in seconds of the answered requests, failures as strings).
    """
    import http.client

    latencies: list[float] = []
    failures: list[str] = []
    end = time.monotonic() + duration
    while time.monotonic() < end:
        t0 = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                failures.append(f"HTTP {response.status}")
            else:
                latencies.append(time.perf_counter() - t0)
        except OSError as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
        finally:
            conn.close()
        time.sleep(pause)
    return latencies, failures


def readyz_status(url: str) -> int:
    """The HTTP status of `url`/readyz, 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


@contextlib.contextmanager
def service_on_own_redis(data_dir, env=None, *, seed=None, **options):
    """`membership serve` (ServiceProcess, `options`) on a redis-server of its own, with
    `data_dir` and the settings `env`; `seed(client)` writes to that Redis first."""
    redis = RedisServer().start()
    try:
        if seed is not None:
            seed(redis.client())
        settings = {"REDIS_URL": redis.url, "MEMBERSHIP_DATA_DIR": str(data_dir), **(env or {})}
        service = ServiceProcess(settings, **options).start()
        try:
            yield service
        finally:
            service.stop()
    finally:
        redis.stop()
