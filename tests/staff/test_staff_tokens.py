"""Personal API tokens against a real redis-server: created on /staff/me and shown once,
stored by hash, `Authorization: Bearer` on /staff/api/ with the owner's role, revoked."""

from __future__ import annotations

import re

import pytest

from membership.core import audit
from membership.core.runtime import runtime
from membership.staff import accounts_for
from tests.support.staff import CSRF, FAST, GOOD


@pytest.fixture
def app(make_app):
    app = make_app(staff_hasher=FAST, staff_insecure_cookies=True)
    accounts_for(runtime(app)).add("ed@news.example", "editor", actor="t", password=GOOD)
    return app


def signed_in(app):
    client = app.test_client()
    token = CSRF.search(client.get("/staff/login").get_data(as_text=True)).group(1)
    data = {"email": "ed@news.example", "password": GOOD, "csrf_token": token}
    assert client.post("/staff/login", data=data).status_code == 303
    return client, CSRF.search(client.get("/staff/me").get_data(as_text=True)).group(1)


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_a_token_is_shown_once_works_with_the_role_and_is_revoked(app, redis_client):
    client, csrf = signed_in(app)
    page = client.post("/staff/me/tokens", data={"csrf_token": csrf, "name": "nightly export"})
    token = re.search(r'id="new-token">(mst_[\w-]+)<', page.get_data(as_text=True)).group(1)
    assert token not in client.get("/staff/me").get_data(as_text=True)  # shown once
    assert not any(token in str(v) for k in redis_client.keys("*") for v in [k])
    script = app.test_client()  # no cookie: the token alone
    me = script.get("/staff/api/me", headers=bearer(token))
    assert me.status_code == 200
    assert me.get_json() == {"email": "ed@news.example", "role": "editor", "via": "token"}
    assert client.get("/staff/api/me").get_json()["via"] == "session"
    assert script.get("/staff/api/me", headers=bearer(token + "x")).status_code == 401
    assert script.get("/staff/api/me", headers=bearer("")).status_code == 401
    # A token opens /staff/api/ only, never the pages.
    assert script.get("/staff/me", headers=bearer(token)).status_code == 303
    tid = re.search(r'name="token" value="([0-9a-f]{64})"', client.get("/staff/me").get_data(
        as_text=True)).group(1)  # fmt: skip
    assert client.post("/staff/me/tokens/revoke", data={"csrf_token": csrf, "token": tid})
    assert script.get("/staff/api/me", headers=bearer(token)).status_code == 401
    again = client.post("/staff/me/tokens/revoke", data={"csrf_token": csrf, "token": tid})
    assert again.status_code == 400
    actions = [e["action"] for e in audit.entries(redis_client, runtime(app).keys, limit=5)]
    assert actions[:2] == ["staff_token_revoked", "staff_token_created"]
    assert token not in str(audit.entries(redis_client, runtime(app).keys))


def test_a_disabled_owner_s_token_answers_401(app):
    client, csrf = signed_in(app)
    page = client.post("/staff/me/tokens", data={"csrf_token": csrf, "name": "x"})
    token = re.search(r"(mst_[\w-]+)", page.get_data(as_text=True)).group(1)
    accounts_for(runtime(app)).disable("ed@news.example", actor="t")
    assert app.test_client().get("/staff/api/me", headers=bearer(token)).status_code == 401


def test_token_names_are_checked(app):
    client, csrf = signed_in(app)
    for name in ("", "x" * 61, "evil\x1b[2J"):
        response = client.post("/staff/me/tokens", data={"csrf_token": csrf, "name": name})
        assert response.status_code == 400
    assert "mst_" not in client.get("/staff/me").get_data(as_text=True)


def test_the_account_page_has_its_title_and_one_tokens_section(app):
    """The tokens section was once pasted into the title block: shown as text in <title>
    and twice on the page."""
    client, csrf = signed_in(app)
    page = client.post("/staff/me/tokens", data={"csrf_token": csrf, "name": "nightly"})
    html = page.get_data(as_text=True)
    title = re.search(r"<title>(.*?)</title>", html, re.S).group(1)
    assert "Your account" in title and "<" not in title and "token" not in title.lower()
    assert html.count('id="tokens-heading"') == 1
    assert html.count('id="new-token"') == 1


def test_disabling_revokes_the_tokens_for_good(app, redis_client):
    """Re-enabling an account once revived its old API tokens: now disabling revokes them,
    in the transaction that disables it."""
    client, csrf = signed_in(app)
    tokens = []
    for name in ("nightly", "weekly"):
        page = client.post("/staff/me/tokens", data={"csrf_token": csrf, "name": name})
        tokens.append(re.search(r'id="new-token">(mst_[\w-]+)<', page.get_data(as_text=True))[1])
    script = app.test_client()
    assert script.get("/staff/api/me", headers=bearer(tokens[0])).status_code == 200
    accounts = accounts_for(runtime(app))
    accounts.disable("ed@news.example", actor="t")
    keys = runtime(app).keys
    assert redis_client.keys(keys.staff_api_token("*")) == []
    assert not redis_client.exists(keys.staff_account_api_tokens("ed@news.example"))
    [entry] = [e for e in audit.entries(redis_client, keys) if e["action"] == "staff_disabled"]
    assert entry["after"]["api_tokens_revoked"] == 2
    accounts.enable("ed@news.example", actor="t")
    for token in tokens:
        assert script.get("/staff/api/me", headers=bearer(token)).status_code == 401
    client, csrf = signed_in(app)
    assert "nightly" not in client.get("/staff/me").get_data(as_text=True)


def test_a_disabled_account_gets_no_new_token(app):
    from membership.staff.access.api_tokens import api_tokens_for
    from membership.staff.access.rules import StaffInputError

    accounts_for(runtime(app)).disable("ed@news.example", actor="t")
    with pytest.raises(StaffInputError, match="disabled"):
        api_tokens_for(runtime(app)).create("ed@news.example", "late")
    with pytest.raises(StaffInputError, match="disabled"):
        api_tokens_for(runtime(app)).create("nobody@news.example", "late")
