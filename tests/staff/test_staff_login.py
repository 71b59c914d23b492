"""Staff sign-in over HTTP against a real redis-server: login and logout, cookie flags, idle
expiry, lockout after five failures, one message for every refusal, CSRF, the rate limit."""

from __future__ import annotations

import re

import pytest
from argon2 import PasswordHasher

from membership.core import audit
from membership.core.runtime import runtime
from membership.staff import accounts_for
from membership.staff.access.cookies import COOKIE
from membership.staff.views import LOGIN_REFUSED
from tests.support.staff import CSRF, FAST, GOOD


@pytest.fixture
def staff_app(make_app, clock):
    def make(**overrides):
        config = {"staff_clock": clock, "staff_hasher": FAST, "staff_insecure_cookies": True}
        return make_app(**{**config, **overrides})

    return make


@pytest.fixture
def app(staff_app):
    app = staff_app()
    accounts = accounts_for(runtime(app))
    for email, role in (("v@news.example", "viewer"), ("a@news.example", "admin")):
        accounts.add(email, role, actor="test", password=GOOD)
    return app


def csrf(client, path="/staff/login") -> str:
    return CSRF.search(client.get(path).get_data(as_text=True)).group(1)


def login(client, email="v@news.example", password=GOOD, **extra):
    token = csrf(client)
    data = {"email": email, "password": password, "csrf_token": token, **extra}
    return client.post("/staff/login", data=data)


def test_login_sets_a_strict_cookie_and_opens_the_pages(app):
    client = app.test_client()
    assert client.get("/staff/").status_code == 303
    response = login(client)
    assert response.status_code == 303 and response.location == "/staff/"
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith(COOKIE))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/staff" in cookie
    assert "Secure" not in cookie  # STAFF_INSECURE_COOKIES=true in this test
    page = client.get("/staff/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "v@news.example" in html and "viewer" in html and "Sign out" in html
    assert page.headers["Cache-Control"] == "no-store"
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "<script" not in html and "style=" not in html and "<style" not in html
    assert client.get("/staff/static/staff.css").status_code == 200


def test_cookies_are_secure_unless_told_otherwise(staff_app):
    app = staff_app(staff_insecure_cookies=False)
    accounts_for(runtime(app)).add("v@news.example", "viewer", actor="t", password=GOOD)
    client = app.test_client()
    base = "https://staff.news.example"
    page = client.get("/staff/login", base_url=base)
    token = CSRF.search(page.get_data(as_text=True)).group(1)
    response = client.post(
        "/staff/login",
        base_url=base,
        data={"email": "v@news.example", "password": GOOD, "csrf_token": token},
        headers={"Referer": base + "/staff/login"},
    )
    assert response.status_code == 303
    cookies = response.headers.getlist("Set-Cookie")
    assert all("Secure" in c for c in cookies) and any(c.startswith(COOKIE) for c in cookies)


def test_next_is_kept_only_for_local_staff_paths(app):
    client = app.test_client()
    assert client.get("/staff/me").location == "/staff/login?next=/staff/me"
    assert login(client, next="/staff/me").location == "/staff/me"
    other = app.test_client()
    assert login(other, next="https://evil.example/").location == "/staff/"
    assert login(app.test_client(), next="//evil.example/staff/").location == "/staff/"


def test_one_message_for_unknown_wrong_and_locked(app, clock):
    client = app.test_client()
    bodies = []
    for email, password in (("nobody@news.example", GOOD), ("v@news.example", "wrong password!")):
        response = login(client, email, password)
        assert response.status_code == 401
        bodies.append(response.get_data(as_text=True))
    for _ in range(4):
        login(client, "v@news.example", "wrong password!")
    locked = login(client, "v@news.example", GOOD)  # the right password, but locked
    assert locked.status_code == 401
    bodies.append(locked.get_data(as_text=True))
    for body in bodies:
        assert LOGIN_REFUSED in body.replace("&#39;", "'")
    # The pages differ only by the email typed back into the form and the CSRF token.
    assert {CSRF.sub("", b).replace("nobody@", "v@") for b in bodies[1:]} == {
        CSRF.sub("", bodies[0]).replace("nobody@", "v@")
    }


def test_five_failures_lock_until_the_window_ends_and_a_success_gives_back_its_place(app, clock):
    """Five wrong passwords for one email in a 15-minute window (from its first attempt)
    lock it until the window ends. A success gives back its own place only: it no longer
    wipes the failures before it, which let guesses go on around a member's sign-ins."""
    client = app.test_client()
    for _ in range(4):
        assert login(client, password="wrong password!").status_code == 401
    assert login(client).status_code == 303  # four: not locked
    client = app.test_client()
    assert login(client, password="wrong password!").status_code == 401  # the fifth
    assert login(client).status_code == 401  # locked, the right password too
    clock.at += 15 * 60 - 1
    assert login(client).status_code == 401
    clock.at += 1
    assert login(client).status_code == 303  # a new window
    client = app.test_client()
    for _ in range(5):
        login(client, password="wrong password!")
    assert login(client).status_code == 401


def test_unknown_emails_lock_too_without_naming_them_in_redis(app, redis_client):
    client = app.test_client()
    for _ in range(5):
        login(client, "ghost@news.example", "wrong password!")
    lockout = __import__("membership.staff.access.sessions", fromlist=["x"]).lockout_for(
        runtime(app)
    )
    assert lockout.locked("ghost@news.example") and lockout.locked(" GHOST@news.example")
    assert not any("ghost" in k for k in redis_client.keys("*"))


def test_a_post_without_a_valid_csrf_token_is_400_and_changes_nothing(app, redis_client):
    client = app.test_client()
    before = redis_client.dbsize()
    no_token = client.post("/staff/login", data={"email": "v@news.example", "password": GOOD})
    assert no_token.status_code == 400
    forged = client.post(
        "/staff/login", data={"email": "v@news.example", "password": GOOD, "csrf_token": "x"}
    )
    assert forged.status_code == 400 and COOKIE not in str(forged.headers)
    assert redis_client.dbsize() == before
    login(client)
    entries = len(audit.entries(redis_client, runtime(app).keys, limit=100))
    sessions_key = runtime(app).keys.staff_account_sessions("v@news.example")
    assert client.post("/staff/logout").status_code == 400  # signed in, no token
    data = {"current": GOOD, "password": GOOD + " new", "confirm": GOOD + " new"}
    assert client.post("/staff/me/password", data=data).status_code == 400
    assert redis_client.scard(sessions_key) == 1
    assert len(audit.entries(redis_client, runtime(app).keys, limit=100)) == entries
    assert client.get("/staff/").status_code == 200  # still signed in


def test_the_public_endpoints_take_no_csrf_token(client):
    # The webhook and the JSON API keep their own rules (here: a bad signature, a bad body).
    assert client.post("/webhooks/stripe", data="{}").status_code in (400, 401)
    assert client.post("/v1/prompt/events", json={}).status_code == 400


def test_logout_ends_only_this_session(app, redis_client):
    first, second = app.test_client(), app.test_client()
    login(first)
    login(second)
    assert first.post("/staff/logout", data={"csrf_token": csrf(first, "/staff/")}).location == (
        "/staff/login"
    )
    assert first.get("/staff/").status_code == 303
    assert second.get("/staff/").status_code == 200
    assert redis_client.scard(runtime(app).keys.staff_account_sessions("v@news.example")) == 1


def test_sessions_expire_after_twelve_idle_hours_and_slide(app, clock):
    client = app.test_client()
    login(client)
    clock.at += 11 * 3600
    assert client.get("/staff/").status_code == 200  # used: twelve more hours
    clock.at += 11 * 3600
    assert client.get("/staff/").status_code == 200
    clock.at += 12 * 3600
    assert client.get("/staff/").status_code == 303


def test_own_sessions_are_listed_and_ended(app):
    mine, other = app.test_client(), app.test_client()
    login(mine)
    login(other)
    page = mine.get("/staff/me").get_data(as_text=True)
    ids = re.findall(r'name="session" value="([0-9a-f]{64})"', page)
    assert len(ids) == 2 and "(this one)" in page
    token = csrf(mine, "/staff/me")
    rows = page.split("<tr>")[2:]
    other_id = next(
        re.search(r'value="([0-9a-f]{64})"', r).group(1) for r in rows if "(this one)" not in r
    )
    assert mine.post("/staff/me/sessions/end", data={"csrf_token": token, "session": other_id})
    assert other.get("/staff/").status_code == 303
    assert mine.get("/staff/").status_code == 200
    bad = mine.post("/staff/me/sessions/end", data={"csrf_token": token, "session": "x" * 64})
    assert bad.status_code == 400


def test_changing_the_password_ends_the_other_sessions(app):
    mine, other = app.test_client(), app.test_client()
    login(mine)
    login(other)
    token = csrf(mine, "/staff/me")
    new = "a whole new passphrase"
    wrong = {"csrf_token": token, "current": "nope nope nope", "password": new, "confirm": new}
    assert mine.post("/staff/me/password", data=wrong).status_code == 400
    weak = {"csrf_token": token, "current": GOOD, "password": "short", "confirm": "short"}
    assert "at least 12" in mine.post("/staff/me/password", data=weak).get_data(as_text=True)
    ok = {"csrf_token": token, "current": GOOD, "password": new, "confirm": new}
    assert mine.post("/staff/me/password", data=ok).status_code == 200
    assert other.get("/staff/").status_code == 303
    assert mine.get("/staff/").status_code == 200
    assert login(app.test_client(), password=new).status_code == 303


def test_a_disabled_account_is_signed_out_at_once(app):
    client = app.test_client()
    login(client)
    accounts_for(runtime(app)).disable("v@news.example", actor="test")
    assert client.get("/staff/").status_code == 303


def test_the_password_link_page(app):
    accounts = accounts_for(runtime(app))
    accounts.add("new@news.example", "editor", actor="test")
    token = accounts.create_link("new@news.example")
    client = app.test_client()
    page = client.get(f"/staff/set-password?token={token}")
    assert page.status_code == 200 and page.headers["Referrer-Policy"] == "same-origin"
    form = {"csrf_token": csrf(client, f"/staff/set-password?token={token}"), "token": token}
    differ = client.post("/staff/set-password", data={**form, "password": GOOD, "confirm": "x"})
    assert differ.status_code == 400
    common = {**form, "password": "qwerty123456", "confirm": "qwerty123456"}
    assert "most common" in client.post("/staff/set-password", data=common).get_data(as_text=True)
    done = client.post("/staff/set-password", data={**form, "password": GOOD, "confirm": GOOD})
    assert done.status_code == 200
    again = client.post("/staff/set-password", data={**form, "password": GOOD, "confirm": GOOD})
    assert again.status_code == 410
    assert client.get(f"/staff/set-password?token={token}").status_code == 410
    assert client.get("/staff/set-password").status_code == 410
    assert login(client, "new@news.example").status_code == 303


def test_logins_are_rate_limited_per_address(staff_app):
    app = staff_app(rate_limit_staff_login="3/hour")
    client = app.test_client()
    for _ in range(3):
        assert login(client, password="wrong password!").status_code == 401
    limited = login(client, "other@news.example", "wrong password!")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1


def test_bad_input_is_a_4xx_never_a_500(app):
    client = app.test_client()
    token = csrf(client)
    for data in (
        {"csrf_token": token},
        {"csrf_token": token, "email": "x" * 10_000, "password": "y" * 5000},
        {"csrf_token": token, "email": "\x00\x1b", "password": "\u202e"},
    ):
        assert client.post("/staff/login", data=data).status_code == 401
    raw = f"csrf_token={token}&email=%ff%fe&password=%ed%a0%80".encode()
    response = client.post(
        "/staff/login", data=raw, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 401
    assert client.get("/staff/set-password?token=" + "\x00" * 30).status_code == 410
    assert client.get("/staff/static/nope.css").status_code == 404


def test_the_password_link_works_over_https(staff_app):
    """Over HTTPS Flask-WTF wants a same-origin Referer: the link's page must let it go."""
    app = staff_app(staff_insecure_cookies=False)
    accounts = accounts_for(runtime(app))
    accounts.add("new@news.example", "viewer", actor="test")
    token = accounts.create_link("new@news.example")
    base = "https://staff.news.example"
    client = app.test_client()
    url = f"{base}/staff/set-password?token={token}"
    page = client.get(url)
    assert page.headers["Referrer-Policy"] == "same-origin"
    data = {"csrf_token": CSRF.search(page.get_data(as_text=True)).group(1), "token": token,
            "password": GOOD, "confirm": GOOD}  # fmt: skip
    done = client.post("/staff/set-password", base_url=base, data=data, headers={"Referer": url})
    assert done.status_code == 200


# --- Sign-ins and lockouts in the audit log ------------------------------------------------


def _audited(app, action: str) -> list[dict]:
    rt = runtime(app)
    return [e for e in audit.entries(rt.redis, rt.keys, limit=100) if e["action"] == action]


def test_a_sign_in_is_audited_with_its_session(app, redis_client):
    client = app.test_client()
    data = {"email": " V@news.example ", "password": GOOD, "csrf_token": csrf(client)}
    agent = {"HTTP_USER_AGENT": "Firefox/140"}
    assert client.post("/staff/login", data=data, environ_base=agent).status_code == 303
    [entry] = _audited(app, "staff_signed_in")
    assert entry["actor"] == "v@news.example" and entry["target"] == "staff v@news.example"
    assert entry["after"] == {"second_factor": False, "agent": "Firefox/140"}
    assert login(app.test_client(), password="wrong password!").status_code == 401
    assert len(_audited(app, "staff_signed_in")) == 1  # a refusal is not a sign-in


def test_a_lockout_of_an_account_is_audited_and_of_a_stranger_not(app):
    client = app.test_client()
    for _ in range(5):
        login(client, password="wrong password!")
    for _ in range(7):
        login(client, "ghost@news.example", "wrong password!")
    [entry] = _audited(app, "staff_locked_out")
    assert entry["target"] == "staff v@news.example" and entry["after"] == {"minutes": 15}
    assert entry["actor"].startswith("sign-in from ")


@pytest.mark.parametrize("planted", ["index", "audit"])
def test_a_sign_in_is_whole_or_nothing(app, redis_client, planted):
    """A session index or audit log of another type made Redis fail one command inside EXEC
    and apply the rest: a session no index listed ('end all sessions' missed it)."""
    rt = runtime(app)
    key = rt.keys.staff_account_sessions("v@news.example") if planted == "index" else rt.keys.audit
    if planted == "audit":
        redis_client.delete(key)
    redis_client.set(key, "planted")

    def stored() -> set[str]:  # the rate limiter counts the attempt whatever happens
        return {k for k in redis_client.keys("*") if ":ratelimit:" not in k}

    before = stored()
    response = login(app.test_client())
    assert response.status_code == 503
    assert stored() == before  # no session written
    assert redis_client.get(key) == "planted"


def test_a_staff_member_with_a_long_email_is_audited_whole(app):
    """Emails run to 254 characters; the audit log took actors of at most 100, so every
    audited change by such a member (and their sign-in) was refused."""
    email = "a" * 60 + "." + "b" * 60 + "@" + "newsroom-" * 12 + "example.org"
    accounts_for(runtime(app)).add(email, "admin", actor="test", password=GOOD)
    client = app.test_client()
    assert login(client, email).status_code == 303
    [entry] = _audited(app, "staff_signed_in")
    assert entry["actor"] == email and len(email) > 200


def test_a_sign_in_whose_account_is_disabled_during_its_password_check_gets_no_session(
    staff_app, redis_client
):
    """An admin's disable that lands while the password is checked (after the account was
    read): the sign-in is refused, and no session of the account is left."""
    disabling = {}

    class DisabledMeanwhile(PasswordHasher):
        def verify(self, hash, password):
            right = super().verify(hash, password)
            if disabling.pop("now", False):
                accounts_for(runtime(app)).disable("v@news.example", actor="a@news.example")
            return right

    app = staff_app(staff_hasher=DisabledMeanwhile(time_cost=1, memory_cost=8, parallelism=1))
    accounts = accounts_for(runtime(app))
    for email, role in (("v@news.example", "viewer"), ("a@news.example", "admin")):
        accounts.add(email, role, actor="test", password=GOOD)
    client = app.test_client()
    disabling["now"] = True
    answer = login(client)
    assert answer.status_code == 401 and LOGIN_REFUSED in answer.get_data(as_text=True)
    assert COOKIE not in (answer.headers.get("Set-Cookie") or "")
    keys = runtime(app).keys
    assert redis_client.smembers(keys.staff_account_sessions("v@news.example")) == set()
    assert client.get("/staff/", follow_redirects=False).status_code in (302, 303)
