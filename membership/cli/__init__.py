"""The `membership` command. Each area adds its commands in a module of this package."""

from __future__ import annotations

import functools
import gc
import logging
import os

import click

from membership.core.config import ConfigError


class _Group(click.Group):
    """One clear line instead of a traceback: a bad setting exits 2; Redis, the data
    directory, Stripe or the ledger failing exits 1 (cli/errors.py says which)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            click.echo(f"configuration error: {exc}", err=True)
            ctx.exit(2)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:
            # The reader stopped reading (`membership events list | head -1`): what it took
            # is the answer. Output still buffered goes nowhere, as Python's docs advise.
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
            ctx.exit(0)
        except Exception as exc:
            from membership.cli.errors import explain

            message = explain(exc)
            if message is None:
                raise
            click.echo(f"error: {message}", err=True)
            ctx.exit(1)


@click.group(cls=_Group)
@click.option(
    "--verbose",
    "-v",
    is_flag=True,
    help="Also log what the command does (which Redis it uses, ...), at LOG_LEVEL.",
)
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Member ledger, goal banner and paywall prompts for independent newsrooms."""
    # A command prints its result; the service's INFO lines ("using embedded Redis ...")
    # are noise there unless asked for. The server keeps logging as configured.
    if verbose or ctx.invoked_subcommand == "serve":
        return
    for name in ("membership", "stripe"):
        logger = logging.getLogger(name)
        ctx.call_on_close(functools.partial(logger.setLevel, logger.level))
        logger.setLevel(max(logging.WARNING, logger.level))


def with_app(command):
    """Run a command inside an app context, on the same Redis a running server uses.

    With the embedded default this reaches the running server's Redis, or starts
    it for the duration of the command and stops it afterwards. It never starts
    or stops one a running `membership serve` owns: during an outage it waits a
    few seconds for that server to restart it, then gives up with one line.
    """

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from membership import create_app
        from membership.core.runtime import runtime
        from membership.store.embedded import EmbeddedRedisError

        try:
            app = create_app(start_embedded_redis=True)
        except EmbeddedRedisError as exc:  # down in a server's hands, or failed to start
            raise click.ClickException(str(exc)) from None
        rt = runtime(app)
        try:
            with app.app_context():
                return command(*args, **kwargs)
        finally:
            rt.redis.close()
            if rt.embedded is not None and rt.embedded.started_here:
                rt.embedded.stop_unless_owned()

    return wrapper


def _register() -> None:
    from membership.cli import (
        audit,
        campaigns,
        dev,
        embedded_redis,
        events,
        goals,
        ledger,
        members,
        serve,
        staff,
        stats,
        sync,
    )

    for command in (
        serve.serve,
        dev.dev,
        members.members,
        events.events,
        stats.stats,
        sync.sync,
        ledger.ledger,
        embedded_redis.redis_group,
        goals.goals,
        campaigns.campaigns,
        audit.audit,
        staff.staff,
    ):
        cli.add_command(command)


_register()


def main() -> None:
    # The modules just imported live as long as the command: kept out of the collector's
    # sight, no collection walks them, the interpreter's last one at exit included.
    gc.freeze()
    cli(prog_name="membership")
