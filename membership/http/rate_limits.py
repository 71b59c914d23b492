"""Rate limits for public POST endpoints: one decorator, counted in Redis, one budget for all.

    from membership.http.rate_limits import rate_limited

    @bp.post("/v1/checkout")
    @rate_limited("checkout")  # RATE_LIMIT_CHECKOUT; its default in config.RATE_LIMIT_DEFAULTS
    def checkout(): ...

Flask-Limiter counts per client address (fixed windows) in the app's own Redis: whatever
REDIS_URL names (single, Sentinel, Cluster) or the embedded server's socket, so every worker
and every host shares one limit. Over it: 429 with `Retry-After` and the JSON error body. The
Stripe webhook has no limit (Stripe must never be throttled), nor do GETs.

A limit may count per something other than the address: `check(name, key=...)` inside the
view (sign-in counts per email asked for, RATE_LIMIT_SIGN_IN_EMAIL, with a keyed hash of the
email as the key, so no address lands in Redis).

Two departures from Flask-Limiter's usual wiring, both deliberate:
- `Limiter.init_app` hooks every request (before and after); on GET /v1/banner that doubled
  the time spent in Flask (about 57 -> 115 us). Each app's Limiter is therefore initialised
  against a private Flask object, and works only inside the views that are decorated.
- Redis trouble fails open: the request goes through, one WARNING when limiting stops and
  one INFO when it resumes. Refusing readers because a counter is unreachable helps no one.
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
from flask import Flask, current_app, g, request
from flask_limiter import Limiter, RateLimitExceeded
from limits.errors import ConfigurationError, StorageError
from redis.backoff import NoBackoff
from redis.retry import Retry

from membership.config import RATE_LIMIT_DEFAULTS, Settings, parse_redis_url
from membership.errors import error_response

log = logging.getLogger(__name__)

EXTENSION = "membership.rate_limits"
RETRY_STORAGE_SECONDS = 5.0  # after a failed start (a Cluster that was down), try again
_TIMEOUTS = {"socket_connect_timeout": 1.0, "socket_timeout": 1.0}
# What a Redis in trouble raises through `limits` (wrapped), or while connecting at start.
_STORAGE_ERRORS = (
    StorageError,
    ConfigurationError,
    redis.exceptions.RedisError,
    redis.exceptions.RedisClusterException,
)


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
    """One app's limits: a Flask-Limiter on the app's Redis and a guard per limit name."""

    def __init__(self, settings: Settings, redis_url: str) -> None:
        self.settings = settings
        self.uri, self.options = storage_for(redis_url, settings.redis_prefix)
        self._lock = threading.Lock()
        self._limiter: Limiter | None = None
        self._guards: dict[str, Callable] = {}
        self._keyed_guards: dict[str, Callable] = {}  # counted per `check(name, key=...)`
        self._retry_at = 0.0
        self._failing = False
        self._ready()

    def names(self) -> set[str]:
        extra = {
            k[len("rate_limit_") :] for k in self.settings.extra if k.startswith("rate_limit_")
        }
        return set(RATE_LIMIT_DEFAULTS) | extra

    def _ready(self) -> Limiter | None:
        """The limiter, built on first use; None while its storage cannot even be set up."""
        if self._limiter is not None:
            return self._limiter
        with self._lock:
            if self._limiter is None and time.monotonic() >= self._retry_at:
                try:
                    self._limiter = self._build()
                except _STORAGE_ERRORS as exc:
                    self._retry_at = time.monotonic() + RETRY_STORAGE_SECONDS
                    self._fail_open(exc)
        return self._limiter

    def _build(self) -> Limiter:
        hops = self.settings.trusted_proxy_hops
        limiter = Limiter(
            key_func=lambda: client_address(request.environ, hops),
            storage_uri=self.uri,
            storage_options=self.options,
            strategy="fixed-window",
            headers_enabled=False,
            swallow_errors=False,
        )
        # Its hooks land on this private object, not on the app (see the module's docstring).
        limiter.init_app(Flask(__name__))
        for name in sorted(self.names()):
            value = self.settings.rate_limit(name)
            if value is None or value == "off":
                self._guards[name] = self._keyed_guards[name] = _unlimited
                continue
            self._guards[name] = limiter.shared_limit(value, scope=name)(_guard(name))
            self._keyed_guards[name] = limiter.shared_limit(
                value, scope=f"{name}:keyed", key_func=lambda: g.membership_rate_limit_key
            )(_guard(f"{name}_keyed"))
        return limiter

    def check(self, name: str, key: str | None = None) -> None:
        """Count this request against `name`, per client address or, given, per `key`;
        RateLimitExceeded when over it."""
        if self._ready() is None:
            return
        guard = (self._guards if key is None else self._keyed_guards).get(name)
        if key is not None:
            g.membership_rate_limit_key = key
        if guard is None:
            raise LookupError(
                f"no rate limit named {name!r}: add it to config.RATE_LIMIT_DEFAULTS"
                f" and RATE_LIMIT_{name.upper()} to the settings"
            )
        try:
            guard()
        except _STORAGE_ERRORS as exc:
            self._fail_open(exc)
            return
        if self._failing:
            self._failing = False
            log.info("rate limits are counted again")

    def _fail_open(self, exc: Exception) -> None:
        if not self._failing:
            self._failing = True
            cause = exc.__cause__ or exc
            log.warning(
                "rate limits are not enforced while their Redis fails (%s: %s); requests pass",
                type(cause).__name__,
                cause,
            )

    def retry_after(self) -> int:
        """Whole seconds until the breached window ends (this request's limit), at least 1."""
        limiter = self._limiter
        try:
            current = limiter.current_limit
            reset_at, window = current.reset_at, current.limit.get_expiry()
        except (AttributeError, *_STORAGE_ERRORS):
            return 60
        # reset_at is whole seconds (rounded up): never say more than one window.
        return max(1, min(window, math.ceil(reset_at - time.time())))


def _unlimited() -> None:
    return None


def _guard(name: str) -> Callable[[], None]:
    def guard() -> None:
        return None

    guard.__name__ = guard.__qualname__ = f"rate_limit_{name}"
    return guard


def init_app(app: Flask, settings: Settings, redis_url: str) -> None:
    limits = RateLimits(settings, redis_url)
    app.extensions[EXTENSION] = limits

    @app.errorhandler(RateLimitExceeded)
    def _too_many(exc: RateLimitExceeded):
        seconds = limits.retry_after()
        return error_response(
            429,
            "rate_limited",
            f"too many requests from this address; try again in {seconds} s",
            {"Retry-After": str(seconds)},
        )
