"""Roles on the server: a crawl of every /staff route signed out, as a viewer, an editor and
an admin. Signed out: pages redirect to the login, /staff/api/ answers 401. A POST that
needs more than the caller's role is 403 and leaves no audit entry; CSRF is checked first."""

from __future__ import annotations

import re

import pytest
from flask import Blueprint

from membership.core import audit
from membership.core.runtime import runtime
from membership.staff import accounts_for
from membership.staff.access import guard
from tests.support.staff import FAST, signed_in, staff_routes, with_role_accounts

PUBLIC = {
    "staff.login",
    "staff.login_post",
    "staff.login_code",
    "staff.set_password",
    "staff.set_password_post",
}
# GETs that answer 404 until there is something to show (no enrolment in progress).
NOT_YET = {"staff.me_2fa_qr"}


def test_every_view_states_who_may_use_it(app):
    for _, _, endpoint in staff_routes(app):
        view = app.view_functions[endpoint]
        assert getattr(view, "staff_public", False) or hasattr(view, "staff_role"), endpoint
        assert (endpoint in PUBLIC) == getattr(view, "staff_public", False), endpoint


def test_signed_out_every_page_redirects_to_the_login_and_the_api_answers_401(app):
    client, token = signed_in(app, None)
    for path, method, endpoint in staff_routes(app):
        if endpoint in PUBLIC:
            continue
        response = client.open(path, method=method, data={"csrf_token": token})
        if path.startswith("/staff/api/"):
            assert response.status_code == 401, (path, method)
            assert response.get_json()["error"]["code"] == "unauthorized"
        else:
            assert response.status_code == 303, (path, method)
            assert response.location.startswith("/staff/login"), (path, method)


@pytest.mark.parametrize("role", ["viewer", "editor", "admin"])
def test_every_page_answers_signed_in(app, role):
    client, _ = signed_in(app, role)
    for path, method, endpoint in staff_routes(app):
        if method != "GET" or endpoint in PUBLIC:
            continue
        needed = guard.needed_role(app.view_functions[endpoint], method)
        expected = 200 if guard.rules.allows(role, needed) else 403
        if expected == 200 and endpoint in NOT_YET:
            expected = 404
        if expected == 200 and "/x" in path:  # a path parameter naming nothing: not found
            expected = 404
        assert client.get(path).status_code == expected, (role, path)


@pytest.mark.parametrize("role", ["viewer", "editor", "admin"])
def test_every_post_the_role_may_send_answers_without_a_server_error(app, role):
    """Each POST with nothing but the CSRF token (empty fields, "x" for every path
    parameter): an answer, never a 500. Signing out comes last."""
    client, token = signed_in(app, role)
    posts = [
        (path, endpoint)
        for path, method, endpoint in staff_routes(app)
        if method == "POST" and endpoint not in PUBLIC
        if guard.rules.allows(role, guard.needed_role(app.view_functions[endpoint], method))
    ]
    posts.sort(key=lambda post: post[1] == "staff.logout")
    assert posts[-1][1] == "staff.logout"
    for path, endpoint in posts:
        response = client.post(path, data={"csrf_token": token})
        assert response.status_code < 500, (role, path, response.status_code)
        if response.status_code == 303 and "/login" in response.location:
            assert endpoint in {"staff.logout", "staff.team.account_end_session"}, (role, path)


@pytest.mark.parametrize("role", ["viewer", "editor", "admin"])
def test_posts_above_the_role_are_403_and_leave_no_audit_entry(app, redis_client, role):
    client, token = signed_in(app, role)
    keys = runtime(app).keys
    for path, method, endpoint in staff_routes(app):
        if method != "POST" or endpoint in PUBLIC:
            continue
        needed = guard.needed_role(app.view_functions[endpoint], method)
        if guard.rules.allows(role, needed):
            continue
        before = audit.entries(redis_client, keys, limit=1000)
        response = client.post(path, data={"csrf_token": token})
        assert response.status_code == 403, (role, path)
        assert audit.entries(redis_client, keys, limit=1000) == before
        # CSRF comes first: without a token the same POST is 400.
        assert client.post(path).status_code == 400, (role, path)


def test_the_guard_with_routes_of_every_kind(make_app):
    """Routes the later pages will add, on a test blueprint: a viewer's POST to an editor's
    route is 403, an editor's to an admin's is 403, an undeclared POST is an admin's, and
    /staff/api/ answers JSON."""
    from membership.staff.access.csrf import csrf

    bp = Blueprint("staff_probe", __name__, url_prefix="/staff/probe")
    calls = []

    @bp.post("/edit")
    @guard.requires("editor")
    def edit():
        calls.append("edit")
        return "ok"

    @bp.post("/manage")
    def manage():  # states no role: an admin's
        calls.append("manage")
        return "ok"

    api = Blueprint("staff_probe_api", __name__, url_prefix="/staff/api/probe")

    @api.get("/read")
    @guard.requires("viewer")
    def read():
        return {"ok": True}

    for probe in (bp, api):
        probe.before_request(lambda: guard.check_request(csrf))
    app = make_app(staff_hasher=FAST, staff_insecure_cookies=True)
    app.register_blueprint(bp)
    app.register_blueprint(api)
    with_role_accounts(app)
    assert app.test_client().get("/staff/api/probe/read").status_code == 401
    expected = {
        "viewer": (403, 403),
        "editor": (200, 403),
        "admin": (200, 200),
    }
    for role, (edit_status, manage_status) in expected.items():
        client, token = signed_in(app, role)
        assert client.post("/staff/probe/edit", data={"csrf_token": token}).status_code == (
            edit_status
        )
        assert client.post("/staff/probe/manage", data={"csrf_token": token}).status_code == (
            manage_status
        )
        assert client.get("/staff/api/probe/read").get_json() == {"ok": True}
    assert calls == ["edit", "edit", "manage"]


def test_the_crawl_meets_staff_management(app):
    admin_only = {
        (path, method)
        for path, method, endpoint in staff_routes(app)
        if guard.needed_role(app.view_functions[endpoint], method) == "admin"
    }
    assert {("/staff/accounts", "GET"), ("/staff/accounts/disable", "POST")} <= admin_only


def test_admins_manage_staff_from_the_page(app, redis_client):
    admin, token = signed_in(app, "admin")
    editor, _ = signed_in(app, "editor")
    page = admin.get("/staff/accounts").get_data(as_text=True)
    assert "editor@news.example" in page and "viewer@news.example" in page
    assert "Two-factor" in page
    added = admin.post(
        "/staff/accounts", data={"csrf_token": token, "email": "New@news.example", "role": "editor"}
    )
    html = added.get_data(as_text=True)
    assert added.status_code == 200 and "new@news.example" in html
    link = re.search(r"/staff/set-password\?token=([\w-]+)", html)
    assert link and app.test_client().get(link.group(0)).status_code == 200
    again = admin.post(
        "/staff/accounts", data={"csrf_token": token, "email": "new@news.example", "role": "admin"}
    )
    assert again.status_code == 400 and "already has" in again.get_data(as_text=True)
    bad = admin.post("/staff/accounts/role", data={"csrf_token": token, "email": "new@news.example",
                                                   "role": "root"})  # fmt: skip
    assert bad.status_code == 400
    role = admin.post("/staff/accounts/role", data={"csrf_token": token,
                      "email": "viewer@news.example", "role": "editor"})  # fmt: skip
    assert role.status_code == 200 and accounts_for(runtime(app)).get(
        "viewer@news.example"
    ).role == ("editor")
    off = admin.post(
        "/staff/accounts/disable", data={"csrf_token": token, "email": "editor@news.example"}
    )
    assert off.status_code == 200 and editor.get("/staff/").status_code == 303
    for path in ("/staff/accounts/disable", "/staff/accounts/role"):
        data = {"csrf_token": token, "email": "ADMIN@news.example", "role": "viewer"}
        assert admin.post(path, data=data).status_code == 400
    actions = [e["action"] for e in audit.entries(redis_client, runtime(app).keys, limit=20)]
    assert actions[:3] == ["staff_disabled", "staff_role_changed", "staff_added"]
    assert {e["actor"] for e in audit.entries(redis_client, runtime(app).keys, limit=3)} == {
        "admin@news.example"
    }
