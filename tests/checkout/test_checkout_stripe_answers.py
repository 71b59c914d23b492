"""What Stripe answers the endpoints a reader waits on (checkout, the member token, the portal)
is checked before it is used: anything but what was asked for is a 502 `stripe_bad_answer`,
never a 200 that passes it on, and never a 500. Against the fake Stripe
(tests/support/fake_stripe.py, `answer_next`), nothing leaves the machine."""

from __future__ import annotations

import json
import time

import pytest

from membership.store import Keys
from membership.stripe import api as stripe_api
from tests.support.fake_stripe_checkout import SESSION_TTL
from tests.support.settings import member_token
from tests.support.webhooks import deliver

SITE = "https://news.example"
BACK = "https://news.example/account"
PORTAL_URL = "https://billing.stripe.com/p/session/test_abc"
BIG = 40 * 1024 * 1024


@pytest.fixture
def client(checkout_app):
    return checkout_app(stripe_timeout=5.0).test_client()


def short(value: object) -> str:
    return repr(value)[:60]


def a_member(client, priced_stripe, email: str = "payer@example.org") -> str:
    session = priced_stripe.checkout.create_session(
        {
            "mode": "subscription",
            "line_items": [{"price": "price_monthly", "quantity": 1}],
            "success_url": "https://news.example/thanks",
        }
    )
    for event in priced_stripe.complete(session["id"], email=email):
        deliver(client, event)
    return priced_stripe.checkout.sessions[session["id"]]["customer"]


def padded(body: dict, size: int) -> bytes:
    """`body` as JSON, with a `padding` field that makes it `size` bytes."""
    raw = json.dumps({**body, "padding": ""}).encode()
    return raw.replace(b'"padding": ""', b'"padding": "' + b"x" * (size - len(raw)) + b'"')


def bad_gateway(response) -> dict:
    """A JSON 502 naming what failed, without Stripe's words."""
    assert response.status_code == 502, response.get_data(as_text=True)[:300]
    error = response.get_json()["error"]
    assert error["code"] == "stripe_bad_answer"
    assert "padding" not in error["message"] and "javascript" not in error["message"]
    return error


URLS = [
    "http://billing.stripe.com/p/session/test_abc",  # not https
    "javascript:alert(document.domain)//https://",
    "//billing.stripe.com/p/session/test_abc",
    "https://",
    "https:///p/session",
    "https://billing.stripe.com/p/session/a b",
    "https://billing.stripe.com/p/\r\nSet-Cookie: x=1",
    'https://billing.stripe.com/"><script>',
    "https://evil.example@billing.stripe.com/p/session",
    "https://billing.stripe.com/p/" + "a" * stripe_api.MAX_URL_CHARS,
    5,
    None,
    ["https://billing.stripe.com/p/session/test_abc"],
    {"href": "https://billing.stripe.com/"},
]


# --- The Billing Portal ------------------------------------------------------------------------


def portal(client, token: str):
    return client.post("/v1/member/portal", json={"token": token, "return_url": BACK})


# Each table below is one test, its rows subtests on one app, fake Stripe and member: a bad
# answer is refused with a 502 and changes nothing the next row depends on.


def test_a_portal_url_that_is_not_an_https_url_is_a_502(client, priced_stripe, subtests):
    customer = a_member(client, priced_stripe)
    for url in URLS:
        with subtests.test(url=short(url)):
            answer = {"id": "bps_1", "object": "billing_portal.session", "url": url}
            priced_stripe.answer_next(answer)
            bad_gateway(portal(client, member_token(customer)))


def test_a_portal_answer_that_is_not_a_session_with_a_url_is_a_502(client, priced_stripe, subtests):
    customer = a_member(client, priced_stripe)
    for body in [[], "https://billing.stripe.com/", None, 5, {"id": "bps_1"}]:
        with subtests.test(body=short(body)):
            priced_stripe.answer_next(body)
            bad_gateway(portal(client, member_token(customer)))


@pytest.mark.parametrize("sized", [True, False], ids=["content-length", "until-close"])
def test_a_40_mb_portal_answer_is_a_502_and_the_portal_goes_on(client, priced_stripe, sized):
    customer = a_member(client, priced_stripe)
    priced_stripe.answer_next(
        padded({"object": "billing_portal.session", "url": PORTAL_URL}, BIG), sized=sized
    )
    started = time.monotonic()
    bad_gateway(portal(client, member_token(customer)))
    assert time.monotonic() - started < 5
    # The service goes on: the next portal opens.
    assert portal(client, member_token(customer)).status_code == 200


def test_an_answer_just_under_the_limit_is_read(client, priced_stripe):
    customer = a_member(client, priced_stripe)
    limit = stripe_api.MAX_ANSWER_BYTES
    body = {"object": "billing_portal.session", "url": PORTAL_URL}
    priced_stripe.answer_next(padded(body, limit))
    assert portal(client, member_token(customer)).get_json() == {"url": PORTAL_URL}
    priced_stripe.answer_next(padded(body, limit + 1))
    bad_gateway(portal(client, member_token(customer)))


BAD_CUSTOMER_LISTS = [
    [],
    {"object": "list", "data": "cus_A1"},
    {"object": "list"},
    {"object": "list", "data": [{"id": 5}]},
    {"object": "list", "data": ["cus_A1"]},
    {"object": "list", "data": [{"id": "cus_A1/../../v1/charges"}]},
]


def test_a_customer_list_that_is_not_one_is_a_502(client, priced_stripe, redis_client, subtests):
    """A member signed in by email, where the ledger's member index was never built: their
    customer is looked up in Stripe by the email."""
    a_member(client, priced_stripe, "payer@example.org")
    redis_client.delete(Keys().ledger_index_entries)
    for body in BAD_CUSTOMER_LISTS:
        with subtests.test(body=short(body)):
            priced_stripe.answer_next(body)
            bad_gateway(portal(client, member_token("email:payer@example.org")))
            assert priced_stripe.checkout.portal_sessions == []


def test_a_40_mb_customer_list_is_a_502(client, priced_stripe, redis_client):
    a_member(client, priced_stripe, "payer@example.org")
    redis_client.delete(Keys().ledger_index_entries)
    priced_stripe.answer_next(padded({"object": "list", "data": []}, BIG))
    bad_gateway(portal(client, member_token("email:payer@example.org")))
    # ... and a good one still opens the portal that way.
    assert portal(client, member_token("email:payer@example.org")).status_code == 200


# --- The token after Checkout --------------------------------------------------------------


def token_for(client, session_id: str):
    return client.get(f"/v1/member/token?session_id={session_id}")


def completed(priced_stripe, mode: str = "subscription") -> tuple[str, dict]:
    """A completed session, and what Stripe answers for it (expanded as the service asks)."""
    price = "price_monthly" if mode == "subscription" else "price_once"
    session = priced_stripe.checkout.create_session(
        {
            "mode": mode,
            "line_items": [{"price": price, "quantity": 1}],
            "success_url": "https://news.example/thanks",
        }
    )
    priced_stripe.complete(session["id"])
    answer = priced_stripe.checkout.retrieve_session(
        session["id"], {"subscription", "customer", "payment_intent"}
    )
    return session["id"], answer


SESSION_CHANGES = [
    {"id": "cs_test_another_session"},
    {"object": "payment_intent"},
    {"created": "yesterday"},
    {"created": None},
    {"created": True},
    {"created": 1.5e9},
    {"status": ["complete"]},
    {"mode": 1},
    {"payment_status": {"paid": True}},
    {"customer": 5},
    {"customer": {"object": "customer"}},
    {"payment_intent": ["pi_1"]},
    {"subscription": 7},
    {"subscription": {"id": "sub_1", "status": 1, "customer": "cus_A1"}},
    {"subscription": {"id": "sub_1", "status": "active", "customer": {"email": "a@b.org"}}},
    {"subscription": {"status": "active", "customer": "cus_A1"}},
    {"subscription": {"id": "sub_1", "status": "active", "customer": "cus_A1", "created": "x"}},
]


def test_a_session_answer_of_another_shape_is_a_502(client, priced_stripe, subtests):
    session_id, answer = completed(priced_stripe)
    for change in SESSION_CHANGES:
        with subtests.test(change=short(change)):
            priced_stripe.answer_next({**answer, **change})
            bad_gateway(token_for(client, session_id))


def test_a_contributions_session_answer_of_another_shape_is_a_502(client, priced_stripe):
    session_id, answer = completed(priced_stripe, "payment")
    assert token_for(client, session_id).status_code == 200
    for change in (
        {"payment_intent": {"id": "pi_1", "created": "now"}},
        {"customer": {"id": "cus_A1", "created": None}},
    ):
        priced_stripe.answer_next({**answer, **change})
        bad_gateway(token_for(client, session_id))
    # A deleted customer has no `created`: that is Stripe's shape, and no customer to name.
    priced_stripe.answer_next(
        {**answer, "customer": {"id": "cus_A1", "object": "customer", "deleted": True}}
    )
    assert token_for(client, session_id).status_code == 200


def test_a_session_answer_that_is_not_an_object_is_a_502(client, priced_stripe, subtests):
    session_id, _ = completed(priced_stripe)
    for body in [[], "cs_test", None, 5, {}]:
        with subtests.test(body=short(body)):
            priced_stripe.answer_next(body)
            bad_gateway(token_for(client, session_id))


def test_a_session_answer_that_is_not_json_is_a_502(client, priced_stripe):
    session_id, _ = completed(priced_stripe)
    priced_stripe.answer_next(b"<html>Bad gateway</html>")
    response = token_for(client, session_id)
    assert response.status_code == 502
    assert response.get_json()["error"]["code"] == "stripe_error"


def test_a_40_mb_session_answer_is_a_502(client, priced_stripe):
    session_id, answer = completed(priced_stripe)
    priced_stripe.answer_next(padded(answer, BIG))
    bad_gateway(token_for(client, session_id))
    assert token_for(client, session_id).status_code == 200


# --- Checkout ----------------------------------------------------------------------------------


def checkout(client):
    return client.post("/v1/checkout", json={"plan": "monthly"})


def session_answer(url) -> dict:
    now = int(time.time())
    return {
        "id": "cs_test_bad",
        "object": "checkout.session",
        "url": url,
        "mode": "subscription",
        "status": "open",
        "created": now,
        "expires_at": now + SESSION_TTL,
    }


def test_a_checkout_url_that_is_not_an_https_url_is_a_502(client, priced_stripe, subtests):
    for url in URLS:
        with subtests.test(url=short(url)):
            priced_stripe.answer_next(session_answer(url))
            bad_gateway(checkout(client))


def test_a_checkout_answer_that_is_not_a_session_with_a_url_is_a_502(
    client, priced_stripe, subtests
):
    for body in [[], "https://checkout.stripe.com/", None, {"id": "cs_1"}]:
        with subtests.test(body=short(body)):
            priced_stripe.answer_next(body)
            bad_gateway(checkout(client))


def test_a_40_mb_checkout_answer_is_a_502_and_checkout_goes_on(client, priced_stripe):
    priced_stripe.answer_next(padded(session_answer("https://checkout.stripe.com/c/pay/cs_x"), BIG))
    bad_gateway(checkout(client))
    good = checkout(client)
    assert good.status_code == 200
    assert good.get_json()["url"].startswith("https://checkout.stripe.com/c/pay/cs_")


def test_a_bad_answer_is_logged_without_the_answer(client, priced_stripe, caplog):
    priced_stripe.answer_next(session_answer("javascript:alert(1)"))
    with caplog.at_level("ERROR", logger="membership.stripe.api"):
        bad_gateway(checkout(client))
    [record] = [r for r in caplog.records if "cannot use" in r.getMessage()]
    assert "creating the checkout session" in record.getMessage()
    assert "javascript" not in record.getMessage()
