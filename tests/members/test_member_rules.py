"""membership.members.rules (pure): what a Checkout Session proves, who is a current member,
and the member endpoints' bodies."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from membership.ledger.model import Customer, EmailBucket, Offline
from membership.members import rules
from membership.members.rules import RequestError

NOW = 1_780_000_000
ORIGINS = ("https://news.example", "http://localhost:8080")


def _session(mode="subscription", status="complete", **fields):
    """A complete session as `stripe_calls.checkout_session` reads it: subscription, customer
    and payment intent expanded. Opened 10 minutes ago, paid 8 minutes ago."""
    paid = NOW - 480
    session = {
        "id": "cs_test_a1",
        "object": "checkout.session",
        "mode": mode,
        "status": status,
        "payment_status": "paid",
        "customer": {"id": "cus_A1", "object": "customer", "created": paid},
        "customer_details": {"email": "Reader@Example.org"},
        "created": NOW - 600,
        "subscription": {
            "id": "sub_1",
            "status": "active",
            "customer": "cus_A1",
            "created": paid,
        }
        if mode == "subscription"
        else None,
        "payment_intent": {"id": "pi_1", "object": "payment_intent", "created": paid}
        if mode == "payment"
        else None,
    }
    session.update(fields)
    return session


def _refused(session, now=NOW) -> str:
    with pytest.raises(rules.NoProof) as refused:
        rules.session_subject(session, now)
    return refused.value.code


# --- Checkout Sessions ---------------------------------------------------------------------


@pytest.mark.parametrize("status", ["active", "trialing"])
def test_a_complete_subscription_proves_its_customer(status):
    subscription = {"id": "sub_1", "status": status, "customer": "cus_A1", "created": NOW}
    assert rules.session_subject(_session(subscription=subscription), NOW) == "cus_A1"


def test_the_subscriptions_customer_by_id_or_object():
    assert rules.session_subject(_session(customer="cus_A1"), NOW) == "cus_A1"
    assert rules.session_subject(_session(customer=None), NOW) == "cus_A1"
    expanded = {"id": "sub_1", "status": "active", "customer": {"id": "cus_A1"}}
    assert rules.session_subject(_session(subscription=expanded), NOW) == "cus_A1"


@pytest.mark.parametrize(
    "fields",
    [
        {"status": "open"},
        {"status": "expired"},
        {"subscription": {"id": "sub_1", "status": "incomplete", "customer": "cus_A1"}},
        {"subscription": {"id": "sub_1", "status": "past_due", "customer": "cus_A1"}},
        {"subscription": {"id": "sub_1", "status": "canceled", "customer": "cus_A1"}},
        {"subscription": "sub_1"},  # not expanded: nothing to judge by
        {"subscription": None},
        {"subscription": {"id": "sub_1", "status": "active"}},  # no customer
        {"subscription": {"id": "sub_1", "status": "active", "customer": "not-a-customer"}},
        {"customer": "cus_B2"},  # the session and its subscription disagree
        {"mode": "setup"},
        {"mode": None},
    ],
)
def test_no_subject_from_a_subscription_session_that_proves_nothing(fields):
    assert _refused(_session(**fields)) == "session_not_paid"


@pytest.mark.parametrize("mode", ["subscription", "payment"])
@pytest.mark.parametrize("email", [None, "Reader@Example.org", "victim@example.org"])
def test_no_session_names_an_email(mode, email):
    session = _session(mode, customer=None, customer_details={"email": email})
    subject = rules.session_subject(session, NOW)
    assert rules.email_of(subject) is None and "@" not in subject


def test_a_contribution_names_its_session_or_the_customer_it_created():
    # Created by the session: Stripe made it when the reader paid, after the session opened.
    assert rules.session_subject(_session("payment"), NOW) == "once:cus_A1"
    # Given when the session was created: it existed before, and may be anyone's.
    for created in (NOW - 600, NOW - 86400 * 400):
        old = {"id": "cus_A1", "object": "customer", "created": created}
        assert rules.session_subject(_session("payment", customer=old), NOW) == "once:cs_test_a1"
    # Not expanded, deleted, or none: nothing tells, so no customer.
    for customer in ("cus_A1", {"id": "cus_A1", "deleted": True}, None):
        session = _session("payment", customer=customer)
        assert rules.session_subject(session, NOW) == "once:cs_test_a1"


@pytest.mark.parametrize(
    "fields",
    [
        {"payment_status": "unpaid"},
        {"payment_status": "no_payment_required"},
        {"payment_status": None},
        {"status": "open", "payment_status": "unpaid"},
        {"created": None},
        {"created": "1780000000"},
    ],
)
def test_no_subject_from_a_contribution_that_proves_nothing(fields):
    assert _refused(_session("payment", **fields)) == "session_not_paid"


@pytest.mark.parametrize("mode", ["subscription", "payment"])
def test_a_session_proves_itself_for_a_day_from_its_completion(mode):
    session = _session(mode)
    paid = NOW - 480
    assert rules.completed_at(session) == paid
    day = rules.SESSION_PROOF_SECONDS
    assert rules.session_subject(session, paid + day)
    assert _refused(session, paid + day + 1) == "session_too_old"


def test_completion_without_what_it_made_is_the_sessions_creation():
    """Without the subscription or payment intent's time, the session's own `created`: never
    later than the completion, so the proof ends sooner, not later."""
    session = _session("payment", payment_intent="pi_1")
    assert rules.completed_at(session) == NOW - 600
    assert _refused(session, NOW - 600 + rules.SESSION_PROOF_SECONDS + 1) == "session_too_old"
    # A time before the session's own is not believed either.
    early = _session("payment", payment_intent={"id": "pi_1", "created": NOW - 9 * 86400})
    assert rules.completed_at(early) == NOW - 600


_TIMES = st.integers(NOW - 2 * 86400, NOW + 60)
_MOSTLY_A1 = st.one_of(
    st.none(),
    st.just("cus_A1"),
    st.fixed_dictionaries({"id": st.just("cus_A1"), "created": _TIMES}),
    st.fixed_dictionaries({"id": st.just("cus_A1"), "created": _TIMES}),
    st.fixed_dictionaries({"id": st.just("cus_B2"), "created": _TIMES}),
    st.just("not-a-customer"),
    st.just({"id": "cus_A1", "deleted": True}),
)
_MADE = st.one_of(st.none(), st.just("x_1"), st.fixed_dictionaries({"id": st.just("x_1")}))
_SUBSCRIPTION = st.fixed_dictionaries(
    {
        "id": st.just("sub_1"),
        "status": st.sampled_from(["active", "trialing", "active", "past_due", "canceled"]),
        "customer": _MOSTLY_A1,
        "created": _TIMES,
    }
)
_SESSIONS = st.fixed_dictionaries(
    {
        "id": st.just("cs_test_a1"),
        "object": st.just("checkout.session"),
        "mode": st.sampled_from(["subscription", "payment"] * 3 + ["setup", None]),
        "status": st.sampled_from(["complete"] * 4 + ["open", "expired", None]),
        "payment_status": st.sampled_from(["paid"] * 3 + ["unpaid", "no_payment_required", None]),
        "created": _TIMES,
        "customer": _MOSTLY_A1,
        "customer_details": st.fixed_dictionaries(
            {"email": st.sampled_from(["victim@example.org", "a@b.org", None])}
        ),
        "subscription": st.one_of(_SUBSCRIPTION, _SUBSCRIPTION, _SUBSCRIPTION, _MADE),
        "payment_intent": st.one_of(
            _MADE, st.fixed_dictionaries({"id": st.just("pi_1"), "created": _TIMES})
        ),
    }
)


@settings(max_examples=400)
@given(_SESSIONS, _TIMES)
def test_what_any_session_can_prove(session, now):
    """Whatever Stripe's session holds: never an email; a bare customer only from an active
    subscription, and only its own; a contribution's customer only one made after the session
    was; and nothing a day after completion."""
    try:
        subject = rules.session_subject(session, now)
    except rules.NoProof as refused:
        assert refused.code in ("session_not_paid", "session_too_old")
        return
    assert session["status"] == "complete"
    assert now - rules.completed_at(session) <= rules.SESSION_PROOF_SECONDS
    assert "@" not in subject
    subscription = session["subscription"]
    if subject.startswith("cus_"):
        assert session["mode"] == "subscription"
        assert subscription["status"] in ("active", "trialing")
        owner = subscription["customer"]
        assert subject == (owner.get("id") if isinstance(owner, dict) else owner)
    else:
        assert session["mode"] == "payment" and session["payment_status"] == "paid"
        once = rules.once_of(subject)
        if once.startswith("cus_"):
            customer = session["customer"]
            assert customer["id"] == once and customer["created"] > session["created"]
        else:
            assert once == session["id"]


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
    # A one-time contribution is never a membership, whatever the ledger holds.
    assert not rules.is_current("once:cus_A1", Customer("cus_A1", live=1), None)
    assert not rules.is_current("once:cs_test_a1", None, EmailBucket("a@x.org", live=1))
    assert rules.email_of("email:a@x.org") == "a@x.org"
    assert rules.email_of("cus_A1") is None
    assert rules.email_of("once:cs_test_a1") is None
    assert rules.once_of("once:cs_test_a1") == "cs_test_a1"
    assert rules.once_of("cus_A1") is None


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
    def return_url(url: str) -> str:
        return rules.parse_portal({"token": "t", "return_url": url}, ORIGINS)[1]

    assert return_url("HTTPS://NEWS.example:443/a") == "https://NEWS.example:443/a"
    assert return_url("http://localhost:8080/a") == "http://localhost:8080/a"
    with pytest.raises(RequestError, match="return_url: http://localhost is not one of"):
        return_url("http://localhost/a")
    with pytest.raises(RequestError, match=r"http://news\.example is not one of"):
        return_url("http://news.example/")  # http is another origin
    with pytest.raises(RequestError, match=r"https://news\.example\.evil\.example is not"):
        return_url("https://news.example.evil.example/")


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
