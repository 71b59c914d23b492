"""The admins' Staff pages: an account's sessions ended one by one or all at once, enabling
a disabled account, a new password link; each change audited with the admin as actor."""

from __future__ import annotations

import re

from membership.core import audit
from membership.core.runtime import runtime
from membership.staff import accounts_for
from membership.staff.access.sessions import sessions_for
from tests.support.staff import FAST, GOOD, signed_in

EDITOR = "editor@news.example"


def _actions(app, action):
    rt = runtime(app)
    return [e for e in audit.entries(rt.redis, rt.keys, limit=100) if e["action"] == action]


def test_an_admin_ends_one_session_then_all(app):
    admin, token = signed_in(app, "admin")
    first, _ = signed_in(app, "editor")
    second, _ = signed_in(app, "editor")
    sessions = sessions_for(runtime(app)).list(EDITOR)
    assert len(sessions) == 2
    page = admin.get(f"/staff/accounts/{EDITOR}").get_data(as_text=True)
    assert all(s.id in page for s in sessions)
    newest = sessions[0].id
    ended = admin.post(f"/staff/accounts/{EDITOR}/sessions/end",
                       data={"csrf_token": token, "session": newest})  # fmt: skip
    assert ended.status_code == 200 and "Session ended." in ended.get_data(as_text=True)
    assert [s.id for s in sessions_for(runtime(app)).list(EDITOR)] == [sessions[1].id]
    assert [first.get("/staff/").status_code, second.get("/staff/").status_code] == [200, 303]
    again = admin.post(f"/staff/accounts/{EDITOR}/sessions/end",
                       data={"csrf_token": token, "session": newest})  # fmt: skip
    assert again.status_code == 400 and "already ended" in again.get_data(as_text=True)
    everything = admin.post(f"/staff/accounts/{EDITOR}/sessions/end", data={"csrf_token": token})
    assert "All sessions ended." in everything.get_data(as_text=True)
    assert sessions_for(runtime(app)).list(EDITOR) == []
    assert first.get("/staff/").status_code == 303
    entries = _actions(app, "staff_sessions_ended")
    assert [e["actor"] for e in entries] == ["admin@news.example"] * 2
    assert admin.get("/staff/").status_code == 200  # the admin's own session is untouched


def test_ending_all_ones_own_sessions_signs_out(app):
    admin, token = signed_in(app, "admin")
    response = admin.post("/staff/accounts/admin@news.example/sessions/end",
                          data={"csrf_token": token})  # fmt: skip
    assert response.status_code == 303 and response.location.startswith("/staff/login")
    assert admin.get("/staff/").status_code == 303


def test_disable_then_enable(app):
    admin, token = signed_in(app, "admin")
    assert admin.post("/staff/accounts/disable",
                      data={"csrf_token": token, "email": EDITOR}).status_code == 200  # fmt: skip
    page = admin.get("/staff/accounts").get_data(as_text=True)
    assert f'aria-label="Enable {EDITOR}"' in page
    client = app.test_client()
    login = client.get("/staff/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', login).group(1)
    refused = client.post("/staff/login", data={"csrf_token": csrf, "email": EDITOR,
                                                "password": GOOD})  # fmt: skip
    assert refused.status_code == 401
    enabled = admin.post("/staff/accounts/enable", data={"csrf_token": token, "email": EDITOR})
    assert enabled.status_code == 200 and "may sign in again" in enabled.get_data(as_text=True)
    assert not accounts_for(runtime(app)).get(EDITOR).disabled
    signed_in(app, "editor")  # asserts the 303 of a good sign-in
    entry = _actions(app, "staff_enabled")[0]
    assert (entry["before"]["disabled"], entry["after"]["disabled"]) == (True, False)
    unknown = admin.post("/staff/accounts/enable",
                         data={"csrf_token": token, "email": "no@news.example"})  # fmt: skip
    assert unknown.status_code == 400 and _actions(app, "staff_enabled") == [entry]


def test_a_new_password_link_for_an_existing_account(app):
    admin, token = signed_in(app, "admin")
    answer = admin.post("/staff/accounts/link", data={"csrf_token": token, "email": EDITOR})
    link = re.search(r"/staff/set-password\?token=([\w-]+)", answer.get_data(as_text=True))
    assert link is not None
    assert accounts_for(runtime(app)).link_email(link.group(1)) == EDITOR
    unknown = admin.post("/staff/accounts/link",
                         data={"csrf_token": token, "email": "no@news.example"})  # fmt: skip
    assert unknown.status_code == 400


def test_an_unknown_account_page_is_404_and_editors_may_not_see_any(app):
    admin, _ = signed_in(app, "admin")
    assert admin.get("/staff/accounts/nobody@news.example").status_code == 404
    editor, token = signed_in(app, "editor")
    assert editor.get(f"/staff/accounts/{EDITOR}").status_code == 403
    before = len(sessions_for(runtime(app)).list(EDITOR))
    refused = editor.post(f"/staff/accounts/{EDITOR}/sessions/end", data={"csrf_token": token})
    assert refused.status_code == 403
    assert len(sessions_for(runtime(app)).list(EDITOR)) == before


def test_with_redis_down_a_page_says_so_in_words_and_the_api_in_json(outage_app, own_redis):

    down = outage_app(staff_hasher=FAST, staff_insecure_cookies=True)
    accounts_for(runtime(down)).add("admin@news.example", "admin", actor="t", password=GOOD)
    client, token = signed_in(down, "admin")
    own_redis.stop()
    for path in ("/staff/", "/staff/goals", "/staff/members?q=ann", "/staff/login"):
        page = client.get(path)
        assert page.status_code == 503 and page.mimetype == "text/html", path
        assert "cannot be reached just now" in page.get_data(as_text=True)
        assert page.headers["Retry-After"] == "5"
    posted = client.post("/staff/goals", data={"csrf_token": token, "target": "5"})
    assert posted.status_code == 503 and posted.mimetype == "text/html"
    api = client.get("/staff/api/me")
    assert api.status_code == 503 and api.get_json()["error"]["code"] == "redis_unavailable"


def test_an_admin_resets_a_lost_second_factor(app):
    import pyotp

    from membership.staff.access.totp import second_factor_for

    rt = runtime(app)
    factor = second_factor_for(rt)
    secret = factor.start(EDITOR)
    assert factor.confirm(EDITOR, pyotp.TOTP(secret).now())
    editor, _ = signed_in_with_code(app, secret)
    admin, token = signed_in(app, "admin")
    page = admin.get(f"/staff/accounts/{EDITOR}").get_data(as_text=True)
    assert "Reset two-factor sign-in" in page
    reset = admin.post(f"/staff/accounts/{EDITOR}/two-factor/reset", data={"csrf_token": token})
    assert reset.status_code == 200 and "may enrol again" in reset.get_data(as_text=True)
    assert not accounts_for(rt).get(EDITOR).has_totp
    assert editor.get("/staff/").status_code == 303  # their sessions ended
    signed_in(app, "editor")  # the password alone signs in again
    (entry,) = _actions(app, "staff_two_factor_reset")
    assert entry["actor"] == "admin@news.example" and entry["after"]["two_factor"] is False
    again = admin.post(f"/staff/accounts/{EDITOR}/two-factor/reset", data={"csrf_token": token})
    assert again.status_code == 409 and len(_actions(app, "staff_two_factor_reset")) == 1
    own = admin.post("/staff/accounts/admin@news.example/two-factor/reset",
                     data={"csrf_token": token})  # fmt: skip
    assert own.status_code == 400


def signed_in_with_code(app, secret):
    """The editor signed in with password and code; returns (client, None)."""
    import re

    import pyotp

    client = app.test_client()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/staff/login").text)
    form = {"csrf_token": csrf.group(1), "email": EDITOR, "password": GOOD}
    step = client.post("/staff/login", data=form).text
    pending = re.search(r'name="pending" value="([^"]+)"', step).group(1)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', step).group(1)
    code = pyotp.TOTP(secret).at(int(__import__("time").time()) + 30)  # the next step's
    answer = client.post("/staff/login/code", data={"csrf_token": csrf, "pending": pending,
                                                    "code": code})  # fmt: skip
    assert answer.status_code == 303, answer.text[:300]
    return client, None
