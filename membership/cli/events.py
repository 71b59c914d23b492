"""`membership events`: the webhook event log, and replaying events that failed."""

from __future__ import annotations

import click

from membership.cli import with_app
from membership.cli.actor import actor_option
from membership.cli.output import echo_json, echo_table
from membership.core.runtime import runtime
from membership.ledger import OUTCOMES, ledger_for
from membership.ledger.events import iso
from membership.stripe.replay import NOT_APPLIED, UnknownEvent
from membership.stripe.replay import replay as replay_event


@click.group()
def events() -> None:
    """The Stripe webhook event log."""


@events.command("list")
@click.option("--outcome", type=click.Choice(OUTCOMES), help="Only events with this outcome.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_app
def list_(outcome: str | None, limit: int, as_json: bool) -> None:
    """Recent events, newest first."""
    rows = ledger_for(runtime()).events.recent(outcome=outcome, limit=limit)
    if as_json:
        echo_json([_iso_created(row) for row in rows])
    else:
        echo_table(rows, ["received", "id", "type", "outcome", "error"])


def _iso_created(row: dict) -> dict:
    """Stripe's `created` (epoch seconds) as ISO-8601, like every time the CLI prints."""
    created = row.get("created")
    try:
        return {**row, "created": iso(int(created))}
    except (TypeError, ValueError, OverflowError, OSError):
        return row  # absent or not a number: shown as stored


@events.command("replay")
@click.argument("event_id", required=False)
@click.option(
    "--failed", "all_failed", is_flag=True, help="Replay every event whose last try failed."
)
@actor_option
@with_app
def replay(event_id: str | None, all_failed: bool, actor: str) -> None:
    """Apply a stored event again (EVENT_ID), or all failed ones (--failed).

    The exactly-once rule holds: an event already applied answers `duplicate`. Every
    replay is audited, whatever comes of it. Exits non-zero when any event still fails.
    """
    if bool(event_id) == all_failed:
        raise click.UsageError("give either an EVENT_ID or --failed")
    ledger = ledger_for(runtime())
    ids = ledger.events.failed_ids() if all_failed else [event_id]
    if not ids:
        click.echo("no failed events to replay")
        return
    still_failing = 0
    for eid in ids:  # the dashboard's replay: each one audited, whatever comes of it
        try:
            result = replay_event(ledger, eid, actor=actor)
        except UnknownEvent:
            click.echo(f"{eid}: no stored payload (unknown id, or expired)", err=True)
            still_failing += 1
            continue
        if result.outcome == NOT_APPLIED:
            click.echo(f"{eid}: not applied ({result.error})", err=True)
        else:
            suffix = f" ({result.error})" if result.error and result.outcome == "failed" else ""
            click.echo(f"{eid}: {result.outcome}{suffix}")
        still_failing += not result.succeeded
    if still_failing:
        raise click.ClickException(f"{still_failing} event(s) could not be applied")
