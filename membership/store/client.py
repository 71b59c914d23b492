"""The Redis client for a REDIS_URL: one server, a Sentinel-watched primary, or a Cluster.

A process makes one client (one pool) at start-up, shared by every request, thread and CLI
command, with short timeouts everywhere: the banner and the webhook have better fallbacks
(the last good value, Stripe's retry) than waiting on a Redis that is gone. Behind Sentinel
every new connection asks where the primary is, so after a failover the next request reaches
the new one; on a Cluster every key shares one hash tag, so transactions stay on one slot.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from redis.backoff import ExponentialBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException
from redis.retry import Retry
from redis.sentinel import Sentinel

from membership.core.config import RedisTarget, parse_redis_url

CONNECT_TIMEOUT = 1.0
READ_TIMEOUT = 2.0
# One big transaction (a ledger rebuild's commit at 200,000 members writes about a million
# commands in one EXEC) may take longer than any request should wait: its own client.
PATIENT_READ_TIMEOUT = 300.0


def _retry(retries: int = 1) -> Retry:
    return Retry(ExponentialBackoff(cap=0.1, base=0.02), retries)


def _common(read_timeout: float = READ_TIMEOUT) -> dict:
    return {
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "socket_timeout": read_timeout,
        "retry": _retry(),
        "decode_responses": True,
    }


def connect(url: str, *, read_timeout: float = READ_TIMEOUT) -> redis.Redis:
    """A client for REDIS_URL with a process-wide pool, short timeouts and one quick retry."""
    target = parse_redis_url(url)
    if target.kind == "sentinel":
        return _answered_pings_are_healthy(_sentinel_primary(target, read_timeout))
    if target.kind == "cluster":
        return LazyCluster(target, read_timeout)  # type: ignore[return-value]
    client = redis.Redis.from_url(url, health_check_interval=30, **_common(read_timeout))
    return _answered_pings_are_healthy(client)


def _answered_pings_are_healthy(client: redis.Redis) -> redis.Redis:
    """The connection health check (a PING before a command on a connection new or idle for
    30 s) passes when Redis answers at all. Redis refuses PING, as it refuses writes, while
    it cannot persist them (MISCONF: its disk is full); redis-py's check then failed the
    command it came before, a read as well: the banner, the staff pages."""
    pool = client.connection_pool
    base = pool.connection_class

    class Connection(base):
        def _send_ping(self):
            # An answer: the connection works (what is asked next is judged by itself).
            with contextlib.suppress(redis.exceptions.ResponseError):
                super()._send_ping()

    pool.connection_class = Connection
    return client


@contextmanager
def patient_client(url: str) -> Iterator[redis.Redis]:
    """A client of its own whose replies may take PATIENT_READ_TIMEOUT: for one long
    transaction (`ledger rebuild`), never for a request's reads. Closed after."""
    client = connect(url, read_timeout=PATIENT_READ_TIMEOUT)
    try:
        yield client
    finally:
        client.close()


def _sentinel_primary(target: RedisTarget, read_timeout: float) -> redis.Redis:
    # The password is the data nodes'; the Sentinels are asked without one, each once
    # (redis-py's default retries back off for seconds per Sentinel).
    sentinels = Sentinel(
        list(target.nodes),
        sentinel_kwargs={
            "socket_connect_timeout": CONNECT_TIMEOUT,
            "socket_timeout": READ_TIMEOUT,
            "retry": _retry(0),
            "decode_responses": True,
        },
    )
    return sentinels.master_for(
        target.service,
        db=target.db,
        username=target.username,
        password=target.password,
        health_check_interval=30,
        **_common(read_timeout),
    )


class LazyCluster:
    """A `RedisCluster` made on first use, so the service starts (and answers 503)
    while the cluster is unreachable, as it does with one server.

    `RedisCluster()` asks a node for the slot map at once, and raises a plain
    `RedisClusterException` when none answers; here that is a ConnectionError,
    tried again on the next use. Everything else is the cluster client's own.
    """

    def __init__(self, target: RedisTarget, read_timeout: float = READ_TIMEOUT) -> None:
        self.target = target
        self.read_timeout = read_timeout
        self._client: RedisCluster | None = None
        self._lock = threading.Lock()

    @property
    def cluster(self) -> RedisCluster:
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make()
                client = self._client
        return client

    def _make(self) -> RedisCluster:
        try:
            return RedisCluster(
                startup_nodes=[ClusterNode(host, port) for host, port in self.target.nodes],
                username=self.target.username,
                password=self.target.password,
                **{
                    **_common(self.read_timeout),
                    "retry": _retry(2),
                },  # one more: a MOVED after a reshard
            )
        except RedisClusterException as exc:
            raise redis.exceptions.ConnectionError(f"Redis Cluster unreachable: {exc}") from None

    def __getattr__(self, name: str):
        return getattr(self.cluster, name)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
