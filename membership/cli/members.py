"""`membership members`: offline members (bank transfer, gifts, comps) kept by staff."""

from __future__ import annotations

import click

from membership.cli import with_app
from membership.cli._actor import actor_option
from membership.cli._output import echo_json, echo_table
from membership.ledger import LedgerInputError, ledger_for
from membership.runtime import runtime


@click.group()
def members() -> None:
    """Offline members: added and removed by staff, with a reason."""


@members.command("add")
@click.argument("email")
@click.option("--reason", required=True, help="Why, e.g. 'bank transfer, invoice 2026-114'.")
@click.option("--name", default=None, help="The member's name, if known.")
@actor_option
@with_app
def add(email: str, reason: str, name: str | None, actor: str) -> None:
    """Add EMAIL as a member outside Stripe; it counts like a paying member."""
    try:
        writer = ledger_for(runtime()).writer
        outcome = writer.add_offline_member(email, reason, name=name, actor=actor)
    except LedgerInputError as exc:
        raise click.UsageError(str(exc)) from None
    if outcome.outcome == "applied":
        click.echo(f"added {email}; members: {outcome.count_before} -> {outcome.count_after}")
    else:
        click.echo(f"{email} already is an offline member; members: {outcome.count_after}")


@members.command("remove")
@click.argument("email")
@click.option("--reason", required=True, help="Why the membership ends.")
@actor_option
@with_app
def remove(email: str, reason: str, actor: str) -> None:
    """Remove the offline member EMAIL (a Stripe subscription, if any, still counts)."""
    try:
        outcome = ledger_for(runtime()).writer.remove_offline_member(email, reason, actor=actor)
    except LedgerInputError as exc:
        raise click.UsageError(str(exc)) from None
    if outcome.outcome == "applied":
        click.echo(f"removed {email}; members: {outcome.count_before} -> {outcome.count_after}")
    else:
        raise click.ClickException(f"{email} is not an offline member")


@members.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_app
def list_(as_json: bool) -> None:
    """The offline members, and whether each also pays through Stripe."""
    rows = ledger_for(runtime()).queries.offline_members()
    if as_json:
        echo_json(rows)
    else:
        echo_table(rows, ["email", "name", "reason", "added_at", "also_in_stripe"])
