"""A fixed /staff/api/ route beside a parameter route (/goals/preview beside /goals/{id}) is
never taken for the parameter: a method it does not take is 405 with its own Allow, and
OPTIONS lists only its methods, as the OpenAPI document says."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from membership.core.runtime import runtime
from membership.staff.access.accounts import accounts_for
from membership.staff.access.api_tokens import api_tokens_for

FIXED = [
    "/staff/api/goals/preview",
    "/staff/api/campaigns/preview",
    "/staff/api/members/offline",
    "/staff/api/members/offline/remove",
]


@pytest.fixture
def client_and_token(make_app):
    app = make_app(staff_hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    rt = runtime(app)
    accounts_for(rt).add("admin@news.example", "admin", actor="test")
    token = api_tokens_for(rt).create("admin@news.example", "methods")
    return app.test_client(), {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("path", FIXED)
def test_options_allows_only_the_fixed_routes_methods(client_and_token, path):
    client, auth = client_and_token
    response = client.options(path, headers=auth)
    assert set(response.headers["Allow"].split(", ")) == {"OPTIONS", "POST"}


@pytest.mark.parametrize("path", FIXED)
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_other_methods_are_405_not_a_lookup_of_that_id(client_and_token, path, method):
    client, auth = client_and_token
    response = client.open(path, method=method, headers=auth)
    assert response.status_code == 405, (method, path)
    assert set(response.headers["Allow"].split(", ")) == {"OPTIONS", "POST"}
    assert response.get_json()["error"]["code"] == "method_not_allowed"


def test_ids_beside_the_fixed_words_still_reach_their_routes(client_and_token):
    client, auth = client_and_token
    assert client.get("/staff/api/goals/7", headers=auth).get_json()["error"]["code"] == "not_found"
    for who in ("offline/x", "offlinex", "reader@example.org"):
        response = client.get(f"/staff/api/members/{who}", headers=auth)
        assert response.status_code == 404, who
        assert response.get_json()["error"]["message"] == "no member by that id"
    assert client.get("/staff/api/campaigns/previews", headers=auth).status_code == 404
