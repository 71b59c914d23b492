"""The webhook event log: dedupe marks, the log streams, failed events and their replay.

An event's record (outcome, error, raw payload) is its dedupe mark: one string (`record_text`),
a failed event's a hash (replay rewrites it); writes are queued on the writer's transaction.
What is kept and for how long: docs/ledger.md.
"""

from __future__ import annotations

import base64
import json
import re
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import redis

from membership.core.text import stream_id
from membership.ledger.model import LedgerInputError
from membership.store import Keys

OUTCOMES = ("applied", "duplicate", "stale", "ignored", "failed")
# Outcomes that mean "this event id has been dealt with": a redelivery is a duplicate.
DONE = frozenset({"applied", "stale", "ignored"})
# Most entries of the log: its entries are not written again in a stream of their own.
COMMON = "applied"

EVENT_TTL = 7 * 86400  # dedupe marks and payloads: Stripe retries for up to 3 days
FAILED_EVENT_TTL = 30 * 86400  # failed events wait this long for a replay
EVENT_LOG_MAX = 100_000  # entries in the event log streams (approximate cap)
ERROR_MAX = 2000
PAGE_SCAN = 2000  # log entries read at most for one dashboard page (bounds its parse)
PAGE_BATCH = 500
_TYPE = re.compile(r"[a-z0-9_.]{1,100}\*?")


# Deflate's preset dictionary for event bodies: fragments every Stripe event shares (the
# envelope) and those of the objects the ledger reads, the likeliest last. Bodies packed
# with it can only be read with it: never change it; a new one needs a new field name.
_STRIPE_WORDS = (
    b'"unit_amount_decimal":"","nickname":null,"lookup_key":null,"tax_behavior":"unspecified",'
    b'"billing_scheme":"per_unit","transform_quantity":null,"custom_unit_amount":null,'
    b'"recurring":{"aggregate_usage":null,"interval":"month","interval_count":1,'
    b'"meter":null,"trial_period_days":null,"usage_type":"licensed"},"type":"recurring"},'
    b'"payment_intent":"pi_","payment_status":"paid","amount_total":,"amount_subtotal":,'
    b'"amount_refunded":,"amount_captured":,"refunded":false,"charge":"ch_","invoice":"in_",'
    b'"amount_due":,"amount_paid":,"amount_remaining":,"status":"paid","hosted_invoice_url":null,'
    b'"mode":"subscription","customer_details":{"email":"","name":"","phone":null},'
    b'"customer_email":null,"client_reference_id":null,"success_url":"","cancel_url":"",'
    b'"parent":{"type":"subscription_details","subscription_details":{"metadata":{},'
    b'"subscription":"sub_"}},"lines":{"object":"list","data":[],"has_more":false,"url":""},'
    b'"default_payment_method":null,"latest_invoice":"in_","collection_method":"charge_automatically",'
    b'"billing_cycle_anchor":,"cancel_at":null,"cancel_at_period_end":false,"canceled_at":null,'
    b'"cancellation_details":{"comment":null,"feedback":null,"reason":null},"ended_at":null,'
    b'"trial_start":null,"trial_end":null,"start_date":,"livemode":false,"metadata":{},'
    b'"items":{"object":"list","data":[{"id":"si_","object":"subscription_item","quantity":1,'
    b'"current_period_start":,"current_period_end":,"price":{"id":"price_","object":"price",'
    b'"active":true,"currency":"eur","unit_amount":,"product":"prod_","subscription":"sub_"}],'
    b'"has_more":false},"previous_attributes":{"status":""},'
    b'{"id":"evt_","object":"event","api_version":"2025-10-29.clover","created":,'
    b'"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},'
    b'"type":"customer.subscription.created","data":{"object":{"id":"sub_",'
    b'"object":"subscription","customer":"cus_","status":"active","currency":"eur",'
)


# Marks a packed body in Base64 (C-fast); Base85 (pure Python) never writes this character.
_BASE64 = ":"


def pack_payload(raw: str) -> str:
    """The body as kept in an event's record: raw deflate with `_STRIPE_WORDS` as its
    dictionary, as text (the client decodes replies as text): `_BASE64` and Base64."""
    squeezer = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, _STRIPE_WORDS)
    packed = squeezer.compress(raw.encode()) + squeezer.flush()
    return _BASE64 + base64.b64encode(packed).decode("ascii")


def payload_of(fields: dict) -> str:
    """The body an event's record keeps: `payload` as received (records written before
    the body was compressed), else `z`, the packed body (Base85 in records written before
    `_BASE64`); "" when there is none."""
    if fields.get("payload"):
        return fields["payload"]
    packed = fields.get("z")
    if not packed:
        return ""
    if packed.startswith(_BASE64):
        deflated = base64.b64decode(packed[len(_BASE64) :], validate=True)
    else:
        deflated = base64.b85decode(packed)
    opener = zlib.decompressobj(-15, zdict=_STRIPE_WORDS)
    return (opener.decompress(deflated) + opener.flush()).decode()


def record_text(outcome: str, received: str, note: str, packed: str) -> str:
    """An event's record as one string: `<outcome> <received> <packed body>`, a line break,
    then the note (none of the first three holds a space or a line break)."""
    return f"{outcome} {received} {packed}\n{note}"


def record_fields(stored: str | dict | None) -> dict:
    """An event's record as fields (outcome, received, note, z; or those versions before
    kept) from either shape it is kept in: a string (`record_text`) or a hash; {} for none."""
    if not isinstance(stored, str):
        return dict(stored or {})
    head, _, note = stored.partition("\n")
    outcome, received, packed = [*head.split(" ", 2), "", ""][:3]
    return {"outcome": outcome, "received": received, "note": note, "z": packed}


def read_records(client: redis.Redis, keys: Keys, event_ids: list[str]) -> list[dict]:
    """The records of `event_ids` as `record_fields` gives them, in one round trip (a
    second for those kept as hashes: failed events, and records written before)."""
    names = [keys.ledger_event(i) for i in event_ids]
    found = client.mget(names) if names else []
    hashes = [name for name, value in zip(names, found, strict=True) if value is None]
    if hashes:
        pipe = client.pipeline(transaction=False)
        for name in hashes:
            pipe.hgetall(name)
        kept = dict(zip(hashes, pipe.execute(raise_on_error=False), strict=True))
        found = [
            value if value is not None else kept[name]
            for name, value in zip(names, found, strict=True)
        ]
    return [record_fields(v if not isinstance(v, Exception) else None) for v in found]


# Epoch seconds of the years 1000 to 9999, which `time.gmtime` formats as `datetime` does
# (in a fifth of the time: several times an event); `datetime` formats (or refuses) the rest.
_FOUR_DIGIT_YEARS = (-30_610_224_000, 253_402_300_800)


def _utc(ts: float, form: str) -> str:
    if _FOUR_DIGIT_YEARS[0] <= ts < _FOUR_DIGIT_YEARS[1]:
        return time.strftime(form, time.gmtime(ts))
    return datetime.fromtimestamp(ts, UTC).strftime(form)


def iso(ts: float) -> str:
    return _utc(ts, "%Y-%m-%dT%H:%M:%SZ")


def day(ts: float) -> str:
    """The UTC day of `ts`, as the history keys it: "2026-11-26"."""
    return _utc(ts, "%Y-%m-%d")


@dataclass(frozen=True)
class EventMeta:
    """One delivery of a Stripe event, as the log records it."""

    id: str
    type: str
    created: int
    raw: str  # the body as received, for replay
    received: float
    replay: bool = False


class EventLog:
    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        clock: Callable[[], float] = time.time,
        event_ttl: int = EVENT_TTL,
        failed_event_ttl: int = FAILED_EVENT_TTL,
    ) -> None:
        self.redis = client
        self.keys = keys
        self.clock = clock
        self.event_ttl = event_ttl
        self.failed_event_ttl = failed_event_ttl

    def mark_key(self, event_id: str) -> str:
        """The key of the event's record, its dedupe mark (read and checked by the writer)."""
        return self.keys.ledger_event(event_id)

    def fields(self, event_id: str) -> dict:
        """The event's record as `record_fields` gives it ({}: unknown, or expired)."""
        return read_records(self.redis, self.keys, [event_id])[0]

    # --- writes, queued inside the caller's MULTI ------------------------------

    def queue_outcome(
        self, pipe, meta: EventMeta, outcome: str, detail: str = "", *, failed_before=True
    ) -> None:
        """Record how the event was dealt with (a duplicate leaves its record alone);
        `failed_before`: its record said `failed` (it leaves the failed events)."""
        if outcome != "duplicate":
            self._queue_record(pipe, meta, outcome, "", detail, self.event_ttl)
            if failed_before:
                pipe.zrem(self.keys.ledger_failed_events, meta.id)
        self._queue_entry(pipe, meta, outcome, detail=detail)

    def queue_failure(self, pipe, meta: EventMeta, error: str) -> None:
        """Keep the event, its error and its payload for replay."""
        error = error[:ERROR_MAX]
        self._queue_record(pipe, meta, "failed", error, "", self.failed_event_ttl)
        pipe.zadd(self.keys.ledger_failed_events, {meta.id: meta.received})
        self._queue_entry(pipe, meta, "failed", error=error)

    def _queue_record(self, pipe, meta, outcome, error, detail, ttl) -> None:
        """The record: `note` is the error of a failed event, else the detail; `z` the
        body, packed, which holds its type and created. One string written with its expiry
        (`record_text`); a failed event's is a hash, which a replay's fix may rewrite."""
        key, received, packed = self.mark_key(meta.id), iso(meta.received), pack_payload(meta.raw)
        if outcome != "failed":
            pipe.set(key, record_text(outcome, received, detail, packed), ex=ttl)
            return
        pipe.delete(key)  # it may be a string: an HSET would fail on it
        fields = {"received": received, "outcome": outcome, "note": error, "z": packed}
        pipe.hset(key, mapping=fields)
        pipe.expire(key, ttl)

    def _queue_entry(self, pipe, meta: EventMeta, outcome: str, *, error="", detail="") -> None:
        entry = {
            "id": meta.id,
            "type": meta.type,
            "created": meta.created,
            "received": iso(meta.received),
            "outcome": outcome,
            "error": error,
            "replay": int(meta.replay),
            "detail": detail,
        }
        pipe.xadd(self.keys.ledger_event_log, entry, maxlen=EVENT_LOG_MAX, approximate=True)
        if outcome != COMMON:  # the common outcome is read from the log itself
            key = self.keys.ledger_event_log_by_outcome(outcome)
            pipe.xadd(key, entry, maxlen=EVENT_LOG_MAX, approximate=True)

    # --- reads -----------------------------------------------------------------

    def recent(self, outcome: str | None = None, limit: int = 50) -> list[dict]:
        """Log entries, newest first: {entry, id, type, created, received, outcome,
        error, replay, detail}; only those with `outcome` when given (its own stream)."""
        if outcome is not None and outcome not in OUTCOMES:
            raise LedgerInputError(f"outcome must be one of {', '.join(OUTCOMES)}")
        if outcome == COMMON:  # the log, filtered: most of its entries are
            found = []
            for entry_id, fields in self._newest_first(
                self.keys.ledger_event_log, "", EVENT_LOG_MAX * 2
            ):
                if fields.get("outcome") == COMMON:
                    found.append({"entry": entry_id, **fields})
                    if len(found) == limit:
                        break
            return found
        entries = self.redis.xrevrange(self._stream(outcome), "+", "-", count=limit)
        return [{"entry": entry_id, **fields} for entry_id, fields in entries]

    def _stream(self, outcome: str | None) -> str:
        """The stream that holds the entries of `outcome`: the log itself for all of them
        and for the common outcome (filtered by the reader), else the outcome's own."""
        if outcome is None or outcome == COMMON:
            return self.keys.ledger_event_log
        return self.keys.ledger_event_log_by_outcome(outcome)

    def _newest_first(self, key: str, below: str, scan: int) -> Iterator[tuple[str, dict]]:
        """At most `scan` entries of a stream, newest first, below the entry id `below` ("": all),
        read `PAGE_BATCH` at a time."""
        end, read = (f"({below}" if below else "+"), 0
        while read < scan:
            batch = self.redis.xrevrange(key, end, "-", count=min(PAGE_BATCH, scan - read))
            if not batch:
                return
            for entry_id, fields in batch:
                read += 1
                end = f"({entry_id}"
                yield entry_id, fields

    def failed_ids(self) -> list[str]:
        """Ids of events whose latest outcome is `failed` (not yet applied), oldest first.

        Ids whose record (and payload) has expired are dropped first: they can no
        longer be replayed, only re-sent by Stripe or repaired by `sync`."""
        key = self.keys.ledger_failed_events
        pipe = self.redis.pipeline(transaction=False)
        pipe.zremrangebyscore(key, "-inf", f"({self.clock() - self.failed_event_ttl}")
        pipe.zrange(key, 0, -1)
        return list(pipe.execute()[1])

    def stored(self, event_id: str) -> dict | None:
        """The event as received (parsed JSON), while its record is kept; for replay."""
        raw = payload_of(self.fields(event_id))
        return json.loads(raw) if raw else None

    def outcome_of(self, event_id: str) -> str | None:
        """The recorded outcome of an event id (None: never seen, or expired)."""
        return self.fields(event_id).get("outcome") or None

    # --- reads for the staff dashboard ---------------------------------------------

    def page(
        self,
        *,
        outcome: str | None = None,
        type_: str = "",
        cursor: str = "",
        limit: int = 50,
        scan: int = PAGE_SCAN,
    ) -> tuple[list[dict], str | None]:
        """One page of log entries, newest first, like `recent`, optionally only those of
        `type_` (exact, or a prefix ending in `*`: `customer.subscription.*`).

        Reads start below `cursor` (an entry id) and stop after `limit` matches or `scan`
        entries read, so a rare type costs at most `scan` entries a page, never the whole
        log. Returns the entries and the next page's cursor (None at the log's end)."""
        if outcome is not None and outcome not in OUTCOMES:
            raise LedgerInputError(f"outcome: expected one of {', '.join(OUTCOMES)}")
        if cursor and not stream_id(cursor):
            raise LedgerInputError("cursor: expected an entry id")
        matches = type_matcher(type_)
        found: list[dict] = []
        read, last = 0, cursor
        for entry_id, fields in self._newest_first(self._stream(outcome), cursor, scan):
            read, last = read + 1, entry_id
            if outcome == COMMON and fields.get("outcome") != COMMON:
                continue
            if matches(fields.get("type", "")):
                found.append({"entry": entry_id, **fields})
                if len(found) == limit:
                    return found, entry_id
        return found, (last if read == scan else None)

    def record(self, event_id: str) -> dict | None:
        """An event's record while it is kept: {id, type, created, received, outcome,
        error, detail, payload (the body as received, text)}; None if unknown or expired."""
        fields = self.fields(event_id)
        if not fields:
            return None
        payload = payload_of(fields)
        if "note" in fields:  # else a record written before `note` replaced error and detail
            failed = fields.get("outcome") == "failed"
            fields["error"], fields["detail"] = (
                (fields["note"], "") if failed else ("", fields["note"])
            )
            fields.update(_type_and_created(payload))
        record = {"id": event_id, "payload": payload}
        for name in ("type", "created", "received", "outcome", "error", "detail"):
            record[name] = fields.get(name, "")
        return record

    def failed_count(self) -> int:
        """How many events wait for a replay (their record still kept); reads only."""
        since = self.clock() - self.failed_event_ttl
        return self.redis.zcount(self.keys.ledger_failed_events, f"({since}", "+inf")

    def last_received(self, scan: int = 1000) -> str | None:
        """When the newest delivery from Stripe was received (ISO-8601 UTC), replays
        skipped; None when the newest `scan` entries hold none (or the log is empty)."""
        for _, fields in self._newest_first(self.keys.ledger_event_log, "", scan):
            if fields.get("replay") != "1":
                return fields.get("received") or None
        return None


def _type_and_created(payload: str) -> dict:
    """An event body's `type` and `created` as a record's fields hold them (text)."""
    try:
        event = json.loads(payload)
    except ValueError:
        return {}
    if not isinstance(event, dict):
        return {}
    return {name: str(event[name]) for name in ("type", "created") if name in event}


def type_matcher(type_: str) -> Callable[[str], bool]:
    """A test of an entry's type: always true for "", exact, or a prefix when `type_` ends
    in `*`. Raises LedgerInputError for anything else than Stripe's type alphabet."""
    if not type_:
        return lambda _: True
    if not _TYPE.fullmatch(type_):
        raise LedgerInputError("type: expected a Stripe event type (a-z, 0-9, _ and .)")
    if type_.endswith("*"):
        prefix = type_[:-1]
        return lambda value: value.startswith(prefix)
    return lambda value: value == type_
