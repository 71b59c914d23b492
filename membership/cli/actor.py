"""`--actor NAME`: who is making a change, for the audit log (membership/core/audit.py)."""

from __future__ import annotations

import click

from membership.core.audit import AuditInputError, check_actor, default_actor


def _checked(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return check_actor(value)
    except AuditInputError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


actor_option = click.option(
    "--actor",
    metavar="NAME",
    default=default_actor,  # read when the command runs, not at import
    show_default=False,
    callback=_checked,
    help="Who is making this change (recorded in the audit log); default $USER, else the "
    "login name.",
)
