"""Checkout and members end to end, in process: a reader is asked, clicks, pays at the
fake Stripe; the signed webhooks (twice, and before the token request) count one member and
credit the ask's variant once in `campaigns results`; the member's token silences the asks,
is renewed while the membership lasts, and after `customer.subscription.deleted` is refused
renewal, so the asks resume."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner

from membership.cli import cli
from membership.core.runtime import runtime
from membership.ledger import ledger_for
from membership.prompts import assign, snapshot
from tests.support import stripe_payloads as sp
from tests.support.member_count import set_member_count
from tests.support.prompt_helpers import EXAMPLE
from tests.support.webhooks import deliver


@pytest.fixture
def app(checkout_app):
    app = checkout_app()
    yield app
    snapshot.for_app(app).close()


def asking(app, redis_url, tmp_path) -> tuple[dict, dict]:
    """The example campaign applied, 100 members counted: a reader outside the holdout, on
    their third article today, and the ask they see."""
    env = {"REDIS_URL": redis_url, "MEMBERSHIP_DATA_DIR": str(tmp_path / "cli")}
    assert (
        CliRunner().invoke(cli, ["campaigns", "apply", "-"], env=env, input=json.dumps(EXAMPLE))
    ).exit_code == 0
    rt = runtime(app)
    set_member_count(rt.redis, rt.keys, 100)
    snapshot.for_app(app).refresh()
    reader = next(
        r
        for r in (f"reader-{i:04d}" for i in range(100))
        if assign.bucket(r, EXAMPLE["id"]) >= 1000
    )
    asked = {"reader": reader, "history": {"articles": {time.strftime("%Y-%m-%d"): 3}}}
    [prompt] = app.test_client().post("/v1/prompt", json=asked).get_json()["prompts"]
    return asked, prompt


def test_ask_click_pay_count_credit_and_silence(app, priced_stripe, redis_url, tmp_path):
    env = {"REDIS_URL": redis_url, "MEMBERSHIP_DATA_DIR": str(tmp_path / "cli")}
    rt = runtime(app)
    client = app.test_client()
    asked, prompt = asking(app, redis_url, tmp_path)

    # The click: a Checkout Session attributed to that variant.
    checkout = client.post("/v1/checkout", json={"plan": "monthly", "token": prompt["token"]})
    assert checkout.status_code == 200
    [session_id] = priced_stripe.checkout.sessions
    assert priced_stripe.checkout.sessions[session_id]["metadata"]["variant"] == prompt["variant"]
    assert checkout.get_json()["url"] == priced_stripe.checkout.sessions[session_id]["url"]

    # The reader pays; Stripe's news arrives twice, before the success page asks for a token.
    events = priced_stripe.complete(session_id)
    for event in [*events, *events]:
        deliver(client, event)
    assert ledger_for(rt).queries.count() == 101
    token = client.get(f"/v1/member/token?session_id={session_id}").get_json()["token"]

    results = CliRunner().invoke(cli, ["campaigns", "results", EXAMPLE["id"], "--json"], env=env)
    variants = {v["id"]: v for v in json.loads(results.stdout)["variants"]}
    assert variants[prompt["variant"]]["conversions"] == 1
    assert variants[prompt["variant"]]["revenue"] == {"eur": 500}
    assert sum(v["conversions"] for v in variants.values()) == 1

    # A member is not asked again.
    silenced = client.post("/v1/prompt", json={**asked, "member": token}).get_json()
    assert silenced["prompts"] == []

    # The token is renewed while the membership lasts ...
    refreshed = client.post("/v1/member/token/refresh", json={"token": token})
    assert refreshed.status_code == 200
    token = refreshed.get_json()["token"]
    assert client.post("/v1/prompt", json={**asked, "member": token}).get_json()["prompts"] == []

    # ... and not once it has ended: the widget drops the token, and the asks resume.
    [created] = [e for e in events if e["type"] == "customer.subscription.created"]
    ended = {**created["data"]["object"], "status": "canceled"}
    deliver(
        client,
        sp.event("customer.subscription.deleted", ended, created=created["created"] + 1),
    )
    assert ledger_for(rt).queries.count() == 100
    lapsed = client.post("/v1/member/token/refresh", json={"token": token})
    assert lapsed.status_code == 401
    assert [p["variant"] for p in client.post("/v1/prompt", json=asked).get_json()["prompts"]] == [
        prompt["variant"]
    ]


def test_a_one_time_contribution_silences_the_asks_until_its_token_ends(
    app, priced_stripe, redis_url, tmp_path
):
    """A contributor (whatever address they typed at Checkout): the token recognises this
    reader (no asks), opens no portal and is not renewed."""
    client = app.test_client()
    asked, prompt = asking(app, redis_url, tmp_path)
    checkout = client.post(
        "/v1/checkout",
        json={"plan": "once", "amount": 100, "token": prompt["token"], "email": "m@example.org"},
    )
    assert checkout.status_code == 200, checkout.get_json()
    [session_id] = priced_stripe.checkout.sessions
    for event in priced_stripe.complete(session_id):
        deliver(client, event)
    answer = client.get(f"/v1/member/token?session_id={session_id}").get_json()
    token = answer["token"]

    assert client.post("/v1/prompt", json={**asked, "member": token}).get_json()["prompts"] == []
    opened = client.post(
        "/v1/member/portal", json={"token": token, "return_url": "https://news.example/account"}
    )
    assert opened.status_code == 409
    assert opened.get_json()["error"]["code"] == "nothing_to_manage"
    assert priced_stripe.checkout.portal_sessions == []
    assert client.post("/v1/member/token/refresh", json={"token": token}).status_code == 401
