"""Two-factor codes (TOTP, pyotp): enrolment with a QR code, checks at sign-in. The secrets
are sealed in the account's hash (SecretBox); a code is accepted once (`totp_last`); a
factor that is on changes only with a current code from it, checked in the transaction that
changes it. docs/staff-dashboard.md#access says the rest.
"""

from __future__ import annotations

import base64
import hmac
import io
import secrets
from collections.abc import Callable

import pyotp
import redis
import segno
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from membership.staff.access.stored import audit_own, clock_for, digest, fields, held_email
from membership.store import Keys, whole

ISSUER = "membership staff"
STEP = 30
PENDING_SECONDS = 5 * 60
# An enrolment waits this long for its first code: set-up again meanwhile (a second tab, a
# reload) shows the same secret, so the code of an app that scanned either page works.
ENROL_SECONDS = 30 * 60

PENDING_FIELDS = ("totp_pending", "totp_pending_at")  # an enrolment's, in the account's hash
ON, OFF = {"two_factor": True}, {"two_factor": False}  # what the audit entries say


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


class SecretBox:
    """Seals and opens TOTP secrets at rest (HKDF-SHA256 of SECRET_KEY -> Fernet)."""

    PREFIX = "f1:"  # a sealed value; anything else was written in clear

    def __init__(self, secret_key: str) -> None:
        key = HKDF(algorithm=SHA256(), length=32, salt=None, info=b"membership staff totp")
        self._fernet = Fernet(base64.urlsafe_b64encode(key.derive(secret_key.encode("utf-8"))))

    def seal(self, secret: str) -> str:
        return self.PREFIX + self._fernet.encrypt(secret.encode("ascii")).decode("ascii")

    def open(self, stored: str | None) -> str | None:
        """The secret; None when there is none or it cannot be opened (another SECRET_KEY)."""
        if not stored:
            return None
        if not stored.startswith(self.PREFIX):
            return stored
        try:
            return self._fernet.decrypt(stored[len(self.PREFIX) :].encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError):
            return None

    def sealed(self, stored: str) -> bool:
        return stored.startswith(self.PREFIX)


def qr_svg(email: str, secret: str) -> bytes:
    uri = pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)
    out = io.BytesIO()
    segno.make(uri, error="m").save(
        out, kind="svg", scale=5, xmldecl=True, title="Two-factor enrolment code"
    )
    return out.getvalue()


class SecondFactor:
    def __init__(
        self, client: redis.Redis, keys: Keys, clock: Callable[[], float], box: SecretBox
    ) -> None:
        self.client, self.keys, self.clock, self.box = client, keys, clock, box

    def _get(self, email: str) -> dict[str, str]:
        return fields(self.client.hgetall(self.keys.staff_account(email)))

    def enabled(self, email: str) -> bool:
        return bool(self._get(email).get("totp"))

    def pending_secret(self, email: str) -> str | None:
        """The secret of the enrolment waiting for its first code; None when there is none,
        or it was started ENROL_SECONDS ago or more."""
        return self._pending(self._get(email))

    def _pending(self, f: dict[str, str]) -> str | None:
        try:
            started = float(f.get("totp_pending_at", ""))
        except ValueError:  # none, or written before enrolments expired
            return None
        if self.clock() - started >= ENROL_SECONDS:
            return None
        return self.box.open(f.get("totp_pending"))

    def start(self, email: str) -> str | None:
        """The secret of the account's enrolment: the one waiting for its first code, else a
        new one; either waits ENROL_SECONDS from now (two set-ups at once agree on one).
        None when the account is gone."""
        key = self.keys.staff_account(email)

        def body(pipe):
            f, now = fields(pipe.hgetall(key)), f"{self.clock():.0f}"
            if not f.get("email"):  # gone since this request was let in: nothing to enrol
                return None
            waiting = self._pending(f)
            if waiting is not None:
                return whole.Write(lambda pipe: pipe.hset(key, "totp_pending_at", now), waiting)
            secret = pyotp.random_base32()
            sealed = {"totp_pending": self.box.seal(secret), "totp_pending_at": now}
            return whole.Write(lambda pipe: pipe.hset(key, mapping=sealed), secret)

        busy = redis.ResponseError("two-factor set-up: the account kept changing; try again")
        return whole.transaction(self.client, body, watch=(key,), attempts=20, busy=busy)

    def _accept(self, email: str, decide: Callable) -> str | None:
        """Check codes and record their step, atomically. `decide(fields)` reads the account
        inside the transaction and returns (what, [(field, code), ...], change) or None to
        refuse: every code must be right for the secret in its field, then `change(pipe)`
        (or None) is queued in the same transaction. Returns `what`, or None."""
        key = self.keys.staff_account(email)

        def body(pipe):
            f = fields(pipe.hgetall(key))
            plan = decide(f)
            if plan is None:
                return None
            what, checks, change = plan
            last, steps, opened = int(f.get("totp_last") or 0), [], []
            for field, code in checks:
                secret = self.box.open(f.get(field))
                step = code_step(secret, code, self.clock(), last) if secret else None
                if step is None:
                    return None
                steps.append(step)
                opened.append((field, secret))

            def queue(pipe) -> None:
                pipe.hset(key, "totp_last", max(steps))
                for field, secret in opened:
                    if not self.box.sealed(f[field]):  # written in clear before: seal it
                        pipe.hset(key, field, self.box.seal(secret))
                if change is not None:
                    change(pipe, dict(opened))

            # A change writes an audit entry: its log is checked before queueing.
            types = ((self.keys.audit, "stream"),) if change is not None else ()
            return whole.Write(queue, what, types=types)

        return whole.transaction(
            self.client, body, watch=(key, self.keys.audit), attempts=20, busy=lambda: None
        )

    def confirm(self, email: str, code: str, current: str | None = None) -> str | None:
        """Make the pending secret the factor with a code from it (audited). While a factor
        is on, this replaces it and needs `current`, a code from the factor in use: a
        session alone never changes it (the view checks the password too). Returns
        "enabled" or "replaced"; None when a code is wrong, missing or nothing is pending."""
        key = self.keys.staff_account(email)

        def decide(f):
            if self._pending(f) is None:
                return None
            replacing = bool(f.get("totp"))
            if replacing and not current:
                return None
            checks = [("totp", current)] if replacing else []
            checks.append(("totp_pending", code))

            def change(pipe, secrets):
                pipe.hset(key, "totp", self.box.seal(secrets["totp_pending"]))
                pipe.hdel(key, *PENDING_FIELDS)
                action = f"staff_two_factor_{'replaced' if replacing else 'enabled'}"
                before = ON if replacing else None
                audit_own(pipe, self.keys, email, action, before=before, after=ON)

            return ("replaced" if replacing else "enabled"), checks, change

        return self._accept(email, decide)

    def disable(self, email: str, code: str) -> bool:
        """Turn the factor off with a current code from it (the view checks the password)."""
        key = self.keys.staff_account(email)

        def off(pipe, _secrets):
            pipe.hdel(key, "totp", *PENDING_FIELDS)
            audit_own(pipe, self.keys, email, "staff_two_factor_disabled", before=ON, after=OFF)

        return self._accept(email, lambda f: ("disabled", [("totp", code)], off)) is not None

    def check(self, email: str, code: str) -> bool:
        return self._accept(email, lambda f: ("checked", [("totp", code)], None)) is not None

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
    return SecondFactor(rt.redis, rt.keys, clock_for(rt), SecretBox(rt.settings.secret_key))
