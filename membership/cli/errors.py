"""What a command says when something it depends on fails: one line, never a traceback.

`explain(exc)` turns the failures an operator can meet into one line that says what failed and
what to check (docs/command-line.md); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import re
import traceback

import redis
import stripe

from membership.ledger import LedgerBusy, LedgerCorrupt
from membership.ledger.codec import CorruptRecord

_MAX = 300


def _line(exc: BaseException) -> str:
    """The exception's text on one line, without control characters, not too long."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= _MAX else text[: _MAX - 1] + "…"


def _from_embedded(exc: BaseException) -> bool:
    """Raised by the embedded Redis's code (membership/store/embedded.py)."""
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and frames[-1].filename.endswith(os.path.join("store", "embedded.py"))


def _about_data_dir(exc: OSError) -> bool:
    """No path (a full disk), or MEMBERSHIP_DATA_DIR, a path in it or one of its parents.
    A file elsewhere (one of the package's own, say) is a bug: it keeps its traceback."""
    if not isinstance(exc.filename, str | bytes | os.PathLike):  # None, or a descriptor
        return True
    data_dir = os.path.abspath(os.environ.get("MEMBERSHIP_DATA_DIR") or "./var")
    path = os.path.abspath(os.fsdecode(exc.filename))
    return os.path.commonpath([path, data_dir]) in (path, data_dir)


def _stripe(exc: BaseException) -> str | None:
    if not isinstance(exc, stripe.StripeError):
        return None
    base = os.environ.get("STRIPE_API_BASE") or "https://api.stripe.com"
    if isinstance(exc, stripe.APIConnectionError):
        text = " ".join(str(exc).split())  # whole: the cause is at the end
        found = re.search(r"\[Errno -?\d+\][^\"')]*", text)
        reason = found.group(0).strip() if found else _line(exc)
        reason = reason if len(reason) <= 120 else reason[:119] + "…"
        return (
            f"cannot reach Stripe's API at {base} ({reason}); check STRIPE_API_BASE and the network"
        )
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return f"Stripe refused STRIPE_API_KEY: {_line(exc.user_message or exc)}"
    return f"Stripe's API at {base} answered an error: {_line(exc.user_message or exc)}"


def explain(exc: BaseException) -> str | None:
    """One line for a failure an operator can meet; None for anything else (a bug)."""
    if isinstance(exc, redis.AuthenticationError):
        return f"Redis refused the credentials in REDIS_URL ({_line(exc)})"
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return (
            f"cannot reach Redis ({_line(exc)}); check REDIS_URL (unset: the embedded Redis "
            "in MEMBERSHIP_DATA_DIR) and that the server is running"
        )
    if isinstance(exc, redis.ReadOnlyError):
        return f"Redis refuses writes ({_line(exc)}): REDIS_URL points at a replica?"
    if isinstance(exc, redis.RedisError):
        return f"Redis answered an error: {_line(exc)}"
    if isinstance(exc, LedgerBusy):
        return f"the ledger is busy ({_line(exc)}); nothing was changed, try again shortly"
    if isinstance(exc, LedgerCorrupt | CorruptRecord):
        return (
            f"a stored record is corrupt ({_line(exc)}); nothing was changed. "
            "`membership ledger rebuild` mends derived values; a garbled record needs a restore"
        )
    stripe_line = _stripe(exc)
    if stripe_line is not None:
        return stripe_line
    if isinstance(exc, OSError) and _about_data_dir(exc):
        where = exc.filename if exc.filename is not None else None
        reason = exc.strerror or _line(exc)
        if where is not None:
            return f"cannot use {where}: {reason}; check MEMBERSHIP_DATA_DIR"
        return f"{reason}; check MEMBERSHIP_DATA_DIR"
    if isinstance(exc, RuntimeError) and _from_embedded(exc):
        return (
            f"the embedded Redis cannot run ({_line(exc)}); check MEMBERSHIP_DATA_DIR, "
            "or set REDIS_URL"
        )
    return None
