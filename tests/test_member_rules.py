"""membership.members.rules (pure): what a Checkout Session proves, who is a current member,
and the member endpoints' bodies."""

from __future__ import annotations

import pytest

from membership.ledger.model import Customer, EmailBucket, Offline
from membership.members import rules
from membership.members.rules import RequestError

NOW = 1_780_000_000
ORIGINS = ("https://news.example", "http://localhost:8080")


def _session(mode="subscription", status="complete", **fields):
    session = {
        "id": "cs_test_a1",
        "object": "checkout.session",
        "mode": mode,
        "status": status,
        "payment_status": "paid",
        "customer": "cus_A1",
        "customer_details": {"email": "Reader@Example.org"},
        "created": NOW - 60,
        "subscription": {"id": "sub_1", "status": "active", "customer": "cus_A1"}
        if mode == "subscription"
        else None,
    }
    session.update(fields)
    return session


# --- Checkout Sessions ---------------------------------------------------------------------


@pytest.mark.parametrize("status", ["active", "trialing"])
def test_a_complete_subscription_proves_its_customer(status):
    session = _session(subscription={"id": "sub_1", "status": status})
    assert rules.session_subject(session, NOW) == "cus_A1"


def test_an_expanded_customer_object_is_read_by_its_id():
    assert rules.session_subject(_session(customer={"id": "cus_B2"}), NOW) == "cus_B2"


@pytest.mark.parametrize(
    "fields",
    [
        {"status": "open"},
        {"status": "expired"},
        {"subscription": {"id": "sub_1", "status": "incomplete"}},
        {"subscription": {"id": "sub_1", "status": "past_due"}},
        {"subscription": {"id": "sub_1", "status": "canceled"}},
        {"subscription": "sub_1"},  # not expanded: nothing to judge by
        {"subscription": None},
        {"customer": None, "subscription": {"id": "sub_1", "status": "active"}},
        {"customer": "not-a-customer"},
        {"mode": "setup"},
    ],
)
def test_no_subject_from_a_subscription_session_that_proves_nothing(fields):
    assert rules.session_subject(_session(**fields), NOW) is None


def test_a_paid_contribution_proves_its_customer_or_its_email():
    assert rules.session_subject(_session("payment"), NOW) == "cus_A1"
    anonymous = _session("payment", customer=None)
    assert rules.session_subject(anonymous, NOW) == "email:reader@example.org"


@pytest.mark.parametrize(
    "fields",
    [
        {"payment_status": "unpaid"},
        {"payment_status": "no_payment_required"},
        {"status": "open", "payment_status": "unpaid"},
        {"customer": None, "customer_details": None},
        {"customer": None, "customer_details": {"email": "not an email"}},
        {"created": NOW - rules.PAYMENT_PROOF_SECONDS - 1},  # an old session id
        {"created": None},
    ],
)
def test_no_subject_from_a_contribution_that_proves_nothing(fields):
    assert rules.session_subject(_session("payment", **fields), NOW) is None


def test_session_ids():
    assert rules.check_session_id("cs_test_a1B2c3") == "cs_test_a1B2c3"
    for bad, message in [
        (None, "session_id: required"),
        ("", "session_id: required"),
        ("sub_1", "session_id: expected a Checkout Session id"),
        ("cs_../../v1/customers", "session_id: expected"),
        ("cs_" + "a" * 253, "session_id: expected"),
    ]:
        with pytest.raises(RequestError, match=message):
            rules.check_session_id(bad)


# --- Who is a current member ---------------------------------------------------------------


def test_an_email_is_a_members_while_a_member_customer_or_an_offline_member_has_it():
    assert rules.subject_for_email(EmailBucket("a@x.org", live=1)) == "email:a@x.org"
    offline = EmailBucket("a@x.org", offline=Offline("gift"))
    assert rules.subject_for_email(offline) == "email:a@x.org"
    assert rules.subject_for_email(EmailBucket("a@x.org")) is None


def test_is_current():
    assert rules.is_current("cus_A1", Customer("cus_A1", live=1), None)
    assert not rules.is_current("cus_A1", Customer("cus_A1", live=0), None)
    assert not rules.is_current("cus_A1", None, None)
    assert rules.is_current("email:a@x.org", None, EmailBucket("a@x.org", live=2))
    assert not rules.is_current("email:a@x.org", None, EmailBucket("a@x.org"))
    assert not rules.is_current("email:a@x.org", None, None)
    assert rules.email_of("email:a@x.org") == "a@x.org"
    assert rules.email_of("cus_A1") is None


# --- Bodies --------------------------------------------------------------------------------


def test_a_sign_in_body():
    request = rules.parse_sign_in(
        {
            "email": "  Reader@Example.ORG ",
            "return_url": "https://news.example/story?id=1#comments",
            "locale": "uk-UA",
            "unknown": "ignored",
        },
        ORIGINS,
    )
    assert request == rules.SignIn("reader@example.org", "https://news.example/story?id=1", "uk")
    default = rules.parse_sign_in(
        {"email": "a@x.org", "return_url": "http://localhost:8080/"}, ORIGINS
    )
    assert default.locale == "en"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "body: expected a JSON object"),
        ({}, "email: required"),
        ({"email": 5}, "email: expected a string"),
        ({"email": "nobody"}, "email: expected an email address"),
        ({"email": "a@x.org\u202e"}, "email: expected an email address"),
        ({"email": "a" * 321}, "email: at most 320 characters"),
        ({"email": "a@x.org"}, "return_url: required"),
        ({"email": "a@x.org", "return_url": "https://evil.example/"}, "return_url: https://evil"),
        ({"email": "a@x.org", "return_url": "javascript:alert(1)"}, "return_url: expected an"),
        ({"email": "a@x.org", "return_url": "https://news.example/" + "a" * 2048}, "at most"),
        ({"email": "a@x.org", "return_url": "https://news.example/x y"}, "without spaces"),
        ({"email": "a@x.org", "return_url": "https://news.example\\@evil.example/"}, "without"),
        ({"email": "a@x.org", "return_url": "https://u:p@news.example/"}, "no user:password"),
        ({"email": "a@x.org", "return_url": "https://news.example:99999/"}, "expected an http"),
        (
            {"email": "a@x.org", "return_url": "https://news.example/", "locale": 7},
            "locale: expected a locale tag",
        ),
        (
            {"email": "a@x.org", "return_url": "https://news.example/", "locale": "<script>"},
            "locale: expected a locale tag",
        ),
    ],
)
def test_a_bad_sign_in_body_names_its_field(body, message):
    with pytest.raises(RequestError, match=message.replace("\\", "\\\\")):
        rules.parse_sign_in(body, ORIGINS)


def test_return_urls_compare_by_origin_as_config_spells_it():
    assert rules.return_url("HTTPS://NEWS.example:443/a", ORIGINS) == "https://NEWS.example:443/a"
    assert rules.return_url("http://localhost:8080/a", ORIGINS) == "http://localhost:8080/a"
    with pytest.raises(RequestError, match="http://localhost is not one of"):
        rules.return_url("http://localhost/a", ORIGINS)
    with pytest.raises(RequestError, match=r"http://news\.example is not one of"):
        rules.return_url("http://news.example/", ORIGINS)  # http is another origin
    with pytest.raises(RequestError, match=r"https://news\.example\.evil\.example is not"):
        rules.return_url("https://news.example.evil.example/", ORIGINS)


def test_token_and_portal_bodies():
    assert rules.parse_token({"token": "abc.def"}) == "abc.def"
    with pytest.raises(RequestError, match="token: required"):
        rules.parse_token({})
    with pytest.raises(RequestError, match="token: expected a string"):
        rules.parse_token({"token": ["abc"]})
    with pytest.raises(RequestError, match="token: at most 1024"):
        rules.parse_token({"token": "a" * 1025})
    assert rules.parse_portal({"token": "t", "return_url": "https://news.example/a"}, ORIGINS) == (
        "t",
        "https://news.example/a",
    )
    with pytest.raises(RequestError, match="return_url: required"):
        rules.parse_portal({"token": "t"}, ORIGINS)
