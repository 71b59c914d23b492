"""A small bounded queue and one worker thread per process, for work that must not be on a
request's path.

Sign-in uses it so that the answer to `POST /v1/member/sign-in` is the same, in body and in
time, whether the email is a member's or not: the request only validates and queues; looking
the email up, writing the link and talking to the SMTP server happen here, later.

- Bounded (`capacity` jobs): when full, `submit` says so at once and the caller answers 503;
  nothing blocks a request thread and memory stays bounded under a flood.
- The thread starts on the first job, and again in a forked child (checked by pid: threads do
  not survive a fork, and servers fork workers after loading the app).
- A job that raises is logged with its traceback and the worker goes on.
- `wait_idle` lets tests (and a shutdown) wait until every queued job has run.
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
