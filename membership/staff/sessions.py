"""Server-side staff sessions and the login lockout, in Redis.

A session id is 32 random bytes in the staff member's cookie; Redis keeps only its SHA-256,
so a copy of the data cannot be replayed as a cookie. A session ends after SESSION_IDLE
unused (checked against the clock, with the key's TTL as a backstop), on logout, when
ended from the staff page, or when the account is disabled.

Failed logins are counted per email typed (its SHA-256, so unknown emails leave no readable
trace and lock all the same).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

import redis

from membership import audit
from membership.runtime import Runtime
from membership.staff import rules
from membership.staff.accounts import _fields, _text, digest
from membership.store import Keys, whole

TOUCH_EVERY = 60  # seconds: a busy page does not write on every request
MAX_AGENT = 200


@dataclass(frozen=True)
class Session:
    id: str  # the digest: safe to show and to end by; never usable as a cookie
    email: str
    created: float
    seen: float
    agent: str


def _session(sid: str, raw: dict) -> Session | None:
    f = _fields(raw)
    try:
        return Session(sid, f["email"], float(f["created"]), float(f["seen"]), f.get("agent", ""))
    except (KeyError, ValueError):
        return None


def _clean_agent(agent: str) -> str:
    return "".join(c for c in agent[:MAX_AGENT] if c.isprintable())


class StaffSessions:
    def __init__(self, client: redis.Redis, keys: Keys, clock: Callable[[], float]) -> None:
        self.client, self.keys, self.clock = client, keys, clock

    def create(self, email: str, agent: str = "", *, second_factor: bool = False) -> str:
        """A new session for `email`, audited as `staff_signed_in` in the same transaction;
        returns the cookie value (shown nowhere else)."""
        token = secrets.token_urlsafe(32)
        sid, now = digest(token), self.clock()
        key, index = self.keys.staff_session(sid), self.keys.staff_account_sessions(email)
        agent = _clean_agent(agent)
        fields = {"email": email, "created": now, "seen": now, "agent": agent}
        with self.client.pipeline(transaction=True) as pipe:
            for _ in range(20):
                try:
                    pipe.watch(index, self.keys.audit)
                    # Redis does not roll back: an index or log of another type would fail
                    # inside EXEC and leave a session no index lists ("end all" misses it).
                    whole.check_types(pipe, ((index, "set"), (self.keys.audit, "stream")))
                    pipe.multi()
                    pipe.hset(key, mapping=fields)
                    pipe.expire(key, rules.SESSION_IDLE)
                    pipe.sadd(index, sid)
                    audit.queue(
                        pipe,
                        self.keys,
                        actor=email,
                        action="staff_signed_in",
                        target=f"staff {email}",
                        after={"second_factor": second_factor, "agent": agent},
                        at=now,
                    )
                    _, failed = whole.execute(pipe)
                    if failed:
                        raise failed[0]
                    return token
                except redis.WatchError:
                    continue
        raise redis.ResponseError("staff session: the index kept changing; try again")

    def resume(self, token: str | None) -> Session | None:
        """The live session a cookie names, its idle time restarted; None when there is none."""
        if not token or len(token) > 100:
            return None
        sid = digest(token)
        key = self.keys.staff_session(sid)
        session = _session(sid, self.client.hgetall(key))
        if session is None:
            return None
        now = self.clock()
        if rules.session_expired(session.seen, now):
            self.end(session.email, sid)
            return None
        if now - session.seen >= TOUCH_EVERY:
            with self.client.pipeline(transaction=True) as pipe:
                pipe.hset(key, "seen", now)
                pipe.expire(key, rules.SESSION_IDLE)
                pipe.execute()
        return session

    def list(self, email: str) -> list[Session]:
        """`email`'s live sessions, newest first; forgets those that are over."""
        index = self.keys.staff_account_sessions(email)
        sids = sorted(_text(s) for s in self.client.smembers(index))
        with self.client.pipeline(transaction=False) as pipe:
            for sid in sids:
                pipe.hgetall(self.keys.staff_session(sid))
            found = [_session(sid, raw) for sid, raw in zip(sids, pipe.execute(), strict=True)]
        now, live, over = self.clock(), [], []
        for sid, session in zip(sids, found, strict=True):
            if session is None or rules.session_expired(session.seen, now):
                over.append(sid)
            elif session.email == email:
                live.append(session)
        if over:
            self.client.srem(index, *over)
        return sorted(live, key=lambda s: s.created, reverse=True)

    def end(self, email: str, sid: str) -> bool:
        """End one of `email`'s sessions (by its digest); False if it was not theirs."""
        index = self.keys.staff_account_sessions(email)
        if not isinstance(sid, str) or len(sid) != 64 or not self.client.sismember(index, sid):
            return False
        with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.staff_session(sid))
            pipe.srem(index, sid)
            pipe.execute()
        return True

    def queue_end(self, pipe, email: str, sid: str) -> None:
        """Queue, on a transaction after MULTI, the end of one of `email`'s sessions."""
        pipe.delete(self.keys.staff_session(sid))
        pipe.srem(self.keys.staff_account_sessions(email), sid)

    def queue_end_all(self, pipe, email: str, keep: str | None = None) -> None:
        """Queue, on a transaction after MULTI, the end of every session of `email` but
        `keep`."""
        index = self.keys.staff_account_sessions(email)
        sids = [_text(s) for s in self.client.smembers(index) if _text(s) != keep]
        for sid in sids:
            pipe.delete(self.keys.staff_session(sid))
        if sids:
            pipe.srem(index, *sids)


class LoginLockout:
    """MAX_FAILURES failed logins in a row for one email lock it for LOCK_SECONDS."""

    def __init__(self, client: redis.Redis, keys: Keys, clock: Callable[[], float]) -> None:
        self.client, self.keys, self.clock = client, keys, clock

    def _key(self, email: str) -> str:
        return self.keys.staff_login_failures(digest(email.strip().lower()))

    def _state(self, key: str) -> tuple[int, float | None]:
        f = _fields(self.client.hgetall(key))
        try:
            failures = int(f.get("failures", "0"))
            locked = float(f["locked_until"]) if f.get("locked_until") else None
        except ValueError:
            return 0, None
        return failures, locked

    def locked(self, email: str) -> bool:
        return rules.is_locked(self._state(self._key(email))[1], self.clock())

    def failed(self, email: str) -> bool:
        """Count one failure; True when it locked the email."""
        key = self._key(email)
        with self.client.pipeline(transaction=True) as pipe:
            for _ in range(20):
                try:
                    pipe.watch(key)
                    failures, _ = self._state(key)
                    failures, locked_until = rules.after_failure(failures, self.clock())
                    pipe.multi()
                    pipe.hset(key, "failures", failures)
                    if locked_until is not None:
                        pipe.hset(key, "locked_until", f"{locked_until:.3f}")
                    pipe.expire(key, rules.FAILURES_KEPT)
                    pipe.execute()
                    return locked_until is not None
                except redis.WatchError:
                    continue
        return False

    def succeeded(self, email: str) -> None:
        self.client.delete(self._key(email))


def sessions_for(rt: Runtime) -> StaffSessions:
    from membership.staff import clock_for

    return StaffSessions(rt.redis, rt.keys, clock_for(rt))


def lockout_for(rt: Runtime) -> LoginLockout:
    from membership.staff import clock_for

    return LoginLockout(rt.redis, rt.keys, clock_for(rt))
