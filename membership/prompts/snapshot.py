"""The live campaigns and the banner's data, held in process memory for `POST /v1/prompt` so
that a decision sends no Redis command (docs/prompts.md, "From memory").

A daemon thread per process refreshes them (started on first use and again in a forked
child; it holds the snapshot weakly, so an app that is gone stops it)."""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from dataclasses import dataclass, field

import redis as redis_lib

from membership.goals.cache import BannerCache, State
from membership.prompts import store
from membership.prompts.campaigns import Campaign
from membership.prompts.filters import Compiled, compile_campaigns
from membership.store import Keys

log = logging.getLogger(__name__)

EXTENSION = "membership.prompts"
REFRESH_SECONDS = 0.9
FULL_READ_SECONDS = 60.0
FIRST_WAIT_SECONDS = 1.0
_UNSEEN = object()  # no version read yet (None is a real answer: no campaign ever stored)

# Threads do not survive a fork, and a lock held by one of them at that moment would stay
# held in the child: starting a refresher is guarded by a lock made anew in every child.
_start_lock = threading.Lock()


def _new_start_lock() -> None:
    global _start_lock
    _start_lock = threading.Lock()


os.register_at_fork(after_in_child=_new_start_lock)


@dataclass(frozen=True)
class Live:
    """One consistent set of campaigns, as decisions see it."""

    campaigns: tuple[Campaign, ...]  # by rank: priority, then id
    version: int | None  # keys.campaigns_version it was read at; None: not read yet
    # The same campaigns compiled once here, not per request (`filters.decide`).
    compiled: Compiled = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "compiled", compile_campaigns(self.campaigns))


NOTHING_YET = Live((), None)


class PromptSnapshot:
    """Per-process holder of the campaigns and the banner data for decisions."""

    def __init__(
        self,
        client: redis_lib.Redis,
        keys: Keys,
        banner_cache: BannerCache,
        *,
        refresh_seconds: float = REFRESH_SECONDS,
        first_wait: float = FIRST_WAIT_SECONDS,
        full_read_seconds: float = FULL_READ_SECONDS,
    ) -> None:
        self.client = client
        self.keys = keys
        self.banner_cache = banner_cache
        self.refresh_seconds = refresh_seconds
        self.first_wait = first_wait
        self.full_read_seconds = full_read_seconds
        self.ticks = 0  # refreshes done, for tests and curiosity
        self.loads = 0  # full reads of the campaigns
        self._live = NOTHING_YET
        self._seen: object = _UNSEEN  # the raw version of the last full read
        self._read_at = 0.0  # time.monotonic() of the last full read
        self._problem: str | None = None  # what the log last said was wrong
        self._pid: int | None = None  # the process whose thread runs
        self._waited = False
        self._ready = threading.Event()
        self._stop = threading.Event()

    # --- The decision path: memory only ----------------------------------------------

    def live(self) -> Live:
        """The campaigns to decide with; never touches Redis. Only the first call of a
        process may wait (at most `first_wait`) for the first read."""
        if self._pid != os.getpid():
            self._start()
        live = self._live
        if live.version is None and not self._waited:
            self._ready.wait(self.first_wait)
            self._waited = True
            live = self._live
        return live

    def banner(self) -> State | None:
        """The banner cache's state as it is (None: nothing was read yet)."""
        return self.banner_cache.peek()

    # --- The refresher -----------------------------------------------------------------

    def _start(self) -> None:
        with _start_lock:
            pid = os.getpid()
            if self._pid == pid or self._stop.is_set():
                return
            if self._pid is not None:  # a forked child: the parent's events may be mid-use
                self._ready, self._stop = threading.Event(), threading.Event()
            self._pid = pid  # before the thread runs: it stops when this is not its process
            threading.Thread(
                target=_run,
                args=(weakref.ref(self), self._stop, self.refresh_seconds),
                name="prompt-snapshot",
                daemon=True,
            ).start()

    def close(self) -> None:
        """Stop the refresher (it ends within one tick); later decisions keep the last set."""
        self._stop.set()

    def refresh(self) -> None:
        """One tick: the campaigns if their version changed, then the banner. Never raises."""
        try:
            self._refresh_campaigns()
        except Exception:  # a bug must not end the thread: the last good set stays
            self._report("bug", "prompts: refreshing the campaigns failed", exc_info=True)
        try:
            self.banner_cache.get()  # logs its own trouble
        except Exception:
            log.exception("prompts: refreshing the banner data failed")
        self.ticks += 1
        self._ready.set()

    def _refresh_campaigns(self) -> None:
        try:
            raw = self.client.get(self.keys.campaigns_version)
            if raw == self._seen and time.monotonic() - self._read_at < self.full_read_seconds:
                return
            stored = store.read(self.client, self.keys)
        except redis_lib.RedisError as exc:
            # Read everything once it answers again: a Redis that restarted empty and got a
            # change meanwhile can hold the very version number this process last read.
            self._seen = _UNSEEN
            self._report(
                "unreachable",
                "prompts: cannot read the campaigns from Redis (%s); deciding with the last "
                "good set (%d campaigns, version %s)",
                exc,
                len(self._live.campaigns),
                self._live.version,
            )
            return
        self.loads += 1
        self._seen, self._read_at = raw, time.monotonic()
        held = {c.id: c for c in self._live.campaigns}
        kept = [held[cid] for cid in stored.corrupt if cid in held]
        campaigns = tuple(sorted((*stored.campaigns, *kept), key=lambda c: c.rank))
        self._live = Live(campaigns, stored.version)
        if stored.corrupt:
            self._report(
                "corrupt " + ",".join(sorted(stored.corrupt)),
                "prompts: stored campaign(s) do not read back, keeping their last good "
                "version where this process had one: %s",
                "; ".join(f"{cid}: {why}" for cid, why in sorted(stored.corrupt.items())),
                level=logging.ERROR,
            )
        else:
            self._report(None, "prompts: campaigns read (version %s)", stored.version)

    def _report(self, problem: str | None, message: str, *args, level=None, **kw) -> None:
        """Log when what is wrong changes (or ends), not on every tick."""
        if problem == self._problem:
            return
        self._problem = problem
        if level is None:
            level = logging.INFO if problem is None else logging.WARNING
        log.log(level, message, *args, **kw)


def _run(ref: weakref.ref, stop: threading.Event, interval: float) -> None:
    pid = os.getpid()
    while not stop.is_set():
        started = time.monotonic()
        snapshot = ref()
        if snapshot is None or snapshot._pid != pid:
            return
        snapshot.refresh()
        del snapshot  # hold it only weakly between ticks
        stop.wait(max(0.0, interval - (time.monotonic() - started)))


# --- The app's snapshot -------------------------------------------------------------------


def for_app(app=None) -> PromptSnapshot:
    """The app's PromptSnapshot (created on first call; `membership.prompts.http` does so
    when its blueprint is registered). Settings `extra` may tune `prompt_refresh_seconds`,
    `prompt_first_wait_seconds` and `prompt_full_read_seconds` (tests)."""
    from flask import current_app

    from membership.core.runtime import runtime
    from membership.goals import banner

    app = app or current_app
    found = app.extensions.get(EXTENSION)
    if found is not None:
        return found
    with _start_lock:
        found = app.extensions.get(EXTENSION)
        if found is None:
            if banner.CACHE_EXTENSION not in app.extensions:
                raise RuntimeError("register membership.goals.banner.bp before the prompts")
            rt = runtime(app)
            extra = rt.settings.extra
            found = app.extensions[EXTENSION] = PromptSnapshot(
                rt.redis,
                rt.keys,
                app.extensions[banner.CACHE_EXTENSION].cache,
                refresh_seconds=float(extra.get("prompt_refresh_seconds", REFRESH_SECONDS)),
                first_wait=float(extra.get("prompt_first_wait_seconds", FIRST_WAIT_SECONDS)),
                full_read_seconds=float(extra.get("prompt_full_read_seconds", FULL_READ_SECONDS)),
            )
    return found
