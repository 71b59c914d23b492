"""Redis: one connection pool per process, the key names, and a health check."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from membership.config import Settings
from membership.store.embedded import EmbeddedRedis
from membership.store.keys import Keys

log = logging.getLogger(__name__)

# Errors that mean "Redis is not there right now" (answer 503, serve stale, retry later).
UNAVAILABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)

__all__ = [
    "UNAVAILABLE",
    "EmbeddedRedis",
    "Keys",
    "connect",
    "is_healthy",
    "redacted",
    "resolve_url",
]


def redacted(url: str) -> str:
    """The URL without its password, fit for logs."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(":" + parts.password + "@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def resolve_url(settings: Settings) -> tuple[str, EmbeddedRedis | None]:
    """REDIS_URL when set; otherwise the embedded server's socket, started if needed.

    Returns the URL and, for the embedded case, the server handle (whose
    `started_here` tells the caller whether it should stop it when done).
    """
    if settings.redis_url:
        log.info("using Redis at %s (REDIS_URL)", redacted(settings.redis_url))
        return settings.redis_url, None
    server = EmbeddedRedis(settings.data_dir)
    server.ensure_running()
    log.info("using embedded Redis at %s (data in %s)", server.url, server.data_dir)
    return server.url, server


def connect(url: str) -> redis.Redis:
    """A client with a process-wide pool, short timeouts and one quick retry.

    Short timeouts matter more than patience here: a reader's banner and
    Stripe's webhook both have better fallbacks (stale value, Stripe's retry)
    than waiting on a Redis that is gone.
    """
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=1.0,
        socket_timeout=2.0,
        retry=Retry(ExponentialBackoff(cap=0.1, base=0.02), 1),
        health_check_interval=30,
        decode_responses=True,
    )


def is_healthy(client: redis.Redis) -> tuple[bool, str]:
    """(True, "ok") when Redis answers PING, else (False, reason)."""
    try:
        client.ping()
    except UNAVAILABLE as exc:
        return False, f"Redis is unreachable: {exc}"
    except redis.exceptions.RedisError as exc:
        return False, f"Redis answered with an error: {exc}"
    return True, "ok"
