"""Signed-cookie sessions that cost nothing on requests that carry no cookie.

Flask's default interface builds an itsdangerous serializer on every request
once SECRET_KEY is set, about a quarter of a banner request's time. Readers'
banner and webhook requests carry no session cookie; only staff requests do.
"""

from __future__ import annotations

from flask.sessions import SecureCookieSessionInterface


class LazySessionInterface(SecureCookieSessionInterface):
    def open_session(self, app, request):
        # Check the raw header first: parsing cookies is the cost we are avoiding.
        cookie_header = request.environ.get("HTTP_COOKIE")
        if not cookie_header or app.config["SESSION_COOKIE_NAME"] not in request.cookies:
            return self.session_class()  # empty; saved (and signed) only if a handler writes it
        return super().open_session(app, request)
