"""Rate limits for public POST endpoints: one decorator, counted in Redis, one budget for all.

    @bp.post("/v1/checkout")
    @rate_limited("checkout")  # RATE_LIMIT_CHECKOUT; its default in config.RATE_LIMIT_DEFAULTS
    def checkout(): ...

The `limits` library counts per client address (fixed windows) in the app's own Redis, so
every worker and host shares one limit; only decorated views are counted. Over it: 429 with
`Retry-After`. `check(name, key=...)` counts per something else (sign-in, per email asked
for, by a keyed hash). Several limits (`5/minute;20/hour`) count the shortest window first
and stop at the first one exceeded. Redis trouble fails open: the request goes through, one
WARNING when limiting stops and one INFO when it resumes.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import math
import threading
import time
from collections.abc import Callable

import redis
from flask import Flask, current_app, request
from limits import RateLimitItem, parse_many
from limits.errors import ConfigurationError, StorageError
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter
from redis.backoff import NoBackoff
from redis.retry import Retry
from werkzeug.exceptions import TooManyRequests

from membership.core.config import RATE_LIMIT_DEFAULTS, Settings, parse_redis_url
from membership.core.errors import error_response

log = logging.getLogger(__name__)

EXTENSION = "membership.rate_limits"
RETRY_STORAGE_SECONDS = 5.0  # after a failed start (a Cluster that was down), try again
RETRY_AFTER_UNKNOWN = 60  # Retry-After when the breached window cannot be read
_TIMEOUTS = {"socket_connect_timeout": 1.0, "socket_timeout": 1.0}
# What a Redis in trouble raises through `limits` (wrapped), or while connecting at start.
_STORAGE_ERRORS = (
    StorageError,
    ConfigurationError,
    redis.exceptions.RedisError,
    redis.exceptions.RedisClusterException,
)


class RateLimitExceeded(TooManyRequests):
    """Over a limit; `retry_after`: whole seconds until the breached window ends (>= 1)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__()
        self.retry_after = retry_after


def rate_limited(name: str) -> Callable:
    """Limit a view by RATE_LIMIT_<NAME> per client address (shared by views of one name)."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def limited(*args, **kwargs):
            current_app.extensions[EXTENSION].check(name)
            return view(*args, **kwargs)

        limited.rate_limit = name
        return limited

    return decorate


def storage_for(redis_url: str, prefix: str) -> tuple[str, dict]:
    """The `limits` storage URI and options for a REDIS_URL of any form the app accepts.

    redis:// and rediss:// are the same; unix:// is redis+unix://; Sentinel and Cluster are
    rebuilt from the parsed hosts (limits wants host:port for each and the service name
    alone as the path) with the db and credentials passed as options, unquoted. As in
    store/client.py, a Sentinel URL's password is the data nodes' (Sentinels get none).
    """
    target = parse_redis_url(redis_url)
    options: dict = {"key_prefix": f"{prefix}:ratelimit", "wrap_exceptions": True, **_TIMEOUTS}
    if target.kind == "single":
        if redis_url.startswith("unix:"):
            return "redis+unix:" + redis_url[len("unix:") :], options
        return redis_url, options
    hosts = ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in target.nodes)
    if target.username:
        options["username"] = target.username
    if target.password:
        options["password"] = target.password
    if target.kind == "sentinel":
        options.update(
            db=target.db,
            use_replicas=False,  # a replica may lag: count on the primary only
            # Each Sentinel asked once: redis-py's default retries back off for seconds
            # per Sentinel, and a limiter must never be what makes a request slow.
            sentinel_kwargs={
                "username": None,
                "password": None,
                "retry": Retry(NoBackoff(), 0),
                **_TIMEOUTS,
            },
        )
        return f"redis+sentinel://{hosts}/{target.service}", options
    return f"redis+cluster://{hosts}", options


def client_address(environ: dict, trusted_hops: int) -> str:
    """Who is asking: REMOTE_ADDR, or behind `trusted_hops` proxies the address the outermost
    of them saw (in X-Forwarded-For, counted from the right). IPv6 by /64: one host has many."""
    address = environ.get("REMOTE_ADDR") or ""
    if trusted_hops:
        forwarded = [a.strip() for a in environ.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [a for a in forwarded if a]
        if len(forwarded) >= trusted_hops:
            address = forwarded[-trusted_hops]
    # Some proxies write the client's port too ("192.0.2.1:51234", "[2001:db8::1]:443"):
    # a new port per connection must not be a new budget.
    if address.startswith("["):
        address = address[1:].partition("]")[0]
    elif address.count(":") == 1:
        address = address.partition(":")[0]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64] or "unknown"
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class RateLimits:
    """One app's limits: the parsed limit of each name, counted in the app's Redis."""

    def __init__(self, settings: Settings, redis_url: str) -> None:
        self.settings = settings
        self.uri, self.options = storage_for(redis_url, settings.redis_prefix)
        # name -> its limits, shortest window first; empty when "off"
        self.limits: dict[str, list[RateLimitItem]] = {
            name: _parse(settings.rate_limit(name)) for name in sorted(self.names())
        }
        self._lock = threading.Lock()
        self._counter: FixedWindowRateLimiter | None = None
        self._retry_at = 0.0
        self._failing = False
        self._ready()

    def names(self) -> set[str]:
        extra = {
            k[len("rate_limit_") :] for k in self.settings.extra if k.startswith("rate_limit_")
        }
        return set(RATE_LIMIT_DEFAULTS) | extra

    def _ready(self) -> FixedWindowRateLimiter | None:
        """The counter, built on first use; None while its storage cannot even be set up."""
        if self._counter is not None:
            return self._counter
        with self._lock:
            if self._counter is None and time.monotonic() >= self._retry_at:
                try:
                    storage = storage_from_string(self.uri, **self.options)
                    self._counter = FixedWindowRateLimiter(storage)
                except _STORAGE_ERRORS as exc:
                    self._retry_at = time.monotonic() + RETRY_STORAGE_SECONDS
                    self._fail_open(exc)
        return self._counter

    def check(self, name: str, key: str | None = None) -> None:
        """Count this request against `name`, per client address or, given, per `key`;
        RateLimitExceeded when over it."""
        items = self.limits.get(name)
        if items is None:
            raise LookupError(
                f"no rate limit named {name!r}: add it to config.RATE_LIMIT_DEFAULTS"
                f" and RATE_LIMIT_{name.upper()} to the settings"
            )
        counter = self._ready() if items else None
        if counter is None:
            return
        if key is None:
            who, scope = client_address(request.environ, self.settings.trusted_proxy_hops), name
        else:
            who, scope = key, f"{name}:keyed"
        try:
            over = next((item for item in items if not counter.hit(item, who, scope)), None)
        except _STORAGE_ERRORS as exc:
            self._fail_open(exc)
            return
        if self._failing:
            self._failing = False
            log.info("rate limits are counted again")
        if over is not None:
            log.info("ratelimit %s (%s) exceeded at endpoint: %s", over, who, scope)
            raise RateLimitExceeded(_retry_after(counter, over, who, scope))

    def _fail_open(self, exc: Exception) -> None:
        if not self._failing:
            self._failing = True
            cause = exc.__cause__ or exc
            log.warning(
                "rate limits are not enforced while their Redis fails (%s: %s); requests pass",
                type(cause).__name__,
                cause,
            )


def _parse(value: str | None) -> list[RateLimitItem]:
    """A RATE_LIMIT_* value as limits to count, shortest window first ("off": none)."""
    if value is None or value == "off":
        return []
    return sorted(parse_many(value))


def _retry_after(counter: FixedWindowRateLimiter, item: RateLimitItem, who: str, scope: str) -> int:
    """Whole seconds until the breached window ends, at least 1 and at most the window."""
    try:
        reset_time, _ = counter.get_window_stats(item, who, scope)
    except _STORAGE_ERRORS:
        return RETRY_AFTER_UNKNOWN
    window = item.get_expiry()
    return max(1, min(window, math.ceil(int(reset_time + 1) - time.time())))


def init_app(app: Flask, settings: Settings, redis_url: str) -> None:
    app.extensions[EXTENSION] = RateLimits(settings, redis_url)

    @app.errorhandler(RateLimitExceeded)
    def _too_many(exc: RateLimitExceeded):
        return error_response(
            429,
            "rate_limited",
            f"too many requests from this address; try again in {exc.retry_after} s",
            {"Retry-After": str(exc.retry_after)},
        )
