"""Redis: the client for REDIS_URL (one pool per process), the key names, the embedded server."""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit, urlunsplit

from membership.core.config import Settings
from membership.core.errors import UNAVAILABLE
from membership.store.client import connect, patient_client
from membership.store.embedded import EmbeddedRedis
from membership.store.keys import Keys

log = logging.getLogger(__name__)

__all__ = [
    "UNAVAILABLE",
    "EmbeddedRedis",
    "Keys",
    "connect",
    "patient_client",
    "redacted",
    "resolve_url",
]


_SECRET_QUERY = re.compile(r"((?:^|&)[^=&]*password=)[^&]*", re.IGNORECASE)


def redacted(url: str) -> str:
    """The URL without its password, fit for logs (any REDIS_URL form, several hosts too)."""
    parts = urlsplit(url)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    if at and colon and password:
        url = urlunsplit(parts._replace(netloc=f"{user}:***@{hosts}"))
    # redis-py also takes ?password=... (the documented form for unix:// sockets)
    base, question, query = url.partition("?")
    return base + question + _SECRET_QUERY.sub(r"\1***", query) if question else url


def resolve_url(
    settings: Settings, *, start_embedded: bool = False
) -> tuple[str, EmbeddedRedis | None]:
    """REDIS_URL when set; otherwise the socket of the embedded Redis of the running
    `membership serve` (NoEmbeddedRedisOwner when none runs). `start_embedded=True` (a CLI
    command) starts it when no server does, for the caller to stop when done.

    Returns the URL and, for the embedded case, the server handle (whose
    `started_here` tells the caller whether it should stop it when done).
    """
    if settings.redis_url:
        log.info("using Redis at %s (REDIS_URL)", redacted(settings.redis_url))
        return settings.redis_url, None
    server = EmbeddedRedis(settings.data_dir)
    if start_embedded:
        server.ensure_running()
    else:
        server.attach()
    log.info("using embedded Redis at %s (data in %s)", server.url, server.data_dir)
    return server.url, server
