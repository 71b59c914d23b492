"""Personal API tokens: a staff member's scripts call /staff/api/ with their role.

A token (`mst_` + 32 random bytes) is shown once when created; Redis keeps its SHA-256,
its name and who owns it. It works until revoked; disabling the account revokes every one of
its tokens (accounts.py, in the same transaction), so enabling it again brings none back.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

import redis

from membership.core.text import has_control
from membership.staff.access.rules import StaffInputError
from membership.staff.access.stored import audit_own, clock_for, digest, fields, indexed
from membership.store import Keys, whole

PREFIX = "mst_"
MAX_NAME = 60
MAX_TOKENS = 20  # per staff member
USE_EVERY = 60  # seconds between writes of `used`


@dataclass(frozen=True)
class ApiToken:
    id: str  # the digest
    email: str
    name: str
    created: float
    used: float | None


def _token(tid: str, raw: dict) -> ApiToken | None:
    f = fields(raw)
    try:
        used = float(f["used"]) if f.get("used") else None
        return ApiToken(tid, f["email"], f.get("name", ""), float(f["created"]), used)
    except (KeyError, ValueError):
        return None


def check_name(name: object) -> str:
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= MAX_NAME:
        raise StaffInputError(f"name: expected 1 to {MAX_NAME} characters")
    if has_control(name):
        raise StaffInputError("name: control characters are not allowed")
    return name.strip()


class ApiTokens:
    def __init__(self, client: redis.Redis, keys: Keys, clock: Callable[[], float]) -> None:
        self.client, self.keys, self.clock = client, keys, clock

    def list(self, email: str) -> list[ApiToken]:
        index = self.keys.staff_account_api_tokens(email)
        found = (
            _token(t, raw) for t, raw in indexed(self.client, index, self.keys.staff_api_token)
        )
        return sorted((t for t in found if t is not None), key=lambda t: t.created, reverse=True)

    def create(self, email: str, name: str) -> str:
        """A new token for `email`, returned once; audited (by name, never the token)."""
        name = check_name(name)
        if len(self.list(email)) >= MAX_TOKENS:
            raise StaffInputError(f"name: at most {MAX_TOKENS} tokens; revoke one first")
        token = PREFIX + secrets.token_urlsafe(32)
        tid, now = digest(token), self.clock()
        account, index = self.keys.staff_account(email), self.keys.staff_account_api_tokens(email)

        def body(pipe):
            if pipe.hget(account, "disabled") in (None, "1", b"1"):
                raise StaffInputError("name: this account is disabled or gone")
            # Redis does not roll back: the index and the log are checked before queueing.
            return whole.Write(queue, token, types=((index, "set"), (self.keys.audit, "stream")))

        def queue(pipe) -> None:
            pipe.hset(
                self.keys.staff_api_token(tid),
                mapping={"email": email, "name": name, "created": now},
            )
            pipe.sadd(index, tid)
            shown = {"name": name, "id": tid[:12]}
            audit_own(pipe, self.keys, email, "staff_token_created", after=shown, at=now)

        # The account WATCHed: a token made while it is being disabled either commits first
        # (and the disabling revokes it) or sees it disabled.
        return whole.transaction(
            self.client,
            body,
            watch=(account, index, self.keys.audit),
            attempts=20,
            busy=StaffInputError("name: the account kept changing; try again"),
        )

    def revoke(self, email: str, tid: str) -> bool:
        """Revoke one of `email`'s tokens (by its digest); False if it is not theirs."""
        index = self.keys.staff_account_api_tokens(email)
        if not isinstance(tid, str) or len(tid) != 64 or not self.client.sismember(index, tid):
            return False
        token = _token(tid, self.client.hgetall(self.keys.staff_api_token(tid)))
        with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.staff_api_token(tid))
            pipe.srem(index, tid)
            shown = {"name": token.name if token else None, "id": tid[:12]}
            audit_own(pipe, self.keys, email, "staff_token_revoked", before=shown)
            pipe.execute()
        return True

    def owner(self, token: str | None) -> str | None:
        """The email a presented token belongs to; None for anything else."""
        if not token or not token.startswith(PREFIX) or len(token) > 100:
            return None
        tid = digest(token)
        found = _token(tid, self.client.hgetall(self.keys.staff_api_token(tid)))
        if found is None:
            return None
        now = self.clock()
        if found.used is None or now - found.used >= USE_EVERY:
            self.client.hset(self.keys.staff_api_token(tid), "used", now)
        return found.email


def api_tokens_for(rt) -> ApiTokens:
    return ApiTokens(rt.redis, rt.keys, clock_for(rt))
