"""What the access records share in Redis: a reply's text, a hash's fields, a secret's
digest (only digests are stored), the email a secret token holds, and the clock."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

import redis

from membership.core import audit
from membership.core.runtime import Runtime


def clock_for(rt: Runtime) -> Callable[[], float]:
    """Unix seconds; tests set `staff_clock` in Settings.extra so that nothing sleeps."""
    return rt.settings.extra.get("staff_clock", time.time)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def fields(raw: dict) -> dict[str, str]:
    return {text(k): text(v) for k, v in raw.items()}


def indexed(
    client: redis.Redis, index: str, key_of: Callable[[str], str]
) -> list[tuple[str, dict]]:
    """Each id the set `index` holds, sorted, with its hash `key_of(id)` (read in one round
    trip; an id whose hash is gone has {})."""
    ids = sorted(text(i) for i in client.smembers(index))
    with client.pipeline(transaction=False) as pipe:
        for i in ids:
            pipe.hgetall(key_of(i))
        return list(zip(ids, pipe.execute(), strict=True))


def held_email(
    client: redis.Redis, key_of: Callable[[str], str], token: object, now: float
) -> str | None:
    """The email a secret token holds (a hash `{email, expires}` named by the token's digest:
    a password link, a login waiting for its code); None when the token is malformed,
    unknown, spent or past `expires`."""
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        return None
    f = fields(client.hgetall(key_of(digest(token))))
    try:
        if float(f.get("expires", "0")) <= now:
            return None
    except ValueError:
        return None
    return f.get("email") or None


def audit_own(pipe, keys, email: str, action: str, **entry) -> None:
    """Queue the audit entry of a change staff member `email` makes to their own access."""
    audit.queue(pipe, keys, actor=email, action=action, target=f"staff {email}", **entry)
