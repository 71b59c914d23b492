"""`membership goals add|list|remove`: set the targets the banner counts toward."""

from __future__ import annotations

import re

import click

from membership.cli import with_app
from membership.cli.actor import actor_option
from membership.cli.output import echo_json, refusals
from membership.core.runtime import runtime
from membership.goals import rules as goal_rules
from membership.goals import store as goals_mod
from membership.goals.rules import MAX_NAME, MAX_TARGET
from membership.ledger import queries as ledger_queries


@click.group()
def goals() -> None:
    """Member-count goals shown on the banner."""


class _TargetCommand(click.Command):
    """`goals add -5`: a negative number is a bad TARGET, not an unknown option."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as exc:
            if re.fullmatch(r"-[0-9][0-9_,.]*", exc.option_name):
                raise click.UsageError(
                    f"target: expected 1 to {MAX_TARGET:,}, got {exc.option_name}", ctx=ctx
                ) from None
            raise


COPY_HELP = (
    "Override the banner's copy per locale (en, uk) while this goal is the one shown: the "
    "current goal, or the milestone once no goal is left. One text, or one per plural form "
    "(en: one, other; uk: one, few, many, other). Fields: headline (always; {count} "
    "{publication}); message (while it is the current goal; {count} {goal} {remaining} "
    "{publication}); thanks (once it is the milestone and no goal is left; {count} {goal} "
    "{publication}); cta (the button, always; {publication}). invite shows only when there "
    "is no goal at all, so a goal cannot set it. E.g. 'en.message=Only {remaining} to go' "
    "or 'uk.headline.many={count} читачів'. Repeatable."
)


@goals.command("add", cls=_TargetCommand)
@click.argument("target")
@click.option("--deadline", metavar="YYYY-MM-DD", help="Optional date to reach it by.")
@click.option(
    "--name", metavar="TEXT", help=f"Optional campaign name (at most {MAX_NAME} characters)."
)
@click.option(
    "--copy", "copy_options", multiple=True, metavar="LOCALE.FIELD[.FORM]=TEMPLATE", help=COPY_HELP
)
@actor_option
@with_app
def add(
    target: str,
    deadline: str | None,
    name: str | None,
    copy_options: tuple[str, ...],
    actor: str,
):
    """Add a goal of TARGET members (reached at once if the count is already there)."""
    rt = runtime()
    with refusals(goal_rules.GoalError, error=click.UsageError):
        copy = goal_rules.parse_copy_options(copy_options)
        new = goal_rules.parse_goal(
            {"target": target, "deadline": deadline, "name": name, "copy": copy}
        )
        goal = goals_mod.add(rt.redis, rt.keys, new, actor=actor)
    state = f"reached at once ({goal.reached_at})" if goal.reached_at else "not reached yet"
    click.echo(f"added goal {goal.id}: {goal.target} members, {state}")


@goals.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@with_app
def list_(as_json: bool):
    """List goals by target, with their state."""
    rt = runtime()
    all_goals = goals_mod.load(rt.redis, rt.keys)
    known = ledger_queries.count(rt.redis, rt.keys)
    count = known or 0  # unknown (no member counted yet) reaches nothing
    state = goal_rules.states(all_goals, count)

    if as_json:
        rows = [{**g.as_dict(), "state": state[g.id]} for g in all_goals]
        echo_json({"count": known, "goals": rows})
        return
    click.echo(f"members now: {'unknown (none counted yet)' if known is None else known}")
    if not all_goals:
        click.echo("no goals yet: add one with `membership goals add TARGET`")
        return
    header = f"{'ID':>4}  {'TARGET':>11}  {'STATE':<9}  {'DEADLINE':<10}  {'REACHED AT':<20}  NAME"
    click.echo(header)
    for g in all_goals:
        click.echo(
            f"{g.id:>4}  {g.target:>11,}  {state[g.id]:<9}  {g.deadline or '-':<10}  "
            f"{g.reached_at or '-':<20}  {g.name or '-'}"
        )


@goals.command("remove")
@click.argument("goal_id", metavar="ID", type=click.IntRange(min=1))
@actor_option
@with_app
def remove(goal_id: int, actor: str):
    """Remove the goal with this ID."""
    rt = runtime()
    if not goals_mod.remove(rt.redis, rt.keys, goal_id, actor=actor):
        raise click.ClickException(f"no goal with id {goal_id} (see `membership goals list`)")
    click.echo(f"removed goal {goal_id}")
