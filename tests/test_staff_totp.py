"""Two-factor sign-in (TOTP) against a real redis-server: enrolment with a QR code served
from our origin, sign-in with a code, no replay, the lock, STAFF_REQUIRE_2FA for admins."""

from __future__ import annotations

import re

import pyotp
import pytest
from argon2 import PasswordHasher

from membership import audit
from membership.runtime import runtime
from membership.staff import accounts_for
from membership.staff.cookies import COOKIE
from membership.staff.totp import code_step

GOOD = "correct horse battery"
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Clock:
    at = 1_800_000_000.0

    def __call__(self) -> float:
        return self.at


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def make(make_app, clock):
    def build(**overrides):
        app = make_app(staff_hasher=FAST, staff_insecure_cookies=True, staff_clock=clock,
                       **overrides)  # fmt: skip
        accounts_for(runtime(app)).add("a@news.example", "admin", actor="t", password=GOOD)
        return app

    return build


def csrf_of(response) -> str:
    return _CSRF.search(response.get_data(as_text=True)).group(1)


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
