"""POST /v1/checkout against the fake Stripe (tests/support/fake_stripe.py): nothing leaves
the machine.

Every refusal of ours is checked against the fake's request log: a 400 never reaches Stripe.
"""

from __future__ import annotations

import time

import pytest

from membership.prompts.tokens import Tokens
from membership.stripe import api as stripe_api
from tests.support.cors import assert_post_preflight
from tests.support.fake_stripe import STRIPE_KEY
from tests.support.settings import SECRET_KEY

SITE = "https://news.example"
SUCCESS = "https://news.example/thanks?session_id={CHECKOUT_SESSION_ID}"
CANCEL = "https://news.example/join"


@pytest.fixture
def make(checkout_app):
    """A test client of checkout_app with two plans, both return URLs and two currencies."""

    def build(**overrides):
        config = {
            "stripe_prices": (("monthly", "price_monthly"), ("yearly", "price_yearly")),
            "checkout_success_url": SUCCESS,
            "checkout_cancel_url": CANCEL,
            "checkout_currencies": ("eur", "usd"),
        }
        config.update(overrides)
        return checkout_app(**config).test_client()

    return build


@pytest.fixture
def client(make):
    return make()


def token(variant="a", *, decision="dec0123456789abc", campaign="spring", at=None) -> str:
    return Tokens(SECRET_KEY).decision(decision, campaign, variant, "r_reader01", at or time.time())


def post(client, body, **kwargs):
    return client.post("/v1/checkout", json=body, **kwargs)


def sent(priced_stripe) -> dict:
    [request] = priced_stripe.calls("POST", "/v1/checkout/sessions")
    return request["params"]


# --- what is sent to Stripe ---------------------------------------------------------------


def test_a_monthly_plan_from_a_prompt(client, priced_stripe):
    response = post(client, {"plan": "monthly", "locale": "de-AT", "token": token()})
    assert response.status_code == 200, response.get_json()
    url = response.get_json()["url"]
    assert url.startswith("https://checkout.stripe.com/c/pay/cs_")
    assert response.headers["Cache-Control"] == "no-store"
    params = sent(priced_stripe)
    assert params["mode"] == "subscription"
    assert params["line_items"] == {"0": {"price": "price_monthly", "quantity": "1"}}
    assert params["locale"] == "de"
    assert params["client_reference_id"] == "dec0123456789abc"
    assert params["metadata"] == {
        "campaign": "spring",
        "variant": "a",
        "decision": "dec0123456789abc",
        "plan": "monthly",
        "price": "price_monthly",
    }
    assert params["success_url"] == SUCCESS  # {CHECKOUT_SESSION_ID} left for Stripe
    assert params["cancel_url"] == CANCEL
    assert priced_stripe.calls()[0]["authorization"] == f"Bearer {STRIPE_KEY}"
    # the session Stripe made says the same
    [session] = priced_stripe.checkout.sessions.values()
    assert session["url"] == url and session["success_url"] == SUCCESS


def test_a_one_time_contribution(client, priced_stripe):
    body = {"plan": "once", "amount": 2500, "currency": "USD", "locale": "uk", "email": "a@b.org"}
    assert post(client, body).status_code == 200
    params = sent(priced_stripe)
    assert params["mode"] == "payment" and params["submit_type"] == "donate"
    item = params["line_items"]["0"]
    assert item["price_data"]["unit_amount"] == "2500" and item["price_data"]["currency"] == "usd"
    assert item["price_data"]["product_data"]["name"] == "Contribution to our newsroom"
    assert params["locale"] == "auto"  # Checkout has no Ukrainian
    assert params["customer_email"] == "a@b.org"
    assert params["metadata"] == {"plan": "once"}  # no token: no attribution
    # the currency defaults to the first configured one
    assert post(client, {"plan": "once", "amount": 100}).status_code == 200
    assert (
        priced_stripe.calls("POST")[-1]["params"]["line_items"]["0"]["price_data"]["currency"]
        == "eur"
    )


def test_a_holdout_token_is_attributed_to_the_holdout(client, priced_stripe):
    assert post(client, {"plan": "yearly", "token": token(None)}).status_code == 200
    params = sent(priced_stripe)
    assert params["metadata"]["variant"] == "holdout"
    assert params["line_items"]["0"]["price"] == "price_yearly"


@pytest.mark.parametrize(
    "bad",
    [
        Tokens("another-secret-0123456789").decision("dec1", "spring", "a", "r_reader01", 0)
        + "",  # signed with another key (issued at 0: expired as well)
        "not-a-token",
        "x" * 3000,
    ],
)
def test_a_forged_token_is_ignored_not_refused(client, priced_stripe, bad):
    assert post(client, {"plan": "monthly", "token": bad}).status_code == 200
    params = sent(priced_stripe)
    assert "campaign" not in params["metadata"]
    assert len(params["client_reference_id"]) == 16 and params["client_reference_id"] != "dec1"


def test_an_expired_token_is_ignored(client, priced_stripe):
    old = token(at=time.time() - 24 * 3600 - 5)
    assert post(client, {"plan": "monthly", "token": old}).status_code == 200
    assert "campaign" not in sent(priced_stripe)["metadata"]
    fresh = token(at=time.time() - 23 * 3600)
    assert post(client, {"plan": "monthly", "token": fresh}).status_code == 200
    assert priced_stripe.calls("POST")[-1]["params"]["metadata"]["campaign"] == "spring"


@pytest.mark.parametrize(
    "locale, expected",
    [
        ("uk", "auto"),
        ("uk-UA", "auto"),
        ("en", "en"),
        ("en_GB", "en-GB"),
        ("pt-br", "pt-BR"),
        ("hi", "hi-IN"),
        ("zh-tw", "zh-TW"),
        (None, "auto"),
    ],
)
def test_locales_as_checkout_spells_them(client, priced_stripe, locale, expected):
    assert post(client, {"plan": "monthly", "locale": locale}).status_code == 200
    assert (
        sent(priced_stripe)["locale"] == expected
    )  # and the fake, whose list is the SDK's, took it


# --- refusals that never reach Stripe -----------------------------------------------------


BAD_INPUT = [
    ({}, "plan"),
    ({"plan": "weekly"}, "plan"),
    ({"plan": "once"}, "amount"),
    ({"plan": "once", "amount": 99}, "amount"),
    ({"plan": "once", "amount": 100001}, "amount"),
    ({"plan": "once", "amount": 25.5}, "amount"),
    ({"plan": "once", "amount": "2500"}, "amount"),
    ({"plan": "once", "amount": True}, "amount"),
    ({"plan": "once", "amount": 2500, "currency": "gbp"}, "currency"),
    ({"plan": "once", "amount": 2500, "currency": "euro"}, "currency"),
    ({"plan": "monthly", "amount": 2500}, "amount"),
    ({"plan": "monthly", "currency": "eur"}, "currency"),
    ({"plan": "monthly", "locale": "<script>"}, "locale"),
    ({"plan": "monthly", "email": "not an email"}, "email"),
    ({"plan": "monthly", "token": 12}, "token"),
    ([], "body"),
]


def test_bad_input_is_a_400_naming_the_field_and_never_reaches_stripe(
    client, priced_stripe, subtests
):
    """Each body a subtest, on one app and fake Stripe: none of them reaches it."""
    for body, field in BAD_INPUT:
        with subtests.test(body=repr(body)):
            response = post(client, body)
            assert response.status_code == 400
            error = response.get_json()["error"]
            assert error["code"] == "invalid_checkout" and error["message"].startswith(f"{field}: ")
            assert priced_stripe.requests == []


def test_a_plan_without_a_price_is_not_offered(make, priced_stripe):
    client = make(stripe_prices=(("monthly", "price_monthly"),))
    response = post(client, {"plan": "yearly"})
    assert (
        response.status_code == 400 and "STRIPE_PRICES" in response.get_json()["error"]["message"]
    )
    assert priced_stripe.requests == []


def test_bodies_that_are_not_json_objects(client, priced_stripe):
    assert client.post("/v1/checkout", data="plan=monthly").status_code == 415
    assert client.post("/v1/checkout", data="{", content_type="application/json").status_code == 400
    big = {"plan": "monthly", "email": "a@b.org", "pad": "x" * 5000}
    assert post(client, big).status_code == 413
    assert client.get("/v1/checkout").status_code == 405
    assert priced_stripe.requests == []


# --- Stripe missing, refusing, silent -------------------------------------------------------


def test_without_an_api_key_checkout_is_503_and_the_rest_runs(make, priced_stripe):
    client = make(stripe_api_key=None)
    response = post(client, {"plan": "monthly"})
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "stripe_not_configured"
    assert client.get("/healthz").status_code == 200
    assert priced_stripe.requests == []


def test_a_stripe_refusal_is_a_502_without_its_message_or_the_key(client, priced_stripe, caplog):
    priced_stripe.fail_with(
        400,
        f"No such price: 'price_monthly'; key {STRIPE_KEY}",
        type_="invalid_request_error",
        code="resource_missing",
        param="line_items[0][price]",
    )
    response = post(client, {"plan": "monthly"})
    assert response.status_code == 502
    error = response.get_json()["error"]
    assert error["code"] == "stripe_error"
    assert error["message"] == (
        "Stripe refused the request while creating the checkout session "
        "(code resource_missing, parameter line_items[0][price])"
    )
    assert (
        STRIPE_KEY not in response.get_data(as_text=True)
        and "No such price" not in error["message"]
    )
    assert "resource_missing" in caplog.text and STRIPE_KEY not in caplog.text


@pytest.mark.parametrize("status", [402, 500])
def test_other_stripe_errors_are_502(client, priced_stripe, status):
    priced_stripe.fail_with(
        status, "whatever Stripe says", type_="card_error" if status == 402 else "api_error"
    )
    response = post(client, {"plan": "monthly"})
    assert response.status_code == 502
    assert "whatever" not in response.get_data(as_text=True)


def test_a_wrong_key_is_a_502_that_shows_no_key(make, priced_stripe):
    client = make(stripe_api_key="sk_test_wrong_key_9999")
    response = post(client, {"plan": "monthly"})
    assert response.status_code == 502
    body = response.get_data(as_text=True)
    assert "9999" not in body and "sk_test" not in body
    assert "API key" in response.get_json()["error"]["message"]


def test_an_unreachable_stripe_is_502(make):
    client = make(stripe_api_base="http://127.0.0.1:1")
    response = post(client, {"plan": "monthly"})
    assert response.status_code == 502
    assert response.get_json()["error"]["code"] == "stripe_unreachable"


def test_a_silent_stripe_is_cut_to_a_504(make, priced_stripe):
    client = make(stripe_timeout=0.5)
    priced_stripe.delay = 30
    started = time.monotonic()
    response = post(client, {"plan": "monthly"})
    elapsed = time.monotonic() - started
    assert response.status_code == 504
    assert response.get_json()["error"]["code"] == "stripe_timeout"
    assert 0.4 < elapsed < 2.0
    assert len(priced_stripe.calls("POST")) == 1  # no retry


def test_the_default_deadline_leaves_the_answer_within_ten_seconds(app):
    interactive = stripe_api.Interactive(
        type(app.extensions["membership"].settings)(stripe_api_key=STRIPE_KEY)
    )
    assert interactive.timeout == stripe_api.INTERACTIVE_TIMEOUT <= 9.5
    http = interactive.client._requestor._client  # the HTTP client the SDK was given
    assert http._timeout == (stripe_api.CONNECT_TIMEOUT, stripe_api.INTERACTIVE_TIMEOUT)


# --- limits and CORS --------------------------------------------------------------------------


def test_over_the_limit_is_429(make, priced_stripe):
    client = make(rate_limit_checkout="2/minute")
    statuses = [post(client, {"plan": "monthly"}).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert len(priced_stripe.calls("POST")) == 2


def test_cors_for_allowed_origins_only(client, priced_stripe):
    ok = post(client, {"plan": "monthly"}, headers={"Origin": SITE})
    assert ok.headers["Access-Control-Allow-Origin"] == SITE and "Origin" in ok.headers["Vary"]
    other = post(client, {"plan": "monthly"}, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    refused = post(client, {"plan": "x"}, headers={"Origin": SITE})
    assert refused.headers["Access-Control-Allow-Origin"] == SITE  # errors are readable too
    assert_post_preflight(client, "/v1/checkout", SITE)
