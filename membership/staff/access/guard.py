"""Who may use which /staff route, decided before any view runs: the session's (or a bearer
token's) account, then CSRF for writes (400), then the view's role (403), in the order
docs/staff-dashboard.md#access gives. A view states its role with `@requires(role)` or
`@public`; one that states none is a viewer's for reading and an admin's for writing, so a
forgotten declaration fails closed.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import current_app, g, jsonify, redirect, render_template, request, url_for

from membership.core.runtime import runtime
from membership.staff.access import rules
from membership.staff.access.accounts import accounts_for
from membership.staff.access.api_tokens import api_tokens_for
from membership.staff.access.cookies import COOKIE
from membership.staff.access.sessions import sessions_for

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
API_PREFIX = "/staff/api/"


def requires(role: str) -> Callable:
    rules.check_role(role)

    def mark(view: Callable) -> Callable:
        view.staff_role = role
        return view

    return mark


def public(view: Callable) -> Callable:
    """Open to anyone signed out (the login, the password link); CSRF still applies."""
    view.staff_public = True
    return view


def needed_role(view: Callable | None, method: str) -> str:
    declared = getattr(view, "staff_role", None)
    if declared is not None:
        return declared
    return "viewer" if method in SAFE_METHODS else "admin"


def api_error(status: int, code: str, message: str, **extra):
    """A /staff/api/ error answer: `{"error": {"code", "message", ...extra}}`."""
    response = jsonify(error={"code": code, "message": message, **extra})
    response.status_code = status
    return response


def refuse(status: int, message: str):
    """A refusal in the form the caller reads: JSON under /staff/api/, else a small page."""
    if request.path.startswith(API_PREFIX):
        code = {400: "bad_request", 401: "unauthorized", 403: "forbidden"}.get(status, "error")
        return api_error(status, code, message)
    return render_template("staff/message.html", title=message, status=status), status


def _bearer() -> str | None:
    """The token of an `Authorization: Bearer` header on /staff/api/, else None."""
    if not request.path.startswith(API_PREFIX):
        return None
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _current(token: str | None):
    """(account, session) for this request's API token or cookie, or (None, None)."""
    rt = runtime()
    if token is not None:  # a script: the token alone decides, never a cookie beside it
        email = api_tokens_for(rt).owner(token)
        account = accounts_for(rt).get(email) if email else None
        return (account, None) if account and not account.disabled else (None, None)
    sessions = sessions_for(rt)
    session = sessions.resume(request.cookies.get(COOKIE))
    if session is None:
        return None, None
    account = accounts_for(rt).get(session.email)
    if account is None or account.disabled:
        sessions.end(session.email, session.id)
        return None, None
    return account, session


def check_request(csrf) -> object | None:
    """The blueprint's before_request: None to go on, or the refusal to send."""
    g.staff, g.staff_session = None, None
    if request.endpoint == "staff.static":
        return None
    view = current_app.view_functions.get(request.endpoint)
    token = _bearer()
    g.staff, g.staff_session = _current(token)
    is_public = getattr(view, "staff_public", False)
    if g.staff is None and not is_public:
        if request.path.startswith(API_PREFIX):
            return refuse(401, "sign in first")
        target = request.full_path if request.method == "GET" else None
        return redirect(url_for("staff.login", next=safe_next(target)), 303)
    # A bearer token is not sent by the browser on its own, so it needs no CSRF token.
    if request.method not in SAFE_METHODS and token is None:
        csrf.protect()  # raises CSRFError: 400 (views.py)
    if is_public:
        return None
    if _needs_enrolment(g.staff) and request.endpoint not in ENROLMENT_ENDPOINTS:
        if request.path.startswith(API_PREFIX):
            return refuse(403, "two-factor sign-in is required for admins: enrol on /staff/me")
        return redirect(url_for("staff.me"), 303)
    if not rules.allows(g.staff.role, needed_role(view, request.method)):
        return refuse(403, "your role does not allow this")
    return None


# What an admin without two-factor may use while STAFF_REQUIRE_2FA is on: enough to enrol.
ENROLMENT_ENDPOINTS = frozenset(
    {
        "staff.me",
        "staff.logout",
        "staff.me_2fa_start",
        "staff.me_2fa_qr",
        "staff.me_2fa_confirm",
        "staff.me_password",
        "staff.me_end_session",
    }
)


def _needs_enrolment(account) -> bool:
    return runtime().settings.staff_require_2fa and account.role == "admin" and not account.has_totp


def safe_next(target: str | None) -> str | None:
    """A local /staff path to go back to after signing in; None for anything else."""
    if not target or len(target) > 500:
        return None
    target = target.rstrip("?")
    if not target.startswith("/staff/") or target.startswith("//") or "\\" in target:
        return None
    if any(not c.isprintable() or c.isspace() for c in target):
        return None
    return target
