"""What readers did with prompts, counted in Redis: views, clicks, dismissals, holdout entries,
and (written inside the ledger's transaction by `conversions`) conversions, revenue and refunds.

Where (names in `store.keys`, one hash tag, so the script below runs on Redis Cluster too):

- `prompt_counts(campaign)`        hash, all time: `<slot>:<metric>` -> integer
- `prompt_counts_day(campaign, d)` hash, the same for UTC day `d`; expires 400 days after
                                   its last write (a year back, and a month to spare)
- `prompt_readers(campaign, slot)` HyperLogLog of distinct readers: a variant's viewers, or
                                   the holdout's readers; all time (12 KB at most each)
- `prompt_event_mark(digest, type)` the dedupe mark of one token's event of one type

A slot is a variant id or `_holdout`. Metrics: `views`, `clicks`, `dismissals` (variants),
`events` (holdout entries), `conversions` and `revenue:<currency>` in minor units (both slots,
through `queue_conversion`), `refunds` and `refunded:<currency>` (through `queue_refund`).

`record` counts a batch of events in one round trip: one Lua script that first checks every
key it will touch (type, integer fields, HyperLogLog header) and refuses the whole batch when
one is wrong, so a failing command can never leave half a batch counted; then, per event, sets
the dedupe mark (SET NX EX) and, only when it is new, counts. The mark lives as long as the
token can still be read (24 h after issue, plus the clock skew tokens allow), no longer.

`read` fetches everything `results` needs in one transaction.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import math
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

# KEYS, per event i from 0: 4i+1 mark, 4i+2 all-time counts, 4i+3 day counts, 4i+4 readers.
# ARGV: 1 the day keys' TTL; per event 3i+2 the mark's TTL, 3i+3 the field, 3i+4 the reader
# to add to the HyperLogLog ('' for none). Replies {counted, duplicates}.
_RECORD = """
local n = #KEYS / 4
local function refuse(key, what)
  return redis.error_reply('membership: ' .. key .. ' ' .. what .. '; nothing was counted')
end
-- Everything is checked before the first write: Redis does not undo a script's writes.
for i = 0, n - 1 do
  local mark, field, reader = KEYS[4*i+1], ARGV[3*i+3], ARGV[3*i+4]
  local t = redis.call('TYPE', mark).ok
  if t ~= 'none' and t ~= 'string' then return refuse(mark, 'is a ' .. t) end
  for k = 2, 3 do
    local key = KEYS[4*i+k]
    t = redis.call('TYPE', key).ok
    if t ~= 'none' and t ~= 'hash' then return refuse(key, 'is a ' .. t .. ', not a hash') end
    local v = redis.call('HGET', key, field)
    if v and not (string.match(v, '^%-?%d+$') and #v < 19) then
      return refuse(key, field .. ' is not an integer')
    end
  end
  if reader ~= '' then
    local readers = KEYS[4*i+4]
    t = redis.call('TYPE', readers).ok
    if t ~= 'none' and (t ~= 'string' or redis.call('GETRANGE', readers, 0, 3) ~= 'HYLL') then
      return refuse(readers, 'is not a HyperLogLog')
    end
  end
end
local counted, expiring = 0, {}
for i = 0, n - 1 do
  local field, reader = ARGV[3*i+3], ARGV[3*i+4]
  if redis.call('SET', KEYS[4*i+1], '1', 'NX', 'EX', ARGV[3*i+2]) then
    counted = counted + 1
    local day = KEYS[4*i+3]
    redis.call('HINCRBY', KEYS[4*i+2], field, 1)
    redis.call('HINCRBY', day, field, 1)
    if not expiring[day] then
      redis.call('EXPIRE', day, ARGV[1])
      expiring[day] = true
    end
    if reader ~= '' then redis.call('PFADD', KEYS[4*i+4], reader) end
  end
end
return {counted, n - counted}
"""


class CountsError(ValueError):
    """Arguments `record` or `queue_conversion` refuse; nothing was sent to Redis."""


class CorruptCounts(ValueError):
    """A stored counter that is not a whole number; the message names the key and field."""


@dataclass(frozen=True)
class Recorded:
    counted: int
    duplicates: int


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
    if not isinstance(claim.campaign, str) or not SLUG.match(claim.campaign):
        raise CountsError(f"campaign: not a campaign id: {claim.campaign!r}")
    if claim.variant is not None and not (
        isinstance(claim.variant, str) and VARIANT_ID.match(claim.variant)
    ):
        raise CountsError(f"variant: not a variant id: {claim.variant!r}")
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
) -> Recorded:
    """Count each (claim, event type) once, in one round trip; says how many were new and
    how many were duplicates (the same claim and type seen before, or earlier in the batch).

    Every argument is checked first (CountsError, nothing sent). Only an error from Redis
    itself, or a key holding the wrong type (the script refuses, nothing counted), raises a
    redis error.
    """
    if not isinstance(now, int | float) or not math.isfinite(now):
        raise CountsError("now: expected a finite unix time")
    if len(claims_with_types) > MAX_EVENTS:
        raise CountsError(f"at most {MAX_EVENTS} events per call, got {len(claims_with_types)}")
    day = day_of(now)
    script_keys: list[str] = []
    args: list[object] = [DAY_TTL]
    for claim, event_type in claims_with_types:
        check_event(claim, event_type)
        slot = slot_of(claim)
        script_keys += [
            keys.prompt_event_mark(digest(claim), event_type),
            keys.prompt_counts(claim.campaign),
            keys.prompt_counts_day(claim.campaign, day),
            keys.prompt_readers(claim.campaign, slot),
        ]
        adds_reader = event_type in ("view", "holdout")
        args += [
            mark_ttl(claim, now),
            f"{slot}:{_METRIC[event_type]}",
            claim.reader if adds_reader else "",
        ]
    if not script_keys:
        return Recorded(0, 0)
    counted, duplicates = client.register_script(_RECORD)(keys=script_keys, args=args)
    return Recorded(int(counted), int(duplicates))


def queue_conversion(
    pipe,
    keys: Keys,
    campaign_id: str,
    variant_id: str | None,
    at: float,
    *,
    amount: int = 0,
    currency: str | None = None,
) -> None:
    """Queue one conversion (and its revenue, in minor units) for a campaign's variant, or
    its holdout (variant None), on the caller's transaction: for `conversions`, which decides
    what a conversion is and counts each Checkout Session once.

    Checked before anything is queued (CountsError): a failing HINCRBY inside EXEC would
    leave the rest applied.
    """
    check_money(campaign_id, variant_id, at, amount, currency)
    _queue_money(
        pipe, keys, campaign_id, variant_id, at, "conversions", "revenue", amount, currency
    )


def queue_refund(
    pipe,
    keys: Keys,
    campaign_id: str,
    variant_id: str | None,
    at: float,
    *,
    amount: int = 0,
    currency: str | None = None,
) -> None:
    """Queue one refunded conversion (`refunds`, and `refunded:<currency>` in minor units) on
    the caller's transaction, counted on the day of the refund (`at`). The conversion and its
    revenue stay as they were: results show both. Checked as `queue_conversion` is."""
    check_money(campaign_id, variant_id, at, amount, currency)
    _queue_money(pipe, keys, campaign_id, variant_id, at, "refunds", "refunded", amount, currency)


def check_money(campaign_id, variant_id, at, amount, currency) -> None:
    """CountsError unless `queue_conversion` and `queue_refund` take these arguments."""
    if not isinstance(campaign_id, str) or not SLUG.match(campaign_id):
        raise CountsError(f"campaign: not a campaign id: {campaign_id!r}")
    if variant_id is not None and not (
        isinstance(variant_id, str) and VARIANT_ID.match(variant_id)
    ):
        raise CountsError(f"variant: not a variant id: {variant_id!r}")
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
    """(key, fields) that `queue_conversion` and `queue_refund` may increment: for a caller
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


def _queue_money(pipe, keys, campaign_id, variant_id, at, count, money, amount, currency):
    slot = HOLDOUT if variant_id is None else variant_id
    day_key = keys.prompt_counts_day(campaign_id, day_of(at))
    for key in (keys.prompt_counts(campaign_id), day_key):
        pipe.hincrby(key, f"{slot}:{count}", 1)
        if amount:
            pipe.hincrby(key, f"{slot}:{money}:{currency}", amount)
    pipe.expire(day_key, DAY_TTL)


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
