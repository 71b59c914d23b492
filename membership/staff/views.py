"""The /staff blueprint: login, logout, the one-time password link, the landing page and the
staff member's own page (and its JSON, /staff/api/me); each page area (areas.py) is a
blueprint nested in it, so its guard, error pages and headers apply to every area. The rules
live in access/; these views read the form, call them and render."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import redis
from flask import (
    Blueprint,
    Flask,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import CSRFError

from membership.core import audit, config
from membership.core.errors import store_error_response
from membership.core.openapi import TEXT, answer, obj
from membership.core.runtime import runtime
from membership.http.rate_limits import RateLimitExceeded, rate_limited
from membership.staff import areas
from membership.staff.access import guard, rules
from membership.staff.access.accounts import accounts_for
from membership.staff.access.api_tokens import api_tokens_for
from membership.staff.access.cookies import clear_session_cookie, set_session_cookie
from membership.staff.access.csrf import csrf
from membership.staff.access.csrf import init_app as csrf_init
from membership.staff.access.guard import public, requires, safe_next
from membership.staff.access.rules import StaffInputError
from membership.staff.access.sessions import lockout_for, sessions_for
from membership.staff.access.totp import ENROL_SECONDS, qr_svg, second_factor_for
from membership.staff.apidoc import op
from membership.staff.format import amounts, date, money, when
from membership.staff.forms import field
from membership.staff.overview import views as overview

STATIC = Path(__file__).resolve().parent.parent / "static" / "staff"
# One answer for an unknown email, a wrong password, a disabled account and a locked email.
LOGIN_REFUSED = "That email and password do not match, or sign-in is paused for this email."

bp = Blueprint(
    "staff", __name__, url_prefix="/staff", static_folder=STATIC, static_url_path="/static"
)


bp.add_app_template_filter(amounts)
bp.add_app_template_filter(money)
bp.add_app_template_filter(when)
bp.add_app_template_filter(date)


@bp.context_processor
def _roles() -> dict:
    """What every page offers by the viewer's role: changes to newsroom data (editors)."""
    staff = g.get("staff")
    return {"can_edit": staff is not None and rules.allows(staff.role, "editor")}


@bp.before_request
def _guard():
    return guard.check_request(csrf)


@bp.after_request
def _no_store(response):
    if request.endpoint != "staff.static":
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(CSRFError)
def _csrf_refused(exc: CSRFError):
    return guard.refuse(400, f"the form was refused ({exc.description}); reload it and retry")


@bp.errorhandler(redis.exceptions.RedisError)
def _store_trouble(exc: redis.exceptions.RedisError):
    """The app's 503 (counted, logged, Retry-After); a page says it in words, not JSON."""
    response = store_error_response(exc)
    if request.path.startswith(guard.API_PREFIX):
        return response
    title = "The data store cannot be reached just now; try again in a few seconds"
    page = render_template("staff/message.html", title=title, status=503)
    return page, 503, {"Retry-After": response.headers["Retry-After"]}


@bp.errorhandler(RateLimitExceeded)
def _too_many(exc: RateLimitExceeded):
    seconds = exc.retry_after
    page, status = guard.refuse(429, f"too many sign-in attempts; try again in {seconds} s")
    return page, status, {"Retry-After": str(seconds)}


# --- signing in and out -------------------------------------------------------------
@bp.get("/login")
@public
def login():
    if g.staff is not None:
        return redirect(url_for("staff.home"), 303)
    return render_template("staff/login.html", next=safe_next(request.args.get("next")))


@bp.post("/login")
@public
@rate_limited("staff_login")
def login_post():
    rt = runtime()
    email, password = field("email").strip(), field("password")
    target = safe_next(field("next"))
    lockout = lockout_for(rt)
    # The attempt takes one of the email's places before the password is checked, so a
    # burst of guesses cannot all be checked. Locked (no place left): the same argon2 work
    # against the dummy hash, and the password is not checked at all.
    attempt = lockout.admit(email) if email else None
    account = accounts_for(rt).verify(email if attempt else "", password)
    if account is None:
        _failed(rt, email, attempt)
        page = render_template("staff/login.html", next=target, error=LOGIN_REFUSED, email=email)
        return page, 401
    lockout.succeeded(attempt)  # the right password: its place is given back, no more
    if account.has_totp:  # the password was right: now the code, under a 5-minute token
        pending = second_factor_for(rt).hold(account.email)
        return render_template("staff/login_code.html", pending=pending, next=target)
    return _signed_in(account.email, target)


def _failed(rt, email: str, attempt) -> None:
    """A wrong password or code that filled the email's places locks it until the window
    ends: in the audit log, so staff see it. Only for accounts that exist: anyone may fail
    with any address, and the log is capped."""
    if attempt is None or not attempt.fills_window:
        return
    account = accounts_for(rt).get(email)
    if account is not None:
        audit.record(
            rt.redis,
            rt.keys,
            actor=f"sign-in from {(request.remote_addr or 'unknown')[:60]}",
            action="staff_locked_out",
            target=f"staff {account.email}",
            after={"minutes": attempt.minutes_left(lockout_for(rt).clock())},
        )


def _signed_in(email: str, target: str | None, second_factor: bool = False):
    session.pop("csrf_token", None)  # a new CSRF token for the signed-in session
    agent = request.headers.get("User-Agent", "")
    token = sessions_for(runtime()).create(email, agent, second_factor=second_factor)
    if token is None:  # disabled since the password was checked
        page = render_template("staff/login.html", next=target, error=LOGIN_REFUSED, email=email)
        return page, 401
    response = redirect(target or url_for("staff.home"), 303)
    set_session_cookie(response, token)
    return response


@bp.post("/login/code")
@public
@rate_limited("staff_login")
def login_code():
    rt = runtime()
    factor, lockout = second_factor_for(rt), lockout_for(rt)
    pending, target = field("pending"), safe_next(field("next"))
    email = factor.held(pending)
    attempt = lockout.admit(email) if email else None  # codes take the same places
    if attempt is None:
        page = render_template("staff/login.html", next=target, error=LOGIN_REFUSED)
        return page, 401
    if not factor.check(email, field("code")):
        _failed(rt, email, attempt)
        error = "That code is not right (or was used already); try the next one."
        page = render_template("staff/login_code.html", pending=pending, next=target, error=error)
        return page, 401
    factor.release(pending)
    lockout.succeeded(attempt)
    return _signed_in(email, target, second_factor=True)


@bp.post("/logout")
@requires("viewer")
def logout():
    sessions_for(runtime()).end(g.staff.email, g.staff_session.id)
    session.pop("csrf_token", None)
    response = redirect(url_for("staff.login"), 303)
    clear_session_cookie(response)
    return response


# --- the one-time link to set a password ---------------------------------------------
def _link_page(token: str, error: str | None = None, status: int = 200):
    page = render_template("staff/set_password.html", token=token, error=error)
    # The token is in this page's URL: never sent to another site, but sent to our own
    # (Flask-WTF checks the Referer of an HTTPS form post).
    return page, status, {"Referrer-Policy": "same-origin"}


@bp.get("/set-password")
@public
def set_password():
    token = request.args.get("token", "")
    if accounts_for(runtime()).link_email(token) is None:
        return _gone()
    return _link_page(token)


@bp.post("/set-password")
@public
def set_password_post():
    token, password = field("token"), field("password")
    if password != field("confirm"):
        return _link_page(token, "the two passwords differ", 400)
    accounts = accounts_for(runtime())
    if accounts.link_email(token) is None:
        return _gone()
    try:
        accounts.use_link(token, password)
    except StaffInputError as exc:
        if accounts.link_email(token) is None:
            return _gone()
        return _link_page(token, str(exc), 400)
    title = "Your password is set. Sign in with it."
    return render_template("staff/message.html", title=title, status=200, sign_in=True)


def _gone():
    title = "This link has expired or was already used. Ask an admin for a new one."
    page = render_template("staff/message.html", title=title, status=410, sign_in=True)
    return page, 410, {"Referrer-Policy": "same-origin"}


# --- signed in ------------------------------------------------------------------------
@bp.get("/")
@requires("viewer")
def home():
    """The Overview: read-only; `?days=30|90|365` picks the chart's period (another value
    is a 400 page, so a mistyped link says so instead of showing another period)."""
    try:
        days = overview.parse_days(request.args.get("days"))
    except ValueError as exc:
        return guard.refuse(400, str(exc))
    rt = runtime()
    model = overview.view(overview.read(rt.redis, rt.keys, days))
    return render_template(
        "staff/home.html",
        model=model,
        charts=overview.charts(model),
        days=days,
        periods=overview.PERIODS,
    )


def _me_page(error=None, notice=None, status=200, new_token=None, zone_error=False):
    rt = runtime()
    factor = second_factor_for(rt)
    page = render_template(
        "staff/me.html",
        two_factor=factor.enabled(g.staff.email),
        enrolling=factor.pending_secret(g.staff.email),
        require_2fa=rt.settings.staff_require_2fa and g.staff.role == "admin",
        sessions=sessions_for(rt).list(g.staff.email),
        current=g.staff_session.id,
        tokens=api_tokens_for(rt).list(g.staff.email),
        new_token=new_token,
        zones=config.zone_names(),
        newsroom_zone=rt.settings.timezone,
        error=error,
        notice=notice,
        zone_error=zone_error,
    )
    return page, status


@bp.get("/me")
@requires("viewer")
def me():
    return _me_page()


ROLE, VIA = {"enum": list(rules.ROLES)}, {"enum": ["session", "token"]}
OPENAPI = {  # the staff API's door; each staff area describes its own routes (areas.py)
    "/staff/api/me": {
        "get": op(
            "Who is calling the staff API: email, role, and how (session or token)",
            {"200": answer("The caller", obj({"email": TEXT, "role": ROLE, "via": VIA}))},
            description="Every /staff/api/ route takes a staff member's personal token "
            "(`Authorization: Bearer mst_...`, made on /staff/me, shown once) or the "
            "dashboard's session cookie (writes then need the CSRF token), and the same role "
            "rules as the pages: 401 signed out, 403 above one's role.",
        )
    }
}


@bp.get("/api/me")
@requires("viewer")
def api_me():
    via = "session" if g.staff_session is not None else "token"
    return jsonify(email=g.staff.email, role=g.staff.role, via=via)


@bp.post("/me/password")
@requires("viewer")
def me_password():
    rt = runtime()
    current, new = field("current"), field("password")
    if new != field("confirm"):
        return _me_page("password: the two new passwords differ", status=400)
    accounts = accounts_for(rt)
    refused = _own_secrets(current)
    if refused:
        return refused
    sessions = sessions_for(rt)
    keep = g.staff_session.id
    try:
        accounts.set_password(
            g.staff.email,
            new,
            actor=g.staff.email,
            extra=lambda pipe: sessions.queue_end_all(pipe, g.staff.email, keep=keep),
        )
    except StaffInputError as exc:
        return _me_page(str(exc), status=400)
    return _me_page(notice="Password changed; your other sessions are ended.")


@bp.post("/me/timezone")
@requires("viewer")
def me_timezone():
    """The zone this staff member's pages show times in ("": the newsroom's TIMEZONE)."""
    try:
        g.staff = accounts_for(runtime()).set_timezone(
            g.staff.email, field("timezone"), actor=g.staff.email
        )
    except StaffInputError as exc:
        return _me_page(str(exc), status=400, zone_error=True)
    return _me_page(notice="Time zone saved: times are now shown in it.")


@bp.post("/me/sessions/end")
@requires("viewer")
def me_end_session():
    sid = field("session")
    if not sessions_for(runtime()).end(g.staff.email, sid):
        return _me_page("session: not one of yours, or already ended", status=400)
    if sid == g.staff_session.id:
        response = redirect(url_for("staff.login"), 303)
        clear_session_cookie(response)
        return response
    return _me_page(notice="Session ended.")


@bp.post("/me/tokens")
@requires("viewer")
def me_token_create():
    try:
        token = api_tokens_for(runtime()).create(g.staff.email, field("name"))
    except StaffInputError as exc:
        return _me_page(str(exc), status=400)
    notice = "Your new token, shown this once: copy it now."
    return _me_page(notice=notice, new_token=token)


@bp.post("/me/tokens/revoke")
@requires("viewer")
def me_token_revoke():
    if not api_tokens_for(runtime()).revoke(g.staff.email, field("token")):
        return _me_page("token: not one of yours, or already revoked", status=400)
    return _me_page(notice="Token revoked.")


@bp.post("/me/2fa/start")
@requires("viewer")
def me_2fa_start():
    second_factor_for(runtime()).start(g.staff.email)
    return _me_page(notice="Scan the code with your authenticator app, then enter a code.")


@bp.get("/me/2fa/qr.svg")
@requires("viewer")
def me_2fa_qr():
    secret = second_factor_for(runtime()).pending_secret(g.staff.email)
    if secret is None:
        return guard.refuse(404, "no two-factor enrolment in progress")
    svg = qr_svg(g.staff.email, secret)
    return svg, 200, {"Content-Type": "image/svg+xml", "Referrer-Policy": "no-referrer"}


def _own_secrets(password: str, check_code: Callable[[], bool] | None = None, wrong_code=""):
    """Check the signed-in member's password, then (`check_code`, which makes the change
    when its codes are right) their codes, as one attempt at the sign-in lock's places: a
    session cannot guess them more than a sign-in could. None when all are right; else the
    page to answer (`wrong_code` says what a wrong code was)."""
    rt = runtime()
    email, lockout = g.staff.email, lockout_for(rt)
    attempt = lockout.admit(email)
    if attempt is None:
        return _me_page(LOCKED_OUT, status=429)
    if accounts_for(rt).verify(email, password) is None:
        _failed(rt, email, attempt)
        return _me_page("current password: does not match", status=400)
    if check_code is not None and not check_code():
        _failed(rt, email, attempt)
        return _me_page(wrong_code, status=400)
    lockout.succeeded(attempt)
    return None


LOCKED_OUT = (
    "too many wrong passwords or codes for this account; try again later (at most 15 minutes)"
)


@bp.post("/me/2fa/confirm")
@requires("viewer")
def me_2fa_confirm():
    """Turn the pending secret on with a code from it. While a factor is on this replaces
    it: that also takes the password and a current code from the factor in use, checked
    with the change (audited `staff_two_factor_replaced`)."""
    factor = second_factor_for(runtime())
    email, code = g.staff.email, field("code")
    if factor.pending_secret(email) is None:  # finished in another tab, or expired
        return _me_page(NOTHING_PENDING, status=400)
    if not factor.enabled(email):
        if factor.confirm(email, code) is None:
            return _me_page("code: not right; use the current code from the app", status=400)
        return _me_page(notice="Two-factor sign-in is on.")
    if not field("password") or not field("current_code"):
        return _me_page(REPLACING, status=400)
    refused = _own_secrets(
        field("password"),
        lambda: factor.confirm(email, code, field("current_code")) is not None,
        "codes: not right; use the current code of the app in use and of the new one",
    )
    if refused:
        return refused
    return _me_page(notice="Two-factor sign-in now uses the new app; the old one no longer works.")


NOTHING_PENDING = (
    "code: no set-up is waiting for a code (it was finished in another tab, or started "
    f"{ENROL_SECONDS // 60} minutes ago or more); this page shows where it stands now"
)
REPLACING = (
    "password and current code: replacing two-factor sign-in takes your password and a code "
    "from the app in use now, with a code from the new one"
)


@bp.post("/me/2fa/disable")
@requires("viewer")
def me_2fa_disable():
    """Turn the factor off: the password and a current code from it."""
    if runtime().settings.staff_require_2fa and g.staff.role == "admin":
        return _me_page("two-factor sign-in is required for admins here", status=400)
    factor = second_factor_for(runtime())
    refused = _own_secrets(
        field("password"),
        lambda: factor.disable(g.staff.email, field("code")),
        "code: not right; use the current code from the app",
    )
    if refused:
        return refused
    return _me_page(notice="Two-factor sign-in is off.")


for area in areas.BLUEPRINTS:
    bp.register_blueprint(area)


def init_app(app: Flask) -> None:
    csrf_init(app)
    app.register_blueprint(bp)
