"""`membership serve`: the production server (granian, cli/server.py) around the app.

The serve process owns its data directory (serve.lock) and, with REDIS_URL unset, the embedded
Redis, which it starts before any worker, supervises and alone stops (docs/production.md).
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from pathlib import Path

import click

from membership.core.config import load_settings
from membership.store.embedded import EmbeddedRedis, EmbeddedRedisError
from membership.store.ownership import DataDirInUse, ServerLock

log = logging.getLogger(__name__)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    default=2,
    show_default=True,
    type=click.IntRange(1, 64),
    envvar="MEMBERSHIP_WORKERS",
    show_envvar=True,
    help="Worker processes.",
)
@click.option(
    "--threads",
    default=4,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Python threads per worker running the app (connections need none).",
)
@click.option("--access-log/--no-access-log", default=False, help="Log every request.")
def serve(host: str, port: int, workers: int, threads: int, access_log: bool) -> None:
    """Run the service under granian (SIGHUP reloads the workers, SIGTERM stops)."""
    from membership.cli import server
    from membership.core import metrics
    from membership.core.logs import configure_logging, server_log_config
    from membership.store.supervisor import Supervisor

    settings = load_settings()
    configure_logging(settings)  # this process's own lines (supervisor, start-up) included
    metrics_dir = _metrics_dir(settings.data_dir)
    try:
        lock = ServerLock(settings.data_dir).acquire()
    except DataDirInUse as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(
            f"MEMBERSHIP_DATA_DIR: cannot use {settings.data_dir}: {exc.strerror or exc}"
        ) from None
    _check_address(host, port, lock)
    try:
        metrics.fresh_directory(metrics_dir)
    except OSError as exc:
        lock.release()
        raise click.ClickException(
            f"cannot make the metrics directory {metrics_dir}: {exc}"
        ) from None
    embedded = supervisor = None
    try:
        if settings.uses_embedded_redis:
            # Started here, before any worker forks, so they all find it; owned until the end.
            embedded = EmbeddedRedis(settings.data_dir)
            try:
                embedded.ensure_running(owner=True)
            except EmbeddedRedisError as exc:  # what Redis said as it exited, and what to do
                raise click.ClickException(str(exc)) from None
            supervisor = Supervisor(embedded).start()
            log.info("embedded Redis on %s (data in %s)", embedded.url, embedded.data_dir)
        server.run(
            lambda: _create_app(settings),
            host=host,
            port=port,
            workers=workers,
            threads=threads,
            access_log=access_log,
            log_level=settings.log_level,
            on_worker_start=lock.close_inherited,
            log_dictconfig=server_log_config(),
            after_logging_setup=lambda: configure_logging(settings),
        )
    finally:
        if supervisor is not None:
            supervisor.stop()
        metrics.remove_directory(metrics_dir)  # first: a Redis that fails to stop raises
        if embedded is not None:
            embedded.stop()
        lock.release()


def _check_address(host: str, port: int, lock: ServerLock) -> None:
    """One clear line, before anything starts, when the address cannot be listened on."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(infos[0][4])
    except OSError as exc:
        lock.release()
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None


def _metrics_dir(data_dir) -> Path:
    """This server's PROMETHEUS_MULTIPROC_DIR (`metrics.directory_for`), set in the
    environment before prometheus-client is first imported (it reads the variable then, and
    core.metrics imports it only when its first series is made: in the workers, after this)."""
    from membership.core import metrics

    if "prometheus_client" in sys.modules:  # the workers would each count on their own
        raise click.ClickException("prometheus_client was imported before serve could set it up")
    path = metrics.directory_for(data_dir)
    os.environ[metrics.MULTIPROC_ENV] = str(path)
    return path


def _create_app(settings):
    from membership import create_app

    return create_app(settings)
