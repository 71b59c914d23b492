"""A fixed /staff/api/ route beside a parameter route (/campaigns/preview beside
/campaigns/{id}) leaves every other method to the parameter route: an id that happens to be
the fixed word is still read, replaced and removed like any other, and the metrics label
the routes by their plain rule."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from membership.core.runtime import runtime
from membership.staff.access.accounts import accounts_for
from membership.staff.access.api_tokens import api_tokens_for
from tests.support.prompt_helpers import EXAMPLE, merge


@pytest.fixture
def client_and_token(make_app):
    app = make_app(staff_hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    rt = runtime(app)
    accounts_for(rt).add("admin@news.example", "admin", actor="test")
    token = api_tokens_for(rt).create("admin@news.example", "methods")
    return app.test_client(), {"Authorization": f"Bearer {token}"}


def test_a_campaign_whose_id_is_preview_is_read_and_replaced(client_and_token):
    client, auth = client_and_token
    document = merge(EXAMPLE, {"id": "preview", "status": "draft"})
    assert client.post("/staff/api/campaigns", json=document, headers=auth).status_code == 201
    read = client.get("/staff/api/campaigns/preview", headers=auth)
    assert read.status_code == 200, read.get_json()
    assert read.get_json()["campaign"]["id"] == "preview"
    renamed = merge(document, {"name": "Renamed"})
    put = client.put("/staff/api/campaigns/preview", json=renamed, headers=auth)
    assert put.status_code == 200, put.get_json()
    again = client.get("/staff/api/campaigns/preview", headers=auth).get_json()
    assert again["campaign"]["name"] == "Renamed"


@pytest.mark.parametrize(
    ("method", "path", "message"),
    [
        ("GET", "/staff/api/goals/preview", "no goal with id preview"),
        ("GET", "/staff/api/members/offline/remove", "no member by that id"),
    ],
)
def test_an_id_named_like_a_fixed_route_is_looked_up(client_and_token, method, path, message):
    client, auth = client_and_token
    response = client.open(path, method=method, headers=auth)
    assert response.status_code == 404
    assert message in response.get_json()["error"]["message"]


def test_metrics_label_the_parameter_routes_by_their_plain_rule(client_and_token):
    client, auth = client_and_token
    client.get("/staff/api/goals/7", headers=auth)
    client.get("/staff/api/members/someone", headers=auth)
    text = client.get("/metrics").get_data(as_text=True)
    assert 'endpoint="/staff/api/goals/<goal_id>"' in text
    assert 'endpoint="/staff/api/members/<path:who>"' in text
