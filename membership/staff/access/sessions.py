"""Server-side staff sessions (Redis keeps only the cookie's SHA-256; idle expiry, ended on
logout or by the account's disabling) and the sign-in lock: each attempt takes one of an
email's places before its password or code is checked (docs/staff-dashboard.md#access).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import redis

from membership.core.runtime import Runtime
from membership.staff.access import rules
from membership.staff.access.accounts import account_from, may_sign_in
from membership.staff.access.stored import audit_own, clock_for, digest, fields, indexed, text
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
    f = fields(raw)
    try:
        return Session(sid, f["email"], float(f["created"]), float(f["seen"]), f.get("agent", ""))
    except (KeyError, ValueError):
        return None


def _clean_agent(agent: str) -> str:
    return "".join(c for c in agent[:MAX_AGENT] if c.isprintable())


class StaffSessions:
    def __init__(self, client: redis.Redis, keys: Keys, clock: Callable[[], float]) -> None:
        self.client, self.keys, self.clock = client, keys, clock

    def create(self, email: str, agent: str = "", *, second_factor: bool = False) -> str | None:
        """A new session for `email`, audited as `staff_signed_in` in the same transaction;
        returns the cookie value (shown nowhere else), or None when the account may not sign
        in (disabled since its password was checked, or gone)."""
        token = secrets.token_urlsafe(32)
        sid, now = digest(token), self.clock()
        key, index = self.keys.staff_session(sid), self.keys.staff_account_sessions(email)
        account = self.keys.staff_account(email)
        agent = _clean_agent(agent)
        record = {"email": email, "created": now, "seen": now, "agent": agent}

        def queue(pipe) -> None:
            pipe.hset(key, mapping=record)
            pipe.expire(key, rules.SESSION_IDLE)
            pipe.sadd(index, sid)
            shown = {"second_factor": second_factor, "agent": agent}
            audit_own(pipe, self.keys, email, "staff_signed_in", after=shown, at=now)

        # Redis does not roll back: an index or log of another type would fail inside EXEC
        # and leave a session no index lists ("end all" misses it).
        write = whole.Write(queue, token, types=((index, "set"), (self.keys.audit, "stream")))

        def body(pipe):
            # The account is WATCHed: a disable that commits first restarts this, which then
            # refuses; one that commits after sees this session in the index (which it
            # WATCHes) and ends it. Either way no session outlives the disable.
            return write if may_sign_in(account_from(pipe.hgetall(account))) else None

        return whole.transaction(
            self.client,
            body,
            watch=(account,),
            attempts=20,
            busy=redis.ResponseError("staff session: the index kept changing; try again"),
        )

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
        now, live, over = self.clock(), [], []
        for sid, raw in indexed(self.client, index, self.keys.staff_session):
            session = _session(sid, raw)
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
        sids = [text(s) for s in self.client.smembers(index) if text(s) != keep]
        for sid in sids:
            pipe.delete(self.keys.staff_session(sid))
        if sids:
            pipe.srem(index, *sids)


# KEYS: the email's attempts. ARGV: now, the end of a window starting now, MAX_FAILURES,
# the key's TTL. -> {place taken (0: none left), the window's end}. One script, so the check
# and the count are one step however many sign-ins arrive at once.
_ADMIT = """
local ends = redis.call('HGET', KEYS[1], 'ends')
if not ends or not tonumber(ends) or tonumber(ends) <= tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  ends = ARGV[2]
  redis.call('HSET', KEYS[1], 'ends', ends, 'attempts', 0)
  redis.call('EXPIRE', KEYS[1], ARGV[4])
end
local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts')) or 0
if attempts >= tonumber(ARGV[3]) then
  return {0, ends}
end
return {redis.call('HINCRBY', KEYS[1], 'attempts', 1), ends}
"""

# KEYS: the email's attempts. ARGV: the window's end the place was taken in. Gives one place
# back, in that window only (never into a later one, never below zero); a window left with
# no attempt in it is forgotten (the next attempt starts one with as many places).
_GIVE_BACK = """
if redis.call('HGET', KEYS[1], 'ends') ~= ARGV[1] then
  return -1
end
local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts')) or 0
if attempts <= 0 then
  return -1
end
attempts = redis.call('HINCRBY', KEYS[1], 'attempts', -1)
if attempts == 0 then
  redis.call('DEL', KEYS[1])
end
return attempts
"""


@dataclass(frozen=True)
class Attempt:
    """One of a window's places, taken before a password or code is checked."""

    key: str
    place: int  # 1..MAX_FAILURES
    window_ends: str  # as stored: the script compares it as text

    @property
    def fills_window(self) -> bool:
        """A failure in the last place locks the email until the window ends."""
        return self.place >= rules.MAX_FAILURES

    def minutes_left(self, now: float) -> int:
        return max(1, math.ceil((float(self.window_ends) - now) / 60))


class LoginLockout:
    """At most MAX_FAILURES password or code checks an email per window of LOCK_SECONDS
    (from the first attempt), counted before the check; a success gives its place back.

    `admit` takes a place atomically (a Lua script) before the argon2 work, so a burst of
    guesses sent at once cannot all be checked; the right password is refused too while
    the places are taken, and a success never resets what others' failures took.
    """

    def __init__(self, client: redis.Redis, keys: Keys, clock: Callable[[], float]) -> None:
        self.client, self.keys, self.clock = client, keys, clock

    def _key(self, email: str) -> str:
        return self.keys.staff_login_failures(digest(email.strip().lower()))

    def admit(self, email: str) -> Attempt | None:
        """Take one of the window's places for `email`; None when none is left (locked)."""
        key, now = self._key(email), self.clock()
        # Registered per call, as prompts/counts.py does (a Cluster client connects late).
        script = self.client.register_script(_ADMIT)
        ttl = rules.LOCK_SECONDS + 60  # a backstop: the window's end decides
        place, ends = script(
            keys=[key], args=[f"{now:.3f}", f"{now + rules.LOCK_SECONDS:.3f}",
                              rules.MAX_FAILURES, ttl]
        )  # fmt: skip
        return Attempt(key, int(place), text(ends)) if int(place) > 0 else None

    def succeeded(self, attempt: Attempt) -> None:
        """The check passed: give the attempt's place back (in its own window only)."""
        self.client.register_script(_GIVE_BACK)(keys=[attempt.key], args=[attempt.window_ends])

    def locked(self, email: str) -> bool:
        """Whether every place of the current window is taken."""
        f = fields(self.client.hgetall(self._key(email)))
        try:
            ends, attempts = float(f.get("ends", "0")), int(f.get("attempts", "0"))
        except ValueError:
            return False
        return ends > self.clock() and attempts >= rules.MAX_FAILURES


def sessions_for(rt: Runtime) -> StaffSessions:
    return StaffSessions(rt.redis, rt.keys, clock_for(rt))


def lockout_for(rt: Runtime) -> LoginLockout:
    return LoginLockout(rt.redis, rt.keys, clock_for(rt))
