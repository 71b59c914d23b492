"""Two-factor codes (TOTP, RFC 6238, pyotp): enrolment with a QR code, checks at sign-in.

The secret lives in the account's hash (`totp`); enrolment keeps a new one in
`totp_pending` until a code from the app confirms it. A code is accepted once: `totp_last`
holds the last accepted time step, so a code seen over a shoulder cannot be replayed.
A login whose password was right waits for its code under a random token (5 minutes).
"""

from __future__ import annotations

import hmac
import io
import secrets
from collections.abc import Callable

import pyotp
import redis
import segno

from membership import audit
from membership.staff.accounts import _fields, digest, held_email
from membership.store import Keys

ISSUER = "membership staff"
STEP = 30
PENDING_SECONDS = 5 * 60


def code_step(secret: str, code: str, now: float, after: int) -> int | None:
    """The time step (within one step of now, later than `after`) whose code is `code`."""
    code = code.strip().replace(" ", "")
    if not (code.isascii() and code.isdigit() and len(code) == 6):
        return None
    totp, current = pyotp.TOTP(secret), int(now // STEP)
    for step in (current - 1, current, current + 1):
        if step > after and hmac.compare_digest(totp.at(step * STEP), code):
            return step
    return None


def qr_svg(email: str, secret: str) -> bytes:
    uri = pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)
    out = io.BytesIO()
    segno.make(uri, error="m").save(
        out, kind="svg", scale=5, xmldecl=True, title="Two-factor enrolment code"
    )
    return out.getvalue()


class SecondFactor:
    def __init__(self, client: redis.Redis, keys: Keys, clock: Callable[[], float]) -> None:
        self.client, self.keys, self.clock = client, keys, clock

    def _get(self, email: str) -> dict[str, str]:
        return _fields(self.client.hgetall(self.keys.staff_account(email)))

    def enabled(self, email: str) -> bool:
        return bool(self._get(email).get("totp"))

    def pending_secret(self, email: str) -> str | None:
        return self._get(email).get("totp_pending") or None

    def start(self, email: str) -> str:
        secret = pyotp.random_base32()
        self.client.hset(self.keys.staff_account(email), "totp_pending", secret)
        return secret

    def _accept(self, email: str, field: str, code: str, change: Callable | None = None):
        """Check `code` against the secret in `field` and record its step, atomically;
        `change(pipe)` queues more in the same transaction. False for a wrong code."""
        key = self.keys.staff_account(email)
        with self.client.pipeline(transaction=True) as pipe:
            for _ in range(20):
                try:
                    pipe.watch(key)
                    f = _fields(pipe.hgetall(key))
                    secret = f.get(field)
                    last = int(f.get("totp_last") or 0)
                    step = code_step(secret, code, self.clock(), last) if secret else None
                    if step is None:
                        pipe.unwatch()
                        return False
                    pipe.multi()
                    pipe.hset(key, "totp_last", step)
                    if change is not None:
                        change(pipe, secret)
                    pipe.execute()
                    return True
                except redis.WatchError:
                    continue
        return False

    def confirm(self, email: str, code: str) -> bool:
        """Turn the pending secret on with a code from it (audited)."""
        key = self.keys.staff_account(email)

        def enable(pipe, secret):
            pipe.hset(key, "totp", secret)
            pipe.hdel(key, "totp_pending")
            audit.queue(
                pipe,
                self.keys,
                actor=email,
                action="staff_two_factor_enabled",
                target=f"staff {email}",
                after={"two_factor": True},
            )

        return self._accept(email, "totp_pending", code, enable)

    def disable(self, email: str, code: str) -> bool:
        key = self.keys.staff_account(email)

        def off(pipe, _secret):
            pipe.hdel(key, "totp", "totp_pending")
            audit.queue(
                pipe,
                self.keys,
                actor=email,
                action="staff_two_factor_disabled",
                target=f"staff {email}",
                before={"two_factor": True},
                after={"two_factor": False},
            )

        return self._accept(email, "totp", code, off)

    def check(self, email: str, code: str) -> bool:
        return self._accept(email, "totp", code)

    # --- a login waiting for its code ---------------------------------------------------
    def hold(self, email: str) -> str:
        token = secrets.token_urlsafe(32)
        key = self.keys.staff_login_pending(digest(token))
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"email": email, "expires": self.clock() + PENDING_SECONDS})
            pipe.expire(key, PENDING_SECONDS)
            pipe.execute()
        return token

    def held(self, token: str) -> str | None:
        return held_email(self.client, self.keys.staff_login_pending, token, self.clock())

    def release(self, token: str) -> None:
        self.client.delete(self.keys.staff_login_pending(digest(token)))


def second_factor_for(rt) -> SecondFactor:
    from membership.staff import clock_for

    return SecondFactor(rt.redis, rt.keys, clock_for(rt))
