"""`membership members token EMAIL|CUSTOMER_ID` against a real redis-server, and the token
it prints used on POST /v1/prompt."""

from __future__ import annotations

import time

import pytest

from membership.core.config import DEFAULT_MEMBER_STATUSES
from membership.ledger import Ledger
from membership.prompts import campaigns, snapshot, store
from membership.prompts.tokens import MEMBER_MAX_AGE, Tokens
from membership.store import Keys
from tests.support import stripe_payloads as sp
from tests.support.ledger_helpers import add_offline, link
from tests.support.ledger_helpers import snapshot as observe
from tests.support.prompt_helpers import doc

KEYS = Keys()
SECRET = "cli-secret-key-0123456789"


@pytest.fixture
def ledger(redis_url, redis_client):
    return Ledger.on(redis_client, KEYS, DEFAULT_MEMBER_STATUSES)


@pytest.fixture
def run(membership_cli):
    def invoke(who: str):
        return membership_cli(
            "members", "token", who, env={"SECRET_KEY": SECRET}, catch_exceptions=False
        )

    return invoke


def _subscribe(ledger, customer: str, status: str = "active", email: str | None = None, at=100):
    observe(ledger, sp.subscription(f"sub_{customer}", customer, status), observed_at=at)
    if email:
        link(ledger, customer, email, observed_at=at)


def _claim(result):
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    claim = Tokens(SECRET).read_member(lines[0], time.time())
    assert claim is not None
    assert claim.expires_at - claim.issued_at == MEMBER_MAX_AGE
    return claim


def _refused(result, who: str):
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [f"error: {who} is not a current member; no token"]


def test_a_stripe_member_by_customer_id_and_by_email(ledger, run):
    _subscribe(ledger, "cus_A1", email="Reader@Example.org")
    assert _claim(run("cus_A1")).subject == "cus_A1"
    assert _claim(run("reader@example.org")).subject == "email:reader@example.org"
    assert _claim(run("  READER@example.ORG ")).subject == "email:reader@example.org"


def test_an_offline_member_by_email(ledger, run):
    add_offline(ledger, "Gift@Example.org", "a gift")
    assert _claim(run("gift@example.org")).subject == "email:gift@example.org"


def test_no_token_for_anyone_who_is_not_a_current_member(ledger, run):
    _subscribe(ledger, "cus_gone", email="gone@example.org")
    observe(ledger, sp.subscription("sub_cus_gone", "cus_gone", "canceled"), observed_at=200)
    _subscribe(ledger, "cus_late", status="unpaid", email="late@example.org")
    add_offline(ledger, "was@example.org", "comp")
    ledger.writer.remove_offline_member("was@example.org", "ended", actor="test")
    for who in (
        "cus_gone",
        "gone@example.org",
        "cus_late",
        "late@example.org",
        "was@example.org",
        "cus_never",
        "nobody@example.org",
    ):
        _refused(run(who), who)


@pytest.mark.parametrize("who", ["bob", "cus_", "cus_a b", "a@b@c", ""])
def test_something_that_is_neither_an_email_nor_a_customer_is_a_usage_error(run, who):
    result = run(who)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "cus_" in result.stderr


def test_the_printed_token_silences_a_non_members_campaign(ledger, run, make_app, redis_client):
    _subscribe(ledger, "cus_B2")
    token = run("cus_B2").stdout.strip()
    app = make_app(secret_key=SECRET)
    try:
        store.apply(redis_client, KEYS, campaigns.parse_list([doc()]), actor="test")
        client = app.test_client()
        asked = client.post("/v1/prompt", json={"reader": "reader-0001"}).get_json()
        assert [p["campaign"] for p in asked["prompts"]] == ["c1"]
        member = client.post("/v1/prompt", json={"reader": "reader-0001", "member": token})
        assert member.get_json()["prompts"] == []
    finally:
        snapshot.for_app(app).close()
