"""`membership staff`: staff accounts for the dashboard (membership/staff/)."""

from __future__ import annotations

import sys
import urllib.parse

import click

from membership.cli import with_app
from membership.cli.actor import actor_option
from membership.cli.output import echo_json, echo_table, refusals
from membership.core.runtime import runtime
from membership.staff import accounts_for
from membership.staff.access.rules import ROLES, StaffInputError
from membership.staff.access.sessions import sessions_for


@click.group()
def staff() -> None:
    """Staff accounts: who may sign in to the dashboard, and with which role."""


@staff.command("add")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from one line of standard input."
)
@actor_option
@with_app
def add(email: str, role: str, password_stdin: bool, actor: str) -> None:
    """Add a staff member; without --password-stdin, print a one-time link (24 h) to set the
    password."""
    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    accounts = accounts_for(runtime())
    with refusals(StaffInputError):
        account = accounts.add(email, role, actor=actor, password=password)
    click.echo(f"added {account.email} ({account.role})")
    if password is None:
        token = accounts.create_link(account.email)
        url = runtime().settings.public_url + "/staff/set-password?"
        click.echo("set the password within 24 h, once, at:")
        click.echo(url + urllib.parse.urlencode({"token": token}))


@staff.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per account, in a list.")
@with_app
def list_(as_json: bool) -> None:
    """Every staff account: email, role, disabled, whether a password and two-factor sign-in
    are set."""
    rows = [
        {
            "email": a.email,
            "role": a.role,
            "disabled": a.disabled,
            "password": a.has_password,
            "two_factor": a.has_totp,
            "created": a.created,
            "updated": a.updated,
        }
        for a in accounts_for(runtime()).list()
    ]
    if as_json:
        echo_json(rows)
    else:
        echo_table(
            rows, ["email", "role", "disabled", "password", "two_factor", "created", "updated"]
        )


@staff.command("disable")
@click.argument("email")
@actor_option
@with_app
def disable(email: str, actor: str) -> None:
    """Disable a staff account, end its sessions and revoke its API tokens (for good). Never
    the last enabled admin."""
    rt = runtime()
    with refusals(StaffInputError):
        accounts_for(rt).disable(email, actor=actor, end_sessions=sessions_for(rt).queue_end_all)
    click.echo(f"disabled {email.strip().lower()}; its sessions are ended, its API tokens revoked")


@staff.command("enable")
@click.argument("email")
@actor_option
@with_app
def enable(email: str, actor: str) -> None:
    """Let a disabled staff account sign in again."""
    with refusals(StaffInputError):
        account = accounts_for(runtime()).enable(email, actor=actor)
    click.echo(f"enabled {account.email}")


@staff.command("reset-2fa")
@click.argument("email")
@actor_option
@with_app
def reset_2fa(email: str, actor: str) -> None:
    """Turn a staff member's two-factor sign-in off (a lost phone) and end their sessions."""
    rt = runtime()
    with refusals(StaffInputError):
        account = accounts_for(rt).reset_two_factor(
            email, actor=actor, end_sessions=sessions_for(rt).queue_end_all
        )
    click.echo(f"two-factor sign-in is off for {account.email}; their sessions are ended")


@staff.command("role")
@click.argument("email")
@click.argument("role", type=click.Choice(ROLES))
@actor_option
@with_app
def role(email: str, role: str, actor: str) -> None:
    """Change a staff member's role (takes effect on their next request); never the last
    enabled admin's."""
    with refusals(StaffInputError):
        account = accounts_for(runtime()).set_role(email, role, actor=actor)
    click.echo(f"{account.email} is now {account.role}")
