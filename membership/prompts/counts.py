"""Prompt events counted in Redis: views, clicks, dismissals, holdout entries, and (queued in
the ledger's transaction by `conversions`) conversions, revenue and refunds.

The keys, slots (a variant id or `_holdout`) and metrics: docs/ledger.md, "Keys". Every key
of one campaign shares the one hash tag, so the script below runs on Redis Cluster too."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import redis as redis_lib

from membership.prompts.campaigns import SLUG, VARIANT_ID
from membership.prompts.tokens import CLOCK_SKEW, DECISION_MAX_AGE, DecisionClaim
from membership.store import Keys

HOLDOUT = "_holdout"  # the holdout's slot: a variant id cannot start with "_"
EVENT_TYPES = ("view", "click", "dismiss", "holdout")
MAX_EVENTS = 50  # per call: the endpoint's limit, and what one script is sized for
DAY_TTL = 400 * 86400
_METRIC = {"view": "views", "click": "clicks", "dismiss": "dismissals", "holdout": "events"}
_CURRENCY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz")
PER_ADDRESS = 100  # new events of each type per campaign per address per hour: the default
WINDOW = 3600  # the bound's window: one UTC hour
WINDOW_SLACK = 60  # a budget outlives its hour by this much (hosts' clocks differ a little)
_ADDRESS = re.compile(r"[A-Za-z0-9_-]{1,64}")

# KEYS, per event i from 0, S of them (S = 5 with a bound per address, 4 without):
# S*i+1 mark, S*i+2 all-time counts, S*i+3 day counts, S*i+4 readers, S*i+5 the address's
# budget for this hour. ARGV: 1 the day keys' TTL, 2 the bound per address (0: none), 3 the
# budget's TTL; per event, from a = 5i+3: a+1 the mark's TTL, a+2 the field, a+3 the reader to
# add to the HyperLogLog ('' for none), a+4 the budget's field, a+5 the `excess` field.
# Replies {counted, duplicates, excess}.
_RECORD = """
local limit = tonumber(ARGV[2])
local s = 4
if limit > 0 then s = 5 end
local n = #KEYS / s
local function refuse(key, what)
  return redis.error_reply('membership: ' .. key .. ' ' .. what .. '; nothing was counted')
end
local function not_counter(key, field)
  local v = redis.call('HGET', key, field)
  return v and not (string.match(v, '^%-?%d+$') and #v < 19)
end
-- Everything is checked before the first write: Redis does not undo a script's writes.
for i = 0, n - 1 do
  local a = 5*i + 3
  local mark, field, reader = KEYS[s*i+1], ARGV[a+2], ARGV[a+3]
  local t = redis.call('TYPE', mark).ok
  if t ~= 'none' and t ~= 'string' then return refuse(mark, 'is a ' .. t) end
  for k = 2, 3 do
    local key = KEYS[s*i+k]
    t = redis.call('TYPE', key).ok
    if t ~= 'none' and t ~= 'hash' then return refuse(key, 'is a ' .. t .. ', not a hash') end
    if not_counter(key, field) then return refuse(key, field .. ' is not an integer') end
    if limit > 0 and not_counter(key, ARGV[a+5]) then
      return refuse(key, ARGV[a+5] .. ' is not an integer')
    end
  end
  if reader ~= '' then
    local readers = KEYS[s*i+4]
    t = redis.call('TYPE', readers).ok
    if t ~= 'none' and (t ~= 'string' or redis.call('GETRANGE', readers, 0, 3) ~= 'HYLL') then
      return refuse(readers, 'is not a HyperLogLog')
    end
  end
  if limit > 0 then
    local budget = KEYS[s*i+5]
    t = redis.call('TYPE', budget).ok
    if t ~= 'none' and t ~= 'hash' then return refuse(budget, 'is a ' .. t .. ', not a hash') end
    if not_counter(budget, ARGV[a+4]) then
      return refuse(budget, ARGV[a+4] .. ' is not an integer')
    end
  end
end
local counted, excess, expiring = 0, 0, {}
local function expire_once(key, ttl)
  if not expiring[key] then
    redis.call('EXPIRE', key, ttl)
    expiring[key] = true
  end
end
for i = 0, n - 1 do
  local a = 5*i + 3
  local mark, total, day = KEYS[s*i+1], KEYS[s*i+2], KEYS[s*i+3]
  if redis.call('EXISTS', mark) == 0 then
    local budget = limit > 0 and KEYS[s*i+5]
    if budget and tonumber(redis.call('HGET', budget, ARGV[a+4]) or '0') >= limit then
      -- Over the bound: not counted and no mark (the event may count in a later hour).
      excess = excess + 1
      redis.call('HINCRBY', total, ARGV[a+5], 1)
      redis.call('HINCRBY', day, ARGV[a+5], 1)
    else
      if budget then
        redis.call('HINCRBY', budget, ARGV[a+4], 1)
        expire_once(budget, ARGV[3])
      end
      redis.call('SET', mark, '1', 'EX', ARGV[a+1])
      counted = counted + 1
      redis.call('HINCRBY', total, ARGV[a+2], 1)
      redis.call('HINCRBY', day, ARGV[a+2], 1)
      if ARGV[a+3] ~= '' then redis.call('PFADD', KEYS[s*i+4], ARGV[a+3]) end
    end
    expire_once(day, ARGV[1])
  end
end
return {counted, n - counted - excess, excess}
"""


class CountsError(ValueError):
    """Arguments `record` or `queue_conversion` refuse; nothing was sent to Redis."""


class CorruptCounts(ValueError):
    """A stored counter that is not a whole number; the message names the key and field."""


@dataclass(frozen=True)
class Recorded:
    counted: int
    duplicates: int
    excess: int = 0  # new events refused: the address had its bound of that type this hour


def day_of(now: float) -> str:
    return dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%d")


def last_days(now: float, n: int) -> list[str]:
    """The last `n` UTC days up to and including `now`'s, oldest first (YYYY-MM-DD)."""
    today = dt.datetime.fromtimestamp(now, dt.UTC).date()
    return [(today - dt.timedelta(days=i)).isoformat() for i in range(n - 1, -1, -1)]


def slot_of(claim: DecisionClaim) -> str:
    return HOLDOUT if claim.variant is None else claim.variant


def digest(claim: DecisionClaim) -> str:
    """96 bits of SHA-256 over what the token signs. The claim, not the token's text: the
    same claim has one canonical token, but base64 decoders accept a few spellings of it."""
    raw = [claim.decision, claim.campaign, claim.variant, claim.reader, claim.issued_at]
    hashed = hashlib.sha256(json.dumps(raw, separators=(",", ":")).encode()).digest()
    return base64.urlsafe_b64encode(hashed[:12]).decode("ascii")


def mark_ttl(claim: DecisionClaim, now: float) -> int:
    """Seconds the dedupe mark must live: until no host (clocks CLOCK_SKEW apart) still
    reads the token."""
    return max(1, claim.issued_at + DECISION_MAX_AGE + CLOCK_SKEW - math.floor(now))


def _check_ids(campaign: object, variant: object) -> None:
    if not isinstance(campaign, str) or not SLUG.match(campaign):
        raise CountsError(f"campaign: not a campaign id: {campaign!r}")
    if variant is not None and not (isinstance(variant, str) and VARIANT_ID.match(variant)):
        raise CountsError(f"variant: not a variant id: {variant!r}")


def check_event(claim: object, event_type: object) -> None:
    """CountsError unless this is a countable (claim, type): a holdout token only with
    `holdout`, a prompt token only with `view`, `click` or `dismiss`."""
    if not isinstance(claim, DecisionClaim):
        raise CountsError(f"expected a DecisionClaim, got {type(claim).__name__}")
    if event_type not in EVENT_TYPES:
        raise CountsError(f"event type: expected one of {', '.join(EVENT_TYPES)}")
    if (event_type == "holdout") != claim.holdout:
        raise CountsError(
            f"a {'holdout' if claim.holdout else 'prompt'} token cannot be {event_type}"
        )
    _check_ids(claim.campaign, claim.variant)
    if not isinstance(claim.reader, str) or not claim.reader:
        raise CountsError("reader: expected a non-empty string")
    if not isinstance(claim.decision, str):
        raise CountsError("decision: expected a string")
    if not isinstance(claim.issued_at, int) or isinstance(claim.issued_at, bool):
        raise CountsError("issued_at: expected whole seconds")


def record(
    client: redis_lib.Redis,
    keys: Keys,
    claims_with_types: Sequence[tuple[DecisionClaim, str]],
    now: float,
    *,
    address: str | None = None,
    per_address: int = PER_ADDRESS,
) -> Recorded:
    """Count each (claim, event type) once, in one round trip; says how many were new, how
    many were duplicates (the same claim and type seen before, or earlier in the batch) and
    how many were `excess`.

    With `address` (a keyed hash of the client's address, never the address), at most
    `per_address` new events of each type per campaign are counted from it per UTC hour;
    the rest are counted as `<slot>:excess` instead, get no dedupe mark and add no reader.
    The bound is checked and taken in the same script as the counting, so concurrent calls
    from one address can never count more than it.

    Every argument is checked first (CountsError, nothing sent). Only an error from Redis
    itself, or a key holding the wrong type (the script refuses, nothing counted), raises a
    redis error.
    """
    if not isinstance(now, int | float) or not math.isfinite(now):
        raise CountsError("now: expected a finite unix time")
    if len(claims_with_types) > MAX_EVENTS:
        raise CountsError(f"at most {MAX_EVENTS} events per call, got {len(claims_with_types)}")
    if address is not None and not (isinstance(address, str) and _ADDRESS.fullmatch(address)):
        raise CountsError("address: expected 1-64 of A-Z a-z 0-9 _ - (a hash of the address)")
    if not isinstance(per_address, int) or isinstance(per_address, bool) or per_address < 1:
        raise CountsError("per_address: expected a whole number of at least 1")
    day = day_of(now)
    hour = math.floor(now) // WINDOW
    budget_ttl = (hour + 1) * WINDOW - math.floor(now) + WINDOW_SLACK
    script_keys: list[str] = []
    args: list[object] = [DAY_TTL, 0 if address is None else per_address, budget_ttl]
    for claim, event_type in claims_with_types:
        check_event(claim, event_type)
        slot = slot_of(claim)
        script_keys += [
            keys.prompt_event_mark(digest(claim), event_type),
            keys.prompt_counts(claim.campaign),
            keys.prompt_counts_day(claim.campaign, day),
            keys.prompt_readers(claim.campaign, slot),
        ]
        if address is not None:
            script_keys.append(keys.prompt_event_budget(address, hour))
        adds_reader = event_type in ("view", "holdout")
        args += [
            mark_ttl(claim, now),
            f"{slot}:{_METRIC[event_type]}",
            claim.reader if adds_reader else "",
            f"{claim.campaign}:{event_type}",
            f"{slot}:excess",
        ]
    if not script_keys:
        return Recorded(0, 0)
    counted, duplicates, excess = client.register_script(_RECORD)(keys=script_keys, args=args)
    return Recorded(int(counted), int(duplicates), int(excess))


def queue_conversion(
    pipe,
    keys: Keys,
    campaign_id: str,
    variant_id: str | None,
    at: float,
    *,
    amount: int = 0,
    currency: str | None = None,
    refund: bool = False,
) -> None:
    """Queue one conversion (`conversions`, and `revenue:<currency>` in minor units) of a
    campaign's variant, or its holdout (variant None), on the caller's transaction, counted
    on the UTC day of `at`; with `refund`, one refunded in full (`refunds`,
    `refunded:<currency>`), the conversion itself staying as it was. `conversions` decides
    what a conversion is and counts each Checkout Session once.

    Checked before anything is queued (CountsError): a failing HINCRBY inside EXEC would
    leave the rest applied.
    """
    check_money(campaign_id, variant_id, at, amount, currency)
    count, money = ("refunds", "refunded") if refund else ("conversions", "revenue")
    slot = HOLDOUT if variant_id is None else variant_id
    day_key = keys.prompt_counts_day(campaign_id, day_of(at))
    for key in (keys.prompt_counts(campaign_id), day_key):
        pipe.hincrby(key, f"{slot}:{count}", 1)
        if amount:
            pipe.hincrby(key, f"{slot}:{money}:{currency}", amount)
    pipe.expire(day_key, DAY_TTL)


def check_money(campaign_id, variant_id, at, amount, currency) -> None:
    """CountsError unless `queue_conversion` takes these arguments."""
    _check_ids(campaign_id, variant_id)
    if not isinstance(amount, int) or isinstance(amount, bool) or not 0 <= amount < 10**12:
        raise CountsError("amount: expected whole minor units from 0 to 10^12")
    if amount and not (
        isinstance(currency, str) and len(currency) == 3 and set(currency) <= _CURRENCY_CHARS
    ):
        raise CountsError("currency: expected a lower-case ISO 4217 code such as eur")
    if not isinstance(at, int | float) or not math.isfinite(at):
        raise CountsError("at: expected a finite unix time")


def money_fields(
    keys: Keys, campaign_id: str, variant_id: str | None, at: float, currency: str | None
) -> list[tuple[str, list[str]]]:
    """(key, fields) that `queue_conversion` may increment, with or without `refund`: for a caller
    that checks them (`check_integers`) before its transaction, as Redis will not undo it."""
    slot = HOLDOUT if variant_id is None else variant_id
    fields = [f"{slot}:{name}" for name in ("conversions", "refunds")]
    if currency:
        fields += [f"{slot}:revenue:{currency}", f"{slot}:refunded:{currency}"]
    day_key = keys.prompt_counts_day(campaign_id, day_of(at))
    return [(keys.prompt_counts(campaign_id), fields), (day_key, fields)]


def check_integers(key: str, fields: Sequence[str], kind: str, values: Sequence) -> None:
    """CorruptCounts unless `key` (of Redis TYPE `kind`) is a hash, or nothing, whose `fields`
    hold whole numbers an increment keeps within 64 bits, or nothing."""
    if kind not in ("none", "hash"):
        raise CorruptCounts(f"{key} is a {kind}, not a hash")
    for name, value in zip(fields, values, strict=True):
        if value is not None and not (
            isinstance(value, str) and value.lstrip("-").isdigit() and len(value) < 19
        ):
            raise CorruptCounts(f"{key} {name}: {str(value)[:40]!r} is not a whole number")


# --- Reads -------------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """The raw figures of one campaign: all-time fields, readers per slot, fields per day."""

    totals: Mapping[str, str]
    readers: Mapping[str, int]
    days: Sequence[tuple[str, Mapping[str, str]]]


def slots_in(fields: Mapping[str, str]) -> set[str]:
    return {name.partition(":")[0] for name in fields}


def _queue_pfcount(pipe, key: str) -> None:
    # By name: redis-py's cluster pipeline refuses its `pfcount` method (PFCOUNT may take
    # keys of several slots); one key, like every key here, is on the one slot.
    pipe.execute_command("PFCOUNT", key)


def read(
    client: redis_lib.Redis,
    keys: Keys,
    campaign_id: str,
    slots: Sequence[str],
    days: Sequence[str] = (),
) -> Stored:
    """One campaign's figures for `slots` (its variants and the holdout) and `days`, in one
    transaction. A slot found in the counts but not asked for (a variant since removed from
    the campaign) is read too, with one more round trip for its readers."""
    pipe = client.pipeline(transaction=True)
    pipe.hgetall(keys.prompt_counts(campaign_id))
    for slot in slots:
        _queue_pfcount(pipe, keys.prompt_readers(campaign_id, slot))
    for day in days:
        pipe.hgetall(keys.prompt_counts_day(campaign_id, day))
    replies = pipe.execute()
    totals = replies[0]
    readers = dict(zip(slots, replies[1 : 1 + len(slots)], strict=True))
    per_day = list(zip(days, replies[1 + len(slots) :], strict=True))
    extra = sorted(slots_in(totals) - set(slots))
    if extra:
        pipe = client.pipeline(transaction=True)
        for slot in extra:
            _queue_pfcount(pipe, keys.prompt_readers(campaign_id, slot))
        readers.update(zip(extra, pipe.execute(), strict=True))
    return Stored(totals=totals, readers=readers, days=per_day)


def read_campaign(
    client: redis_lib.Redis, keys: Keys, campaign, now: float, days: int = 0
) -> Stored:
    """`read` for a campaign (prompts.campaigns.Campaign): its variants, its holdout and,
    with `days`, the last `days` UTC days up to `now`'s."""
    slots = [*(v.id for v in campaign.variants), HOLDOUT]
    return read(client, keys, campaign.id, slots, last_days(now, days))
