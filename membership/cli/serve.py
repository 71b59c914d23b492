"""`membership serve`: the production WSGI server (gunicorn) around the app."""

from __future__ import annotations

from collections.abc import Callable

import click
from gunicorn.app.base import BaseApplication

from membership.config import load_settings
from membership.store import EmbeddedRedis


class WsgiServer(BaseApplication):
    """gunicorn, in-process, around what `load()` returns: the app, or a bench baseline."""

    def __init__(self, load: Callable[[], object], options: dict) -> None:
        self._load = load
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            if key in self.cfg.settings:  # newer gunicorn settings are skipped on older ones
                self.cfg.set(key, value)

    def load(self):
        return self._load()


def gunicorn_options(
    host: str,
    port: int,
    workers: int,
    threads: int,
    *,
    access_log: bool = False,
    log_level: str = "info",
) -> dict:
    """The server settings `membership serve` uses; benchmarks give their baselines the same."""
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "timeout": 30,
        "graceful_timeout": 20,
        "keepalive": 5,
        "accesslog": "-" if access_log else None,
        "errorlog": "-",
        "loglevel": log_level,
        "proc_name": "membership",
        # Several servers on one host would fight over one shared control socket.
        "control_socket_disable": True,
    }


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    default=2,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes.",
)
@click.option(
    "--threads",
    default=4,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Threads per worker.",
)
@click.option("--access-log/--no-access-log", default=False, help="Log every request.")
def serve(host: str, port: int, workers: int, threads: int, access_log: bool) -> None:
    """Run the service under gunicorn."""
    settings = load_settings()
    embedded = None
    if settings.uses_embedded_redis:
        # Start it once in the master, before workers fork, so they all find it.
        embedded = EmbeddedRedis(settings.data_dir)
        embedded.ensure_running()
        click.echo(f"embedded Redis on {embedded.url} (data in {embedded.data_dir})", err=True)
    options = gunicorn_options(
        host, port, workers, threads, access_log=access_log, log_level=settings.log_level.lower()
    )
    try:
        WsgiServer(lambda: _create_app(settings), options).run()
    finally:
        if embedded is not None and embedded.started_here:
            embedded.stop()


def _create_app(settings):
    from membership import create_app

    return create_app(settings)
