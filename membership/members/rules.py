"""Member recognition's decisions, pure (no Redis, no Stripe, no Flask, no clock).

What a Checkout Session proves (`session_subject`), who is a current member by the ledger's
records (`subject_for_email`, `is_current`), the endpoints' bodies (`parse_sign_in`,
`parse_token`, `parse_portal`: a RequestError names the field) and where a return_url may lead.
A token's subjects (`cus_...`, `email:...`, `once:cs_...`, `once:cus_...`) and the proofs each
takes: docs/checkout-and-members.md, "Member recognition".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from marshmallow import EXCLUDE, Schema, ValidationError, validate
from marshmallow import fields as mf

from membership.core import i18n
from membership.core.config import origin_of
from membership.core.text import unsafe_character
from membership.ledger.model import Customer, EmailBucket, LedgerInputError, valid_email

CUSTOMER_ID = re.compile(r"cus_[A-Za-z0-9_]{1,251}\Z")
SESSION_ID = re.compile(r"cs_[A-Za-z0-9_]{1,252}\Z")
EMAIL_SUBJECT = "email:"
ONCE_SUBJECT = "once:"
# What proved a member token's subject, signed with it (MemberClaim.proof).
LINK = "link"  # a sign-in link clicked from the mailbox (`email:`)
CHECKOUT = "checkout"  # a Checkout Session within a day of its completion (`cus_`, `once:`)
STAFF = "staff"  # `membership members token` (`cus_`, `email:`)
# A subscription Checkout started counts from these (past_due cannot be a
# fresh checkout's state). The ledger, not this, decides the count.
SESSION_MEMBER_STATUSES = frozenset({"active", "trialing"})
# A session id proves its payment for a day after the session completed: the success page asks
# right away, and an old session id (it sits in a success URL, in browser history) must not
# mint tokens forever.
SESSION_PROOF_SECONDS = 24 * 3600
MAX_URL = 2048
MAX_TOKEN = 1024
_URL_FORBIDDEN = re.compile(r"[\s\\<>\"'`\x00-\x1f\x7f]")  # what browsers and urlsplit read apart


class RequestError(ValueError):
    """A body or query that does not validate; the message names the field (`email: ...`)."""


class NoProof(Exception):
    """What a Checkout Session does not prove. `code`: `session_not_paid` (open, unpaid,
    expired, a subscription that does not count, a mode we do not sell) or `session_too_old`
    (completed more than SESSION_PROOF_SECONDS ago)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


NOT_PAID = "session_not_paid"
TOO_OLD = "session_too_old"


# --- Checkout Sessions -------------------------------------------------------------------


def _id_of(value: object) -> str | None:
    """A Stripe reference, as an id or as the expanded object."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) else None


def _created(value: object) -> int | None:
    """The `created` of an expanded object (None for an id alone, or a deleted customer)."""
    created = value.get("created") if isinstance(value, Mapping) else None
    return created if isinstance(created, int) and not isinstance(created, bool) else None


def completed_at(session: Mapping) -> int:
    """When a complete session completed, by Stripe's clock: the `created` of what completing
    it made (the subscription, or the payment intent), else the session's own (earlier: the
    proof ends sooner, never later)."""
    created = session["created"]
    made = session.get("subscription") if session.get("mode") == "subscription" else None
    made = made or session.get("payment_intent")
    return max(created, _created(made) or created)


def _new_customer(session: Mapping) -> str | None:
    """The customer a payment-mode session created at completion (the expanded customer was
    created after the session was), else None: one given at creation may be anyone's."""
    customer = session.get("customer")
    created = _created(customer)
    if created is None or created <= session["created"]:
        return None
    found = _id_of(customer)
    return found if found and CUSTOMER_ID.match(found) else None


def session_subject(session: Mapping, now: float) -> str:
    """The member token subject a complete Checkout Session proves, or NoProof: a paid
    subscription's customer, or `once:` + the customer a paid one-time session created (else
    its id); never an email; only within SESSION_PROOF_SECONDS of its completion."""
    if session.get("status") != "complete":
        raise NoProof(NOT_PAID, "the checkout is not complete (open or expired)")
    if _created(session) is None:
        raise NoProof(NOT_PAID, "the checkout has no creation time")
    mode = session.get("mode")
    if mode == "subscription":
        subscription = session.get("subscription")
        if not isinstance(subscription, Mapping):
            raise NoProof(NOT_PAID, "the checkout has no subscription")
        if subscription.get("status") not in SESSION_MEMBER_STATUSES:
            raise NoProof(NOT_PAID, "the checkout's subscription is not active")
        customer = _id_of(subscription.get("customer"))
        own = _id_of(session.get("customer"))
        if not customer or not CUSTOMER_ID.match(customer) or (own and own != customer):
            raise NoProof(NOT_PAID, "the checkout names no customer")
        subject = customer
    elif mode == "payment":
        if session.get("payment_status") != "paid":
            raise NoProof(NOT_PAID, "the checkout is not paid (yet)")
        subject = ONCE_SUBJECT + (_new_customer(session) or session["id"])
    else:
        raise NoProof(NOT_PAID, "the checkout is neither a subscription nor a contribution")
    if now - completed_at(session) > SESSION_PROOF_SECONDS:
        raise NoProof(
            TOO_OLD,
            f"the checkout completed more than {SESSION_PROOF_SECONDS // 3600} hours ago;"
            " a member signs in by email instead",
        )
    return subject


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
    """The address of an `email:` subject, None for any other subject."""
    return subject[len(EMAIL_SUBJECT) :] if subject.startswith(EMAIL_SUBJECT) else None


def once_of(subject: str) -> str | None:
    """What a one-time contribution's subject names (`cs_...` or `cus_...`), else None."""
    return subject[len(ONCE_SUBJECT) :] if subject.startswith(ONCE_SUBJECT) else None


def proven(subject: str, proof: str | None) -> bool:
    """Whether refresh and the portal may take a token's subject as its `proof` says: an
    `email:` proven by a sign-in link (or staff), a `cus_` by a Checkout (or staff), a
    `once:` by a Checkout. No proof (a token from before proofs) proves nothing."""
    if subject.startswith(EMAIL_SUBJECT):
        return proof in (LINK, STAFF)
    if subject.startswith(ONCE_SUBJECT):
        return proof == CHECKOUT
    return subject.startswith("cus_") and proof in (CHECKOUT, STAFF)


def is_current(subject: str, customer: Customer | None, bucket: EmailBucket | None) -> bool:
    """Whether a token's subject is still a member, by the one record it names (`customer`
    for cus_..., `bucket` for email:...); a one-time contribution (`once:`) never is."""
    if subject.startswith("cus_"):
        return customer is not None and customer.live > 0
    if subject.startswith(EMAIL_SUBJECT):
        return bucket is not None and subject_for_email(bucket) == subject
    return False


# --- Request bodies ------------------------------------------------------------------------


def _url_problem(value: str, allowed_origins: tuple[str, ...]) -> str | None:
    if len(value) > MAX_URL:
        return f"at most {MAX_URL} characters"
    if _URL_FORBIDDEN.search(value) or unsafe_character(value):
        return "expected a URL without spaces, quotes or control characters"
    parts = urlsplit(value)
    if parts.username is not None or parts.password is not None:
        return "expected no user:password@ in the URL"
    origin = origin_of(value)
    if origin is None:
        return "expected an http:// or https:// URL"
    if origin not in allowed_origins:
        return f"{origin} is not one of the site's origins (ALLOWED_ORIGINS)"
    return None


def _text(limit: int, also=None) -> mf.String:
    """A required string field: `required` when absent, null or empty; then at most `limit`
    characters, and what `also` checks."""
    checks = [
        validate.Length(min=1, error="required"),
        validate.Length(max=limit, error="at most {max} characters"),
        *([also] if also else []),
    ]
    messages = {"required": "required", "null": "required", "invalid": "expected a string"}
    return mf.String(required=True, error_messages=messages, validate=checks)


class _Body(Schema):
    """A member endpoint's JSON body; unknown fields are ignored. `allowed_origins`: where a
    return_url may lead (ALLOWED_ORIGINS)."""

    class Meta:
        unknown = EXCLUDE

    def __init__(self, allowed_origins: tuple[str, ...] = (), **kwargs) -> None:
        super().__init__(**kwargs)
        self.allowed_origins = allowed_origins

    def parse(self, body: object) -> dict:
        """The loaded fields, or RequestError naming the first bad one, in declared order."""
        if not isinstance(body, Mapping):
            raise RequestError("body: expected a JSON object")
        try:
            return self.load(body)
        except ValidationError as exc:
            name = next(n for n in self.fields if n in exc.messages)
            raise RequestError(f"{name}: {exc.messages[name][0]}") from None


class ReturnUrl(mf.String):
    """A return_url on one of the schema's `allowed_origins` (`return_url`), loaded as that."""

    default_error_messages = dict.fromkeys(
        ("required", "null", "invalid"), "required, an https:// URL on the news site"
    )

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        if not value:
            raise self.make_error("required")
        url = super()._deserialize(value, attr, data, **kwargs)
        problem = _url_problem(url, self.parent.allowed_origins)
        if problem is not None:
            raise ValidationError(problem)
        return urlunsplit(urlsplit(url)._replace(fragment=""))


def _email_address(value: str) -> None:
    try:
        email = valid_email(value)
    except LedgerInputError:
        email = None
    if email is None or unsafe_character(email):
        raise ValidationError("expected an email address like reader@example.org")


def _locale(value: str | None) -> None:
    try:
        i18n.resolve_locale(value)
    except i18n.CopyError as exc:
        raise ValidationError(str(exc)) from None


class TokenBody(_Body):
    """`POST /v1/member/token/refresh`: the member token (checked with SECRET_KEY by the caller)."""

    token = _text(MAX_TOKEN)


class PortalBody(TokenBody):
    """`POST /v1/member/portal`: the member token and where the portal returns to."""

    return_url = ReturnUrl(required=True)


class SignInBody(_Body):
    """`POST /v1/member/sign-in`: the email asked for, where the link leads, its language."""

    email = _text(320, also=_email_address)
    return_url = ReturnUrl(required=True)
    locale = mf.String(
        load_default=None,
        allow_none=True,
        error_messages={"invalid": "expected a locale tag such as en or uk"},
        validate=_locale,
    )


@dataclass(frozen=True)
class SignIn:
    email: str  # normalized
    return_url: str
    locale: str  # one we serve


def parse_sign_in(body: object, allowed_origins: tuple[str, ...]) -> SignIn:
    loaded = SignInBody(allowed_origins).parse(body)
    email, locale = valid_email(loaded["email"]), i18n.resolve_locale(loaded["locale"])
    return SignIn(email, loaded["return_url"], locale)


def parse_token(body: object) -> str:
    """The `token` of a refresh body (checked by the caller, with SECRET_KEY)."""
    return TokenBody().parse(body)["token"]


def parse_portal(body: object, allowed_origins: tuple[str, ...]) -> tuple[str, str]:
    loaded = PortalBody(allowed_origins).parse(body)
    return loaded["token"], loaded["return_url"]
