"""The production HTTP server: granian's WSGI interface around the app (why granian, and how
it reloads and replaces workers: docs/production.md, "Production server").

`run()` is what `membership serve` and the benchmarks' baselines call. granian is used through
its public interface except for its crash-loop exit: `_server_class` says what and why.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


def exit_with_parent(parent: int, *, interval: float = 0.5, grace: float = 20.0) -> None:
    """In a worker: stop once the serve process `parent` is gone, even if it was `kill -9`ed
    (an orphan would keep the port and the data directory). SIGTERM every second (one that
    lands while the worker starts is lost), SIGKILL after `grace` seconds."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        log.warning("the serve process (pid %d) is gone: this worker stops", parent)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def stop_promptly_until_loaded() -> None:
    """In the serve process: a worker forked from it dies at once on SIGTERM/SIGINT until
    granian installs the worker's own handlers (after the app has loaded).

    A forked worker inherits the serve process's handlers, which in the copy only set a flag
    nobody reads: a stop arriving before the app had loaded was lost, and the server's
    shutdown waited its 20 s to kill that worker. The signals are blocked across the fork
    and unblocked in the child only once their default action is back, so none is lost in
    between (a stop pending then ends the worker at once)."""
    stops = {signal.SIGTERM, signal.SIGINT}

    def in_child() -> None:
        for signum in stops:
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)

    os.register_at_fork(
        before=lambda: signal.pthread_sigmask(signal.SIG_BLOCK, stops),
        after_in_parent=lambda: signal.pthread_sigmask(signal.SIG_UNBLOCK, stops),
        after_in_child=in_child,
    )


def _server_class():
    """granian's MPServer, replacing a crashed worker however soon it crashes again.

    granian stops the whole server when a worker dies within 5.5 s of its last respawn
    (say, one killed shortly after a reload), and offers no setting for it. This is the
    one place granian's internals are overridden, checked against the versions
    pyproject.toml pins (re-test on upgrade): `respawned_wrks` is read only by that exit
    (`AbstractServer._serve_loop`), so a dict that always answers 0 never trips it, and
    `_respawn_workers` pauses a second before replacing a worker that crashed less than
    5 s ago, so a crash loop costs little CPU.
    """
    from granian.server.mp import MPServer

    class _NeverACrashLoop(dict):
        def get(self, key, default=None):
            return 0.0

    class Server(MPServer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.respawned_wrks = _NeverACrashLoop()
            self._crashed_at: dict[int, float] = {}

        def _respawn_workers(self, workers, spawn_target, target_loader, delay: float = 0):
            if not delay:  # a crash, not a reload
                now = time.monotonic()
                if any(now - self._crashed_at.get(idx, -60.0) < 5 for idx in workers):
                    time.sleep(1)
                self._crashed_at.update(dict.fromkeys(workers, time.monotonic()))
            return super()._respawn_workers(workers, spawn_target, target_loader, delay)

    return Server


def load_frozen(load: Callable[[], Callable]) -> Callable:
    """`load()`, then what the app holds (Flask, Babel's data, the snapshot) kept out of
    the garbage collector's sight: it lives as long as the worker, and a full collection
    walking it stalled whichever request set it off (docs/benchmarks.md, "Staff
    pages")."""
    app = load()
    gc.collect()
    gc.freeze()
    return app


def run(
    load: Callable[[], Callable],
    *,
    host: str,
    port: int,
    workers: int,
    threads: int,
    access_log: bool = False,
    log_level: str = "info",
    on_worker_start: Callable[[], None] | None = None,
    log_dictconfig: dict | None = None,
    after_logging_setup: Callable[[], None] | None = None,
) -> None:
    """Serve the WSGI app `load()` returns with granian until SIGTERM/SIGINT; SIGHUP reloads.

    `on_worker_start` runs in each new worker before the app is built; `log_dictconfig` is
    handed to granian; `after_logging_setup` runs once granian has configured logging here.
    """
    from granian.constants import HTTPModes, Interfaces
    from granian.http import HTTP1Settings
    from granian.log import LogLevels

    Server = _server_class()
    serve_pid = os.getpid()

    def loader():
        exit_with_parent(serve_pid)
        if on_worker_start is not None:
            on_worker_start()
        return load_frozen(load)

    server = Server(
        "membership",  # shown in logs only: the app comes from `loader`
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        workers=workers,
        blocking_threads=threads,
        http=HTTPModes.http1,
        http1_settings=HTTP1Settings(
            header_read_timeout=10_000, keep_alive=True, max_buffer_size=64 * 1024
        ),
        backlog=2048,
        log_level=LogLevels(log_level.lower()),
        log_dictconfig=log_dictconfig,
        log_access=access_log,
        respawn_failed_workers=True,
        respawn_interval=1.0,
        workers_kill_timeout=20,
    )
    if after_logging_setup is not None:
        after_logging_setup()
    stop_promptly_until_loaded()
    # What this process imported, kept out of the collector's sight before the workers fork
    # (as Python's gc.freeze docs advise): their copies are not written to by collections,
    # their own first collection (load_frozen) walks only the app, and this process's exit
    # skips walking it.
    gc.collect()
    gc.freeze()
    server.serve(target_loader=loader, wrap_loader=False)
