"""Staff accounts in Redis: add, list, role, disable, passwords (argon2id) and one-time
password links (only their SHA-256 stored). Every change commits with its audit entry in one
transaction, and none leaves the staff without an enabled admin, whatever runs at the same
moment (docs/staff-dashboard.md#access).
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from membership.core import audit
from membership.core.runtime import Runtime
from membership.staff.access import rules
from membership.staff.access.rules import StaffInputError
from membership.staff.access.stored import clock_for, digest, fields, held_email, indexed, text
from membership.staff.access.totp import PENDING_FIELDS
from membership.store import Keys, whole

_ATTEMPTS = 20


class StaffConflict(StaffInputError):
    """The change does not fit the account's state (exists already, unknown, ...)."""


@dataclass(frozen=True)
class Account:
    email: str
    role: str
    disabled: bool
    has_password: bool
    created: str
    updated: str
    has_totp: bool = False
    timezone: str = ""  # the IANA zone pages show times in; "": the newsroom's TIMEZONE

    def public(self) -> dict:
        """What the audit log and listings show: never the hash."""
        return {"email": self.email, "role": self.role, "disabled": self.disabled}


_dummies: dict[tuple, str] = {}


def dummy_hash_for(hasher: PasswordHasher) -> str:
    """A hash verified against when the email is unknown, so both cost the same time; made
    once per process and parameters (an Accounts is built per request)."""
    params = (hasher.time_cost, hasher.memory_cost, hasher.parallelism, hasher.hash_len)
    if params not in _dummies:
        _dummies[params] = hasher.hash(secrets.token_urlsafe(16))
    return _dummies[params]


def _iso(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _leaves_admins(before: Account | None, changes: dict) -> bool:
    """Whether `changes` take an enabled admin's role or enable away."""
    if before is None or before.role != "admin" or before.disabled:
        return False
    return changes.get("role", "admin") != "admin" or changes.get("disabled", "0") == "1"


def account_from(raw: dict) -> Account | None:
    """The account a stored hash holds (None: no account)."""
    f = fields(raw)
    if not f.get("email"):
        return None
    return Account(
        email=f["email"],
        role=f.get("role", ""),
        disabled=f.get("disabled") == "1",
        has_password=bool(f.get("password")),
        created=f.get("created", ""),
        updated=f.get("updated", ""),
        has_totp=bool(f.get("totp")),
        timezone=f.get("timezone", ""),
    )


def may_sign_in(account: Account | None) -> bool:
    """Whether an account may sign in: it exists, is enabled and its role sees the dashboard."""
    return account is not None and not account.disabled and rules.allows(account.role, "viewer")


def accounts_for(rt: Runtime) -> Accounts:
    return Accounts(
        rt.redis, rt.keys, clock=clock_for(rt), hasher=rt.settings.extra.get("staff_hasher")
    )


class AccountRecords:
    """Reading accounts, checking a password, and the one audited transaction that every
    change of an account goes through."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        clock: Callable[[], float] = time.time,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self.client, self.keys, self.clock = client, keys, clock
        self.hasher = hasher or PasswordHasher()

    # --- reads --------------------------------------------------------------
    def get(self, email: str) -> Account | None:
        try:
            email = rules.check_email(email)
        except StaffInputError:
            return None
        return account_from(self.client.hgetall(self.keys.staff_account(email)))

    def list(self) -> list[Account]:
        stored = indexed(self.client, self.keys.staff_accounts, self.keys.staff_account)
        found = [account_from(raw) for _, raw in stored]
        return [a for a in found if a is not None]

    def verify(self, email: str, password: str) -> Account | None:
        """The account if `password` is its password and it may sign in; else None, after
        the same argon2 work whether or not the email has an account."""
        try:
            email = rules.check_email(email)
        except StaffInputError:
            email = ""
        raw = fields(self.client.hgetall(self.keys.staff_account(email))) if email else {}
        dummy = dummy_hash_for(self.hasher)
        stored = raw.get("password") or dummy
        try:
            ok = self.hasher.verify(stored, password) and stored is not dummy
        except (VerificationError, InvalidHashError):
            ok = False
        account = account_from(raw) if ok else None
        if not may_sign_in(account):
            return None
        if self.hasher.check_needs_rehash(stored):
            self.client.hset(self.keys.staff_account(email), "password", self.hasher.hash(password))
        return account

    # --- changes ------------------------------------------------------------
    def _change(
        self,
        email: str,
        actor: str,
        action: str,
        decide: Callable,
        extra=None,
        watch=(),
        sets=(),
        new=False,
    ) -> Account | None:
        """Run `decide(current Account) -> (fields to set, audit after)` in a transaction
        with its audit entry (StaffConflict when there is no account, unless `new`: then
        `decide` takes None); `extra(pipe)` queues more in the same one (`watch`: the keys it
        reads; `sets`: the keys it SREMs, checked to be sets first). The account after."""
        actor = audit.check_actor(actor)
        key = self.keys.staff_account(email)

        def body(pipe):
            before = account_from(pipe.hgetall(key))
            if before is None and not new:
                raise StaffConflict(f"{email} has no staff account")
            changes, after = decide(before)
            if _leaves_admins(before, changes):
                self._keep_an_admin(pipe, email)
            self._check_before_queueing(pipe, sets)
            now = self.clock()

            def queue(pipe) -> None:
                pipe.hset(key, mapping={**changes, "updated": _iso(now)})
                pipe.sadd(self.keys.staff_accounts, email)
                if extra is not None:
                    extra(pipe)
                audit.queue(
                    pipe,
                    self.keys,
                    actor=actor,
                    action=action,
                    target=f"staff {email}",
                    before=before.public() if before else None,
                    after=after,
                    at=now,
                )

            return whole.Write(queue, after)

        whole.transaction(
            self.client,
            body,
            watch=(key, self.keys.staff_accounts, *watch),
            attempts=_ATTEMPTS,
            busy=StaffConflict(f"{email}: changed by someone else meanwhile; try again"),
            refused=lambda failed: StaffConflict(f"Redis refused part of the change: {failed[0]}"),
        )
        return self.get(email)

    def _keep_an_admin(self, pipe, email: str) -> None:
        """Refuse unless an enabled admin other than `email` remains. Every account is
        WATCHed before it is read: a change to any of them (another admin demoted or
        disabled at the same moment) restarts the transaction, which then counts again."""
        others = sorted(
            text(e) for e in pipe.smembers(self.keys.staff_accounts) if text(e) != email
        )
        if others:
            pipe.watch(*(self.keys.staff_account(e) for e in others))
        for other in others:
            account = account_from(pipe.hgetall(self.keys.staff_account(other)))
            if account is not None and account.role == "admin" and not account.disabled:
                return
        raise StaffConflict(
            f"{email} is the last enabled admin: make another account admin first "
            "(or `membership staff add EMAIL --role admin`)"
        )

    def _check_before_queueing(self, pipe, sets=()) -> None:
        """The change SADDs the account list and XADDs the audit log: refuse before queueing
        if either key holds another type (Redis would apply the rest of the transaction)."""
        expected = ((self.keys.staff_accounts, "set"), (self.keys.audit, "stream"))
        expected += tuple((key, "set") for key in sets)
        try:
            whole.check_types(pipe, expected)
        except whole.WrongType as exc:
            raise StaffConflict(str(exc)) from None


class Accounts(AccountRecords):
    """The changes staff make to accounts, and the one-time links to set a password."""

    def add(self, email: str, role: str, *, actor: str, password: str | None = None) -> Account:
        email, role = rules.check_email(email), rules.check_role(role)
        hashed = self.hasher.hash(rules.check_password(password)) if password is not None else ""

        def decide(before):
            if before is not None:
                raise StaffConflict(f"{email} already has a staff account")
            shown = {"email": email, "role": role, "disabled": False}
            stored = {**shown, "disabled": "0", "password": hashed, "created": _iso(self.clock())}
            return stored, shown

        return self._change(email, actor, "staff_added", decide, new=True)

    def set_role(self, email: str, role: str, *, actor: str) -> Account:
        email, role = rules.check_email(email), rules.check_role(role)

        def decide(before):
            return {"role": role}, {**before.public(), "role": role}

        return self._change(email, actor, "staff_role_changed", decide)

    def disable(self, email: str, *, actor: str, end_sessions: Callable | None = None) -> Account:
        """Disable the account and revoke its personal API tokens for good (enabling it again
        does not bring them back); `end_sessions(pipe, email)` ends its sessions in the same
        transaction, and once more after it: a sign-in that committed while the disable was
        written is ended then, and none commits after it (`StaffSessions.create` WATCHes the
        account). Never the last enabled admin."""
        email = rules.check_email(email)
        index = self.keys.staff_account_api_tokens(email)
        sessions = self.keys.staff_account_sessions(email)
        tokens: list[str] = []

        def decide(before):
            tokens[:] = sorted(text(t) for t in self.client.smembers(index))  # WATCHed
            after = {**before.public(), "disabled": True, "api_tokens_revoked": len(tokens)}
            return {"disabled": "1"}, after

        def extra(pipe):
            # The tokens as api_tokens.py keeps them: a hash per token, a set per account.
            for tid in tokens:
                pipe.delete(self.keys.staff_api_token(tid))
            pipe.delete(index)
            if end_sessions is not None:
                end_sessions(pipe, email)

        # The sessions' index is not WATCHed: sign-ins that keep changing it cannot hold the
        # disable off; the sweep after it ends those it missed.
        account = self._change(
            email, actor, "staff_disabled", decide, extra, (index,), (index, sessions)
        )
        if end_sessions is not None:
            with self.client.pipeline(transaction=True) as pipe:
                end_sessions(pipe, email)
                pipe.execute()
        return account

    def enable(self, email: str, *, actor: str) -> Account:
        """Let a disabled account sign in again (its password and 2FA are as they were)."""
        email = rules.check_email(email)

        def decide(before):
            return {"disabled": "0"}, {**before.public(), "disabled": False}

        return self._change(email, actor, "staff_enabled", decide)

    def reset_two_factor(
        self, email: str, *, actor: str, end_sessions: Callable | None = None
    ) -> Account:
        """Turn someone's two-factor sign-in off without a code (a lost phone), and end
        their sessions in the same transaction: they sign in with the password and may
        enrol again."""
        email = rules.check_email(email)
        key = self.keys.staff_account(email)

        def decide(before):
            if not before.has_totp:
                raise StaffConflict(f"{email} has no two-factor sign-in to reset")
            return {}, {**before.public(), "two_factor": False}

        def extra(pipe):
            pipe.hdel(key, "totp", *PENDING_FIELDS, "totp_last")
            if end_sessions is not None:
                end_sessions(pipe, email)

        return self._change(email, actor, "staff_two_factor_reset", decide, extra)

    def end_sessions(self, email: str, *, actor: str, end_sessions: Callable) -> None:
        """End the account's sessions (`end_sessions(pipe, email)` queues it), audited."""
        email = rules.check_email(email)

        def decide(before):
            return {}, before.public()

        self._change(email, actor, "staff_sessions_ended", decide, lambda p: end_sessions(p, email))

    def set_timezone(self, email: str, name: str, *, actor: str) -> Account:
        """The zone the account's pages show times in ("": the newsroom's TIMEZONE)."""
        email, name = rules.check_email(email), rules.check_timezone(name)

        def decide(before):
            return {"timezone": name}, {**before.public(), "timezone": name}

        return self._change(email, actor, "staff_timezone_changed", decide)

    def set_password(self, email: str, password: str, *, actor: str, extra=None) -> None:
        email = rules.check_email(email)
        hashed = self.hasher.hash(rules.check_password(password))

        def decide(before):
            return {"password": hashed}, before.public()

        self._change(email, actor, "staff_password_set", decide, extra)

    # --- one-time links to set a password -------------------------------------
    def create_link(self, email: str) -> str:
        """A new single-use token for `email`'s password page, valid 24 h; only its hash is
        kept."""
        email = rules.check_email(email)
        token = secrets.token_urlsafe(32)
        expires = self.clock() + rules.PASSWORD_LINK_SECONDS
        key = self.keys.staff_password_link(digest(token))
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"email": email, "expires": f"{expires:.0f}"})
            pipe.expire(key, rules.PASSWORD_LINK_SECONDS)
            pipe.execute()
        return token

    def link_email(self, token: str) -> str | None:
        """The email a valid, unused link is for; None for anything else."""
        return held_email(self.client, self.keys.staff_password_link, token, self.clock())

    def use_link(self, token: str, password: str) -> str:
        """Set the password of the link's account and spend the link, in one transaction.
        StaffInputError for a bad password (the link still works) or a spent link."""
        rules.check_password(password)
        email = self.link_email(token)
        if email is None:
            raise StaffConflict("link: expired or already used")
        key = self.keys.staff_password_link(digest(token))
        hashed = self.hasher.hash(password)

        def decide(before):
            # The link is WATCHed: of two uses at once, one commits, the other sees it spent.
            if before is None or not self.client.exists(key):
                raise StaffConflict("link: expired or already used")
            return {"password": hashed}, before.public()

        spend = lambda pipe: pipe.delete(key)  # noqa: E731
        self._change(email, email, "staff_password_set", decide, spend, (key,), new=True)
        return email
