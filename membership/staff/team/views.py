"""Staff management (admins): accounts, roles, two-factor state, sessions, disable and
enable, password links. The rules are in accounts.py and sessions.py; every change there is
audited with the admin as actor."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, abort, g, redirect, render_template, url_for

from membership.core.runtime import runtime
from membership.staff.access import rules
from membership.staff.access.accounts import accounts_for
from membership.staff.access.cookies import clear_session_cookie
from membership.staff.access.guard import requires
from membership.staff.access.rules import StaffInputError
from membership.staff.access.sessions import sessions_for
from membership.staff.forms import field

bp = Blueprint("team", __name__)


def _accounts_page(error=None, notice=None, link=None, status=200):
    rt = runtime()
    accounts = accounts_for(rt).list()
    sessions = sessions_for(rt)
    counts = {a.email: len(sessions.list(a.email)) for a in accounts}
    page = render_template(
        "staff/accounts.html",
        accounts=accounts,
        sessions=counts,
        roles=rules.ROLES,
        error=error,
        notice=notice,
        link=link,
    )
    return page, status


@bp.errorhandler(StaffInputError)
def _refused(exc: StaffInputError):
    """A change accounts.py refuses (its message names the field): the list, and why."""
    return _accounts_page(str(exc), status=400)


def _password_link(email: str) -> str:
    rt = runtime()
    token = accounts_for(rt).create_link(email)
    return f"{rt.settings.public_url}/staff/set-password?{urlencode({'token': token})}"


@bp.get("/accounts")
@requires("admin")
def accounts():
    return _accounts_page()


@bp.post("/accounts")
@requires("admin")
def accounts_add():
    account = accounts_for(runtime()).add(field("email"), field("role"), actor=g.staff.email)
    notice = f"Added {account.email} ({account.role}). Send them this link (24 h, once):"
    return _accounts_page(notice=notice, link=_password_link(account.email))


def _not_yourself(email: str) -> str:
    """`email`, unless it is the admin's own (StaffInputError): an admin does not demote or
    disable themselves here (another admin does). The rule that keeps an enabled admin is in
    accounts.py, checked in the change's transaction."""
    if email.strip().lower() == g.staff.email:
        raise StaffInputError("email: not your own account (ask another admin)")
    return email


@bp.post("/accounts/role")
@requires("admin")
def accounts_role():
    email = _not_yourself(field("email"))
    account = accounts_for(runtime()).set_role(email, field("role"), actor=g.staff.email)
    return _accounts_page(notice=f"{account.email} is now {account.role}.")


@bp.post("/accounts/disable")
@requires("admin")
def accounts_disable():
    rt = runtime()
    account = accounts_for(rt).disable(
        _not_yourself(field("email")),
        actor=g.staff.email,
        end_sessions=sessions_for(rt).queue_end_all,
    )
    notice = f"{account.email} is disabled; their sessions are ended and API tokens revoked."
    return _accounts_page(notice=notice)


@bp.post("/accounts/enable")
@requires("admin")
def accounts_enable():
    account = accounts_for(runtime()).enable(field("email"), actor=g.staff.email)
    return _accounts_page(notice=f"{account.email} may sign in again.")


@bp.post("/accounts/link")
@requires("admin")
def accounts_link():
    """A new one-time link to set a password (a forgotten one, or a first link that expired)."""
    email = field("email").strip().lower()
    if accounts_for(runtime()).get(email) is None:
        return _accounts_page("email: no staff account with this email", status=400)
    notice = f"A new password link for {email} (24 h, once; their password stays until used):"
    return _accounts_page(notice=notice, link=_password_link(email))


@bp.post("/accounts/<email>/two-factor/reset")
@requires("admin")
def account_reset_two_factor(email: str):
    """A lost phone: two-factor off without a code, their sessions ended (audited). Not
    one's own: that takes a current code on /staff/me."""
    rt = runtime()
    email = email.strip().lower()
    if accounts_for(rt).get(email) is None:
        abort(404)
    try:
        _not_yourself(email)
    except StaffInputError as exc:
        return _account_page(email, str(exc), status=400)
    try:
        accounts_for(rt).reset_two_factor(
            email, actor=g.staff.email, end_sessions=sessions_for(rt).queue_end_all
        )
    except StaffInputError as exc:
        return _account_page(email, str(exc), status=409)
    notice = "Two-factor sign-in is off and their sessions are ended; they may enrol again."
    return _account_page(email, notice=notice)


# --- one account's sessions --------------------------------------------------------------
def _account_page(email: str, error=None, notice=None, status=200):
    rt = runtime()
    account = accounts_for(rt).get(email)
    if account is None:
        abort(404)
    page = render_template(
        "staff/account.html",
        account=account,
        sessions=sessions_for(rt).list(account.email),
        error=error,
        notice=notice,
    )
    return page, status


@bp.get("/accounts/<email>")
@requires("admin")
def account(email: str):
    return _account_page(email.strip().lower())


@bp.post("/accounts/<email>/sessions/end")
@requires("admin")
def account_end_session(email: str):
    """End one session (form field `session`, its id) or, without one, all of them."""
    rt = runtime()
    email, sid = email.strip().lower(), field("session")
    store = accounts_for(rt)
    if store.get(email) is None:
        abort(404)
    sessions = sessions_for(rt)
    if sid and sid not in {s.id for s in sessions.list(email)}:
        return _account_page(email, "session: not one of theirs, or already ended", status=400)

    def end(pipe, who):
        if sid:
            sessions.queue_end(pipe, who, sid)
        else:
            sessions.queue_end_all(pipe, who)

    store.end_sessions(email, actor=g.staff.email, end_sessions=end)
    if email == g.staff.email and (not sid or sid == g.staff_session.id):
        response = redirect(url_for("staff.login"), 303)
        clear_session_cookie(response)
        return response
    return _account_page(email, notice="Session ended." if sid else "All sessions ended.")
