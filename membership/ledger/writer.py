"""The ledger's write side, the only writer of the member count: for each command, load, decide,
check and write the effects in one script that first checks that what was read still stands
(`whole.Checked`; docs/ledger.md, "How an event is applied").

Nothing that can fail is left to the commit (Redis does not roll back): records are parsed
strictly and every counter is checked for room before anything is queued; a failed write of
the commit still marks the ledger for a rebuild and raises `LedgerWriteFailed`. The client
must decode responses.
"""

from __future__ import annotations

import itertools
import logging
import random
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import redis

from membership.core import audit
from membership.core.text import unsafe_character
from membership.ledger import codec, events, rules
from membership.ledger import index as member_index
from membership.ledger.commands import (
    AddOffline,
    Command,
    RemoveOffline,
)
from membership.ledger.events import DONE, EventLog, EventMeta, day, iso
from membership.ledger.model import (
    LedgerInputError,
    valid_email,
)
from membership.ledger.queries import SCHEMA, SCHEMA_FIELD
from membership.ledger.records import (
    LAYOUT,
    LAYOUT_FIELD,
    RedisReader,
    first_reads,
    queue_records,
)
from membership.store import UNAVAILABLE, Keys, whole

log = logging.getLogger(__name__)

# Per client and hash tag: whether the ledger may keep customers' subscription sets (a
# writer is made for each request; what one learns serves the next).
_OLD_SETS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

REASON_MAX = 500
NAME_MAX = 200

# The counters, read by the commit itself before it writes anything (`whole.Checked`'s
# `before`; `job[4]`, the change: see `_bump_args`): its layout must be the one the writer
# assumed when it read no customer's subscription set, and each counter it changes a whole
# number that stays one Lua adds exactly, else nothing is written ({3, ...}: `_refused`).
# A new ledger's counters start with their schema and layout.
_COUNTERS = """
local bump, counted, layout = job[4], {}, false
if #bump > 0 then
  local n = tonumber(bump[9])
  local names = {bump[7], bump[5]}
  for i = 1, n do names[i + 2] = bump[8 + 2 * i] end
  local now = redis.call('HMGET', KEYS[8], unpack(names))
  layout = now[1]
  if bump[3] ~= '' and layout ~= bump[3] then return {3, 'layout', layout or ''} end
  for i = 1, n do
    local value = now[i + 2] or ''
    if not value:find('^%s*%-?%d*%s*$') or not value:find('%d') and value:find('%S') then
      return {3, KEYS[8], names[i + 2] .. ' is ' .. value .. ', not a whole number'}
    end
    local after = (tonumber(value) or 0) + tonumber(bump[9 + 2 * i])
    if #value > 15 or math.abs(after) >= 2 ^ 53 then
      return {3, KEYS[8], names[i + 2] .. ' would leave the whole numbers it adds exactly'}
    end
    counted[2 * i - 1], counted[2 * i] = names[i + 2], after
  end
  if bump[4] ~= '' and not now[1] and not now[2] and redis.call('HLEN', KEYS[8]) == 0 then
    counted[#counted + 1], counted[#counted + 2] = bump[5], bump[6]
    counted[#counted + 1], counted[#counted + 2] = bump[7], bump[8]
    layout = bump[8]
  end
end
"""

# The commit's last part (`whole.Checked`'s tail): the counters read before, with this
# change's; then, when the count moves (bump[1]), the count, its change time and the day's
# history (KEYS[3]: `codec.history_day`), together: the day's count must be the count after
# this change, whatever others did since. The count, KEYS[5] (the banner's version: it orders
# the banner's snapshots, banner_cache.py), the day and KEYS[4] (the lowest pending goal's
# target) are read in one MGET and written with the change time in one MSET. A rise that
# reaches that target (or when it is not known) marks the goals it reaches (KEYS[6] pending
# by target, KEYS[7] reached at), as goals.store.mark_reached does, so a mark commits with the
# count that reached it; through pcall, so a goal key of the wrong type (planted by hand)
# cannot fail the commit: `ledger rebuild` marks what that skipped. A failure is one of the
# commit's errors. `result`: the count after (false: it did not move) and the layout read.
_BUMP = """
if #bump == 0 then return {0, result, errors} end
local function whole(value)  -- none, or an integer Lua adds exactly
  return not value or (#value <= 15 and value:find('^%-?%d+$') ~= nil)
end
local count = false
local ok, failed = pcall(function()
  if #counted > 0 then redis.call('HSET', KEYS[8], unpack(counted)) end
  local delta = tonumber(bump[1])
  if delta == 0 then return end
  local now = redis.call('MGET', KEYS[1], KEYS[5], KEYS[3], KEYS[4])
  local day = {0, 0, 0, false}
  if now[3] then
    day = {now[3]:match('^(%-?%d+) (%d+) (%d+) (%-?%d+)$')}
    if #day < 4 then error(KEYS[3] .. ' is not a day of the history') end
  end
  local sets, version = {}, false
  if whole(now[1]) and whole(now[2]) then  -- one MSET of them all
    count, version = tonumber(now[1] or '0') + delta, tonumber(now[2] or '0') + 1
  else  -- what INCR and INCRBY make of them, errors included
    redis.call('INCR', KEYS[5])
    count = redis.call('INCRBY', KEYS[1], delta)
    redis.call('SET', KEYS[2], bump[2])
  end
  day[1], day[4] = count, day[4] or count - delta
  if delta > 0 then day[2] = day[2] + delta else day[3] = day[3] - delta end
  sets = {KEYS[3], table.concat(day, ' ')}
  local reached, lowest = {}, tonumber(now[4] or '')
  if delta > 0 and now[4] ~= '' and not (lowest and count < lowest) then
    local pending = redis.pcall('ZRANGE', KEYS[6], 0, -1, 'WITHSCORES')
    if pending.err == nil then
      lowest = ''
      for i = 1, #pending, 2 do
        if tonumber(pending[i + 1]) <= count then
          reached[#reached + 1] = pending[i]
        elseif lowest == '' then
          lowest = pending[i + 1]
        end
      end
      sets[3], sets[4] = KEYS[4], lowest
    end
  end
  if #reached > 0 then  -- a mark is a change of its own, as mark_reached's
    if version then version = version + 1 else redis.call('INCR', KEYS[5]) end
  end
  if version then
    for _, v in ipairs({KEYS[1], count, KEYS[5], version, KEYS[2], bump[2]}) do
      sets[#sets + 1] = v
    end
  end
  redis.call('MSET', unpack(sets))
  for _, id in ipairs(reached) do
    if type(redis.pcall('HSETNX', KEYS[7], id, bump[2])) == 'number' then
      redis.pcall('ZREM', KEYS[6], id)
    end
  end
end)
if not ok then
  errors[#errors + 1] = type(failed) == 'table' and failed.err or tostring(failed)
end
result = {count, layout}
"""


class LedgerBusy(Exception):
    """Too many concurrent writers, or a rebuild committing; retry later (answer 503)."""


class LedgerCorrupt(Exception):
    """A stored value the change depends on is corrupt; nothing was written (answer 503)."""


class LedgerWriteFailed(Exception):
    """A write of the commit failed: part of the change may be committed. The ledger is marked
    as needing a rebuild and the event is kept for replay (answer 500)."""

    def __init__(self, event_id: str | None, errors: Sequence[Exception]) -> None:
        super().__init__(f"{len(errors)} command(s) of the transaction failed: {errors[0]}")
        self.event_id = event_id


# Errors after which the caller should retry the whole delivery: nothing was recorded.
RETRYABLE = (*UNAVAILABLE, LedgerBusy, LedgerCorrupt)


@dataclass(frozen=True)
class Outcome:
    """What one apply did: what subscribers to the writer are handed.

    `outcome` is applied | duplicate | stale | ignored | failed for events, and
    applied | stale | unchanged for other commands. `event_type` is the event's
    `Delivery.label`: subscribers label by it (/metrics), so its values are a fixed set;
    the event log keeps the type as sent. `count_before` and `count_after` bracket this
    change (equal when it did not move the count; None while Redis holds no count).
    """

    outcome: str
    event_id: str | None = None
    event_type: str | None = None
    error: str | None = None
    count_before: int | None = None
    count_after: int | None = None
    detail: str = ""
    at: float | None = None  # epoch seconds of the change


Subscriber = Callable[[Outcome], None]


@dataclass(frozen=True)
class Delivery:
    """One delivery of an event from outside the ledger (a Stripe event), handed to the
    writer by its source with the command the source made of it.

    The event log records `id`, `type` (as sent), `created` and `raw` (the body, for
    replay); transaction hooks read `payload` (the event as sent); subscribers are told
    `label`, the type from a fixed set of values. `replay` marks a replay's log entry.
    """

    id: str
    type: str
    created: int
    payload: Mapping
    raw: str
    label: str | None
    replay: bool = False


class TransactionHook(Protocol):
    """Joins the writer's transaction for each new event (not for a duplicate, nor for an
    event that fails: a replay brings it back), so what it writes commits with the
    ledger's change or not at all, whatever crashes when.

    `prepare(event, reader, at)` runs before the commit, with the event's `Delivery.payload`:
    it reads what it needs through `reader` (checked by the commit: a concurrent change makes
    the writer decide again) and returns None, or a function that queues its writes on the
    transaction. Redis does not roll back: everything those writes depend on is checked in
    `prepare`. It may raise `codec.CorruptRecord` (nothing is written, the delivery is
    answered 503 and retried).
    """

    def prepare(
        self, event: Mapping, reader: RedisReader, at: float
    ) -> Callable[[redis.client.Pipeline], None] | None: ...


def check_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise LedgerInputError("a reason is required (e.g. 'bank transfer, invoice 2026-114')")
    _check_text("reason", reason, REASON_MAX)
    return reason


def _check_text(name: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise LedgerInputError(f"{name}: at most {limit} characters")
    bad = unsafe_character(value)
    if bad is not None:
        raise LedgerInputError(
            f"{name}: control characters and escape sequences are not allowed (found {bad})"
        )


def _email(email: str) -> str:
    """A staff-typed email: valid, and free of what `_check_text` refuses."""
    if isinstance(email, str) and unsafe_character(email) is not None:
        raise LedgerInputError(
            f"email: control characters and escape sequences are not allowed (found "
            f"{unsafe_character(email)})"
        )
    return valid_email(email)


class Writer:
    """The member ledger's write side on one Redis.

    `Writer(redis, keys, member_statuses)`; optional: `clock` (epoch seconds),
    `log` (the event log; built from the same client and keys by default),
    `max_attempts` (transaction retries under contention), `subscribers`
    (called with every committed Outcome, e.g. goals, metrics), `hooks`
    (`TransactionHook`s that add to an event's transaction, e.g. conversions).
    """

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        member_statuses: Iterable[str],
        *,
        clock: Callable[[], float] = time.time,
        log: EventLog | None = None,
        max_attempts: int = 64,
        subscribers: Iterable[Subscriber] = (),
        hooks: Iterable[TransactionHook] = (),
    ) -> None:
        self.redis = client
        self.keys = keys
        self.statuses = frozenset(member_statuses)
        self.clock = clock
        self.log = log or EventLog(client, keys, clock=clock)
        self.max_attempts = max_attempts
        self.subscribers = tuple(subscribers)
        self.hooks = tuple(hooks)

    @property
    def old_sets(self) -> bool:
        """Whether customers' subscription sets may still be kept (`records.LAYOUT`): what
        the last commit through this client read of its counters (True at first)."""
        return _OLD_SETS.get(self.redis, {}).get(self.keys.tag, True)

    @old_sets.setter
    def old_sets(self, value: bool) -> None:
        _OLD_SETS.setdefault(self.redis, {})[self.keys.tag] = value

    # --- the doors -------------------------------------------------------------

    def apply_event(
        self, delivery: Delivery, command: Command, *, actor: str | None = None
    ) -> Outcome:
        """Apply the command an event asked for, and log the event.

        At most once per event id: a redelivery answers `duplicate`. A replay
        (`delivery.replay`) is audited under `actor`. Returns `failed` (with `error`) when
        the command cannot be applied: the event is logged with its error and kept for
        replay. Raises `RETRYABLE` errors when nothing was recorded and the delivery should
        be retried, and `LedgerWriteFailed` when a write of the commit failed.
        """
        meta = _meta(delivery, self.clock())
        if actor is not None:
            audit.check_actor(actor)
        try:
            return self._run(command, meta, actor, delivery)
        except (*RETRYABLE, LedgerWriteFailed, redis.RedisError):
            raise  # the store's trouble (down, read-only, corrupt), not the event's
        except Exception as exc:
            log.exception("event %s (%s) failed", meta.id, meta.type)
            return self._record_failure(meta, delivery.label, f"{type(exc).__name__}: {exc}")

    def fail_event(self, delivery: Delivery, error: str) -> Outcome:
        """Log an event its source could not make a command of as `failed`, kept for replay
        (`duplicate` when the event was processed before)."""
        return self._record_failure(_meta(delivery, self.clock()), delivery.label, error)

    def apply(self, command: Command, *, actor: str | None = None) -> Outcome:
        """Apply a command that is not a Stripe event (a sync's snapshot, a staff change)."""
        if actor is not None:
            audit.check_actor(actor)
        return self._run(command, None, actor)

    def add_offline_member(
        self, email: str, reason: str, *, name: str | None = None, actor: str
    ) -> Outcome:
        """Add a member outside Stripe (bank transfer, gift, comp): `applied`, or
        `unchanged` when the email already is one. Raises LedgerInputError on a bad
        email, name or reason. Audited under `actor`, with the reason."""
        name = (name or "").strip() or None
        if name is not None:
            _check_text("name", name, NAME_MAX)
        command = AddOffline(_email(email), check_reason(reason), name, iso(self.clock()))
        return self.apply(command, actor=actor)

    def remove_offline_member(self, email: str, reason: str, *, actor: str) -> Outcome:
        """Remove an offline member: `applied`, or `unchanged` when there is none."""
        return self.apply(RemoveOffline(_email(email), check_reason(reason)), actor=actor)

    # --- one transaction ----------------------------------------------------------

    def _run(
        self,
        command: Command,
        meta: EventMeta | None,
        actor: str | None,
        delivery: Delivery | None = None,
    ) -> Outcome:
        tries = itertools.count()
        try:
            outcome = self._transaction(
                lambda pipe: self._attempt(pipe, command, meta, actor, delivery, next(tries)),
                meta,
                pause=_back_off,
            )
        except codec.CorruptRecord as exc:
            log.error("ledger: refusing %s: corrupt record %s", _what(meta, command), exc)
            raise LedgerCorrupt(str(exc)) from exc
        _notify(self.subscribers, outcome)
        return outcome

    def _transaction(self, body, meta: EventMeta | None, watch=(), pause=None) -> Outcome:
        """Run `body` as one whole transaction (store/whole.py): a failed reply is
        `_half_committed`; conflicting `max_attempts` times, LedgerBusy."""
        return whole.transaction(
            self.redis,
            body,
            watch=watch,
            attempts=self.max_attempts,
            busy=LedgerBusy(f"gave up after {self.max_attempts} conflicting attempts"),
            refused=lambda errors: _half_committed(
                self.redis, self.keys, self.log, self.clock(), meta, errors
            ),
            pause=pause,
        )

    def _attempt(
        self,
        pipe,
        command: Command,
        meta: EventMeta | None,
        actor,
        delivery: Delivery | None,
        attempt: int = 0,
    ) -> whole.Checked:
        k = self.keys
        now = meta.received if meta else self.clock()
        reader = RedisReader(self.redis, pipe, k, self.old_sets)
        # The lock and the event's record (checked by the commit), the count, the banner's
        # version: one MGET.
        mark = [self.log.mark_key(meta.id)] if meta is not None else []
        today = k.ledger_history_day(day(now))
        guard = ("mget", k.ledger_rebuild_lock, *mark, k.member_count, k.banner_version, today)
        reader.checked[guard] = 1 + len(mark)
        values = reader.read(
            [guard, *first_reads(command, k, self.old_sets)], _mark_type(mark, attempt, [])
        )
        lock, *stored, raw_count, raw_version, raw_day = values[0]
        done = _outcome_read(reader, guard, mark, stored, values, attempt)
        label = delivery.label if delivery is not None else None
        if done in DONE:
            return self._duplicate(reader, meta, label, done, now, raw_count)
        if lock:
            raise LedgerBusy("a ledger rebuild is committing; try again shortly")
        count = codec.count_from(k.member_count, raw_count)
        codec.version_from(k.banner_version, raw_version)  # the count's change INCRs it
        # Sets of customers' subscriptions read only while a ledger may keep them: what the
        # last commit read of the layout; the commit checks it when it read none.
        old_sets = reader.old_sets
        history = codec.history_day_from(today, raw_day) or (0, 0, 0, 0)

        decision = rules.decide(command, rules.load(command, reader), self.statuses)
        count_delta, counter_deltas = rules.deltas(decision.changes, self.statuses)
        _check_room(k, count, count_delta, today, history)  # the counters': the commit's
        index = member_index.prepare(decision, reader)  # search rows, same transaction
        joined = [h.prepare(delivery.payload, reader, now) for h in self.hooks] if delivery else []

        def queue(pipe) -> None:
            queue_records(pipe, k, decision, meta.id if meta is not None else None)
            index.queue(pipe, k)
            _queue_counts(pipe, k, decision, count, count_delta)  # the rest: in `_BUMP`
            if meta is not None:
                self.log.queue_outcome(
                    pipe, meta, decision.outcome, decision.detail, failed_before=done == "failed"
                )
            _queue_audit(pipe, k, decision, meta, done, actor, now)
            for queue_joined in joined:
                if queue_joined is not None:
                    queue_joined(pipe)

        def outcome(after: int | None) -> Outcome:
            before = None if after is None else after - count_delta
            return _outcome(meta, label, decision.outcome, before, after, decision.detail, now)

        # The counters' and the count's changes, last: the count after it answers. A new
        # ledger's counters start with its first change (as its count: `_queue_counts`), so
        # a change of nothing writes nothing.
        new = count is None and bool(decision.changes)
        bump = _bump_args(count_delta, now, old_sets, new, counter_deltas)
        if new and not count_delta:
            raw_count = "0"  # `_queue_counts` sets it
        return _commit(self, reader, queue, outcome, bump, raw_count, now)

    def _duplicate(self, reader, meta: EventMeta, label, done: str, at: float, count):
        """An event processed before (or concurrently) stays processed: logged `duplicate`."""
        return _commit(
            self,
            reader,
            lambda pipe: self.log.queue_outcome(pipe, meta, "duplicate", f"already {done}"),
            lambda count: _outcome(meta, label, "duplicate", count, count, f"already {done}", at),
            count=count,
        )

    def _record_failure(self, meta: EventMeta, label: str | None, error: str) -> Outcome:
        mark = self.log.mark_key(meta.id)

        tries = itertools.count()

        def body(pipe) -> whole.Checked:
            reader = RedisReader(self.redis, pipe, self.keys)
            guard, attempt = ("mget", mark, self.keys.member_count), next(tries)
            values = reader.read([guard], _mark_type([mark], attempt, []))
            stored, count = values[0]
            done = _outcome_read(reader, guard, [mark], [stored], values, attempt)
            if done in DONE:  # processed before (or concurrently): it stays processed
                return self._duplicate(reader, meta, label, done, meta.received, count)
            return _commit(
                self,
                reader,
                lambda pipe: self.log.queue_failure(pipe, meta, error),
                lambda count: Outcome(
                    "failed", meta.id, label, error, count, count, at=meta.received
                ),
                count=count,
            )

        return self._transaction(body, meta)


def _commit(
    writer: Writer,
    reader: RedisReader,
    queue: Callable,
    outcome: Callable[[int | None], Outcome],
    bump=(),
    count: str | None = None,
    at: float | None = None,
) -> whole.Checked:
    """A commit of what `queue` queues, if what `reader` read still stands, then the
    count's change `bump` (`_bump_args`), whose reply is the count after it: the
    transaction answers `outcome(count)`; without a change, `count` (the count as read)."""
    queued = whole.Queued()
    queue(queued)
    absent, same = reader.checks()
    k = writer.keys
    return whole.Checked(
        keys=(  # KEYS[1] to KEYS[8] of `_COUNTERS` and `_BUMP`
            k.member_count,
            k.count_changed_at,
            k.ledger_history_day(day(at or writer.clock())),
            k.goals_lowest,
            k.banner_version,
            k.goals_pending,
            k.goals_reached,
            k.ledger_counters,
        ),
        writes=queued.commands,
        absent=absent,
        same=same,
        tail=_BUMP,
        tail_args=bump,
        before=_COUNTERS,
        refuse=lambda key, found: _refused(writer, key, found),
        returns=lambda result: outcome(_count_after(writer, result, count)),
    )


def _mark_type(mark: list[str], attempt: int, unwatched: list) -> list:
    """The unwatched reads of an attempt, with the event record's type after a first
    attempt that failed: a record kept as a hash (a failed event, or written by versions
    before) reads as nothing in an MGET, and the commit, which finds it, starts over."""
    return [*unwatched, ("type", mark[0])] if mark and attempt else unwatched


def _outcome_read(reader: RedisReader, guard, mark, stored, values, attempt) -> str | None:
    """The outcome an event's record holds: from the guard's MGET (a string, checked by the
    commit), or, when `_mark_type` found a hash, from the hash read whole (and checked
    instead of the MGET's nothing)."""
    if not mark:
        return None
    if attempt and values[-1] == "hash":
        reader.checked[guard] = reader.checked.get(guard, 1) - 1  # its last checked: the record
        return events.record_fields(reader.read([("hgetall", mark[0])])[0]).get("outcome")
    return events.record_fields(stored[0]).get("outcome")


def _count_after(writer: Writer, result, count: str | None) -> int | None:
    """The count after a commit (`_BUMP`'s result: the count when it moved, and the layout
    read, which the writer's next commits assume), else `count` as read."""
    if result:
        after, layout = result
        writer.old_sets = layout != str(LAYOUT)
        if after is not None:
            count = str(after)
    return codec.count_from(writer.keys.member_count, count)


def _refused(writer: Writer, key: str, found: str) -> None:
    """`_COUNTERS` refused the commit: another layout than assumed (start over, reading
    customers' subscription sets if it may keep them), or a corrupt counter."""
    if key != "layout":
        raise codec.CorruptRecord(key, found)
    writer.old_sets = found != str(LAYOUT)


def _meta(delivery: Delivery, received: float) -> EventMeta:
    return EventMeta(
        delivery.id, delivery.type, delivery.created, delivery.raw, received, delivery.replay
    )


def _notify(subscribers: Sequence[Subscriber], outcome: Outcome) -> None:
    for subscriber in subscribers:
        try:
            subscriber(outcome)
        except Exception:  # committed already: a subscriber's trouble is its own
            log.exception(  # ids only: an offline member's outcome names their email
                "ledger subscriber %r failed on %s (%s)",
                subscriber,
                outcome.event_id or "a staff change",
                outcome.outcome,
            )


def _bump_args(count_delta: int, now: float, old_sets: bool, new: bool, counters) -> list:
    """A change as `_COUNTERS` and `_BUMP` take it: the count's and its time (the day's
    history, the banner's version and the goals it reaches are the commit's KEYS), the layout
    the writer assumed ("": sets read), whether the count was unknown (a new ledger's counters
    start), the counters' changes."""
    values = [count_delta, iso(now), "" if old_sets else LAYOUT, "1" if new else ""]
    values += [SCHEMA_FIELD, SCHEMA, LAYOUT_FIELD, LAYOUT, len(counters)]
    values += [v for change in counters.items() for v in change]
    return [str(v) for v in values]


def _queue_counts(pipe, k: Keys, decision, count, count_delta):
    """Queue, for a change that does not move the count, what it does to the count (once
    the ledger holds records its count is known) and the version (`banner_version`: +1 with
    every change of the ledger, which a rebuild WATCHes); the counters and the count's own
    change are `_BUMP`, the commit's last part, which INCRs the version itself."""
    if not count_delta and count is None and decision.changes:
        # Once the ledger holds records its count is known, even when it is zero.
        pipe.set(k.member_count, 0, nx=True)
    if not count_delta and (decision.changes or decision.timeline):
        pipe.incr(k.banner_version)


def _back_off(attempt: int) -> None:
    """A random pause before the next attempt, longer after each conflict (up to 50 ms)."""
    time.sleep(random.uniform(0, min(0.002 * 2**attempt, 0.05)))


def _half_committed(
    client: redis.Redis,
    keys: Keys,
    event_log: EventLog,
    now: float,
    meta: EventMeta | None,
    errors: list[Exception],
) -> None:
    """A write of the commit failed: Redis kept the rest. Say so loudly, flag a rebuild, mark
    the event failed (so a replay can bring it back) and raise LedgerWriteFailed."""
    what = f"event {meta.id} ({meta.type})" if meta else "a staff change"
    log.error(
        "ledger: %s was only partly written (%s); run `membership ledger rebuild`",
        what,
        "; ".join(str(e) for e in errors),
    )
    try:
        client.hset(
            keys.ledger_needs_rebuild,
            mapping={"since": iso(now), "reason": f"a write failed in {what}"},
        )
        if meta is not None:  # replayable: its record must not say applied
            with client.pipeline(transaction=True) as pipe:
                event_log.queue_failure(pipe, meta, f"partly written: {errors[0]}")
                pipe.execute()
    except redis.RedisError:
        log.exception("ledger: could not record the failed write of %s", what)
    raise LedgerWriteFailed(meta.id if meta else None, errors)


def _queue_audit(pipe, keys: Keys, decision, meta, done, actor, now) -> None:
    """The audit entries of a staff change, and of a replay, in the change's transaction."""
    if actor is None:
        return
    if decision.audit is not None:
        a = decision.audit
        audit.queue(
            pipe,
            keys,
            actor=actor,
            action=a.action,
            target=a.target,
            before=a.before,
            after=a.after,
            at=now,
        )
    if meta is not None and meta.replay:
        audit.queue(
            pipe,
            keys,
            actor=actor,
            action="event_replayed",
            target=meta.id,
            before={"outcome": done},
            after={"outcome": decision.outcome, "detail": decision.detail},
            at=now,
        )


def _check_room(keys, count, count_delta, today: str, history) -> None:
    """CorruptRecord unless the count's and its day's increments fit in Redis (the
    counters' are checked by the commit, `_COUNTERS`)."""
    room = [(keys.member_count, "count", (count or 0) + count_delta)]
    if count_delta > 0:
        room.append((today, "joins", history[1] + count_delta))
    elif count_delta < 0:
        room.append((today, "leaves", history[2] - count_delta))
    for key, name, value in room:
        if abs(value) > codec.INT64_MAX:
            raise codec.CorruptRecord(key, f"{name} would leave a 64-bit integer ({value})")


def _outcome(meta, label, outcome, before, after, detail, at) -> Outcome:
    return Outcome(
        outcome=outcome,
        event_id=meta.id if meta else None,
        event_type=label,
        count_before=before,
        count_after=after,
        detail=detail,
        at=at,
    )


def _what(meta: EventMeta | None, command: Command) -> str:
    return f"event {meta.id} ({meta.type})" if meta else type(command).__name__
