"""Two-factor sign-in (TOTP) against a real redis-server: enrolment with a QR code served
from our origin, sign-in with a code, no replay, the lock, STAFF_REQUIRE_2FA for admins."""

from __future__ import annotations

import re

import pyotp
import pytest

from membership.core import audit
from membership.core.runtime import runtime
from membership.staff import accounts_for
from membership.staff.access.cookies import COOKIE
from membership.staff.access.totp import code_step
from tests.support.staff import CSRF, FAST, GOOD


@pytest.fixture
def make(make_app, clock):
    def build(**overrides):
        app = make_app(staff_hasher=FAST, staff_insecure_cookies=True, staff_clock=clock,
                       **overrides)  # fmt: skip
        accounts_for(runtime(app)).add("a@news.example", "admin", actor="t", password=GOOD)
        return app

    return build


def csrf_of(response) -> str:
    return CSRF.search(response.get_data(as_text=True)).group(1)


def password_step(client, password=GOOD):
    token = csrf_of(client.get("/staff/login"))
    data = {"email": "a@news.example", "password": password, "csrf_token": token}
    return client.post("/staff/login", data=data)


def enrol(app, client, clock) -> str:
    token = csrf_of(client.get("/staff/me"))
    page = client.post("/staff/me/2fa/start", data={"csrf_token": token}).get_data(as_text=True)
    secret = re.search(r'<code class="link">([A-Z2-7]+)</code>', page).group(1)
    qr = client.get("/staff/me/2fa/qr.svg")
    assert qr.status_code == 200 and qr.headers["Content-Type"] == "image/svg+xml"
    assert qr.data.lstrip().startswith(b"<?xml") and b"<script" not in qr.data
    wrong = client.post("/staff/me/2fa/confirm", data={"csrf_token": token, "code": "000000"})
    assert wrong.status_code == 400
    code = pyotp.TOTP(secret).at(clock.at)
    assert (
        client.post("/staff/me/2fa/confirm", data={"csrf_token": token, "code": code}).status_code
        == 200
    )
    assert client.get("/staff/me/2fa/qr.svg").status_code == 404  # enrolment over
    return secret


def test_code_steps_are_accepted_once_and_near_now():
    secret = pyotp.random_base32()
    totp = pyotp.TOTP(secret)
    now = 1_800_000_000.0
    step = int(now // 30)
    assert code_step(secret, totp.at(now), now, 0) == step
    assert code_step(secret, totp.at(now - 30), now, 0) == step - 1
    assert code_step(secret, totp.at(now), now, step) is None  # used already
    assert code_step(secret, totp.at(now - 90), now, 0) is None
    for bad in ("", "12345", "abcdef", "\uff11\uff12\uff13\uff14\uff15\uff16"):
        assert code_step(secret, bad, now, 0) is None


def test_enrol_then_sign_in_with_a_code(make, clock, redis_client):
    app = make()
    client = app.test_client()
    assert password_step(client).status_code == 303
    secret = enrol(app, client, clock)
    assert "staff_two_factor_enabled" in [
        e["action"] for e in audit.entries(redis_client, runtime(app).keys)
    ]
    other = app.test_client()
    step = password_step(other)
    assert step.status_code == 200 and COOKIE not in str(step.headers)  # no session yet
    pending = re.search(r'name="pending" value="([^"]+)"', step.get_data(as_text=True)).group(1)
    data = {"csrf_token": csrf_of(step), "pending": pending}
    clock.at += 60
    code = pyotp.TOTP(secret).at(clock.at)
    assert other.post("/staff/login/code", data={**data, "code": "123456"}).status_code == 401
    done = other.post("/staff/login/code", data={**data, "code": code})
    assert done.status_code == 303 and other.get("/staff/").status_code == 200
    signed_in = [
        e
        for e in audit.entries(redis_client, runtime(app).keys)
        if e["action"] == "staff_signed_in"
    ]
    assert [e["after"]["second_factor"] for e in signed_in] == [True, False]  # newest first
    # The same code again, and the spent pending login, are refused.
    third = app.test_client()
    step = password_step(third)
    pending = re.search(r'name="pending" value="([^"]+)"', step.get_data(as_text=True)).group(1)
    replay = {"csrf_token": csrf_of(step), "pending": pending, "code": code}
    assert third.post("/staff/login/code", data=replay).status_code == 401
    fresh = csrf_of(other.get("/staff/me"))  # signing in gave a new CSRF token
    spent = {**data, "csrf_token": fresh, "code": pyotp.TOTP(secret).at(clock.at + 30)}
    assert other.post("/staff/login/code", data=spent).status_code == 401


def test_wrong_codes_lock_the_email(make, clock):
    app = make()
    client = app.test_client()
    password_step(client)
    secret = enrol(app, client, clock)
    other = app.test_client()
    step = password_step(other)
    pending = re.search(r'name="pending" value="([^"]+)"', step.get_data(as_text=True)).group(1)
    data = {"csrf_token": csrf_of(step), "pending": pending}
    for _ in range(5):
        other.post("/staff/login/code", data={**data, "code": "000000"})
    clock.at += 30
    right = {**data, "code": pyotp.TOTP(secret).at(clock.at)}
    assert other.post("/staff/login/code", data=right).status_code == 401
    assert password_step(app.test_client()).status_code == 401  # locked for passwords too


def test_staff_require_2fa_keeps_admins_on_their_page_until_enrolled(make, clock):
    app = make(staff_require_2fa=True)
    client = app.test_client()
    password_step(client)
    assert client.get("/staff/").location == "/staff/me"
    assert client.get("/staff/accounts").location == "/staff/me"
    assert client.get("/staff/api/me").status_code == 403
    assert "must turn on" in client.get("/staff/me").get_data(as_text=True)
    enrol(app, client, clock)
    assert client.get("/staff/").status_code == 200
    assert client.get("/staff/accounts").status_code == 200


# --- Secrets sealed at rest ----------------------------------------------------------------


def _sign_in_with_code(app, code: str) -> int:
    client = app.test_client()
    step = password_step(client)
    pending = re.search(r'name="pending" value="([^"]+)"', step.get_data(as_text=True)).group(1)
    data = {"csrf_token": csrf_of(step), "pending": pending, "code": code}
    return client.post("/staff/login/code", data=data).status_code


def test_secrets_are_sealed_in_redis(make, clock, redis_client):
    app = make()
    client = app.test_client()
    password_step(client)
    token = csrf_of(client.get("/staff/me"))
    page = client.post("/staff/me/2fa/start", data={"csrf_token": token}).get_data(as_text=True)
    secret = re.search(r'<code class="link">([A-Z2-7]+)</code>', page).group(1)
    key = runtime(app).keys.staff_account("a@news.example")
    pending = redis_client.hget(key, "totp_pending")
    assert pending.startswith("f1:") and secret not in pending
    code = pyotp.TOTP(secret).at(clock.at)
    confirmed = client.post("/staff/me/2fa/confirm", data={"csrf_token": token, "code": code})
    assert confirmed.status_code == 200
    stored = redis_client.hget(key, "totp")
    assert stored.startswith("f1:") and secret not in stored and stored != pending
    clock.at += 60
    assert _sign_in_with_code(app, pyotp.TOTP(secret).at(clock.at)) == 303


def test_a_secret_written_in_clear_still_works_and_is_sealed_at_its_next_use(
    make, clock, redis_client
):
    app = make()
    key = runtime(app).keys.staff_account("a@news.example")
    secret = pyotp.random_base32()
    redis_client.hset(key, "totp", secret)  # as enrolment wrote it before secrets were sealed
    assert _sign_in_with_code(app, pyotp.TOTP(secret).at(clock.at)) == 303
    stored = redis_client.hget(key, "totp")
    assert stored.startswith("f1:") and secret not in stored
    clock.at += 60
    assert _sign_in_with_code(app, pyotp.TOTP(secret).at(clock.at)) == 303


def test_another_secret_key_cannot_open_a_sealed_secret(make, make_app, clock):
    app = make()
    client = app.test_client()
    password_step(client)
    secret = enrol(app, client, clock)
    other = make_app(staff_hasher=FAST, staff_insecure_cookies=True, staff_clock=clock,
                     secret_key="another-secret-key-0123456789")  # fmt: skip
    clock.at += 60
    assert _sign_in_with_code(other, pyotp.TOTP(secret).at(clock.at)) == 401
    assert _sign_in_with_code(app, pyotp.TOTP(secret).at(clock.at)) == 303


def test_enrolment_is_whole_when_the_audit_log_cannot_take_its_entry(make, clock, redis_client):
    app = make()
    client = app.test_client()
    password_step(client)
    token = csrf_of(client.get("/staff/me"))
    page = client.post("/staff/me/2fa/start", data={"csrf_token": token}).get_data(as_text=True)
    secret = re.search(r'<code class="link">([A-Z2-7]+)</code>', page).group(1)
    keys = runtime(app).keys
    redis_client.delete(keys.audit)
    redis_client.set(keys.audit, "planted")
    before = redis_client.hgetall(keys.staff_account("a@news.example"))
    code = pyotp.TOTP(secret).at(clock.at)
    refused = client.post("/staff/me/2fa/confirm", data={"csrf_token": token, "code": code})
    assert refused.status_code == 503
    assert redis_client.hgetall(keys.staff_account("a@news.example")) == before


# --- Replacing and turning off a factor that is on ------------------------------------------


def _start(client, token) -> str:
    page = client.post("/staff/me/2fa/start", data={"csrf_token": token}).get_data(as_text=True)
    return re.search(r'<code class="link">([A-Z2-7]+)</code>', page).group(1)


def _actions(app) -> list[str]:
    rt = runtime(app)
    return [e["action"] for e in audit.entries(rt.redis, rt.keys, limit=100)]


def test_a_session_alone_cannot_replace_an_active_factor(make, clock, redis_client):
    """A stolen session started a new enrolment while 2FA was on and confirmed it with a
    code of the new secret: the account's second factor became the thief's."""
    app = make()
    client = app.test_client()
    password_step(client)
    old = enrol(app, client, clock)
    token = csrf_of(client.get("/staff/me"))
    key = runtime(app).keys.staff_account("a@news.example")
    factor_before = redis_client.hget(key, "totp")
    new = _start(client, token)
    clock.at += 30
    code = pyotp.TOTP(new).at(clock.at)
    refused = client.post("/staff/me/2fa/confirm", data={"csrf_token": token, "code": code})
    assert refused.status_code == 400 and "password" in refused.get_data(as_text=True)
    assert redis_client.hget(key, "totp") == factor_before
    assert "staff_two_factor_replaced" not in _actions(app)
    assert _sign_in_with_code(app, pyotp.TOTP(new).at(clock.at)) == 401
    assert _sign_in_with_code(app, pyotp.TOTP(old).at(clock.at)) == 303


def test_replacing_takes_the_password_and_a_current_code_from_the_old_app(make, clock):
    app = make()
    client = app.test_client()
    password_step(client)
    old = enrol(app, client, clock)
    token = csrf_of(client.get("/staff/me"))
    new = _start(client, token)
    page = client.get("/staff/me").get_data(as_text=True)
    assert 'name="current_code"' in page and 'name="password"' in page
    clock.at += 30
    right = {"csrf_token": token, "code": pyotp.TOTP(new).at(clock.at), "password": GOOD,
             "current_code": pyotp.TOTP(old).at(clock.at)}  # fmt: skip
    for wrong in ({"password": "not the password!"}, {"current_code": "000000"},
                  {"current_code": pyotp.TOTP(new).at(clock.at)}, {"code": "000000"}):  # fmt: skip
        answer = client.post("/staff/me/2fa/confirm", data={**right, **wrong})
        assert answer.status_code == 400, wrong
    assert "staff_two_factor_replaced" not in _actions(app)
    done = client.post("/staff/me/2fa/confirm", data=right)
    assert done.status_code == 200 and "new app" in done.get_data(as_text=True)
    rt = runtime(app)
    [entry] = [
        e for e in audit.entries(rt.redis, rt.keys, limit=100)
        if e["action"] == "staff_two_factor_replaced"
    ]  # fmt: skip
    assert entry["actor"] == "a@news.example" and entry["target"] == "staff a@news.example"
    assert (entry["before"], entry["after"]) == ({"two_factor": True}, {"two_factor": True})
    assert not any(old in str(v) or new in str(v) for v in entry.values())
    clock.at += 15 * 60  # the four refusals above took four of the sign-in lock's places
    assert _sign_in_with_code(app, pyotp.TOTP(old).at(clock.at)) == 401
    assert _sign_in_with_code(app, pyotp.TOTP(new).at(clock.at)) == 303


def test_turning_off_takes_the_password_too(make, clock):
    app = make()
    client = app.test_client()
    password_step(client)
    secret = enrol(app, client, clock)
    token = csrf_of(client.get("/staff/me"))
    clock.at += 30
    code = pyotp.TOTP(secret).at(clock.at)
    for password in (None, "not the password!"):
        data = {"csrf_token": token, "code": code, **({"password": password} if password else {})}
        assert client.post("/staff/me/2fa/disable", data=data).status_code == 400
    assert accounts_for(runtime(app)).get("a@news.example").has_totp
    off = {"csrf_token": token, "code": code, "password": GOOD}
    assert client.post("/staff/me/2fa/disable", data=off).status_code == 200
    assert not accounts_for(runtime(app)).get("a@news.example").has_totp
    assert "staff_two_factor_disabled" in _actions(app)


def test_guesses_from_a_session_count_toward_the_sign_in_lock(make, clock):
    """A session cannot guess the password or codes more often than a sign-in could."""
    app = make()
    client = app.test_client()
    password_step(client)
    secret = enrol(app, client, clock)
    token = csrf_of(client.get("/staff/me"))
    clock.at += 30
    for _ in range(5):
        data = {"csrf_token": token, "code": "000000", "password": GOOD}
        assert client.post("/staff/me/2fa/disable", data=data).status_code == 400
    right = {"csrf_token": token, "code": pyotp.TOTP(secret).at(clock.at), "password": GOOD}
    assert client.post("/staff/me/2fa/disable", data=right).status_code == 429
    assert accounts_for(runtime(app)).get("a@news.example").has_totp
    assert password_step(app.test_client()).status_code == 401  # sign-in locked as well
    new = {"csrf_token": token, "current": GOOD, "password": GOOD + " 2", "confirm": GOOD + " 2"}
    assert client.post("/staff/me/password", data=new).status_code == 429
    clock.at += 15 * 60
    assert client.post("/staff/me/2fa/disable", data={
        **right, "code": pyotp.TOTP(secret).at(clock.at)}).status_code == 200  # fmt: skip


# --- An enrolment started twice ----------------------------------------------------------


def test_setting_up_in_a_second_tab_keeps_the_first_tabs_code_working(make, clock):
    """Set-up started in two tabs shows one secret: the app that scanned the first tab's QR
    code turns two-factor sign-in on, and the other tab's confirm then says it is done."""
    app = make()
    first, second = app.test_client(), app.test_client()
    password_step(first)
    password_step(second)
    token_first, token_second = csrf_of(first.get("/staff/me")), csrf_of(second.get("/staff/me"))
    scanned = _start(first, token_first)
    clock.at += 60
    assert _start(second, token_second) == scanned
    assert second.get("/staff/me/2fa/qr.svg").data == first.get("/staff/me/2fa/qr.svg").data
    code = pyotp.TOTP(scanned).at(clock.at)
    on = first.post("/staff/me/2fa/confirm", data={"csrf_token": token_first, "code": code})
    assert on.status_code == 200 and "Two-factor sign-in is on" in on.get_data(as_text=True)
    late = second.post("/staff/me/2fa/confirm", data={"csrf_token": token_second, "code": code})
    assert late.status_code == 400
    assert "finished in another tab" in late.get_data(as_text=True)
    assert "staff_two_factor_replaced" not in _actions(app)
    assert _sign_in_with_code(app, pyotp.TOTP(scanned).at(clock.at + 30)) == 303


def test_an_enrolment_waits_for_its_code_thirty_minutes(make, clock, redis_client):
    app = make()
    client = app.test_client()
    password_step(client)
    token = csrf_of(client.get("/staff/me"))
    stale = _start(client, token)
    clock.at += 20 * 60
    assert _start(client, token) == stale  # shown again: it waits 30 minutes from now
    clock.at += 20 * 60
    assert client.get("/staff/me/2fa/qr.svg").status_code == 200
    clock.at += 10 * 60
    assert client.get("/staff/me/2fa/qr.svg").status_code == 404
    assert stale not in client.get("/staff/me").get_data(as_text=True)
    code = pyotp.TOTP(stale).at(clock.at)
    refused = client.post("/staff/me/2fa/confirm", data={"csrf_token": token, "code": code})
    assert refused.status_code == 400 and "30 minutes" in refused.get_data(as_text=True)
    assert not accounts_for(runtime(app)).get("a@news.example").has_totp
    fresh = _start(client, token)
    assert fresh != stale
    code = pyotp.TOTP(fresh).at(clock.at)
    on = client.post("/staff/me/2fa/confirm", data={"csrf_token": token, "code": code})
    assert on.status_code == 200
    key = runtime(app).keys.staff_account("a@news.example")
    assert not redis_client.hexists(key, "totp_pending")
    assert not redis_client.hexists(key, "totp_pending_at")
