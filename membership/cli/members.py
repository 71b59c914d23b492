"""`membership members`: offline members (bank transfer, gifts, comps) kept by staff."""

from __future__ import annotations

import time

import click

from membership.cli import with_app
from membership.cli.actor import actor_option
from membership.cli.output import echo_json, echo_table, refusals
from membership.core.runtime import runtime
from membership.ledger import LedgerInputError, Queries, ledger_for
from membership.ledger.model import valid_email
from membership.members import rules
from membership.prompts.tokens import Tokens


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
    with refusals(LedgerInputError, error=click.UsageError):
        writer = ledger_for(runtime()).writer
        outcome = writer.add_offline_member(email, reason, name=name, actor=actor)
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
    with refusals(LedgerInputError, error=click.UsageError):
        outcome = ledger_for(runtime()).writer.remove_offline_member(email, reason, actor=actor)
    if outcome.outcome == "applied":
        click.echo(f"removed {email}; members: {outcome.count_before} -> {outcome.count_after}")
    else:
        raise click.ClickException(f"{email} is not an offline member")


def member_subject(queries: Queries, who: str) -> str | None:
    """The member token's subject for a current member, None for anyone else.

    `cus_...`: a Stripe customer with a subscription that counts (`live` > 0). Anything
    else is an email: a Stripe member's (its email bucket's `live` > 0) or an offline
    member's; the subject is `email:<the normalized address>`.
    """
    who = who.strip()
    if who.startswith("cus_"):
        if not rules.CUSTOMER_ID.match(who):
            raise click.UsageError(f"{who!r} is not a Stripe customer id (cus_...)")
        return who if rules.is_current(who, queries.customer(who), None) else None
    try:
        email = valid_email(who)
    except LedgerInputError as exc:
        raise click.UsageError(f"{exc}, or a Stripe customer id (cus_...)") from None
    # The same rule as sign-in's (membership.members.rules).
    return rules.subject_for_email(queries.email_bucket(email))


@members.command("token")
@click.argument("who", metavar="EMAIL|CUSTOMER_ID")
@with_app
def token(who: str) -> None:
    """Print a member token (good for 7 days) for a current member, on one line.

    Sent as `member` to POST /v1/prompt, it keeps asks for non-members away. Exits 1 for
    anyone who is not a current member.
    """
    rt = runtime()
    subject = member_subject(ledger_for(rt).queries, who)
    if subject is None:
        click.echo(f"error: {who.strip()} is not a current member; no token", err=True)
        raise click.exceptions.Exit(1)
    tokens = Tokens(rt.settings.secret_key)
    click.echo(tokens.encode_member(tokens.member(subject, time.time(), proof=rules.STAFF)))


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
