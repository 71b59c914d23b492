"""`membership stats`: the count and what it is made of."""

from __future__ import annotations

import click

from membership.cli import with_app
from membership.cli.output import echo_json
from membership.core import i18n
from membership.core.runtime import runtime
from membership.ledger import ledger_for
from membership.ledger.codec import CorruptRecord


def money(per_currency: dict[str, int]) -> str:
    """Minor units as money: 12345 eur -> "€123.45", 500 jpy -> "¥500" (Babel knows the digits)."""
    if not per_currency:
        return "-"
    return ", ".join(i18n.format_money("en", n, cur) for cur, n in per_currency.items())


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object; `members` is the count.")
@with_app
def stats(as_json: bool) -> None:
    """Members, members by status and plan, monthly recurring revenue, contributions."""
    try:
        data = ledger_for(runtime()).queries.stats()
    except CorruptRecord as exc:
        raise click.ClickException(
            f"a stored counter is corrupt ({exc}); run `membership ledger rebuild`"
        ) from None
    if as_json:
        echo_json(data)
        return
    members = data["members"]
    click.echo(f"members: {'unknown (none counted yet)' if members is None else f'{members:,}'}")
    click.echo(
        f"  through Stripe: {data['stripe_members']:,}; offline: {data['offline_members']:,}"
        f" ({data['offline_also_in_stripe']:,} of them also pay through Stripe)"
    )
    for title, counts in (
        ("subscriptions by status", data["subscriptions_by_status"]),
        ("members by plan", data["members_by_plan"]),
    ):
        click.echo(f"{title}:" + ("" if counts else " -"))
        for name, n in counts.items():
            click.echo(f"  {name}: {n:,}")
    click.echo(f"monthly recurring revenue: {money(data['mrr'])}")
    contributions = data["contributions"]
    click.echo(
        f"one-time contributions: {contributions['contributors']:,} contributors,"
        f" {money(contributions['sum'])}"
    )
    if data["needs_rebuild"]:
        click.echo(
            f"NEEDS REBUILD: {data['needs_rebuild'].get('reason', '')};"
            " run `membership ledger rebuild`"
        )
