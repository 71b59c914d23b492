"""CSRF for /staff only (the public JSON endpoints and the webhook take none): guard.py
calls `csrf.protect()` for the staff blueprint's writes; the signed cookie that carries the
CSRF secret gets the staff flags (cookies.py)."""

from __future__ import annotations

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from membership.staff.access import rules
from membership.staff.access.cookies import StaffCookieSessions

csrf = CSRFProtect()


def init_app(app: Flask) -> None:
    app.config.update(WTF_CSRF_CHECK_DEFAULT=False, WTF_CSRF_TIME_LIMIT=rules.SESSION_IDLE)
    app.session_interface = StaffCookieSessions()
    csrf.init_app(app)
