"""Sign-in links in Redis (their keys: docs/ledger.md): a random code mailed to a member, good
once within LINK_SECONDS; Redis holds only its SHA-256. `use` is one Lua script, so two
clicks at once sign in once. The clock is the caller's (`now`)."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

import redis

from membership.store import Keys

LINK_SECONDS = 15 * 60
NOTE_SECONDS = 24 * 3600
CODE = re.compile(r"[A-Za-z0-9_-]{43}\Z")  # secrets.token_urlsafe(32): 256 random bits

# KEYS: link, note. ARGV: now (unix seconds). -> {state, return_url, locale[, subject]}
_USE = """
local link = redis.call('HMGET', KEYS[1], 'subject', 'expires', 'return_url', 'locale')
redis.call('DEL', KEYS[1])
if link[1] and tonumber(link[2]) and tonumber(link[2]) > tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[2], 'used', ARGV[1])
  return {'ok', link[3], link[4], link[1]}
end
local note = redis.call('HMGET', KEYS[2], 'return_url', 'locale', 'used')
if not note[1] then
  return {'unknown', false, false}
end
if note[3] then
  return {'used', note[1], note[2]}
end
return {'expired', note[1], note[2]}
"""


@dataclass(frozen=True)
class Use:
    """What a click on a link found: `ok` (with the subject), `used`, `expired` or `unknown`
    (never issued, or its note is gone too). `return_url` and `locale` are None only for
    `unknown`."""

    state: str
    return_url: str | None = None
    locale: str | None = None
    subject: str | None = None


def digest(code: str) -> str:
    return hashlib.sha256(code.encode("ascii")).hexdigest()


class Links:
    def __init__(self, client: redis.Redis, keys: Keys, seconds: int = LINK_SECONDS) -> None:
        self.redis = client
        self.keys = keys
        self.seconds = seconds

    def issue(self, subject: str, return_url: str, locale: str, now: float) -> str:
        """A new code for `subject`, stored (hashed) with where it leads; one round trip."""
        code = secrets.token_urlsafe(32)
        name = digest(code)
        link, note = self.keys.member_link(name), self.keys.member_link_note(name)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(
            link,
            mapping={
                "subject": subject,
                "expires": int(now) + self.seconds,
                "return_url": return_url,
                "locale": locale,
            },
        )
        pipe.expire(link, self.seconds)
        pipe.hset(note, mapping={"return_url": return_url, "locale": locale})
        pipe.expire(note, NOTE_SECONDS)
        pipe.execute()
        return code

    def use(self, code: str, now: float) -> Use:
        """Spend a code: `ok` once, then `used`; `expired` after its minutes; `unknown`."""
        if not CODE.match(code):
            return Use("unknown")
        name = digest(code)
        keys = [self.keys.member_link(name), self.keys.member_link_note(name)]
        # Registered per call, as prompts/counts.py does: a Cluster client connects on first
        # use, and an app must start while Redis is down.
        use = self.redis.register_script(_USE)
        state, return_url, locale, *rest = use(keys=keys, args=[int(now)])
        if state == "unknown":
            return Use("unknown")
        return Use(state, return_url, locale, rest[0] if rest else None)
