"""The staff cookies' flags: HttpOnly, SameSite=Lax, Secure unless STAFF_INSECURE_COOKIES.

Two cookies: the session id (guard.COOKIE, path /staff) and Flask's signed cookie that
carries Flask-WTF's CSRF secret. Flask's cookie is shared with the rest of the app, so its
flags are set here per request, for /staff pages only, instead of app-wide.
"""

from __future__ import annotations

from flask import request

from membership.core.runtime import runtime
from membership.http.sessions import LazySessionInterface

COOKIE = "membership_staff"
PATH = "/staff"


def secure(app=None) -> bool:
    return not runtime(app).settings.staff_insecure_cookies


def _staff_request() -> bool:
    return request.path == PATH or request.path.startswith(PATH + "/")


class StaffCookieSessions(LazySessionInterface):
    def get_cookie_secure(self, app) -> bool:
        return secure(app) if _staff_request() else super().get_cookie_secure(app)

    def get_cookie_samesite(self, app):
        return "Lax" if _staff_request() else super().get_cookie_samesite(app)


def set_session_cookie(response, token: str) -> None:
    response.set_cookie(COOKIE, token, path=PATH, httponly=True, samesite="Lax", secure=secure())


def clear_session_cookie(response) -> None:
    response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="Lax", secure=secure())
