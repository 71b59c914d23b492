"""The `membership` command. Each area adds its commands in a module of this package."""

from __future__ import annotations

import functools

import click

from membership.config import ConfigError


class _Group(click.Group):
    """Turns a bad setting into one clear line and exit status 2, not a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            click.echo(f"configuration error: {exc}", err=True)
            ctx.exit(2)


@click.group(cls=_Group)
def cli() -> None:
    """Member ledger, goal banner and paywall prompts for independent newsrooms."""


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
        from membership.runtime import runtime
        from membership.store.embedded import EmbeddedRedisUnavailable

        try:
            app = create_app()
        except EmbeddedRedisUnavailable as exc:
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
    from membership.cli import dev, events, ledger, members, serve, stats, sync

    cli.add_command(serve.serve)
    cli.add_command(dev.dev)
    cli.add_command(members.members)
    cli.add_command(events.events)
    cli.add_command(stats.stats)
    cli.add_command(sync.sync)
    cli.add_command(ledger.ledger)

    # --- Goals and banner ---
    from membership.cli import goals

    cli.add_command(goals.goals)

    # --- Audit ---
    from membership.cli import audit

    cli.add_command(audit.audit)


_register()


def main() -> None:
    cli(prog_name="membership")
