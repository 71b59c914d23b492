"""Keeps the embedded Redis alive for the `membership serve` process that owns it.

A thread of the serve process (never of a worker) restarts the embedded Redis when its process
is gone, never when it is only slow; a restart that fails is logged once and retried less and
less often, up to every 30 s (docs/production.md).
"""

from __future__ import annotations

import logging
import threading

from membership.core import metrics
from membership.store.embedded import EmbeddedRedis, EmbeddedRedisError

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 30.0


class Supervisor:
    def __init__(self, embedded: EmbeddedRedis, interval: float = 0.5) -> None:
        # Any lazy import in redis-py happens now, in the main thread: an import inside the
        # thread while the server forks a worker would leave its import lock held there.
        embedded.is_running()
        self.embedded = embedded
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="embedded-redis-supervisor", daemon=True
        )

    def start(self) -> Supervisor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=20)

    def _run(self) -> None:
        wait, failed = self.interval, ""
        while not self._stop.wait(wait):
            try:
                self.check()
            except EmbeddedRedisError as exc:  # it exited at start: what it said, once
                if str(exc) != failed:
                    log.error("embedded Redis supervisor: restart failed: %s", exc)
                failed, wait = str(exc), min(wait * 2, MAX_BACKOFF_SECONDS)
            except Exception:  # keep supervising whatever one attempt raised
                log.exception("embedded Redis supervisor: restart attempt failed")
                wait = min(wait * 2, MAX_BACKOFF_SECONDS)
            else:
                wait, failed = self.interval, ""

    def embedded_redis_restarted(self) -> None:
        """Count one restart of the embedded Redis (metrics); a metrics hiccup is logged and
        the supervising goes on."""
        try:
            metrics.embedded_redis_restarted()
        except Exception:
            log.exception("counting a restart of the embedded Redis failed")

    def check(self) -> bool:
        """One round: restart the embedded Redis if its process is gone. True when it did."""
        if self.embedded.is_running():
            return False
        if self._stop.is_set():
            return False
        if self.embedded.restart():
            log.warning(
                "embedded Redis was not running; restarted it on %s (data in %s)",
                self.embedded.url,
                self.embedded.data_dir,
            )
            self.embedded_redis_restarted()
            return True
        return False
