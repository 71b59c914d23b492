"""Records <-> the flat string hashes Redis stores them in.

Reading is strict: a stored value the writer would not have written raises `CorruptRecord`,
so the writer refuses the change before it queues anything. Absent fields read as their
defaults, so records stored by earlier versions still load.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import fields as dataclass_fields

from membership.ledger.model import (
    Contribution,
    Contributor,
    Customer,
    EmailBucket,
    Offline,
    SubRecord,
    Subscription,
)

# Redis integers are signed 64-bit; every counter must stay inside.
INT64_MAX = 2**63 - 1
_OFFLINE_FIELDS = ("offline", "offline_name", "offline_reason", "offline_added_at")


class CorruptRecord(Exception):
    """A stored value the ledger cannot have written; `ledger rebuild` or a restore mends it."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key


def whole(key: str, name: str, raw: str | None, default: int | None = 0) -> int | None:
    """A stored whole number (absent or empty: `default`); CorruptRecord for anything else."""
    if raw is None or raw == "":
        return default
    text = raw.strip()
    digits = text[1:] if text[:1] == "-" else text
    if not digits.isdigit() or not digits.isascii() or len(digits) > 19:
        raise CorruptRecord(key, f"{name} is {raw!r}, not a whole number")
    value = int(text)
    if not -INT64_MAX - 1 <= value <= INT64_MAX:
        raise CorruptRecord(key, f"{name} is {raw!r}, outside a 64-bit integer")
    return value


def _fields_of(record) -> dict:
    """A flat dataclass's fields; asdict() would deep-copy every value, on the hot path."""
    return {f.name: getattr(record, f.name) for f in dataclass_fields(record)}


def _text(values: Mapping) -> dict[str, str | int]:
    return {k: ("" if v is None else v) for k, v in values.items()}


def _required(key: str, raw: Mapping[str, str], name: str) -> str:
    value = raw.get(name)
    if not value:
        raise CorruptRecord(key, f"the stored record has no {name}")
    return value


# --- subscriptions -----------------------------------------------------------


# A subscription's fields as stored: short names (a hash under 64-byte values and 128
# fields stays one compact listpack), and a field at its default is not stored. Records
# written before under the long names still read (`sub_field` falls back to them).
_SUB_FIELDS = {
    "id": "i",
    "customer": "c",
    "created": "t",
    "price": "p",
    "plan": "n",
    "amount": "a",
    "currency": "cu",
    "interval": "iv",
    "interval_count": "ic",
    "quantity": "q",
    "started": "s",
    "canceled_at": "ca",
    "ended_at": "e",
    "cancel_at_period_end": "cp",
    "current_period_end": "pe",
    "source": "src",
    "stripe_status": "ss",
    "status": "st",
    "live": "l",
    "opening": "o",
}
_SUB_DEFAULTS = {"amount": 0, "interval_count": 1, "quantity": 1, "cancel_at_period_end": 0}


IMPLIED = "="  # a stored opening that is the record's own created, status and source
_OPENING = re.compile(r"-?[0-9]{1,19} [^ ]+( [^ ]+)?")


def _implied_opening(created: int, status: str, source: str) -> str:
    """The opening of a record not rewritten since it opened: its own created, status and
    source (an event)."""
    return f"{created} {status} {source}"


def sub_to_hash(record: SubRecord) -> dict[str, str | int]:
    """The fields to store (the hash is written whole: replaced, not merged). The id is
    the key's (records written before also hold it); an opening the record implies is
    stored as `IMPLIED`."""
    sub = record.sub
    values = _fields_of(sub)
    del values["id"]
    values["stripe_status"] = values.pop("status")
    values["status"] = record.status
    values["cancel_at_period_end"] = int(sub.cancel_at_period_end)
    if record.live is not None:
        values["live"] = int(record.live)
    implied = record.opening and record.opening == _implied_opening(
        sub.created, record.status, sub.source
    )
    values["opening"] = IMPLIED if implied else record.opening
    return {
        _SUB_FIELDS[name]: value
        for name, value in values.items()
        if value not in (None, "") and _SUB_DEFAULTS.get(name) != value
    }


def sub_field(raw: Mapping[str, str], name: str, default=None):
    """A stored subscription's field by its long name, whichever name stored it."""
    value = raw.get(_SUB_FIELDS[name])
    return raw.get(name, default) if value is None else value


def sub_from_hash(key: str, raw: Mapping[str, str], sub_id: str) -> SubRecord | None:
    """The subscription stored under `key`, whose id is `sub_id` (None: none stored)."""
    if not raw:
        return None

    def need(name: str) -> str:
        value = sub_field(raw, name)
        if not value:
            raise CorruptRecord(key, f"the stored record has no {name}")
        return value

    def number(name: str, default: int | None = 0) -> int | None:
        return whole(key, name, sub_field(raw, name), default)

    stored_id = sub_field(raw, "id")
    if stored_id is not None and stored_id != sub_id:
        raise CorruptRecord(key, f"the stored record is {stored_id!r}'s")
    sub = Subscription(
        id=sub_id,
        customer=need("customer"),
        status=need("stripe_status"),
        created=whole(key, "created", need("created")),
        price=sub_field(raw, "price", ""),
        plan=sub_field(raw, "plan", ""),
        amount=number("amount"),
        currency=sub_field(raw, "currency", ""),
        interval=sub_field(raw, "interval", ""),
        interval_count=number("interval_count", 1),
        quantity=number("quantity", 1),
        started=number("started", None),
        canceled_at=number("canceled_at", None),
        ended_at=number("ended_at", None),
        cancel_at_period_end=sub_field(raw, "cancel_at_period_end") == "1",
        current_period_end=number("current_period_end", None),
        source=sub_field(raw, "source", ""),
    )
    live, status = sub_field(raw, "live"), need("status")
    opening = raw.get(_SUB_FIELDS["opening"], "")
    if opening == IMPLIED:
        opening = _implied_opening(sub.created, status, sub.source)
    elif opening and not _OPENING.fullmatch(opening):
        raise CorruptRecord(key, f"its opening is {opening!r}, not '<created> <status> [event]'")
    return SubRecord(sub, status, None if live in (None, "") else live == "1", opening)


# --- customers -----------------------------------------------------------------


_CUSTOMER_FIELDS = ("email", "email_created", "name", "metadata", "deleted_at")
SUB_MARK = "s:"  # a customer's field `s:<subscription id>` (empty): one of its subscriptions


def customer_sub_ids(raw: Mapping[str, str], listed: Iterable[str] = ()) -> list[str]:
    """A customer's subscription ids, sorted: its record's `s:<id>` fields, and `listed`,
    the members of its subscription set (where versions before kept them)."""
    ids = {name[len(SUB_MARK) :] for name in raw if name.startswith(SUB_MARK)}
    return sorted(ids.union(listed))


def customer_to_hash(
    customer: Customer, old: Customer | None = None
) -> tuple[dict[str, str | int], tuple[str, ...]]:
    """(fields to set, fields to delete): `live`, and each field not at its default
    (absent reads as the default); a field `old` had that is back at its default is
    deleted. (Records written before also hold `id` and `source`, never read.)"""
    values: dict[str, str | int] = {"live": customer.live}
    cleared = []
    for name in _CUSTOMER_FIELDS:
        value = getattr(customer, name)
        if value not in (None, "", 0):
            values[name] = value
        elif old is not None and getattr(old, name) not in (None, "", 0):
            cleared.append(name)
    return values, tuple(cleared)


def customer_from_hash(key: str, customer_id: str, raw: Mapping[str, str]) -> Customer:
    """The stored customer, or an empty one (no email, not a member) when none is stored."""
    live = whole(key, "live", raw.get("live"))
    if live < 0:
        raise CorruptRecord(key, f"live is {live}, below zero")
    return Customer(
        id=customer_id,
        email=raw.get("email") or None,
        email_created=whole(key, "email_created", raw.get("email_created")),
        name=raw.get("name") or None,
        metadata=raw.get("metadata", ""),
        deleted_at=whole(key, "deleted_at", raw.get("deleted_at"), None),
        live=live,
    )


# --- emails: member customers and offline members ------------------------------


def bucket_to_hash(bucket: EmailBucket) -> tuple[dict[str, str | int], tuple[str, ...]]:
    """(fields to set, fields to delete)."""
    values: dict[str, str | int] = {"live": bucket.live}
    if bucket.offline is None:
        return values, _OFFLINE_FIELDS
    values.update(
        offline=1,
        offline_name=bucket.offline.name or "",
        offline_reason=bucket.offline.reason,
        offline_added_at=bucket.offline.added_at,
    )
    return values, ()


def bucket_from_hash(key: str, email: str, raw: Mapping[str, str]) -> EmailBucket:
    live = whole(key, "live", raw.get("live"))
    if live < 0:
        raise CorruptRecord(key, f"live is {live}, below zero")
    offline = None
    if raw.get("offline") == "1":
        offline = Offline(
            reason=raw.get("offline_reason", ""),
            name=raw.get("offline_name") or None,
            added_at=raw.get("offline_added_at", ""),
        )
    return EmailBucket(email, live, offline)


# --- one-time contributions ------------------------------------------------------


def contribution_to_hash(c: Contribution) -> dict[str, str | int]:
    return _text({**_fields_of(c), "paid": int(c.paid)})


def contribution_from_hash(key: str, raw: Mapping[str, str]) -> Contribution | None:
    if not raw:
        return None
    return Contribution(
        key=_required(key, raw, "key"),
        paid=raw.get("paid") == "1",
        amount=whole(key, "amount", raw.get("amount")),
        currency=raw.get("currency", ""),
        refunded=whole(key, "refunded", raw.get("refunded")),
        person=raw.get("person", ""),
        customer=raw.get("customer") or None,
        email=raw.get("email") or None,
        created=whole(key, "created", raw.get("created")),
        metadata=raw.get("metadata", ""),
    )


def contributor_from(key: str, person: str, raw: str | None) -> Contributor:
    active = whole(key, "active contributions", raw)
    if active < 0:
        raise CorruptRecord(key, f"active contributions is {active}, below zero")
    return Contributor(person, active)


# --- the count and the counters --------------------------------------------------


def count_from(key: str, raw: str | None) -> int | None:
    """The member count (None: Redis holds none, which is unknown, not zero)."""
    count = whole(key, "the member count", raw, None)
    if count is not None and count < 0:
        raise CorruptRecord(key, f"the member count is {count}, below zero")
    return count


_DAY = re.compile(r"(-?\d{1,18}) (\d{1,18}) (\d{1,18}) (-?\d{1,18})")


def history_day(count: int, joins: int, leaves: int, opening: int) -> str:
    """A UTC day of the count's history as kept (`keys.ledger_history_day`): the count at
    the day's last change, members gained and lost, the count before its first change."""
    return f"{count} {joins} {leaves} {opening}"


def history_day_from(key: str, raw: str | None) -> tuple[int, int, int, int] | None:
    """`history_day`'s values (None: no change that day); CorruptRecord if garbled."""
    if raw is None:
        return None
    found = _DAY.fullmatch(raw)
    if found is None:
        raise CorruptRecord(key, f"{raw!r} is not a day of the history")
    count, joins, leaves, opening = map(int, found.groups())
    return count, joins, leaves, opening


def version_from(key: str, raw: str | None) -> int:
    """A version counter that a transaction will INCR: a whole number with room for one
    more (absent: 0); CorruptRecord otherwise, so nothing is queued around a failing INCR."""
    version = whole(key, "the version", raw)
    if not 0 <= version < INT64_MAX:
        raise CorruptRecord(key, f"the version is {version}, outside 0 to {INT64_MAX - 1}")
    return version


def counters_from(key: str, raw: Mapping[str, str]) -> dict[str, int]:
    return {name: whole(key, name, value) for name, value in raw.items()}
