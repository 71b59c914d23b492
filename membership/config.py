"""Settings, read once from the environment and validated before anything starts.

A bad value stops start-up with one line that names the variable and what was
expected (`ConfigError`), so a deploy fails loudly instead of serving wrong numbers.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from email.headerregistry import Address
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import unquote, urlsplit

from marshmallow import EXCLUDE, Schema, ValidationError, validate, validates_schema
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


DEFAULT_METRICS_ALLOW = ("127.0.0.0/8", "::1/128")


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


# Public POST endpoints by rate-limit name (`@rate_limited(name)`) -> the default limit, one
# or more "N/period" separated by ";"; RATE_LIMIT_<NAME> overrides each, "off" turns it off.
RATE_LIMIT_DEFAULTS = {
    "prompt_events": "600/minute",
    "checkout": "20/minute",
    "sign_in": "30/hour",  # per client address
    "sign_in_email": "5/hour",  # per email address asked for, whoever asks
    "staff_login": "30/hour",  # POST /staff/login, per client address
}


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
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"  # what `membership serve` listens on by default


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


# The CDN header carrying the reader's ISO country code (Cloudflare's; CloudFront sends
# CloudFront-Viewer-Country, Fastly has none by default).
DEFAULT_COUNTRY_HEADER = "CF-IPCountry"


class _EnvSchema(Schema):
    """Maps environment variables (their exact names) to validated values."""

    class Meta:
        unknown = EXCLUDE

    REDIS_URL = _RedisUrl(load_default=None)
    REDIS_PREFIX = mf.String(
        load_default="membership",
        validate=validate.Regexp(
            r"^[A-Za-z0-9_.:-]{1,64}$", error="expected 1-64 of A-Z a-z 0-9 _ . : -"
        ),
    )
    MEMBERSHIP_DATA_DIR = mf.String(load_default="./var", validate=validate.Length(min=1))
    STRIPE_WEBHOOK_SECRET = _WebhookSecrets(load_default=())
    STRIPE_WEBHOOK_TOLERANCE = mf.Integer(
        load_default=300,
        strict=False,
        validate=validate.Range(min=1, max=86400, error="expected seconds between 1 and 86400"),
        error_messages={"invalid": "expected a whole number of seconds"},
    )
    STRIPE_API_KEY = mf.String(
        load_default=None,
        validate=validate.Regexp(r"^(sk|rk)_(test|live)_\w+$", error="expected sk_... or rk_..."),
    )
    STRIPE_API_BASE = _HttpUrl(load_default=None)
    SECRET_KEY = mf.String(
        load_default=None,
        validate=validate.Length(min=16, error="expected at least 16 characters"),
    )
    ALLOWED_ORIGINS = _Origins(load_default=())
    PUBLICATION_NAME = mf.String(
        load_default="our newsroom", validate=validate.Length(min=1, max=200)
    )
    MEMBER_STATUSES = _Statuses(load_default=DEFAULT_MEMBER_STATUSES)
    JOIN_URL = _HttpUrl(load_default="https://example.org/membership")
    BANNER_MAX_AGE = mf.Integer(
        load_default=30,
        strict=False,
        validate=validate.Range(min=0, max=86400, error="expected seconds between 0 and 86400"),
        error_messages={"invalid": "expected a whole number of seconds"},
    )
    LOG_LEVEL = mf.String(
        load_default="INFO",
        validate=validate.OneOf(
            ["DEBUG", "INFO", "WARNING", "ERROR"], error="expected DEBUG, INFO, WARNING or ERROR"
        ),
    )
    LOG_FORMAT = mf.String(
        load_default="text",
        validate=validate.OneOf(["text", "json"], error="expected text or json"),
    )
    METRICS_ALLOW = _Networks(load_default=parse_networks(DEFAULT_METRICS_ALLOW))
    METRICS_TOKEN = mf.String(
        load_default=None,
        validate=validate.Regexp(
            r"^[\x21-\x7e]{16,512}$", error="expected 16-512 visible ASCII characters, no spaces"
        ),
    )
    TRUSTED_PROXY_HOPS = mf.Integer(
        load_default=0,
        strict=False,
        validate=validate.Range(min=0, max=5, error="expected a whole number from 0 to 5"),
        error_messages={"invalid": "expected a whole number from 0 to 5"},
    )
    RATE_LIMIT_PROMPT_EVENTS = _RateLimit(load_default=RATE_LIMIT_DEFAULTS["prompt_events"])
    PROMPT_EVENTS_PER_ADDRESS = mf.Integer(
        load_default=100,
        strict=False,
        validate=validate.Range(
            min=1, max=10**9, error="expected a whole number from 1 to 1000000000"
        ),
        error_messages={"invalid": "expected a whole number from 1 to 1000000000"},
    )
    RATE_LIMIT_CHECKOUT = _RateLimit(load_default=RATE_LIMIT_DEFAULTS["checkout"])
    RATE_LIMIT_SIGN_IN = _RateLimit(load_default=RATE_LIMIT_DEFAULTS["sign_in"])
    RATE_LIMIT_SIGN_IN_EMAIL = _RateLimit(load_default=RATE_LIMIT_DEFAULTS["sign_in_email"])
    RATE_LIMIT_STAFF_LOGIN = _RateLimit(load_default=RATE_LIMIT_DEFAULTS["staff_login"])
    STAFF_INSECURE_COOKIES = _Flag(load_default=False)
    STAFF_REQUIRE_2FA = _Flag(load_default=False)
    STRIPE_PRICES = _Prices(load_default=())
    CHECKOUT_SUCCESS_URL = _SuccessUrl(load_default=None)
    CHECKOUT_CANCEL_URL = _HttpUrl(load_default=None)
    CHECKOUT_ONCE_MIN = mf.Integer(load_default=100, **_MINOR_UNITS)
    CHECKOUT_ONCE_MAX = mf.Integer(load_default=100_000, **_MINOR_UNITS)
    CHECKOUT_CURRENCIES = _Currencies(load_default=("eur",))
    PUBLIC_URL = _HttpUrl(load_default=DEFAULT_PUBLIC_URL)
    MAIL_FROM = _MailFrom(load_default=None)
    SMTP_URL = _SmtpUrl(load_default=None)
    COUNTRY_HEADER = mf.String(
        load_default=DEFAULT_COUNTRY_HEADER,
        validate=validate.Regexp(
            r"[A-Za-z0-9-]{1,64}\Z", error="expected an HTTP header name: 1-64 of A-Z a-z 0-9 -"
        ),
    )
    STAFF_API_TOKEN = mf.String(
        load_default=None,
        validate=validate.Regexp(
            r"[\x21-\x7e]{16,512}\Z", error="expected 16-512 visible ASCII characters, no spaces"
        ),
    )

    @validates_schema
    def _once_limits(self, data, **kwargs):
        low, high = data.get("CHECKOUT_ONCE_MIN", 100), data.get("CHECKOUT_ONCE_MAX", 100_000)
        if high < low:
            raise ValidationError(
                f"expected at least CHECKOUT_ONCE_MIN ({low})", field_name="CHECKOUT_ONCE_MAX"
            )


@dataclass(frozen=True)
class Settings:
    redis_url: str | None = None
    redis_prefix: str = "membership"
    data_dir: Path = Path("./var")
    stripe_webhook_secrets: tuple[str, ...] = ()
    stripe_webhook_tolerance: int = 300
    stripe_api_key: str | None = None
    stripe_api_base: str | None = None
    secret_key: str = ""
    allowed_origins: tuple[str, ...] = ()
    publication_name: str = "our newsroom"
    member_statuses: tuple[str, ...] = DEFAULT_MEMBER_STATUSES
    join_url: str = "https://example.org/membership"
    banner_max_age: int = 30
    log_level: str = "INFO"
    log_format: str = "text"
    metrics_allow: tuple = parse_networks(DEFAULT_METRICS_ALLOW)
    metrics_token: str | None = None
    trusted_proxy_hops: int = 0
    rate_limit_prompt_events: str = RATE_LIMIT_DEFAULTS["prompt_events"]
    # Events of each type counted per campaign per client address per UTC hour; more: excess.
    prompt_events_per_address: int = 100
    rate_limit_checkout: str = RATE_LIMIT_DEFAULTS["checkout"]
    rate_limit_sign_in: str = RATE_LIMIT_DEFAULTS["sign_in"]
    country_header: str = DEFAULT_COUNTRY_HEADER
    staff_api_token: str | None = None
    rate_limit_sign_in_email: str = RATE_LIMIT_DEFAULTS["sign_in_email"]
    stripe_prices: tuple[tuple[str, str], ...] = ()  # (plan, price id), from STRIPE_PRICES
    # Unset: JOIN_URL (+ ?session_id={CHECKOUT_SESSION_ID} for success), set by load_settings.
    checkout_success_url: str = ""
    checkout_cancel_url: str = ""
    checkout_once_min: int = 100
    checkout_once_max: int = 100_000
    checkout_currencies: tuple[str, ...] = ("eur",)
    public_url: str = DEFAULT_PUBLIC_URL  # no trailing slash
    mail_from: str = ""  # unset: default_mail_from(publication_name)
    smtp_url: str | None = None
    rate_limit_staff_login: str = RATE_LIMIT_DEFAULTS["staff_login"]
    staff_insecure_cookies: bool = False  # local http only: staff cookies without Secure
    staff_require_2fa: bool = False  # admins must enrol a TOTP code before anything else
    # Not from the environment: lets tests and tools tune the app further.
    extra: Mapping[str, object] = field(default_factory=dict)

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


# Environment variable -> Settings field.
_ENV_TO_FIELD = {
    "REDIS_URL": "redis_url",
    "REDIS_PREFIX": "redis_prefix",
    "MEMBERSHIP_DATA_DIR": "data_dir",
    "STRIPE_WEBHOOK_SECRET": "stripe_webhook_secrets",
    "STRIPE_WEBHOOK_TOLERANCE": "stripe_webhook_tolerance",
    "STRIPE_API_KEY": "stripe_api_key",
    "STRIPE_API_BASE": "stripe_api_base",
    "SECRET_KEY": "secret_key",
    "ALLOWED_ORIGINS": "allowed_origins",
    "PUBLICATION_NAME": "publication_name",
    "MEMBER_STATUSES": "member_statuses",
    "JOIN_URL": "join_url",
    "BANNER_MAX_AGE": "banner_max_age",
    "LOG_LEVEL": "log_level",
    "LOG_FORMAT": "log_format",
    "METRICS_ALLOW": "metrics_allow",
    "METRICS_TOKEN": "metrics_token",
    "TRUSTED_PROXY_HOPS": "trusted_proxy_hops",
    "RATE_LIMIT_PROMPT_EVENTS": "rate_limit_prompt_events",
    "PROMPT_EVENTS_PER_ADDRESS": "prompt_events_per_address",
    "RATE_LIMIT_CHECKOUT": "rate_limit_checkout",
    "RATE_LIMIT_SIGN_IN": "rate_limit_sign_in",
    "COUNTRY_HEADER": "country_header",
    "STAFF_API_TOKEN": "staff_api_token",
    "RATE_LIMIT_SIGN_IN_EMAIL": "rate_limit_sign_in_email",
    "STRIPE_PRICES": "stripe_prices",
    "CHECKOUT_SUCCESS_URL": "checkout_success_url",
    "CHECKOUT_CANCEL_URL": "checkout_cancel_url",
    "CHECKOUT_ONCE_MIN": "checkout_once_min",
    "CHECKOUT_ONCE_MAX": "checkout_once_max",
    "CHECKOUT_CURRENCIES": "checkout_currencies",
    "PUBLIC_URL": "public_url",
    "MAIL_FROM": "mail_from",
    "SMTP_URL": "smtp_url",
    "RATE_LIMIT_STAFF_LOGIN": "rate_limit_staff_login",
    "STAFF_INSECURE_COOKIES": "staff_insecure_cookies",
    "STAFF_REQUIRE_2FA": "staff_require_2fa",
}
ENV_VARS = tuple(_ENV_TO_FIELD)


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
        loaded = _EnvSchema().load(raw)
    except ValidationError as exc:
        name, problems = next(iter(sorted(exc.messages.items())))
        message = problems[0] if isinstance(problems, list) else problems
        raise ConfigError(f"{name}: {message}") from None

    values = {_ENV_TO_FIELD[name]: value for name, value in loaded.items()}
    values["data_dir"] = Path(values["data_dir"])
    known = {f.name for f in fields(Settings)}
    extra = {}
    for key, value in (overrides or {}).items():
        if key in known:
            values[key] = Path(value) if key == "data_dir" else value
        else:
            extra[key] = value
    values["extra"] = extra
    values["public_url"] = values["public_url"].rstrip("/")
    if not values.get("mail_from"):
        values["mail_from"] = default_mail_from(values["publication_name"])
    join_url = values.get("join_url", Settings.join_url)
    values["checkout_success_url"] = values.get("checkout_success_url") or _add_query(
        join_url, f"session_id={SESSION_ID_PLACEHOLDER}"
    )
    values["checkout_cancel_url"] = values.get("checkout_cancel_url") or join_url
    if not values.get("secret_key"):
        values["secret_key"] = _persistent_dev_secret(values["data_dir"])
    return Settings(**values)


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
