"""The token after checkout, renewal and the Billing Portal, through the app against the fake
Stripe (tests/support/fake_stripe.py) and signed webhooks: nothing leaves the machine."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from click.testing import CliRunner

from membership.cli import cli
from membership.members import rules
from membership.members.links import Links
from membership.prompts.tokens import MEMBER_MAX_AGE, Tokens, _Signer
from membership.store import Keys
from tests.support import stripe_payloads as sp
from tests.support.fake_stripe import STRIPE_KEY
from tests.support.ledger_helpers import add_offline, link
from tests.support.ledger_helpers import snapshot as observe
from tests.support.settings import SECRET_KEY, member_token
from tests.support.webhooks import deliver

ORIGIN = "https://news.example"
BACK = "https://news.example/account"
KEYS = Keys()


@pytest.fixture
def make(make_app, priced_stripe):
    def build(**overrides):
        config = {
            "stripe_api_key": STRIPE_KEY,
            "stripe_api_base": priced_stripe.url,
            "allowed_origins": (ORIGIN,),
            "stripe_timeout": 1.0,
        }
        config.update(overrides)
        return make_app(**config)

    return build


def open_session(priced_stripe, mode="subscription", **params) -> str:
    price = "price_monthly" if mode == "subscription" else "price_once"
    session = priced_stripe.checkout.create_session(
        {
            "mode": mode,
            "line_items": [{"price": price, "quantity": 1}],
            "success_url": "https://news.example/thanks?session_id={CHECKOUT_SESSION_ID}",
            **params,
        }
    )
    return session["id"]


def token_for(client, session_id: str):
    return client.get(f"/v1/member/token?session_id={session_id}", headers={"Origin": ORIGIN})


def claim_of(body: dict):
    claim = Tokens(SECRET_KEY).read_member(body["token"], time.time())
    assert claim is not None
    return claim


def refresh(client, token: str):
    return client.post("/v1/member/token/refresh", json={"token": token})


def portal(client, token: str, return_url: str = BACK):
    return client.post("/v1/member/portal", json={"token": token, "return_url": return_url})


def token_before_proofs(subject: str, issued: float | None = None) -> str:
    """A member token exactly as every version before proofs made it: the member signer over
    [subject, issued at, expires at], nothing else (such as GET /v1/member/token gave for
    `email:<the address typed at a one-time Checkout>`)."""
    issued = int(time.time() if issued is None else issued)
    return _Signer(SECRET_KEY, "member").sign([subject, issued, issued + MEMBER_MAX_AGE])


def signed_in_by_link(client, ledger, email: str) -> str:
    """The token a sign-in link for `email` brings back (the link as the mail carries it,
    spent through GET /v1/member/verify)."""
    subject = rules.subject_for_email(ledger.queries.email_bucket(email))
    assert subject is not None, f"{email} is not a member"
    code = Links(ledger.queries.redis, KEYS).issue(subject, BACK, "en", time.time())
    response = client.get(f"/v1/member/verify?code={code}")
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith(BACK + "#member_token=")
    return location.partition("#member_token=")[2]


# --- After checkout ------------------------------------------------------------------------


def test_a_token_after_checkout_before_the_webhook_then_refresh_until_it_ends(
    app, client, priced_stripe
):
    session_id = open_session(priced_stripe)
    assert token_for(client, session_id).status_code == 404  # still open

    events = priced_stripe.complete(session_id, email="new@example.org")
    response = token_for(client, session_id)  # no webhook has arrived yet
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert response.headers["Cache-Control"] == "private, no-store"
    body = response.get_json()
    assert body["member"] is True
    claim = claim_of(body)
    customer = priced_stripe.checkout.sessions[session_id]["customer"]
    assert claim.subject == customer
    expires = dt.datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert expires.timestamp() == claim.expires_at
    assert claim.expires_at - claim.issued_at == MEMBER_MAX_AGE
    sent = priced_stripe.calls("GET", "/v1/checkout/sessions")[-1]["params"]["expand"]
    assert list(sent.values() if isinstance(sent, dict) else sent) == [
        "subscription",
        "customer",
        "payment_intent",
    ]

    # Before the webhook the ledger does not count the customer yet: no renewal.
    assert refresh(client, body["token"]).status_code == 401
    for event in events:
        deliver(client, event)
    renewed = refresh(client, body["token"])
    assert renewed.status_code == 200
    assert claim_of(renewed.get_json()).subject == customer

    subscription = priced_stripe.checkout.subscriptions[
        priced_stripe.checkout.sessions[session_id]["subscription"]
    ]
    ended = sp.subscription_event(
        {**subscription, "status": "canceled"},
        created=int(time.time()) + 1,
        type_="customer.subscription.deleted",
    )
    deliver(client, ended)
    lapsed = refresh(client, renewed.get_json()["token"])
    assert lapsed.status_code == 401
    assert lapsed.get_json()["error"]["code"] == "membership_ended"


def test_a_trial_is_a_member(client, priced_stripe):
    session_id = open_session(priced_stripe)
    priced_stripe.complete(session_id, status="trialing")
    assert token_for(client, session_id).status_code == 200


def test_a_contribution_without_a_customer_is_recognised_for_seven_days(app, client, priced_stripe):
    session_id = open_session(priced_stripe, "payment")
    priced_stripe.complete(session_id, email="Giver@Example.org")
    response = token_for(client, session_id)
    assert response.status_code == 200
    body = response.get_json()
    claim = claim_of(body)
    # The session names the payment, not the address typed at Checkout.
    assert claim.subject == f"once:{session_id}"
    assert claim.expires_at - claim.issued_at == MEMBER_MAX_AGE  # recognised for 7 days
    # A contribution is not a membership: the token is not renewed.
    renewed = refresh(client, body["token"])
    assert renewed.status_code == 401
    assert renewed.get_json()["error"]["code"] == "not_renewable"


def test_an_unpaid_contribution_is_a_404(client, priced_stripe):
    session_id = open_session(priced_stripe, "payment")
    priced_stripe.complete(session_id, async_payment=True)
    assert token_for(client, session_id).status_code == 404
    priced_stripe.succeed_async(session_id)
    assert token_for(client, session_id).status_code == 200


# --- An address typed at Checkout proves nothing ---------------------------------------------


def subscribe(client, priced_stripe, email: str) -> str:
    """A member who subscribed through Checkout a day ago, counted by the ledger: their
    customer."""
    session_id = open_session(priced_stripe)
    for event in priced_stripe.complete(session_id, email=email):
        deliver(client, event)
    customer = priced_stripe.checkout.sessions[session_id]["customer"]
    priced_stripe.checkout.customers[customer]["created"] -= 86400
    return customer


def took_minutes(priced_stripe, session_id: str, minutes: float) -> None:
    """The session was opened `minutes` before the reader completed it (a reader takes
    seconds at least; the fake completes at once)."""
    session = priced_stripe.checkout.sessions[session_id]
    session["created"] -= int(minutes * 60)
    session["expires_at"] -= int(minutes * 60)


def test_a_one_euro_contribution_with_a_members_email_opens_nothing_of_theirs(make, priced_stripe):
    """The review's case: a one-time Checkout of 1.00 EUR with someone else's email (which
    /v1/checkout pre-fills) gave a token for `email:<their address>`, and with it their
    Billing Portal, renewed for as long as they were a member."""
    client = make(rate_limit_checkout="off").test_client()
    victim = subscribe(client, priced_stripe, "victim@example.org")
    started = client.post(
        "/v1/checkout",
        json={"plan": "once", "amount": 100, "currency": "eur", "email": "victim@example.org"},
    )
    assert started.status_code == 200, started.get_json()
    [session_id] = [s for s, v in priced_stripe.checkout.sessions.items() if v["mode"] == "payment"]
    assert priced_stripe.checkout.sessions[session_id]["customer_email"] == "victim@example.org"
    for event in priced_stripe.complete(session_id):
        deliver(client, event)

    response = token_for(client, session_id)
    assert response.status_code == 200
    token = response.get_json()["token"]

    opened = portal(client, token)
    assert [
        p["customer"] for p in priced_stripe.checkout.portal_sessions if p["customer"] == victim
    ] == []
    assert opened.status_code == 409
    assert opened.get_json()["error"]["code"] == "nothing_to_manage"
    assert priced_stripe.checkout.portal_sessions == []
    assert priced_stripe.calls("GET", "/v1/customers") == []  # no one was looked up by that address

    renewed = refresh(client, token)
    assert renewed.status_code == 401
    assert renewed.get_json()["error"]["code"] == "not_renewable"
    # The token recognises the payment, and names no one.
    subject = claim_of(response.get_json()).subject
    assert subject == f"once:{session_id}"


def test_a_subscription_checkout_names_its_own_customer_whatever_email_was_typed(
    client, priced_stripe
):
    victim = subscribe(client, priced_stripe, "victim@example.org")
    session_id = open_session(priced_stripe, customer_email="victim@example.org")
    for event in priced_stripe.complete(session_id):
        deliver(client, event)
    own = priced_stripe.checkout.sessions[session_id]["customer"]
    assert own != victim
    response = token_for(client, session_id)
    assert claim_of(response.get_json()).subject == own
    assert portal(client, response.get_json()["token"]).status_code == 200
    [opened] = priced_stripe.checkout.portal_sessions
    assert opened["customer"] == own


def test_a_contribution_that_created_a_customer_opens_that_customers_portal_only(
    client, priced_stripe
):
    victim = subscribe(client, priced_stripe, "victim@example.org")
    session_id = open_session(priced_stripe, "payment", customer_creation="always")
    took_minutes(priced_stripe, session_id, 2)
    for event in priced_stripe.complete(session_id, email="victim@example.org"):
        deliver(client, event)
    created = priced_stripe.checkout.sessions[session_id]["customer"]
    assert created not in (None, victim)

    response = token_for(client, session_id)
    assert response.status_code == 200
    token = response.get_json()["token"]
    assert claim_of(response.get_json()).subject == f"once:{created}"
    opened = portal(client, token)
    assert opened.status_code == 200, opened.get_json()
    assert [p["customer"] for p in priced_stripe.checkout.portal_sessions] == [created]
    assert refresh(client, token).get_json()["error"]["code"] == "not_renewable"


def test_a_contribution_for_a_customer_that_existed_before_opens_nothing_of_theirs(
    client, priced_stripe
):
    """A session created for an existing customer (another integration, a payment link) names
    that customer; whoever completes it is not shown to be them."""
    victim = subscribe(client, priced_stripe, "victim@example.org")
    session_id = open_session(priced_stripe, "payment", customer=victim)
    took_minutes(priced_stripe, session_id, 2)
    for event in priced_stripe.complete(session_id, email="attacker@example.org"):
        deliver(client, event)
    assert priced_stripe.checkout.sessions[session_id]["customer"] == victim

    response = token_for(client, session_id)
    assert response.status_code == 200
    token = response.get_json()["token"]
    assert claim_of(response.get_json()).subject == f"once:{session_id}"
    assert portal(client, token).status_code == 409
    assert priced_stripe.checkout.portal_sessions == []
    assert refresh(client, token).status_code == 401


@pytest.mark.parametrize("mode", ["subscription", "payment"])
def test_a_session_completed_over_a_day_ago_mints_nothing(client, priced_stripe, mode):
    session_id = open_session(priced_stripe, mode)
    took_minutes(priced_stripe, session_id, 26 * 60)  # opened 26 h ago, paid an hour later
    priced_stripe.complete(session_id, created=int(time.time()) - 25 * 3600)
    response = token_for(client, session_id)
    assert response.status_code == 410
    error = response.get_json()["error"]
    assert error["code"] == "session_too_old"
    assert "more than 24 hours ago" in error["message"]


@pytest.mark.parametrize("mode", ["subscription", "payment"])
def test_the_day_runs_from_completion_not_from_opening(make, priced_stripe, mode):
    """A session opened 23 h before it was paid (Stripe keeps one open for 24 h) still proves
    its payment two hours after it was paid; 23 hours after, then 25."""
    later = {"hours": 2}
    client = make(member_clock=lambda: time.time() + later["hours"] * 3600).test_client()
    session_id = open_session(priced_stripe, mode)
    took_minutes(priced_stripe, session_id, 23 * 60)
    priced_stripe.complete(session_id)
    assert token_for(client, session_id).status_code == 200
    later["hours"] = 23
    assert token_for(client, session_id).status_code == 200
    later["hours"] = 25
    assert token_for(client, session_id).get_json()["error"]["code"] == "session_too_old"


def test_a_session_made_by_another_integration_without_a_subscription_or_payment(
    client, priced_stripe
):
    session_id = open_session(priced_stripe, "payment")
    priced_stripe.complete(session_id)
    priced_stripe.checkout.sessions[session_id]["mode"] = "setup"
    response = token_for(client, session_id)
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "session_not_paid"


def test_unknown_expired_and_malformed_sessions(client, priced_stripe):
    unknown = token_for(client, "cs_test_nosuchsession")
    assert unknown.status_code == 404
    assert unknown.get_json()["error"]["code"] == "session_not_paid"
    expired = open_session(priced_stripe)
    priced_stripe.expire(expired)
    assert token_for(client, expired).status_code == 404
    for bad in ("sub_1", "cs_a/../b", ""):
        response = token_for(client, bad)
        assert response.status_code == 400
        assert response.get_json()["error"]["message"].startswith("session_id: ")
    assert client.get("/v1/member/token").status_code == 400
    # none of the malformed ones reached Stripe
    assert len(priced_stripe.calls("GET", "/v1/checkout/sessions")) == 2


# --- Stripe in trouble ---------------------------------------------------------------------


def test_stripe_errors_are_a_502_without_stripes_words(client, priced_stripe):
    priced_stripe.fail_with(500, "boom: internal detail sk_live_leak", type_="api_error")
    response = token_for(client, "cs_test_x")
    assert response.status_code == 502
    text = response.get_data(as_text=True)
    assert "boom" not in text and "sk_" not in text
    assert response.get_json()["error"]["code"] == "stripe_error"


def test_a_wrong_key_is_a_502(make, priced_stripe):
    client = make(stripe_api_key="sk_test_wrong_000000").test_client()
    response = token_for(client, "cs_test_x")
    assert response.status_code == 502
    assert "sk_test" not in response.get_data(as_text=True)


def test_a_stripe_that_hangs_is_a_504_within_the_deadline(client, priced_stripe):
    priced_stripe.delay = 5
    started = time.monotonic()
    response = token_for(client, "cs_test_x")
    assert response.status_code == 504
    assert response.get_json()["error"]["code"] == "stripe_timeout"
    assert time.monotonic() - started < 3
    priced_stripe.delay = 0


def test_without_a_stripe_key_token_and_portal_are_503(make):
    client = make(stripe_api_key=None).test_client()
    response = token_for(client, "cs_test_x")
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "stripe_not_configured"
    assert portal(client, member_token("cus_A1")).status_code == 503


# --- Tokens made before proofs ---------------------------------------------------------------


def test_an_email_token_from_a_one_time_checkout_before_proofs_opens_and_renews_nothing(
    client, priced_stripe, ledger
):
    """Before Checkout stopped naming emails, a 1.00 EUR Checkout with a member's address gave
    `email:<their address>`, signed like a sign-in link's. One still held (7 days) opens no
    portal and is not renewed, answered as an invalid token; the member signs in again by
    email, and that token does both."""
    victim = subscribe(client, priced_stripe, "victim@example.org")
    held = token_before_proofs("email:victim@example.org", issued=time.time() - 3600)

    opened = portal(client, held)
    assert opened.status_code == 401
    assert opened.get_json()["error"]["code"] == "invalid_token"
    assert priced_stripe.checkout.portal_sessions == []
    assert priced_stripe.calls("GET", "/v1/customers") == []  # no one was looked up by that address
    renewed = refresh(client, held)
    assert renewed.status_code == 401
    assert renewed.get_json()["error"]["code"] == "invalid_token"
    # Recognition (no asks) still reads it until it ends.
    claim = Tokens(SECRET_KEY).read_member(held, time.time())
    assert claim is not None and claim.proof is None

    signed_in = signed_in_by_link(client, ledger, "victim@example.org")
    assert claim_of({"token": signed_in}).proof == rules.LINK
    opened = portal(client, signed_in)
    assert opened.status_code == 200, opened.get_json()
    assert [p["customer"] for p in priced_stripe.checkout.portal_sessions] == [victim]
    renewed = refresh(client, signed_in)
    assert renewed.status_code == 200, renewed.get_json()
    fresh = claim_of(renewed.get_json())
    assert (fresh.subject, fresh.proof) == ("email:victim@example.org", rules.LINK)
    assert portal(client, renewed.get_json()["token"]).status_code == 200


def test_a_customer_token_from_before_proofs_opens_and_renews_nothing(
    client, priced_stripe, ledger
):
    """Before, a session id of any age minted its customer's token, and a one-time Checkout
    made for an existing customer (another integration) named that customer: either could
    name someone else. Such a token opens no portal and is not renewed; a Checkout's token
    now, for the same customer, does both."""
    session_id = open_session(priced_stripe)
    for event in priced_stripe.complete(session_id, email="payer@example.org"):
        deliver(client, event)
    customer = priced_stripe.checkout.sessions[session_id]["customer"]
    held = token_before_proofs(customer)
    for answer in (portal(client, held), refresh(client, held)):
        assert answer.status_code == 401
        assert answer.get_json()["error"]["code"] == "invalid_token"
    assert priced_stripe.checkout.portal_sessions == []

    current = token_for(client, session_id).get_json()
    assert claim_of(current).proof == rules.CHECKOUT
    assert portal(client, current["token"]).status_code == 200
    renewed = refresh(client, current["token"])
    assert renewed.status_code == 200
    assert claim_of(renewed.get_json()).proof == rules.CHECKOUT


def test_only_the_proof_a_subject_takes_opens_refresh_and_the_portal(client, priced_stripe, ledger):
    """A proof that never makes a subject's form is refused like no proof, whatever signed it."""
    add_offline(ledger, "gift@example.org", "a gift")
    observe(ledger, sp.subscription("sub_1", "cus_A1", "active"), observed_at=100)
    for subject, proof in (
        ("email:gift@example.org", rules.CHECKOUT),
        ("email:gift@example.org", "unknown"),
        ("cus_A1", rules.LINK),
        ("once:cus_A1", rules.LINK),
        ("once:cus_A1", rules.STAFF),
    ):
        token = member_token(subject, proof)
        assert refresh(client, token).get_json()["error"]["code"] == "invalid_token", proof
        assert portal(client, token).get_json()["error"]["code"] == "invalid_token", proof
    assert refresh(client, member_token("email:gift@example.org", rules.STAFF)).status_code == 200
    assert refresh(client, member_token("cus_A1", rules.STAFF)).status_code == 200
    assert priced_stripe.calls() == []


def test_a_staff_token_renews_with_its_proof(app, client, ledger, redis_url, tmp_path):
    """`membership members token` names its subject as staff; refresh takes it and keeps it."""
    add_offline(ledger, "gift@example.org", "a gift")
    env = {"REDIS_URL": redis_url, "MEMBERSHIP_DATA_DIR": str(tmp_path), "SECRET_KEY": SECRET_KEY}
    printed = CliRunner().invoke(cli, ["members", "token", "gift@example.org"], env=env)
    assert printed.exit_code == 0, printed.output
    token = printed.stdout.strip()
    assert claim_of({"token": token}).proof == rules.STAFF
    renewed = refresh(client, token)
    assert renewed.status_code == 200, renewed.get_json()
    assert claim_of(renewed.get_json()).proof == rules.STAFF


def test_the_token_format_with_and_without_a_proof():
    tokens, now = Tokens(SECRET_KEY), int(time.time())
    before = token_before_proofs("email:a@example.org", now)
    # Without a proof the service still writes what every version before wrote.
    assert tokens.encode_member(tokens.member("email:a@example.org", now)) == before
    assert tokens.read_member(before, now).proof is None
    linked = tokens.encode_member(tokens.member("email:a@example.org", now, proof=rules.LINK))
    assert linked != before
    assert tokens.read_member(linked, now) == tokens.member(
        "email:a@example.org", now, proof=rules.LINK
    )
    signer = _Signer(SECRET_KEY, "member")
    for proof in ("", 1, None, ["link"]):
        assert tokens.read_member(signer.sign(["cus_A1", now, now + 60, proof]), now) is None
    assert tokens.read_member(signer.sign(["cus_A1", now, now + 60, "link", "x"]), now) is None


# --- Refresh -------------------------------------------------------------------------------


def test_refresh_and_portal_refuse_subjects_we_never_issue(client, priced_stripe):
    for subject in ("email:", "once:", "once:sub_1", "payment:cs_test_a", "cus_", "x"):
        token = member_token(subject)
        assert refresh(client, token).get_json()["error"]["code"] == "invalid_token", subject
        assert portal(client, token).get_json()["error"]["code"] == "invalid_token", subject
    assert priced_stripe.calls() == []


def test_refresh_refuses_what_it_cannot_read(client):
    for token in ("", "x.y", member_token("cus_A1")[:-2] + "AA"):
        response = refresh(client, token)
        assert response.status_code == (400 if token == "" else 401)
    other = Tokens("another-secret-0123456789")
    forged = other.encode_member(other.member("cus_A1", time.time()))
    assert refresh(client, forged).get_json()["error"]["code"] == "invalid_token"
    expired = Tokens(SECRET_KEY).encode_member(
        Tokens(SECRET_KEY).member("cus_A1", time.time() - 8 * 86400)
    )
    assert refresh(client, expired).status_code == 401
    assert client.post("/v1/member/token/refresh", json=[]).status_code == 400
    assert client.post("/v1/member/token/refresh", data="t").status_code == 415


def test_refresh_for_members_known_by_email(client, ledger):
    add_offline(ledger, "gift@example.org", "a gift")
    assert refresh(client, member_token("email:gift@example.org")).status_code == 200
    observe(ledger, sp.subscription("sub_1", "cus_A1", "active"), observed_at=100)
    link(ledger, "cus_A1", "payer@example.org", observed_at=100)
    assert refresh(client, member_token("email:payer@example.org")).status_code == 200
    assert refresh(client, member_token("email:nobody@example.org")).status_code == 401


# --- The Billing Portal ----------------------------------------------------------------------


def test_the_portal_for_a_customer(client, priced_stripe, ledger):
    session_id = open_session(priced_stripe)
    for event in priced_stripe.complete(session_id, email="payer@example.org"):
        deliver(client, event)
    token = token_for(client, session_id).get_json()["token"]
    response = portal(client, token)
    assert response.status_code == 200
    assert response.get_json()["url"].startswith("https://billing.stripe.com/p/session/")
    [created] = priced_stripe.checkout.portal_sessions
    assert created["customer"] == priced_stripe.checkout.sessions[session_id]["customer"]
    assert created["return_url"] == BACK


def test_the_portal_for_a_stripe_member_signed_in_by_email(client, priced_stripe, ledger):
    session_id = open_session(priced_stripe)
    for event in priced_stripe.complete(session_id, email="payer@example.org"):
        deliver(client, event)
    response = portal(client, member_token("email:payer@example.org"))
    assert response.status_code == 200
    [created] = priced_stripe.checkout.portal_sessions
    assert created["customer"] == priced_stripe.checkout.sessions[session_id]["customer"]


def test_the_portal_for_a_member_whose_email_at_stripe_has_capitals(client, priced_stripe, ledger):
    """Stripe's email filter is case-sensitive; the ledger keeps addresses lower-cased, so a
    member who typed capitals at checkout is found through the ledger's own customers."""
    session_id = open_session(priced_stripe)
    for event in priced_stripe.complete(session_id, email="Olena.Payer@Example.org"):
        deliver(client, event)
    other = open_session(priced_stripe)  # another member: not the one whose portal opens
    for event in priced_stripe.complete(other, email="someone@example.org"):
        deliver(client, event)
    response = portal(client, member_token("email:olena.payer@example.org"))
    assert response.status_code == 200, response.get_json()
    [created] = priced_stripe.checkout.portal_sessions
    assert created["customer"] == priced_stripe.checkout.sessions[session_id]["customer"]


def test_an_offline_member_is_told_to_contact_the_newsroom(client, priced_stripe, ledger):
    add_offline(ledger, "gift@example.org", "a gift")
    response = portal(client, member_token("email:gift@example.org"))
    assert response.status_code == 409
    assert "contact the newsroom" in response.get_json()["error"]["message"]
    assert priced_stripe.calls() == []  # Stripe was not asked


def test_the_portal_refuses_bad_tokens_lapsed_members_and_foreign_return_urls(
    client, priced_stripe, ledger
):
    assert portal(client, "x.y").status_code == 401
    assert portal(client, member_token("cus_nobody")).status_code == 401
    observe(ledger, sp.subscription("sub_1", "cus_A1", "active"), observed_at=100)
    bad = portal(client, member_token("cus_A1"), return_url="https://evil.example/")
    assert bad.status_code == 400
    assert bad.get_json()["error"]["message"].startswith("return_url: ")
    assert client.post("/v1/member/portal", json={"return_url": BACK}).status_code == 400
    assert priced_stripe.calls() == []


def test_the_portal_when_stripe_refuses(client, priced_stripe, ledger):
    observe(ledger, sp.subscription("sub_1", "cus_A1", "active"), observed_at=100)
    response = portal(client, member_token("cus_A1"))  # Stripe does not know cus_A1
    assert response.status_code == 502
    assert "No such customer" not in response.get_data(as_text=True)
