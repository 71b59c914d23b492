"""A small bounded queue and one worker thread per process, for work that must not be on a
request's path (sign-in's lookup and mail: the answer is the same, in body and in time,
member or not). A full queue refuses at once; the thread starts again in a forked child.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import weakref
from collections.abc import Callable

log = logging.getLogger(__name__)

CAPACITY = 200
_outboxes: weakref.WeakSet[Outbox] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # A thread of the parent may have held a lock at the fork; in the child it never lets go.
    for outbox in list(_outboxes):
        outbox._lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


class Outbox:
    def __init__(self, name: str, capacity: int = CAPACITY) -> None:
        self.name = name
        self.capacity = capacity
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._queue: queue.Queue[Callable[[], None]] = queue.Queue(capacity)
        _outboxes.add(self)

    def submit(self, job: Callable[[], None]) -> bool:
        """Queue `job`; False (and nothing queued) when the queue is full."""
        self._ensure_worker()
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            return False
        return True

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every job queued so far has run; False if `timeout` passed first."""
        done = threading.Event()
        if not self.submit(done.set):
            return False
        return done.wait(timeout)

    def _ensure_worker(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            if self._pid is not None:  # a forked child: the parent's queue is not ours
                self._queue = queue.Queue(self.capacity)
            self._pid = os.getpid()
            threading.Thread(target=self._run, name=f"outbox-{self.name}", daemon=True).start()

    def _run(self) -> None:
        jobs = self._queue
        while True:
            job = jobs.get()
            try:
                job()
            except Exception:
                log.exception("%s: a queued job failed", self.name)
