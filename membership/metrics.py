"""Prometheus metrics: `GET /metrics`, summed over every worker process.

Series (all prefixed `membership_`):

- `http_requests_total{endpoint, method, status}`: `endpoint` is the Flask rule
  (`/v1/banner`) or a plain endpoint's path (`/v1/prompt`), never the raw path; requests
  that match no route are `unmatched`. Counted and timed by the outer WSGI layer
  (membership.http.outer), which every request passes.
- `http_request_duration_seconds{endpoint, method}`: a latency histogram.
- `webhook_events_total{type, outcome}`: each event the ledger's writer finished
  (a subscriber to `Runtime.ledger_subscribers`).
- `members`: the member count, read from Redis at scrape time (absent while unknown).
- `banner_stale_total`: banner answers served stale (Redis unreadable).
- `redis_errors_total{kind}`: requests answered 503 for Redis trouble (`unavailable`,
  `disk` when it refuses writes it cannot persist (MISCONF: its disk is full), or `refused`).
- `embedded_redis_restarts_total`: restarts of the embedded Redis by the serve process.

Several processes: when `PROMETHEUS_MULTIPROC_DIR` is set (the serve process sets it
to a fresh directory before workers start, `fresh_directory`), every process writes its
values to files there and a scrape sums them (prometheus-client's multiprocess mode).
Unset (tests, an app made in-process) the values live in this process's own registry.

The directory is on a memory filesystem (`$XDG_RUNTIME_DIR`, else `/dev/shm`), never under
MEMBERSHIP_DATA_DIR: a full data disk must cost writes, never the processes that serve
reads. Its files are made with their space reserved (`membership.metric_files`), so even a
full memory filesystem makes a process count in memory for a while, never die of SIGBUS.

Who may scrape: an address in METRICS_ALLOW, or `Authorization: Bearer $METRICS_TOKEN`;
anyone else gets the same 404 as a path that does not exist.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import logging
import os
import shutil
import stat
import tempfile
import threading
import time
from pathlib import Path

import redis
from flask import Blueprint, Flask, Response, request
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4 as CONTENT_TYPE,
)
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily
from werkzeug.exceptions import NotFound

from membership import metric_files
from membership.ledger import queries as ledger_queries
from membership.ledger.codec import CorruptRecord
from membership.runtime import runtime

log = logging.getLogger(__name__)

bp = Blueprint("metrics", __name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "unmatched"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def multiproc_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


# --- The serve process's directory --------------------------------------------------


def _memory_filesystem() -> Path:
    """Where the metrics files go: the user's runtime directory, else /dev/shm (both memory
    filesystems on Linux), else the temporary directory."""
    for candidate in (os.environ.get("XDG_RUNTIME_DIR"), "/dev/shm"):
        if candidate and os.path.isdir(candidate) and os.access(candidate, os.W_OK | os.X_OK):
            return Path(candidate)
    return Path(tempfile.gettempdir())


def servers_directory(data_dir: Path | str) -> Path:
    """The directory that holds the metrics directories of the servers on `data_dir`: on a
    memory filesystem, named by the user and the data directory."""
    resolved = str(Path(data_dir).resolve())
    digest = hashlib.sha256(resolved.encode()).hexdigest()[:16]
    return _memory_filesystem() / f"membership-metrics-{os.getuid()}-{digest}"


def fresh_directory(data_dir: Path | str) -> Path:
    """An empty private directory (0700) for this serve process's workers, never under
    `data_dir`: a full data disk must not reach the metrics (a worker writing into a file
    there died of SIGBUS). Called by the serve process while it holds `data_dir`'s lock, so
    whatever an earlier server on `data_dir` left (it was killed) is removed first."""
    parent = servers_directory(data_dir)
    with contextlib.suppress(FileExistsError):
        os.mkdir(parent, 0o700)
    info = os.lstat(parent)
    if (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.getuid()
        and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)  # nobody else put anything there
    ):
        os.chmod(parent, 0o700)
        for left in parent.iterdir():
            if left.is_dir() and not left.is_symlink():
                shutil.rmtree(left, ignore_errors=True)
            else:
                left.unlink(missing_ok=True)
    else:  # someone else's, a symlink, or open to others' writes: never write there
        log.warning("metrics: %s is not a directory of this user alone; not using it", parent)
        parent = Path(tempfile.mkdtemp(prefix="membership-metrics-", dir=parent.parent))
    path = parent / str(os.getpid())
    path.mkdir(mode=0o700)
    return path


def remove_directory(path: Path | str) -> None:
    """At the serve process's exit: its directory, and the one above when nothing else is."""
    path = Path(path)
    shutil.rmtree(path, ignore_errors=True)
    with contextlib.suppress(OSError):  # another server's directory is there, or it is gone
        path.parent.rmdir()


class _Series:
    """This process's metric objects, built for one mode (single process or a directory)."""

    def __init__(self, directory: str | None) -> None:
        self.directory = directory
        self.children: dict[tuple, tuple] = {}  # (endpoint, method, status) -> series
        if directory is not None:
            # Its files with their space reserved: a write into a sparse page of a file on
            # a full filesystem is a SIGBUS, which kills the process (metric_files.py).
            values.MmapedDict = metric_files.AllocatedMmapedDict
        if directory is not None and not getattr(values.ValueClass, "watched", False):
            # prometheus-client picks the value class when it is first imported; the
            # directory may have been set after that (by serve, in this very process). Ours
            # names its files by `_file_identity`, so that they can move (`_check_directory`).
            values.ValueClass = values.MultiProcessValue(_file_identity)
            values.ValueClass.watched = True
        elif directory is None and values.ValueClass is not values.MutexValue:
            values.ValueClass = values.MutexValue
        disable_created_metrics()  # as in multiprocess mode: no `_created` series
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "membership_http_requests",
            "HTTP requests by endpoint (the route, not the path), method and status.",
            ["endpoint", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "membership_http_request_duration_seconds",
            "Time from the request reaching the app to its response, by endpoint and method.",
            ["endpoint", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.webhook_events = Counter(
            "membership_webhook_events",
            "Stripe events the ledger finished, by type and outcome.",
            ["type", "outcome"],
            registry=r,
        )
        self.banner_stale = Counter(
            "membership_banner_stale",
            "Banner answers served stale because Redis could not be read.",
            registry=r,
        )
        self.redis_errors = Counter(
            "membership_redis_errors",
            "Requests answered 503 because Redis was unavailable, refused a write it could "
            "not persist (disk) or refused the operation.",
            ["kind"],
            registry=r,
        )
        self.embedded_restarts = Counter(
            "membership_embedded_redis_restarts",
            "Times the serve process restarted the embedded Redis.",
            registry=r,
        )


# --- A removed directory ----------------------------------------------------------------
#
# The directory may be removed while the server runs (a cleaner, a person). A scrape then
# failed with a 500, and every process went on counting into files no longer in it. So each
# process leaves an empty marker file there and looks for it (at most once a second, on a
# count, and on every scrape). When it is gone, the directory is made anew if another
# process has not already, and the process takes a new file identity: prometheus-client then
# reopens every value in a new file there, from zero, as it does after a fork. Counters
# restart, which Prometheus's rate() takes as a reset. A count made by another thread at the
# very moment of the move may still go to the old file.

DIRECTORY_CHECK_SECONDS = 1.0
_moves = 0  # times this process found the directory gone
_checked_at = 0.0
_marker: str | None = None  # this process's empty file in the directory, once made


def _file_identity() -> str:
    """What names this process's files: its pid, then `<pid>-<moves>` once it has moved."""
    return str(os.getpid()) if _moves == 0 else f"{os.getpid()}-{_moves}"


def _check_directory(directory: str, now: float | None = None) -> None:
    """If the directory went since this process marked it (made anew or not by another
    process meanwhile), make it and move this process's values there."""
    global _moves, _checked_at, _marker
    if now is not None:
        if now - _checked_at < DIRECTORY_CHECK_SECONDS:
            return
        _checked_at = now
    marker = _marker_path(directory)
    if os.path.exists(marker):
        return
    lost = _marker == marker or not os.path.isdir(directory)
    try:
        if lost:
            os.makedirs(os.path.dirname(directory), mode=0o700, exist_ok=True)  # private too
            os.makedirs(directory, mode=0o700, exist_ok=True)
            _moves += 1
            marker = _marker_path(directory)
        Path(marker).touch()
    except OSError as exc:
        log.error("metrics: cannot mark or make the directory %s: %s", directory, exc)
        return
    _marker = marker
    if lost:
        log.warning(
            "metrics: the directory %s was removed; made anew, counts start again", directory
        )


def _marker_path(directory: str) -> str:
    # Not `*.db`: the collector reads only those.
    return os.path.join(directory, f".{_file_identity()}.here")


_series: _Series | None = None
_series_lock = threading.Lock()


def _get() -> _Series:
    global _series
    directory = multiproc_dir()
    series = _series
    if series is None or series.directory != directory:
        with _series_lock:
            if _series is None or _series.directory != directory:
                _series = _Series(directory)
                if directory is not None:  # its files are there from now on: mark it
                    _check_directory(directory)
            series = _series
    return series


# --- What other modules call ----------------------------------------------------


def embedded_redis_restarted() -> None:
    """The serve process restarted the embedded Redis."""
    _get().embedded_restarts.inc()


def worker_exited(pid: int) -> None:
    """A worker process is gone: drop its live-gauge files (multiprocess mode only)."""
    directory = multiproc_dir()
    if directory is not None:
        multiprocess.mark_process_dead(pid, directory)
        for marker in [
            *Path(directory).glob(f".{pid}.here"),
            *Path(directory).glob(f".{pid}-*.here"),
        ]:
            marker.unlink(missing_ok=True)


def banner_served_stale() -> None:
    _get().banner_stale.inc()


def redis_error(kind: str) -> None:
    """A request answered 503 for Redis: `unavailable`, `disk` or `refused`."""
    _get().redis_errors.labels(kind=kind).inc()


def ledger_outcome(outcome) -> None:
    """A ledger subscriber: count each finished Stripe event by type and outcome."""
    if outcome.event_id is None:  # offline members, sync snapshots, rebuilds: not webhooks
        return
    event_type = (outcome.event_type or "unknown")[:100]
    _get().webhook_events.labels(type=event_type, outcome=outcome.outcome).inc()


# --- HTTP -------------------------------------------------------------------------


def init_app(app: Flask) -> None:
    """Serve /metrics; count ledger outcomes (requests are counted by the outer layer)."""
    _get()  # build the series now, in the mode this process runs in
    runtime(app).ledger_subscribers.append(ledger_outcome)
    app.register_blueprint(bp)


def count(endpoint: str, method: str, status: int, seconds: float | None) -> None:
    """One answered request (membership.http.outer); `seconds` None when it was not timed."""
    series = _get()
    if series.directory is not None:
        _check_directory(series.directory, time.monotonic())
    # Labelled children are cached: `.labels()` locks and builds a key on every call,
    # and this runs on every banner request (the hot path).
    key = (endpoint, method, status)
    children = series.children.get(key)
    if children is None:
        children = series.children[key] = (
            series.requests.labels(endpoint, method, str(status)),
            series.latency.labels(endpoint, method),
        )
    children[0].inc()
    if seconds is not None:
        children[1].observe(seconds)


def _client_allowed(settings) -> bool:
    token = settings.metrics_token
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode("utf-8", "replace"), token.encode("utf-8")
        ):
            return True
    try:
        address = ipaddress.ip_address((request.remote_addr or "").split("%", 1)[0])
    except ValueError:  # no address (a unix socket) or not an IP
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(
        address in ipaddress.ip_network(network, strict=False) for network in settings.metrics_allow
    )


class _Members:
    """The member count, read when scraped (one GET), so every process reports the same."""

    def __init__(self, rt) -> None:
        self.rt = rt

    def collect(self):
        try:
            count = ledger_queries.count(self.rt.redis, self.rt.keys)
        except (redis.exceptions.RedisError, CorruptRecord, ValueError) as exc:
            log.debug("metrics: cannot read the member count: %s", exc)
            return
        if count is not None:
            gauge = GaugeMetricFamily(
                "membership_members", "Members counted by the ledger, read at scrape time."
            )
            gauge.add_metric([], count)
            yield gauge


class _Scrape:
    """What one scrape exposes: every process's series (or this one's), then the count."""

    def __init__(self, series: _Series, rt) -> None:
        self.series = series
        self.members = _Members(rt)

    def collect(self):
        if self.series.directory is not None:
            _check_directory(self.series.directory)
            yield from multiprocess.MultiProcessCollector(
                None, path=self.series.directory
            ).collect()
        else:
            yield from self.series.registry.collect()
        yield from self.members.collect()


@bp.get("/metrics")
def metrics():
    rt = runtime()
    if not _client_allowed(rt.settings):
        raise NotFound()
    body = generate_latest(_Scrape(_get(), rt))
    # The classic text format: our names need no escaping, and every Prometheus reads it.
    return Response(body, headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})
