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
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis as redis_lib

from membership import goals
from membership.ledger import queries as ledger_queries
from membership.ledger.codec import CorruptRecord
from membership.store import Keys

log = logging.getLogger(__name__)

REFRESH_SECONDS = 0.9
RETRY_SECONDS = 1.0


@dataclass(frozen=True)
class Snapshot:
    count: int
    changed_at: str | None
    goals: tuple[goals.Goal, ...] = ()

    def to_json(self) -> dict:
        return {
            "count": self.count,
            "changed_at": self.changed_at,
            "goals": [g.as_dict() for g in self.goals],
        }

    @classmethod
    def from_json(cls, data: dict) -> Snapshot:
        return cls(
            count=_parse_count(data["count"]),
            changed_at=data.get("changed_at"),
            goals=tuple(
                goals.Goal.from_record(int(g["id"]), g, g.get("reached_at")) for g in data["goals"]
            ),
        )


def _parse_count(raw) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise ValueError(f"a member count must be a whole number of at least 0, got {raw!r}")
    return raw


def read_snapshot(client: redis_lib.Redis, keys: Keys) -> Snapshot:
    """One consistent read: the ledger's count (through its queries) and the goals."""
    pipe = client.pipeline(transaction=True)
    ledger_queries.queue_count(pipe, keys)
    goals.queue_load(pipe, keys)
    raw_count, changed_at, raw_goals, raw_reached = pipe.execute()
    count = ledger_queries.count_from(keys, raw_count)
    # No count is not zero members: it is a new or emptied Redis (a lost volume, a
    # wrong REDIS_URL). Treat it as unreadable, so the last good value is served.
    if count is None:
        raise ValueError("Redis holds no member count (a new or emptied Redis)")
    return Snapshot(
        count=count,
        changed_at=changed_at,
        goals=tuple(goals.goals_from(raw_goals, raw_reached)),
    )


@dataclass
class State:
    """What a process currently serves. `rendered` caches bodies per locale for it."""

    snapshot: Snapshot | None
    stale: bool
    expires: float  # monotonic
    seen_at: float = 0.0  # wall clock time the snapshot was read from Redis
    rendered: dict = field(default_factory=dict)


class LastGood:
    """The newest good snapshot any process on the host has seen, in one small file."""

    def __init__(self, data_dir: Path, prefix: str) -> None:
        self.path = Path(data_dir) / f"banner-{prefix}.json"
        self._lock_path = Path(data_dir) / f"banner-{prefix}.lock"

    def load(self) -> tuple[Snapshot, float] | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return Snapshot.from_json(data["snapshot"]), float(data["seen_at"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable last good banner %s: %s", self.path, exc)
            return None

    def save(self, snapshot: Snapshot, seen_at: float) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            existing = self.load()
            if existing is not None and existing[1] > seen_at and existing[0] != snapshot:
                return  # another process saw a newer value; keep it
            payload = json.dumps(
                {"seen_at": seen_at, "snapshot": snapshot.to_json()}, ensure_ascii=False
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

    def _refresh(self, previous: State | None) -> State:
        seen_at = self.wall()
        self.reads += 1
        try:
            snapshot = read_snapshot(self.client, self.keys)
        except (redis_lib.RedisError, CorruptRecord, ValueError, KeyError, TypeError) as exc:
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
        if previous is None or not previous.stale:
            log.warning("banner: cannot read Redis, serving the last good value: %s", exc)
        best: tuple[Snapshot, float] | None = None
        if previous is not None and previous.snapshot is not None:
            best = (previous.snapshot, previous.seen_at)
        shared = self.last_good.load()
        if shared is not None and (best is None or shared[1] > best[1]):
            best = shared
        expires = self.clock() + self.retry_seconds
        if best is None:
            return State(None, True, expires)
        rendered = (
            previous.rendered
            if previous is not None and previous.stale and previous.snapshot == best[0]
            else {}
        )
        return State(best[0], True, expires, best[1], rendered)
