"""Outbound calls to Stripe's API, through one explicit StripeClient.

`membership sync` lists subscriptions (`make_client`: retries, no hurry); endpoints a reader
waits on call through `Interactive` (no retries, a deadline, bounded and checked answers,
`failure` for the error answer: docs/checkout-and-members.md). Webhooks need no API key.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar
from urllib.parse import urlsplit

import stripe
from stripe import StripeClient

from membership.core.config import ConfigError, Settings
from membership.core.errors import ApiError

log = logging.getLogger(__name__)
T = TypeVar("T")

# Seconds a Stripe call may take while a reader waits (tests: Settings.extra["stripe_timeout"]).
INTERACTIVE_TIMEOUT = 9.0
CONNECT_TIMEOUT = 3.0
_WORKERS = 32  # calls in flight per process; more wait their turn within the same deadline
MAX_ANSWER_BYTES = 1024 * 1024  # what we ask for is a few kB: more is not read into memory
MAX_URL_CHARS = 8192  # a Checkout or portal URL Stripe makes is a few hundred characters


def make_client(settings: Settings, *, interactive: bool = False) -> StripeClient:
    """A client for STRIPE_API_KEY (and STRIPE_API_BASE). `interactive`: no retries, and
    the HTTP client's connect and read timeouts (`Interactive` adds the whole call's)."""
    if not settings.stripe_api_key:
        raise ConfigError("STRIPE_API_KEY: expected an sk_... or rk_... key to call the Stripe API")
    base = {"api": settings.stripe_api_base} if settings.stripe_api_base else None
    if not interactive:
        return StripeClient(settings.stripe_api_key, base_addresses=base, max_network_retries=3)
    timeout = interactive_timeout(settings)
    return StripeClient(
        settings.stripe_api_key,
        base_addresses=base,
        max_network_retries=0,
        http_client=BoundedRequestsClient(
            timeout=(min(CONNECT_TIMEOUT, timeout), timeout), max_bytes=MAX_ANSWER_BYTES
        ),
    )


class StripeBadAnswer(Exception):
    """Stripe answered something the service cannot use: larger than MAX_ANSWER_BYTES, or not
    of the shape asked for (answer 502). The message says what, never the answer itself."""


class BoundedRequestsClient(stripe.RequestsClient):
    """stripe-python's requests client, reading at most `max_bytes` of an answer (through its
    own `request_stream`): a larger one is a StripeBadAnswer and its connection is closed. A
    failure while reading is an APIConnectionError, as one while connecting is."""

    def __init__(self, *, max_bytes: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.max_bytes = max_bytes

    def request(self, method, url, headers, post_data=None):
        raw, status, answer_headers = self.request_stream(method, url, headers, post_data)
        try:
            declared = answer_headers.get("Content-Length") or ""
            if declared.isdigit() and int(declared) > self.max_bytes:
                body = None
            else:
                body = raw.read(self.max_bytes + 1, decode_content=True)
        except Exception as exc:
            raw.close()
            raise stripe.APIConnectionError(
                f"reading Stripe's answer failed: {type(exc).__name__}", should_retry=False
            ) from exc
        if body is None or len(body) > self.max_bytes:
            raw.close()
            raise StripeBadAnswer(f"an answer larger than {self.max_bytes} bytes")
        raw.release_conn()
        return body, status, answer_headers


def answer_dict(answer: object, what: str) -> dict:
    """A StripeObject answer as a plain dict, or StripeBadAnswer (stripe-python hands back a
    list, a string or None as it found them in the JSON)."""
    if not isinstance(answer, stripe.StripeObject):
        raise StripeBadAnswer(f"{what}: not an object")
    return answer.to_dict(recursive=True)


_URL_FORBIDDEN = re.compile(r"[\s\\<>\"'`\x00-\x1f\x7f]")


def https_url(answer: Mapping, what: str) -> str:
    """The `url` of an answer: an https:// URL with a host, without spaces, quotes or control
    characters, at most MAX_URL_CHARS; else StripeBadAnswer. A reader's browser goes there."""
    url = answer.get("url")
    if not isinstance(url, str) or not url.startswith("https://") or len(url) > MAX_URL_CHARS:
        raise StripeBadAnswer(f"{what}: no https:// url")
    parts = urlsplit(url)
    if _URL_FORBIDDEN.search(url) or not parts.hostname or "@" in parts.netloc:
        raise StripeBadAnswer(f"{what}: not a URL to send a reader to")
    return url


def interactive_timeout(settings: Settings) -> float:
    return float(settings.extra.get("stripe_timeout", INTERACTIVE_TIMEOUT))


def iter_subscriptions(client: StripeClient, page_size: int = 100) -> Iterator[dict]:
    """Every subscription in the account, whatever its status, with its customer expanded,
    as plain dicts of the shape webhook events carry."""
    first = client.v1.subscriptions.list(
        params={"status": "all", "limit": page_size, "expand": ["data.customer"]}
    )
    for subscription in first.auto_paging_iter():
        yield subscription.to_dict(recursive=True)


class StripeNotConfigured(Exception):
    """STRIPE_API_KEY is unset: endpoints that call Stripe answer 503, the rest runs."""


class StripeTimedOut(Exception):
    """Stripe did not answer within the deadline (answer 504)."""


# What a call through `Interactive` may raise, each of which `failure` answers.
FAILURES = (StripeNotConfigured, StripeTimedOut, StripeBadAnswer, stripe.StripeError)


class Interactive:
    """A StripeClient for calls a reader waits on, and the deadline they run under: the call
    runs on a worker thread the caller stops waiting for at the deadline, so a Stripe that
    answers a byte at a time cannot hold the request either. No retries: a second try could
    not finish in time (and an unused Checkout Session expires by itself)."""

    def __init__(self, settings: Settings) -> None:
        self.configured = bool(settings.stripe_api_key)
        self.timeout = interactive_timeout(settings)
        self._client = make_client(settings, interactive=True) if self.configured else None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._pid = 0
        self._lock = threading.Lock()

    @property
    def client(self) -> StripeClient:
        if self._client is None:
            raise StripeNotConfigured("STRIPE_API_KEY is not set")
        return self._client

    def call(self, fn: Callable[[StripeClient], T]) -> T:
        """`fn(client)` within the deadline. Raises StripeNotConfigured, StripeTimedOut,
        StripeBadAnswer (an answer too large, or one `fn` found unusable), or the SDK's
        stripe.StripeError (its APIConnectionError when Stripe cannot be reached)."""
        client = self.client
        future = self._executor().submit(fn, client)
        try:
            return future.result(timeout=self.timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()  # not started yet (all workers busy): it never will be
            raise StripeTimedOut(f"Stripe did not answer within {self.timeout:g} s") from None
        except stripe.APIConnectionError as exc:
            if timed_out(exc):
                raise StripeTimedOut(f"Stripe did not answer within {self.timeout:g} s") from exc
            raise

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._lock:
            # Made on first use, and again in a forked child: threads do not survive a fork.
            if self._pool is None or self._pid != os.getpid():
                self._pool = concurrent.futures.ThreadPoolExecutor(
                    _WORKERS, thread_name_prefix="stripe"
                )
                self._pid = os.getpid()
            return self._pool


def timed_out(exc: BaseException) -> bool:
    """Whether a connection error was a time limit (requests' or httpx's Timeout, a socket
    timeout) rather than a refused or broken connection."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TimeoutError) or "Timeout" in type(seen).__name__:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


_SAFE_CODE = re.compile(r"[a-z0-9_]{1,60}\Z")
_SAFE_PARAM = re.compile(r"[A-Za-z0-9_.\[\]]{1,100}\Z")


def failure(exc: Exception, doing: str) -> ApiError:
    """The answer for a failed Stripe call while `doing` ("creating the checkout session"),
    logged with Stripe's request id. A 502 names Stripe's error code and parameter when safe,
    never its message (it may quote what was sent)."""
    if isinstance(exc, StripeNotConfigured):
        return ApiError(
            503, "stripe_not_configured", f"payments are not set up on this service ({doing})"
        )
    if isinstance(exc, StripeBadAnswer):
        log.error("Stripe gave an answer the service cannot use while %s: %s", doing, exc)
        return ApiError(
            502, "stripe_bad_answer", f"Stripe gave an answer the service cannot use while {doing}"
        )
    if isinstance(exc, StripeTimedOut) or (
        isinstance(exc, stripe.APIConnectionError) and timed_out(exc)
    ):
        log.warning("Stripe did not answer in time while %s", doing)
        return ApiError(504, "stripe_timeout", f"Stripe did not answer in time while {doing}")
    if not isinstance(exc, stripe.StripeError):
        raise TypeError(f"not a Stripe failure: {exc!r}")
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None) or exc.code
    param = getattr(error, "param", None)
    level = logging.ERROR if isinstance(exc, _OUR_FAULT) else logging.WARNING
    log.log(
        level,
        "Stripe failed while %s: %s (status %s, code %s, param %s, request %s)",
        doing,
        type(exc).__name__,
        exc.http_status,
        code,
        param,
        exc.request_id,
    )
    if isinstance(exc, stripe.APIConnectionError):
        return ApiError(502, "stripe_unreachable", f"Stripe could not be reached while {doing}")
    detail = ", ".join(
        part
        for part in (
            f"code {code}" if isinstance(code, str) and _SAFE_CODE.match(code) else "",
            f"parameter {param}" if isinstance(param, str) and _SAFE_PARAM.match(param) else "",
        )
        if part
    )
    what = _WHAT.get(type(exc), "failed")
    return ApiError(
        502, "stripe_error", f"Stripe {what} while {doing}" + (f" ({detail})" if detail else "")
    )


# Stripe's refusals that mean our request or our key is wrong: logged as errors.
_OUR_FAULT = (stripe.InvalidRequestError, stripe.AuthenticationError, stripe.PermissionError)
_WHAT = {
    stripe.InvalidRequestError: "refused the request",
    stripe.AuthenticationError: "refused the service's API key",
    stripe.PermissionError: "denied the service's API key access",
    stripe.CardError: "declined the payment",
    stripe.RateLimitError: "is limiting the service's requests",
    stripe.IdempotencyError: "refused a repeated request",
}


_EXTENSION = "membership.stripe"


def interactive(app) -> Interactive:
    """The app's Interactive Stripe (one per app: its HTTP sessions are reused)."""
    found = app.extensions.get(_EXTENSION)
    if found is None:
        from membership.core.runtime import runtime

        found = app.extensions.setdefault(_EXTENSION, Interactive(runtime(app).settings))
    return found
