"""`membership sync`: compare the ledger with Stripe's API and, with --apply, repair it."""

from __future__ import annotations

import time

import click

from membership.cli import with_app
from membership.cli.actor import actor_option
from membership.cli.output import echo_json
from membership.core.runtime import runtime
from membership.ledger import ledger_for
from membership.stripe import sync as reconcile
from membership.stripe.api import iter_subscriptions, make_client


@click.command()
@click.option("--apply", "apply_", is_flag=True, help="Make the ledger match Stripe.")
@click.option(
    "--force",
    is_flag=True,
    help="With --apply: end subscriptions unknown to Stripe even when very many are.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@actor_option
@with_app
def sync(apply_: bool, force: bool, as_json: bool, actor: str) -> None:
    """List every subscription from Stripe and report (or repair) the drift.

    Safe while webhooks keep arriving: a webhook newer than the listing wins.
    """
    rt = runtime()
    client = make_client(rt.settings)
    try:
        done = reconcile.run_audited(
            ledger_for(rt),
            iter_subscriptions(client),
            actor=actor,
            observed_at=int(time.time()),
            apply=apply_,
            force=force,
            progress=lambda n: click.echo(f"listed {n:,} subscriptions...", err=True),
        )
    except reconcile.SyncRefused as exc:
        raise click.ClickException(f"refusing to apply, nothing was changed: {exc}") from None
    result, count_before, count_after = done.result, done.members_before, done.members_after
    if as_json:
        echo_json(
            {
                "listed": result.listed,
                "drift": result.drift.as_dict(),
                "applied": result.applied,
                "kept_newer": result.kept_newer,
                "unrepairable": result.unrepairable,
                "linked_customers": result.linked,
                "members_before": count_before,
                "members_after": count_after,
            }
        )
        return
    drift = result.drift
    click.echo(f"listed {result.listed:,} subscriptions from Stripe")
    if drift.clean:
        click.echo("no drift: the ledger matches Stripe")
    differs = [
        f"{c.subscription_id}: ledger {c.ledger_status}, Stripe {c.stripe_status}"
        for c in drift.status_differs
    ]
    sections = [
        ("missing from the ledger", drift.missing),
        ("in the ledger but unknown to Stripe", drift.extra),
        ("status differs", differs),
    ]
    if result.unrepairable:
        sections.append(
            ("final in the ledger, so a listing cannot change them", result.unrepairable)
        )
    for label, lines in sections:
        click.echo(f"{label}: {len(lines)}")
        for line in lines:
            click.echo(f"  {line}")
    if apply_:
        click.echo(
            f"applied {len(result.applied)}; kept {len(result.kept_newer)} newer states; "
            f"linked {len(result.linked)} customer emails; "
            f"members {_count(count_before)} -> {_count(count_after)}"
        )
    elif not drift.clean:
        click.echo("run with --apply to make the ledger match Stripe")


def _count(count: int | None) -> str:
    return "unknown" if count is None else f"{count:,}"
