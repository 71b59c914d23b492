"""`membership ledger rebuild`: recompute the count and the counters from the records."""

from __future__ import annotations

import sys

import click

from membership.cli import with_app
from membership.cli.actor import actor_option
from membership.cli.output import echo_json
from membership.core.runtime import runtime
from membership.ledger import LedgerBusy
from membership.ledger.codec import CorruptRecord
from membership.ledger.rebuild import rebuild as rebuild_ledger
from membership.ledger.rebuild import records_about
from membership.store import patient_client


@click.group()
def ledger() -> None:
    """The member ledger as a whole."""


@ledger.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@actor_option
@with_app
def rebuild(as_json: bool, actor: str) -> None:
    """Recompute the count and every counter from the stored records.

    Run it after changing MEMBER_STATUSES, after a restore, when `stats` says the
    ledger needs it, or just to check: a correct ledger is left as it is. Safe while
    webhooks arrive.
    """
    rt = runtime()
    total = records_about(rt.redis, rt.keys)
    try:
        with (
            patient_client(rt.redis_url) as client,  # its one EXEC may take long
            click.progressbar(length=total, label="reading records", file=sys.stderr) as bar,
        ):
            report = rebuild_ledger(
                client,
                rt.keys,
                rt.settings.member_statuses,
                actor=actor,
                progress=bar.update,
                subscribers=rt.ledger_subscribers,
            )
    except (LedgerBusy, CorruptRecord) as exc:
        raise click.ClickException(f"nothing was changed: {exc}") from None
    if as_json:
        echo_json(report.as_dict())
        return
    click.echo(f"read {report.records:,} records")
    if report.unchanged:
        click.echo(f"nothing differed: the ledger was right ({report.count_after:,} members)")
        return
    for kind, n in sorted(report.differed.items()):
        click.echo(f"rewrote {n:,} {kind} record(s)")
    for name, (was, now) in report.counters.items():
        click.echo(f"  {name}: {was if was is not None else '-'} -> {now}")
    before = "unknown" if report.count_before is None else f"{report.count_before:,}"
    click.echo(f"members: {before} -> {report.count_after:,}")
