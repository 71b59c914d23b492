"""Member recognition's decisions, pure (no Redis, no Stripe, no Flask, no clock).

- Who a Checkout Session proves to be a member (`session_subject`).
- Who is a current member by the ledger's records (`subject_for_email`, `is_current`).
- The request bodies of the member endpoints, validated (`parse_sign_in`, `parse_token`,
  `parse_portal`): a RequestError names the field. Unknown fields are ignored. Plain code,
  not marshmallow: three string fields, each with its own rule.
- Where a return_url may lead (`return_url`): an http(s) URL on an ALLOWED_ORIGINS origin.

A member token's subject is `cus_...` (a Stripe customer) or `email:<normalized address>`
(anyone the ledger knows by email: an offline member, a Stripe member who signed in by
email, or a one-time contributor whose Checkout had no customer).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from membership import i18n
from membership.ledger.model import Customer, EmailBucket, LedgerInputError, valid_email
from membership.text import unsafe_character

CUSTOMER_ID = re.compile(r"cus_[A-Za-z0-9_]{1,251}\Z")
SESSION_ID = re.compile(r"cs_[A-Za-z0-9_]{1,252}\Z")
EMAIL_SUBJECT = "email:"
# A subscription Checkout started counts from these (the rule; past_due cannot be a
# fresh checkout's state). The ledger, not this, decides the count.
SESSION_MEMBER_STATUSES = frozenset({"active", "trialing"})
# A one-time contribution proves itself for a day: the success page asks right away, and an
# old session id (it sits in a success URL, in browser history) must not mint tokens forever.
PAYMENT_PROOF_SECONDS = 24 * 3600
MAX_URL = 2048
MAX_TOKEN = 1024
_URL_FORBIDDEN = re.compile(r"[\s\\<>\"'`\x00-\x1f\x7f]")  # what browsers and urlsplit read apart
_DEFAULT_PORTS = {"http": 80, "https": 443}


class RequestError(ValueError):
    """A body or query that does not validate; the message names the field (`email: ...`)."""


# --- Checkout Sessions -------------------------------------------------------------------


def _id_of(value: object) -> str | None:
    """A Stripe reference, as an id or as the expanded object."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) else None


def session_subject(session: Mapping, now: float) -> str | None:
    """The member token subject a Checkout Session proves, or None (open, unpaid, expired,
    a subscription not active or trialing, a contribution older than a day, no one named).

    Subscription mode: the session's customer, while its (expanded) subscription is active or
    trialing. Payment mode (a one-time contribution), paid: the customer if there is one, else
    `email:` + the email the reader gave Checkout.
    """
    if session.get("status") != "complete":
        return None
    customer = _id_of(session.get("customer"))
    mode = session.get("mode")
    if mode == "subscription":
        subscription = session.get("subscription")
        if not isinstance(subscription, Mapping):
            return None
        if subscription.get("status") not in SESSION_MEMBER_STATUSES:
            return None
        customer = customer or _id_of(subscription.get("customer"))
        return customer if customer and CUSTOMER_ID.match(customer) else None
    if mode == "payment":
        created = session.get("created")
        if session.get("payment_status") != "paid" or not isinstance(created, int):
            return None
        if now - created > PAYMENT_PROOF_SECONDS:
            return None
        if customer and CUSTOMER_ID.match(customer):
            return customer
        details = session.get("customer_details")
        email = details.get("email") if isinstance(details, Mapping) else None
        try:
            return EMAIL_SUBJECT + valid_email(email)
        except LedgerInputError:
            return None
    return None


def check_session_id(value: str | None) -> str:
    if not value:
        raise RequestError("session_id: required, as in ?session_id=cs_...")
    if not SESSION_ID.match(value):
        raise RequestError("session_id: expected a Checkout Session id (cs_...)")
    return value


# --- Who is a current member ---------------------------------------------------------------


def subject_for_email(bucket: EmailBucket) -> str | None:
    """`email:<address>` when the ledger counts this email as a member (a member Stripe
    customer has it, or an offline member does), else None."""
    if bucket.live > 0 or bucket.offline is not None:
        return EMAIL_SUBJECT + bucket.email
    return None


def email_of(subject: str) -> str | None:
    """The address of an `email:` subject, None for a customer subject."""
    return subject[len(EMAIL_SUBJECT) :] if subject.startswith(EMAIL_SUBJECT) else None


def is_current(subject: str, customer: Customer | None, bucket: EmailBucket | None) -> bool:
    """Whether a token's subject is still a member: a customer with a subscription that
    counts, or an email the ledger counts (`subject_for_email`). The caller loads the one
    record the subject names (`customer` for cus_..., `bucket` for email:...)."""
    if subject.startswith("cus_"):
        return customer is not None and customer.live > 0
    return bucket is not None and subject_for_email(bucket) == subject


# --- Request bodies ------------------------------------------------------------------------


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` as config spells ALLOWED_ORIGINS (lower-case, default port
    dropped), or None when `url` is not an http(s) URL with a host."""
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


def return_url(value: object, allowed_origins: tuple[str, ...], name: str = "return_url") -> str:
    """An http(s) URL on an allowed origin, its fragment dropped (the token goes there)."""
    if not isinstance(value, str) or not value:
        raise RequestError(f"{name}: required, an https:// URL on the news site")
    if len(value) > MAX_URL:
        raise RequestError(f"{name}: at most {MAX_URL} characters")
    if _URL_FORBIDDEN.search(value) or unsafe_character(value):
        raise RequestError(f"{name}: expected a URL without spaces, quotes or control characters")
    parts = urlsplit(value)
    if parts.username is not None or parts.password is not None:
        raise RequestError(f"{name}: expected no user:password@ in the URL")
    origin = origin_of(value)
    if origin is None:
        raise RequestError(f"{name}: expected an http:// or https:// URL")
    if origin not in allowed_origins:
        raise RequestError(f"{name}: {origin} is not one of the site's origins (ALLOWED_ORIGINS)")
    return urlunsplit(parts._replace(fragment=""))


def _object(body: object) -> Mapping:
    if not isinstance(body, Mapping):
        raise RequestError("body: expected a JSON object")
    return body


def _string(body: Mapping, name: str, limit: int) -> str:
    value = body.get(name)
    if value is None or value == "":
        raise RequestError(f"{name}: required")
    if not isinstance(value, str):
        raise RequestError(f"{name}: expected a string")
    if len(value) > limit:
        raise RequestError(f"{name}: at most {limit} characters")
    return value


@dataclass(frozen=True)
class SignIn:
    email: str  # normalized
    return_url: str
    locale: str  # one we serve


def parse_sign_in(body: object, allowed_origins: tuple[str, ...]) -> SignIn:
    body = _object(body)
    raw = _string(body, "email", 320)
    try:
        email = valid_email(raw)
    except LedgerInputError:
        raise RequestError("email: expected an email address like reader@example.org") from None
    if unsafe_character(email):
        raise RequestError("email: expected an email address like reader@example.org")
    url = return_url(body.get("return_url"), allowed_origins)
    locale = body.get("locale")
    if locale is not None and not isinstance(locale, str):
        raise RequestError("locale: expected a locale tag such as en or uk")
    try:
        served = i18n.resolve_locale(locale)
    except i18n.CopyError as exc:
        raise RequestError(f"locale: {exc}") from None
    return SignIn(email, url, served)


def parse_token(body: object) -> str:
    """The `token` of a refresh or portal body (checked by the caller, with SECRET_KEY)."""
    return _string(_object(body), "token", MAX_TOKEN)


def parse_portal(body: object, allowed_origins: tuple[str, ...]) -> tuple[str, str]:
    body = _object(body)
    token = parse_token(body)
    return token, return_url(body.get("return_url"), allowed_origins)
