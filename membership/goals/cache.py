"""Where the banner's data comes from: Redis at most about once per second, else the last good.

`Snapshot` is what the banner shows, read in one MULTI (`read_snapshot`); `BannerCache` keeps
one per process, refreshed by one request thread while the others serve the current one;
`LastGood` is the newest good snapshot any process on the host has seen, in a file, ordered by
the banner's version within one lineage. Why and how: docs/goals-and-banner.md ("Never a false
zero", "The last good banner").
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import os
import secrets
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, NamedTuple

import msgspec
import redis as redis_lib
from msgspec import Meta

from membership.goals import rules as goal_rules
from membership.goals import store as goals
from membership.ledger import queries as ledger_queries
from membership.ledger.codec import CorruptRecord
from membership.store import Keys, whole

log = logging.getLogger(__name__)

REFRESH_SECONDS = 0.9
RETRY_SECONDS = 1.0
MAX_WHOLE = 2**63 - 1  # Redis's integers: a count or version beyond it is not real
MAX_TEXT = 64  # a time stamp or date in the file
MAX_LINEAGES = 64  # lineages remembered in the file (marks, retired): a few KB at most
MAX_FILE_BYTES = 16 * 1024 * 1024  # a last-good file is a few KB; far more is not one


class NoCount(ValueError):
    """Redis answers but holds no member count: no member was counted yet (a new install),
    or the Redis lost its data. Unknown, not zero."""


@dataclass(frozen=True)
class Snapshot:
    count: int
    changed_at: str | None
    goals: tuple[goal_rules.Goal, ...] = ()
    version: int = 0  # keys.banner_version when read: orders snapshots (higher is newer)
    lineage: str | None = None  # keys.banner_lineage: versions compare only within one

    def to_json(self) -> dict:
        return {
            "lineage": self.lineage,
            "version": self.version,
            "count": self.count,
            "changed_at": self.changed_at,
            "goals": [g.as_dict() for g in self.goals],
        }


# The last good file as written by `LastGood.save`, every field checked as it is decoded: a
# file may be truncated, hand-edited or written by something else.
_Whole = Annotated[int, Meta(ge=0, le=MAX_WHOLE)]
_Text = Annotated[str, Meta(max_length=MAX_TEXT)]
_Lineage = Annotated[str, Meta(min_length=1, max_length=MAX_TEXT)]


def _printable(*texts: str | None) -> None:
    if any(text is not None and not text.isprintable() for text in texts):
        raise ValueError("expected a short line of text")


class _GoalRecord(msgspec.Struct):
    id: Annotated[int, Meta(ge=1, le=MAX_WHOLE)]
    target: Annotated[int, Meta(ge=1, le=goal_rules.MAX_TARGET)]
    deadline: _Text | None = None
    name: Annotated[str, Meta(max_length=goal_rules.MAX_NAME)] | None = None
    copy: dict[str, dict[str, str | dict[str, str]]] | None = None
    created_at: _Text | None = None
    reached_at: _Text | None = None

    def __post_init__(self) -> None:
        _printable(self.deadline, self.created_at, self.reached_at)
        goal_rules.check_copy(self.copy or {})  # every template, as `goals add` checks it


class _SnapshotRecord(msgspec.Struct):
    count: _Whole
    version: _Whole
    goals: list[_GoalRecord]
    changed_at: _Text | None = None
    lineage: _Text | None = None  # none in files from before it

    def __post_init__(self) -> None:
        _printable(self.changed_at, self.lineage)

    def snapshot(self) -> Snapshot:
        goals = (
            goal_rules.Goal(**{**msgspec.structs.asdict(g), "copy": g.copy or {}})
            for g in self.goals
        )
        return Snapshot(self.count, self.changed_at, tuple(goals), self.version, self.lineage)


class _LastGoodFile(msgspec.Struct):
    snapshot: _SnapshotRecord
    # Neither in files from before them.
    marks: Annotated[list[tuple[_Lineage, _Whole]], Meta(max_length=MAX_LINEAGES)] = []
    retired: Annotated[list[_Lineage], Meta(max_length=MAX_LINEAGES)] = []

    def __post_init__(self) -> None:
        _printable(*(name for name, _ in self.marks), *self.retired)


_decode_file = msgspec.json.Decoder(_LastGoodFile).decode


def read_snapshot(client: redis_lib.Redis, keys: Keys) -> Snapshot:
    """One consistent read: the ledger's count (through its queries), the goals, and the
    banner's version and lineage, in one MULTI. A missing lineage is made (see
    `make_lineage`)."""
    pipe = client.pipeline(transaction=True)
    ledger_queries.queue_count(pipe, keys)
    goals.queue_load(pipe, keys)
    pipe.get(keys.banner_version)
    pipe.get(keys.banner_lineage)
    raw_count, changed_at, raw_goals, raw_reached, raw_version, lineage = pipe.execute()
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
        lineage=lineage if lineage is not None else make_lineage(client, keys),
    )


def make_lineage(client: redis_lib.Redis, keys: Keys, replacing: str | None = None) -> str | None:
    """A new random lineage in Redis, if it still holds `replacing` (None: none at all), and
    the lineage it holds after; None when Redis refuses the write (a full disk, a replica):
    the snapshot is served without one, and the next read tries again."""
    fresh = secrets.token_hex(12)

    def body(pipe) -> whole.Write | None:
        if pipe.get(keys.banner_lineage) != replacing:
            return None
        return whole.Write(lambda pipe: pipe.set(keys.banner_lineage, fresh), fresh)

    try:
        # One attempt: another process that made or replaced it at the same moment stands.
        made = whole.transaction(
            client, body, watch=(keys.banner_lineage,), attempts=1, busy=lambda: None
        )
    except redis_lib.RedisError as exc:
        log.debug("banner: cannot write a new lineage: %s", exc)
        return replacing
    if made is not None:
        return made
    try:
        return client.get(keys.banner_lineage)
    except redis_lib.RedisError:
        return replacing


_READ_ERRORS = (
    redis_lib.RedisError,
    CorruptRecord,
    ValueError,
    KeyError,
    TypeError,
    AttributeError,
)


def _later(shared: Snapshot, own: Snapshot) -> bool:
    """True when `shared` is a later point of the history `own` was read from."""
    return shared.lineage == own.lineage and shared.version > own.version


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


class Saved(NamedTuple):
    """What `LastGood.save` found: whether it wrote, else the file's snapshot (None: none);
    the highest version seen of each recent lineage (`marks`); and the lineages found to
    have gone back (`retired`: never written again, a backup restored twice included)."""

    written: bool
    held: Snapshot | None
    marks: dict[str, int]
    retired: tuple[str, ...]


class LastGood:
    """The newest good snapshot any process on the host has seen, in one small file, with
    what is known of the data's lineages: the highest version seen of each (a lineage that
    later reads lower went back), and those found to have gone back."""

    def __init__(self, data_dir: Path, prefix: str) -> None:
        self.path = Path(data_dir) / f"banner-{prefix}.json"
        self._lock_path = Path(data_dir) / f"banner-{prefix}.lock"

    def load(self) -> Snapshot | None:
        """The file's snapshot; None (with a warning) when it is missing or corrupt in any way."""
        return self.load_all()[0]

    def load_all(self) -> tuple[Snapshot | None, dict[str, int], tuple[str, ...]]:
        """The file's snapshot, marks and retired lineages (oldest first); (None, {}, ()) when
        it is missing or corrupt in any way (with a warning)."""
        try:
            found = _decode_file(_read_small_file(self.path))
        except FileNotFoundError:
            return None, {}, ()
        except (OSError, ValueError) as exc:  # msgspec's errors are ValueErrors
            log.warning("ignoring unreadable last good banner %s: %s", self.path, exc)
            return None, {}, ()
        snapshot, marks = found.snapshot.snapshot(), dict(found.marks)
        if snapshot.lineage is not None and snapshot.lineage not in marks:
            marks[snapshot.lineage] = snapshot.version
        return snapshot, marks, tuple(found.retired)

    def save(
        self,
        snapshot: Snapshot,
        seen_at: float | None = None,
        *,
        replacing: Snapshot | None = None,
        retire: Iterable[str] = (),
    ) -> Saved:
        """Write `snapshot` (and add `retire` to the retired lineages) unless the file may know
        something newer (a higher version of the same lineage, or another lineage not retired)
        or the lineage is retired; else return what it knows. `replacing`: the file's snapshot
        as the caller read it, replaced if still there."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # O_NONBLOCK: a FIFO planted at the lock's path must fail (ENXIO), not block forever.
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NONBLOCK
        with open(os.open(self._lock_path, flags, 0o644), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            existing, marks, known = self.load_all()
            retired = known + tuple(dict.fromkeys(x for x in retire if x and x not in known))
            retired = retired[-MAX_LINEAGES:]
            lineage, version = snapshot.lineage, snapshot.version
            if lineage in retired:
                return Saved(False, existing, marks, retired)
            forced = replacing is not None and existing == replacing
            if not forced and (
                marks.get(lineage, -1) > version
                or (existing is not None and _later(existing, snapshot))
                or (
                    existing is not None
                    and existing.lineage != lineage
                    and existing.lineage not in retired
                )
            ):
                return Saved(False, existing, marks, retired)
            kept = dict(marks)
            if lineage is not None:
                kept.pop(lineage, None)  # the most recent last
                kept[lineage] = version if forced else max(version, marks.get(lineage, -1))
                kept = dict(list(kept.items())[-MAX_LINEAGES:])
            if existing == snapshot and kept == marks and retired == known:
                return Saved(True, existing, kept, retired)  # already there: nothing to write
            payload = json.dumps(
                {
                    "seen_at": seen_at,
                    "snapshot": snapshot.to_json(),
                    "marks": [[name, mark] for name, mark in kept.items()],
                    "retired": list(retired),
                },
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
        return Saved(True, snapshot, kept, retired)


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
        self._read: Snapshot | None = None  # what this process last read from Redis
        self._read_at = 0.0  # and when (wall clock, information only)
        self._unreplaced: set[str | None] = set()  # lineages found gone back, not replaced
        self._retired: set[str] = set()  # lineages found gone back and replaced (and the file's)
        self._save_failing = False
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
        try:
            snapshot = self._read_redis()
        except _READ_ERRORS as exc:
            return self._fallback(previous, exc)
        self._read_at = seen_at
        snapshot = self._keep(snapshot, seen_at)
        rendered = (
            previous.rendered
            if previous is not None and not previous.stale and previous.snapshot == snapshot
            else {}
        )
        return State(snapshot, False, self.clock() + self.refresh_seconds, seen_at, rendered)

    def _read_redis(self) -> Snapshot:
        """A snapshot from Redis. A lower version of the lineage this process read before, or
        a lineage found gone back before (the same backup restored again), means Redis went
        back (`_went_back`)."""
        self.reads += 1
        snapshot = read_snapshot(self.client, self.keys)
        last = self._read
        if snapshot.lineage in self._retired:
            snapshot = self._went_back(snapshot, None)
        elif last is not None and _later(last, snapshot):
            snapshot = self._went_back(snapshot, last.version)
        self._read = snapshot
        return snapshot

    def _went_back(self, snapshot: Snapshot, seen: int | None) -> Snapshot:
        """Redis went back in its history (restored from an older backup, a failover to a
        replica that lagged): it holds a lower version of this lineage than `seen` (None: a
        lineage found gone back before, a backup restored again). The versions from here on
        would repeat lost ones, so the data gets a new lineage, and the old one is retired
        (never written to the file again)."""
        if snapshot.lineage in self._unreplaced:
            return snapshot  # found before, and Redis would not take a new one: known here
        if seen is not None:
            why = f"version {snapshot.version}, older than version {seen} seen before"
        else:
            why = "a lineage found to have gone back before (a backup restored again?)"
        log.warning(
            "banner: Redis holds %s (restored from an older backup?); the data gets a new "
            "lineage, so the lost versions never outrank it",
            why,
        )
        lineage = make_lineage(self.client, self.keys, replacing=snapshot.lineage)
        if lineage == snapshot.lineage:  # Redis refuses the write: remembered here instead
            self._unreplaced.add(lineage)
            return snapshot
        if snapshot.lineage is not None:
            self._retired.add(snapshot.lineage)
        return dataclasses.replace(snapshot, lineage=lineage)

    def _keep(self, snapshot: Snapshot, seen_at: float) -> Snapshot:
        """Put what was read in the last good file; the snapshot to serve. When the file may
        know something newer, Redis is read again: the file was written before this read
        began, so in a history that only moves forward Redis holds at least what it saw."""
        replacing = None
        for _ in range(4):
            try:
                saved = self.last_good.save(
                    snapshot, seen_at, replacing=replacing, retire=self._retired
                )
            except OSError as exc:
                self._save_failed(exc)
                return snapshot
            self._save_worked()
            self._retired.update(saved.retired)  # what other processes found gone back
            if saved.written:
                return snapshot
            if snapshot.lineage in self._retired and snapshot.lineage not in self._unreplaced:
                snapshot = self._read = self._went_back(snapshot, None)
                continue
            found = saved.held
            try:
                again = self._read_redis()
            except _READ_ERRORS:
                return snapshot
            mark = saved.marks.get(again.lineage) if again.lineage is not None else None
            if mark is not None and mark > again.version:  # not even now: Redis went back
                again = self._read = self._went_back(again, mark)
                replacing = found
            else:  # Redis caught up with the file, or the file is of another lineage
                replacing = found if found is None or again.lineage != found.lineage else None
            snapshot = again
        return snapshot

    def _fallback(self, previous: State | None, exc: Exception) -> State:
        reason = "no_count" if isinstance(exc, NoCount) else "unreadable"
        own = self._read
        shared, _, retired = self.last_good.load_all()
        self._retired.update(retired)
        seen_at = 0.0
        if own is None:  # nothing read here: the file, else what was served before
            best = shared
            if best is None and previous is not None:
                best, seen_at = previous.snapshot, previous.seen_at
        elif (
            shared is not None
            and _later(shared, own)
            and own.lineage not in self._unreplaced
            and own.lineage not in self._retired
        ):
            best = shared  # another process read a later point of the same history
        else:
            best, seen_at = own, self._read_at
            if shared != own:
                # The file is older (a copied data directory), corrupt or gone: mend it for
                # the other workers, and for a process started while Redis is down (never
                # over another lineage: `save` keeps that).
                try:
                    self.last_good.save(own, self._read_at, retire=self._retired)
                    self._save_worked()
                except OSError as save_error:
                    self._save_failed(save_error)
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
        return State(best, True, expires, seen_at, rendered, reason=reason)

    def _save_failed(self, exc: OSError) -> None:
        if not self._save_failing:  # once, not on every refresh while the disk is full
            log.warning(
                "could not save the last good banner in %s: %s; served from memory, and "
                "saved once it can be",
                self.last_good.path,
                exc,
            )
        self._save_failing = True

    def _save_worked(self) -> None:
        if self._save_failing:
            log.info("the last good banner can be saved again")
        self._save_failing = False


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
