"""The Webhooks pages' view models: pure functions of what the event log returned.

Reading the filters (each error names its field), the rows of the list, an event's page
(its payload pretty-printed; Jinja escapes it), and whether Stripe has gone quiet.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from membership.core.text import stream_id
from membership.ledger.events import OUTCOMES, iso, type_matcher
from membership.ledger.model import LedgerInputError
from membership.stripe.events import HANDLERS

QUIET_HOURS = 24  # no delivery for this long: the page warns (a secret or endpoint broken?)
ERROR_SHOWN = 160  # characters of an error in the list; the event's page shows it whole
EVENT_ID = re.compile(r"[A-Za-z0-9_]{1,255}")  # Stripe's ids, as stripe_events checks them
KNOWN_TYPES = tuple(sorted(HANDLERS))


@dataclass(frozen=True)
class Filters:
    outcome: str = ""
    type: str = ""
    cursor: str = ""
    errors: dict[str, str] = field(default_factory=dict)  # field name -> message

    def query(self, **changes) -> dict:
        """The filters as query arguments (empty ones left out), with `changes` applied."""
        values = {"outcome": self.outcome, "type": self.type, "cursor": self.cursor, **changes}
        return {k: v for k, v in values.items() if v}


def read_filters(args: Mapping[str, str]) -> Filters:
    """The list's filters from a query string; a bad value is kept out and named in
    `errors` (outcome, type, cursor), so the page can say which field is wrong."""
    names = ("outcome", "type", "cursor")
    values = {name: str(args.get(name) or "").strip()[:200] for name in names}
    errors = {}
    if values["outcome"] and values["outcome"] not in OUTCOMES:
        errors["outcome"] = f"outcome: expected one of {', '.join(OUTCOMES)}"
    try:
        type_matcher(values["type"])
    except LedgerInputError as exc:
        errors["type"] = str(exc)
    if values["cursor"] and not stream_id(values["cursor"]):
        errors["cursor"] = "cursor: expected an entry id (follow the page links)"
    clean = {name: "" if name in errors else value for name, value in values.items()}
    return Filters(**clean, errors=errors)


def valid_event_id(event_id: str) -> bool:
    return bool(EVENT_ID.fullmatch(event_id or ""))


def _created(value) -> str:
    try:
        return iso(int(value))
    except (TypeError, ValueError, OverflowError, OSError):
        return str(value or "")


def row(entry: Mapping[str, str]) -> dict:
    """One log entry as the list and the JSON API show it."""
    error = entry.get("error", "")
    return {
        "entry": entry.get("entry", ""),
        "id": entry.get("id", ""),
        "type": entry.get("type", ""),
        "created": _created(entry.get("created")),
        "received": entry.get("received", ""),
        "outcome": entry.get("outcome", ""),
        "error": error,
        "error_short": error if len(error) <= ERROR_SHOWN else error[: ERROR_SHOWN - 1] + "…",
        "detail": entry.get("detail", ""),
        "replay": entry.get("replay") == "1",
    }


def parsed_payload(raw: str):
    """The stored body as JSON, or the text itself if it is not JSON."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return raw


def event_view(record: Mapping[str, str]) -> dict:
    """An event's page: its record, `created` as ISO-8601, the payload pretty-printed."""
    payload = parsed_payload(record.get("payload", ""))
    pretty = (
        payload
        if isinstance(payload, str)
        else json.dumps(payload, ensure_ascii=False, indent=2, sort_keys=False)
    )
    return {
        **{k: record.get(k, "") for k in ("id", "type", "received", "outcome", "error", "detail")},
        "created": _created(record.get("created")),
        "payload": payload,
        "payload_pretty": pretty,
    }


@dataclass(frozen=True)
class Freshness:
    last_received: str | None  # ISO-8601 UTC, None: none in the log
    hours_since: float | None
    quiet: bool  # none for QUIET_HOURS or more (or none at all): the page warns

    def as_dict(self) -> dict:
        return {
            "last_received": self.last_received,
            "hours_since": None if self.hours_since is None else round(self.hours_since, 2),
            "quiet": self.quiet,
        }


def freshness(last_received: str | None, now: float) -> Freshness:
    if not last_received:
        return Freshness(None, None, True)
    try:
        at = dt.datetime.strptime(last_received, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return Freshness(last_received, None, True)
    hours = max(0.0, (now - at.timestamp()) / 3600)
    return Freshness(last_received, hours, hours >= QUIET_HOURS)


def ago(hours: float | None) -> str:
    """ "3 minutes ago", "5 hours ago", "2 days ago": how long since, for a person."""
    if hours is None:
        return ""
    minutes = round(hours * 60)
    if minutes < 60:
        return "just now" if minutes < 1 else f"{minutes} minute{'s' * (minutes != 1)} ago"
    if hours < 48:
        whole = int(hours)
        return f"{whole} hour{'s' * (whole != 1)} ago"
    return f"{int(hours // 24)} days ago"
