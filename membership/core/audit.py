"""The audit log: one capped stream (`keys.audit`) of every staff change.

Each entry says when (`at`, ISO-8601 UTC), who (`actor`), what (`action`, e.g. `goal_added`),
to what (`target`, e.g. `goal 3`) and the state before and after (JSON, `null` for none).
Writers call `queue` on the pipeline of their own transaction, after `pipe.multi()`, so the
change and its entry commit together or not at all; `record` is for a change without a
transaction of its own. Every field is checked before anything is queued.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import pwd
import re
import socket
import time
from typing import TYPE_CHECKING, Any

from membership.core.text import has_control, stream_id

if TYPE_CHECKING:  # core sits below store: the type only
    from membership.store import Keys

MAX_ENTRIES = 100_000
MAX_ACTOR = 320  # a staff email (at most 254) and a little more
MAX_TARGET = 300
_ACTION = re.compile(r"[a-z_]{1,50}")


class AuditInputError(ValueError):
    """An audit entry that cannot be written; the message starts with the bad field."""


def check_actor(actor: str) -> str:
    """The actor stripped, if it is 1 to MAX_ACTOR characters with no control characters."""
    if not isinstance(actor, str):
        raise AuditInputError("actor: expected text")
    clean = actor.strip()
    if not 1 <= len(clean) <= MAX_ACTOR:
        raise AuditInputError(f"actor: expected 1 to {MAX_ACTOR} characters")
    if has_control(clean):
        raise AuditInputError("actor: control characters and escape sequences are not allowed")
    return clean


def default_actor() -> str:
    """$USER, else $LOGNAME, else the OS login name of this process's user, else
    "cli@<host>": the first that is a valid actor."""
    for candidate in (
        lambda: os.environ.get("USER", ""),
        lambda: os.environ.get("LOGNAME", ""),
        lambda: pwd.getpwuid(os.getuid()).pw_name,
        lambda: f"cli@{socket.gethostname()}",
    ):
        try:
            return check_actor(candidate())
        except (AuditInputError, KeyError, OSError):  # KeyError: a uid without a passwd entry
            continue
    return "cli"


def _check_action(action: str) -> str:
    if not isinstance(action, str) or not _ACTION.fullmatch(action):
        raise AuditInputError("action: expected 1 to 50 of a-z and _")
    return action


def _check_target(target: str) -> str:
    if not isinstance(target, str) or not 1 <= len(target) <= MAX_TARGET:
        raise AuditInputError(f"target: expected 1 to {MAX_TARGET} characters")
    if has_control(target):
        raise AuditInputError("target: control characters are not allowed")
    return target


def _json(name: str, value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise AuditInputError(f"{name}: not representable as JSON ({exc})") from None


def _iso(at: float | None) -> str:
    if at is None:
        at = time.time()
    if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at):
        raise AuditInputError("at: expected epoch seconds")
    try:
        moment = dt.datetime.fromtimestamp(at, dt.UTC)
    except (OverflowError, OSError, ValueError):
        raise AuditInputError("at: out of range") from None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def queue(
    pipe,
    keys: Keys,
    *,
    actor: str,
    action: str,
    target: str,
    before: Any = None,
    after: Any = None,
    at: float | None = None,
) -> None:
    """Queue one entry (an XADD) on `pipe`, joining the caller's transaction; runs nothing.

    Every field is checked first, so a bad one raises AuditInputError and
    nothing is queued.
    """
    fields = {
        "at": _iso(at),
        "actor": check_actor(actor),
        "action": _check_action(action),
        "target": _check_target(target),
        "before": _json("before", before),
        "after": _json("after", after),
    }
    pipe.xadd(keys.audit, fields, maxlen=MAX_ENTRIES, approximate=True)


def record(client, keys: Keys, **kwargs: Any) -> None:
    """Write one entry on its own (see `queue` for the arguments)."""
    with client.pipeline(transaction=True) as pipe:
        queue(pipe, keys, **kwargs)
        replies = pipe.execute(raise_on_error=True)
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
        if not reply:
            raise RuntimeError("audit: the entry was not written")


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _parsed(raw: str | None) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw  # not written by `queue`: show it as it is


def _entry(entry_id, raw_fields) -> dict:
    f = {_text(k): _text(v) for k, v in raw_fields.items()}
    return {
        "id": _text(entry_id),
        "at": f.get("at"),
        "actor": f.get("actor"),
        "action": f.get("action"),
        "target": f.get("target"),
        "before": _parsed(f.get("before")),
        "after": _parsed(f.get("after")),
    }


def entries(client, keys: Keys, limit: int = 50) -> list[dict]:
    """The newest `limit` entries, newest first, with before/after parsed."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise AuditInputError("limit: expected a whole number of at least 1")
    return [_entry(i, f) for i, f in client.xrevrange(keys.audit, "+", "-", count=limit)]


SCAN_BATCH = 500


def page(
    client,
    keys: Keys,
    *,
    actor: str = "",
    action: str = "",
    since: str = "",
    until: str = "",
    cursor: str = "",
    limit: int = 50,
    scan: int = 5000,
) -> tuple[list[dict], str | None]:
    """One page of entries, newest first, matching every filter given: `actor` (exact,
    case-insensitive), `action` (exact), `since`/`until` (YYYY-MM-DD, inclusive, on `at`).
    Reads start below `cursor` (an entry id) and stop after `limit` matches or `scan`
    entries read, so a rare filter costs at most `scan` entries a page. Returns the entries
    and the cursor of the next page (None at the end of the log)."""
    if cursor and not stream_id(cursor):
        raise AuditInputError("cursor: expected an entry id")
    actor = actor.strip().lower()
    found: list[dict] = []
    end = f"({cursor}" if cursor else "+"
    read = 0
    while read < scan:
        batch = client.xrevrange(keys.audit, end, "-", count=min(SCAN_BATCH, scan - read))
        if not batch:
            return found, None
        for entry_id, raw_fields in batch:
            read += 1
            entry = _entry(entry_id, raw_fields)
            day = (entry["at"] or "")[:10]
            if (
                (not actor or (entry["actor"] or "").lower() == actor)
                and (not action or entry["action"] == action)
                and (not since or day >= since)
                and (not until or day <= until)
            ):
                found.append(entry)
                if len(found) == limit:
                    return found, entry["id"]
            end = f"({entry['id']}"
    return found, end[1:]
