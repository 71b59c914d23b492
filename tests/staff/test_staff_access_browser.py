"""Signing in, the lockout, CSRF and two-factor enrolment, driven in Chromium through the
real forms (the pages are served by a Flask test client: tests/support/staff_browser.py)."""

from __future__ import annotations

import pyotp
import pytest

from membership.core import audit
from membership.core.runtime import runtime
from membership.staff import accounts_for
from tests.support.staff import FAST, GOOD, with_role_accounts
from tests.support.staff_browser import fits, open_page, url

pytestmark = pytest.mark.browser
EDITOR = "editor@news.example"
REFUSED = "That email and password do not match"


@pytest.fixture
def app(make_app, clock):
    """The staff app of tests/staff/conftest.py, on the clock set by hand."""
    app = make_app(staff_hasher=FAST, staff_insecure_cookies=True, staff_clock=clock)
    return with_role_accounts(app)


def _sign_in(page, email, password):
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]")


def _signed_out_page(app, browser, width=1280):
    return open_page(app, browser, None, width=width, client=app.test_client())


def test_signing_in_and_out(app, browser):
    for width in (1280, 375):
        page = _signed_out_page(app, browser, width)
        page.goto(url("/staff/audit"))  # signed out: to the login, and back after it
        assert page.url.startswith(url("/staff/login"))
        fits(page)
        _sign_in(page, EDITOR, GOOD)
        page.wait_for_url(url("/staff/audit"))
        assert page.locator(".who").first.inner_text() == EDITOR
        page.click("text=Sign out")
        page.wait_for_url("**/staff/login")
        page.goto(url("/staff/"))
        assert page.url.startswith(url("/staff/login"))
        assert page.console_errors == []
        page.close()


def test_five_wrong_passwords_lock_the_email_even_for_the_right_one(app, browser, clock):
    page = _signed_out_page(app, browser)
    page.goto(url("/staff/login"))
    for _ in range(5):
        _sign_in(page, EDITOR, "not the password at all")
        assert REFUSED in page.locator("[role=alert]").inner_text()
    _sign_in(page, EDITOR, GOOD)
    assert REFUSED in page.locator("[role=alert]").inner_text()  # the same words: locked
    assert page.url.startswith(url("/staff/login"))
    _sign_in(page, "nobody@news.example", GOOD)  # an unknown email reads the same
    assert REFUSED in page.locator("[role=alert]").inner_text()
    clock.at += 15 * 60 + 1
    _sign_in(page, EDITOR, GOOD)
    page.wait_for_url(url("/staff/"))
    page.close()


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(app, browser):
    page = open_page(app, browser, "admin")
    page.goto(url("/staff/accounts"))
    rt = runtime(app)
    before = audit.entries(rt.redis, rt.keys, limit=100)
    page.evaluate("document.querySelectorAll('input[name=csrf_token]').forEach(i => i.remove())")
    page.fill("#new-email", "sneaky@news.example")
    page.click("text=Add and make a password link")
    assert "the form was refused" in page.locator("h1").inner_text()
    assert page.evaluate("document.title").startswith("the form was refused")
    assert accounts_for(rt).get("sneaky@news.example") is None
    assert audit.entries(rt.redis, rt.keys, limit=100) == before
    page.close()


def test_two_factor_enrolment_then_sign_in_with_a_code(app, browser, clock):
    page = open_page(app, browser, "editor")
    page.goto(url("/staff/me"))
    page.click("text=Set up two-factor sign-in")
    key = page.locator("main code.link").first.inner_text()
    qr = page.locator("img[alt^='QR code']")
    # decode() waits for the image (a loaded machine may not have it yet) and fails on a broken one
    assert qr.evaluate("img => img.decode().then(() => img.naturalWidth > 0)")  # SVG served
    fits(page)
    page.fill("#enrol-code", pyotp.TOTP(key).at(clock.at))
    page.click('button:text-is("Turn on")')
    assert "on" in page.locator("main").inner_text()
    assert accounts_for(runtime(app)).get(EDITOR).has_totp
    page.click("text=Sign out")
    page.wait_for_url("**/staff/login")
    clock.at += 30  # a code is good once: the next step's
    _sign_in(page, EDITOR, GOOD)
    page.wait_for_selector("#code")
    page.fill("#code", "000000" if pyotp.TOTP(key).at(clock.at) != "000000" else "111111")
    page.click("button[type=submit]")
    assert page.locator("#code-error").is_visible()
    page.fill("#code", pyotp.TOTP(key).at(clock.at))
    page.click("button[type=submit]")
    page.wait_for_url(url("/staff/"))
    assert page.locator(".who").first.inner_text() == EDITOR
    page.close()
