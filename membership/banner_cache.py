"""Where the banner's data comes from: Redis at most about once per second, else the last good.

`Snapshot` is everything the banner shows (count, when it changed, the goals),
read from Redis in one round trip (MULTI: GET, GET, HGETALL, HGETALL; the count
read is O(1)). `BannerCache` keeps one snapshot per process and refreshes it
when it is older than `refresh_seconds` (0.9 s, so a change shows within a
second), by one request thread while the others keep serving the current one.

When Redis cannot be read, the newest good snapshot seen by any process on the
host is served as stale: each process writes the snapshots it sees to
`MEMBERSHIP_DATA_DIR/banner-<prefix>.json` (temp file + rename, under a lock,
never replacing a newer one), and reads it back when Redis fails, so other
workers and a process restarted while Redis is down serve it too.

"Newer" is the data's own order, never the wall clock: every change of the count
or the goals increments `keys.banner_version` in the same transaction or script,
the snapshot reads it with the rest, and the highest version wins. A clock
stepped back, or a data directory copied from elsewhere, cannot make an old
count win. The file is checked field by field when read; a corrupt one is
ignored with a warning.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis as redis_lib

from membership import goals, i18n
from membership.ledger import queries as ledger_queries
from membership.ledger.codec import CorruptRecord
from membership.store import Keys

log = logging.getLogger(__name__)

REFRESH_SECONDS = 0.9
RETRY_SECONDS = 1.0
MAX_WHOLE = 2**63 - 1  # Redis's integers: a count or version beyond it is not real
MAX_TEXT = 64  # a time stamp or date in the file
MAX_FILE_BYTES = 16 * 1024 * 1024  # a last-good file is a few KB; far more is not one


class NoCount(ValueError):
    """Redis answers but holds no member count: no member was counted yet (a new install),
    or the Redis lost its data. Unknown, not zero."""


@dataclass(frozen=True)
class Snapshot:
    count: int
    changed_at: str | None
    goals: tuple[goals.Goal, ...] = ()
    version: int = 0  # keys.banner_version when read: orders snapshots (higher is newer)

    def to_json(self) -> dict:
        return {
            "version": self.version,
            "count": self.count,
            "changed_at": self.changed_at,
            "goals": [g.as_dict() for g in self.goals],
        }

    @classmethod
    def from_json(cls, data) -> Snapshot:
        """The snapshot in a last-good file, every field checked; ValueError names the first
        bad one (a file may be truncated, hand-edited or written by something else)."""
        data = _mapping("snapshot", data)
        raw_goals = data.get("goals")
        if not isinstance(raw_goals, list):
            raise ValueError(f"goals: expected a list, got {type(raw_goals).__name__}")
        return cls(
            count=_whole("count", data.get("count")),
            changed_at=_text("changed_at", data.get("changed_at")),
            goals=tuple(_goal(i, g) for i, g in enumerate(raw_goals)),
            version=_whole("version", data.get("version")),
        )


def _mapping(name: str, raw) -> dict:
    if not isinstance(raw, dict):
        raise ValueError(f"{name}: expected an object, got {type(raw).__name__}")
    return raw


def _whole(name: str, raw, minimum: int = 0, maximum: int = MAX_WHOLE) -> int:
    """A JSON integer in range: not a string ("12"), a boolean, a fraction (1.9) or 1e999."""
    if isinstance(raw, bool) or not isinstance(raw, int) or not minimum <= raw <= maximum:
        raise ValueError(
            f"{name}: expected a whole number from {minimum} to {maximum}, got {raw!r}"[:200]
        )
    return raw


def _show(raw) -> str:
    text = repr(raw) if not isinstance(raw, int) or abs(raw) < 10**30 else "a huge number"
    return text if len(text) <= 60 else text[:57] + "..."


def _text(name: str, raw, limit: int = MAX_TEXT) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or len(raw) > limit or not raw.isprintable():
        raise ValueError(f"{name}: expected a short line of text, got {_show(raw)}")
    return raw


def _goal(index: int, raw) -> goals.Goal:
    where = f"goals[{index}]"
    raw = _mapping(where, raw)
    name = raw.get("name")
    if name is not None and (not isinstance(name, str) or len(name) > goals.MAX_NAME):
        raise ValueError(f"{where}.name: expected text of at most {goals.MAX_NAME} characters")
    copy = _mapping(f"{where}.copy", raw.get("copy") or {})
    try:
        for fields_ in copy.values():
            _mapping(f"{where}.copy", fields_)
        goals.check_copy(copy)  # every template text, checked as `goals add` checks it
    except (i18n.CopyError, AttributeError, TypeError) as exc:
        raise ValueError(f"{where}.copy: {exc}") from None
    return goals.Goal(
        id=_whole(f"{where}.id", raw.get("id"), 1),
        target=_whole(f"{where}.target", raw.get("target"), 1, goals.MAX_TARGET),
        deadline=_text(f"{where}.deadline", raw.get("deadline")),
        name=name,
        copy=copy,
        created_at=_text(f"{where}.created_at", raw.get("created_at")),
        reached_at=_text(f"{where}.reached_at", raw.get("reached_at")),
    )


def read_snapshot(client: redis_lib.Redis, keys: Keys) -> Snapshot:
    """One consistent read: the ledger's count (through its queries), the goals, and the
    banner's version, in one MULTI."""
    pipe = client.pipeline(transaction=True)
    ledger_queries.queue_count(pipe, keys)
    goals.queue_load(pipe, keys)
    pipe.get(keys.banner_version)
    raw_count, changed_at, raw_goals, raw_reached, raw_version = pipe.execute()
    count = ledger_queries.count_from(keys, raw_count)
    # No count is not zero members: it is a new install (no member counted yet) or an
    # emptied Redis (a lost volume, a wrong REDIS_URL). Unknown: the last good value is
    # served, or a 503 that says so.
    if count is None:
        raise NoCount("Redis holds no member count yet (no member has been counted)")
    try:
        version = int(raw_version or 0)
    except ValueError:
        raise CorruptRecord(f"{keys.banner_version} holds {raw_version!r}, not a number") from None
    return Snapshot(
        count=count,
        changed_at=changed_at,
        goals=tuple(goals.goals_from(raw_goals, raw_reached)),
        version=version,
    )


def newest(*snapshots: Snapshot | None) -> Snapshot | None:
    """The snapshot with the highest version; the first of equals (callers put their own
    memory first). Never by when it was read: clocks step and directories are copied."""
    best = None
    for snapshot in snapshots:
        if snapshot is not None and (best is None or snapshot.version > best.version):
            best = snapshot
    return best


@dataclass
class State:
    """What a process currently serves. `rendered` caches bodies per locale for it."""

    snapshot: Snapshot | None
    stale: bool
    expires: float  # monotonic
    seen_at: float = 0.0  # wall clock time the snapshot was read from Redis (information only)
    rendered: dict = field(default_factory=dict)
    # With no snapshot: why. "no_count" (Redis answers, no member counted yet) or
    # "unreadable" (Redis cannot be read, or holds something corrupt).
    reason: str | None = None


class LastGood:
    """The newest good snapshot any process on the host has seen, in one small file."""

    def __init__(self, data_dir: Path, prefix: str) -> None:
        self.path = Path(data_dir) / f"banner-{prefix}.json"
        self._lock_path = Path(data_dir) / f"banner-{prefix}.lock"

    def load(self) -> Snapshot | None:
        """The file's snapshot; None (with a warning) when it is missing or corrupt in any way."""
        try:
            text = _read_small_file(self.path).decode("utf-8")
            data = json.loads(text, parse_constant=_refuse_constant)
            return Snapshot.from_json(_mapping("file", data).get("snapshot"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            log.warning("ignoring unreadable last good banner %s: %s", self.path, exc)
            return None

    def save(self, snapshot: Snapshot, seen_at: float | None = None) -> None:
        """Write `snapshot` unless the file holds a newer version (another process saw it)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # O_NONBLOCK: a FIFO planted at the lock's path must fail (ENXIO), not block forever.
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NONBLOCK
        with open(os.open(self._lock_path, flags, 0o644), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            existing = self.load()
            if existing is not None and existing.version > snapshot.version:
                return  # another process saw a newer value; keep it
            payload = json.dumps(
                {"seen_at": seen_at, "snapshot": snapshot.to_json()},
                ensure_ascii=False,
                allow_nan=False,
            )
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name + ".")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(payload)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise


class BannerCache:
    """Thread-safe per-process micro-cache of the banner's snapshot."""

    def __init__(
        self,
        client: redis_lib.Redis,
        keys: Keys,
        last_good: LastGood,
        refresh_seconds: float = REFRESH_SECONDS,
        retry_seconds: float = RETRY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.keys = keys
        self.last_good = last_good
        self.refresh_seconds = refresh_seconds
        self.retry_seconds = retry_seconds
        self.clock = clock
        self.wall = wall
        self.reads = 0  # Redis reads attempted, for tests and curiosity
        self._state: State | None = None
        self._saved: Snapshot | None = None
        self._lock = threading.Lock()

    def get(self) -> State | None:
        """The state to serve now; None only before anything was ever seen (then 503)."""
        state = self._state
        if state is not None and self.clock() < state.expires:
            return state
        # One thread refreshes; the others serve what there is, or wait if there is nothing.
        if not self._lock.acquire(blocking=state is None or state.snapshot is None):
            return state
        try:
            state = self._state
            if state is None or self.clock() >= state.expires:
                state = self._state = self._refresh(state)
            return state
        finally:
            self._lock.release()

    def peek(self) -> State | None:
        """The state as it is, never touching Redis or waiting (the prompt's decision path;
        its refresher thread calls `get` so this stays fresh). None: nothing read yet."""
        return self._state

    def _refresh(self, previous: State | None) -> State:
        seen_at = self.wall()
        self.reads += 1
        try:
            snapshot = read_snapshot(self.client, self.keys)
        except (
            redis_lib.RedisError,
            CorruptRecord,
            ValueError,
            KeyError,
            TypeError,
            AttributeError,
        ) as exc:
            return self._fallback(previous, exc)
        if snapshot != self._saved:
            try:
                self.last_good.save(snapshot, seen_at)
                self._saved = snapshot
            except OSError as exc:
                log.warning("could not save the last good banner: %s", exc)
        rendered = (
            previous.rendered
            if previous is not None and not previous.stale and previous.snapshot == snapshot
            else {}
        )
        return State(snapshot, False, self.clock() + self.refresh_seconds, seen_at, rendered)

    def _fallback(self, previous: State | None, exc: Exception) -> State:
        reason = "no_count" if isinstance(exc, NoCount) else "unreadable"
        mine = previous.snapshot if previous is not None else None
        shared = self.last_good.load()
        best = newest(mine, shared)  # own memory first: it wins a tie
        if mine is not None and best is mine and shared != mine:
            # The file is older (a copied data directory) or corrupt: mend it for the
            # other workers, and for a process started while Redis is down.
            try:
                self.last_good.save(mine, previous.seen_at)
            except OSError as save_error:
                log.warning("could not save the last good banner: %s", save_error)
        # Logged when this changes (fresh -> stale, or why there is nothing), not per request.
        if previous is None or not previous.stale or previous.reason != reason:
            if best is None and reason == "no_count":
                log.warning("banner: no member has been counted yet; answering 503 until one is")
            elif best is None:
                log.warning("banner: cannot read Redis and no count was seen before: %s", exc)
            else:
                log.warning("banner: cannot read Redis, serving the last good value: %s", exc)
        expires = self.clock() + self.retry_seconds
        if best is None:
            return State(None, True, expires, reason=reason)
        rendered = (
            previous.rendered
            if previous is not None and previous.stale and previous.snapshot == best
            else {}
        )
        seen_at = previous.seen_at if previous is not None and best is mine else 0.0
        return State(best, True, expires, seen_at, rendered, reason=reason)


def _read_small_file(path: Path) -> bytes:
    """A regular file's bytes, at most MAX_FILE_BYTES: anything else raises OSError or
    ValueError. Never blocks or fills memory on what was planted there (a FIFO, a symlink
    to /dev/zero, a 200 MB file)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise ValueError(f"{info.st_size} bytes, more than {MAX_FILE_BYTES}")
        with open(fd, "rb", closefd=False) as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"more than {MAX_FILE_BYTES} bytes")
    return data


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number")
