"""Prometheus metrics: `GET /metrics`, summed over every worker process (the series, scraping
and the multiprocess directory: docs/observability.md, docs/production.md).

prometheus-client picks its multiprocess mode when first imported, by
PROMETHEUS_MULTIPROC_DIR being set, so this module imports it only when the first series is
made: `membership serve` sets the variable before that (cli/serve.py). Unset (tests, an app
made in-process), the values live in this process's own registry."""

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
from pathlib import Path

from flask import Blueprint, Flask, Response, request
from werkzeug.exceptions import NotFound, ServiceUnavailable

from membership.core.openapi import TEXT, answer, error
from membership.core.runtime import runtime

log = logging.getLogger(__name__)

bp = Blueprint("metrics", __name__)

OPENAPI = {
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics, summed over every worker process",
            "description": "Only from METRICS_ALLOW networks or with `Authorization: Bearer "
            "$METRICS_TOKEN`; anyone else gets 404, as for a path that does not exist.",
            "security": [{}, {"metricsToken": []}],
            "responses": {
                "200": answer("Prometheus text exposition format 0.0.4", TEXT, "text/plain"),
                "404": error("Not from an allowed network and no valid token"),
            },
        }
    }
}

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "unmatched"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


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


def _private(path: Path) -> bool:
    """A directory of this user that nobody else may write into (not a symlink)."""
    info = os.lstat(path)
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.getuid()
        and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )


def directory_for(data_dir: Path | str) -> Path:
    """Where this serve process's workers will keep their files, never under `data_dir` (a
    worker writing into a mapped file on a full data disk died of SIGBUS): named, not made
    yet (`fresh_directory` makes it once `data_dir` is locked)."""
    parent = servers_directory(data_dir)
    with contextlib.suppress(FileExistsError):
        os.mkdir(parent, 0o700)
    if not _private(parent):  # someone else's, a symlink, or open to others' writes
        log.warning("metrics: %s is not a directory of this user alone; not using it", parent)
        parent = Path(tempfile.mkdtemp(prefix="membership-metrics-", dir=parent.parent))
    return parent / str(os.getpid())


def fresh_directory(path: Path | str) -> Path:
    """Make `path` (from `directory_for`), empty and private (0700). Called by the serve
    process while it holds the data directory's lock, so whatever an earlier server on it
    left beside `path` (it was killed) is removed first."""
    path = Path(path)
    parent = path.parent
    if not _private(parent):
        raise OSError(f"{parent} is not a directory of this user alone")
    os.chmod(parent, 0o700)
    for left in parent.iterdir():
        if left.is_dir() and not left.is_symlink():
            shutil.rmtree(left, ignore_errors=True)
        else:
            left.unlink(missing_ok=True)
    path.mkdir(mode=0o700)
    return path


def remove_directory(path: Path | str) -> None:
    """At the serve process's exit: its directory, and the one above when nothing else is."""
    path = Path(path)
    shutil.rmtree(path, ignore_errors=True)
    with contextlib.suppress(OSError):  # another server's directory is there, or it is gone
        path.parent.rmdir()


class _Series:
    """This process's metric objects, made once the environment names the mode."""

    def __init__(self) -> None:
        # prometheus-client decides its mode as it is first imported: here, with this.
        self.directory = os.environ.get(MULTIPROC_ENV) or None
        from prometheus_client import CollectorRegistry, Histogram, disable_created_metrics

        self.children: dict[tuple, tuple] = {}  # (endpoint, method, status) -> series
        disable_created_metrics()  # as in multiprocess mode: no `_created` series
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = self._counter(
            "membership_http_requests",
            "HTTP requests by endpoint (the route, not the path), method and status.",
            "endpoint",
            "method",
            "status",
        )
        self.latency = Histogram(
            "membership_http_request_duration_seconds",
            "Time from the request reaching the app to its response, by endpoint and method.",
            ["endpoint", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.webhook_events = self._counter(
            "membership_webhook_events",
            "Stripe events the ledger finished, by type and outcome.",
            "type",
            "outcome",
        )
        self.banner_stale = self._counter(
            "membership_banner_stale",
            "Banner answers served stale because Redis could not be read.",
        )
        self.redis_errors = self._counter(
            "membership_redis_errors",
            "Requests answered 503 because Redis was unavailable, refused a write it could "
            "not persist (disk) or refused the operation.",
            "kind",
        )
        self.embedded_restarts = self._counter(
            "membership_embedded_redis_restarts",
            "Times the serve process restarted the embedded Redis.",
        )

    def _counter(self, name: str, text: str, *labels: str):
        from prometheus_client import Counter

        return Counter(name, text, labels, registry=self.registry)


_series: _Series | None = None
_series_lock = threading.Lock()


def _get() -> _Series:
    global _series
    series = _series
    if series is None:
        with _series_lock:
            if _series is None:
                _series = _Series()
            series = _series
    return series


# --- What other modules call ----------------------------------------------------


def embedded_redis_restarted() -> None:
    """The serve process restarted the embedded Redis."""
    _get().embedded_restarts.inc()


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


class _Scrape:
    """What one scrape exposes: every process's series (or this one's), then the member
    count, read now (one GET), so every process reports the same."""

    def __init__(self, series: _Series, rt) -> None:
        self.series = series
        self.rt = rt

    def collect(self):
        from prometheus_client import multiprocess
        from prometheus_client.core import GaugeMetricFamily

        directory = self.series.directory
        if directory is not None:
            yield from multiprocess.MultiProcessCollector(None, path=directory).collect()
        else:
            yield from self.series.registry.collect()
        count = self.rt.member_count()
        if count is not None:
            gauge = GaugeMetricFamily(
                "membership_members", "Members counted by the ledger, read at scrape time."
            )
            gauge.add_metric([], count)
            yield gauge


@bp.get("/metrics")
def metrics():
    from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4 as CONTENT_TYPE
    from prometheus_client import generate_latest

    rt = runtime()
    if not _client_allowed(rt.settings):
        raise NotFound()
    series = _get()
    if series.directory is not None and not os.path.isdir(series.directory):
        # Removed under the running server: its workers write into files no longer there.
        log.error(
            "metrics: the directory %s was removed; restart membership serve to count again",
            series.directory,
        )
        raise ServiceUnavailable()
    body = generate_latest(_Scrape(series, rt))
    # The classic text format: our names need no escaping, and every Prometheus reads it.
    return Response(body, headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})
