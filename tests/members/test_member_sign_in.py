"""Sign-in by email, end to end through the app: a real redis-server, a real SMTP server
(aiosmtpd) whose inbox is read, the link followed, the token read back."""

from __future__ import annotations

import re
import threading
import time
from urllib.parse import urlsplit

import pytest

from membership.http.security import source_hash, template_styles
from membership.members.http import members_of
from membership.members.links import LINK_SECONDS
from membership.prompts.tokens import Tokens
from membership.store import Keys
from tests.support import stripe_payloads as sp
from tests.support.clock import Clock
from tests.support.cors import assert_post_preflight
from tests.support.ledger_helpers import add_offline, link
from tests.support.ledger_helpers import snapshot as observe
from tests.support.settings import SECRET_KEY
from tests.support.smtp_server import SmtpServer

ORIGIN = "https://news.example"
RETURN = "https://news.example/2026/11/26/night-trams?utm=x"
PUBLIC = "https://members.example"
KEYS = Keys()


@pytest.fixture
def smtp(tmp_path):
    server = SmtpServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def clock():
    return Clock(time.time())


@pytest.fixture
def make(make_app, smtp, clock):
    def build(**overrides):
        config = {
            "allowed_origins": (ORIGIN,),
            "smtp_url": smtp.url(),
            "public_url": PUBLIC,
            "publication_name": "Kyiv Independent",
            "mail_from": "Kyiv Independent <members@news.example>",
            "member_clock": clock,
        }
        config.update(overrides)
        return make_app(**config)

    return build


def stripe_member(ledger, customer: str, email: str) -> None:
    observe(ledger, sp.subscription(f"sub_{customer}", customer, "active"), observed_at=100)
    link(ledger, customer, email, observed_at=100)


def ask(client, email: str, locale: str | None = None, return_url: str = RETURN):
    body = {"email": email, "return_url": return_url}
    if locale is not None:
        body["locale"] = locale
    return client.post("/v1/member/sign-in", json=body, headers={"Origin": ORIGIN})


def settle(app) -> None:
    assert members_of(app).outbox.wait_idle(10)


def link_in(message) -> str:
    [url] = re.findall(
        r"https://members\.example/v1/member/verify\?code=[A-Za-z0-9_-]+",
        str(message.get_content()),
    )
    return url[len(PUBLIC) :]


def token_of(response) -> str:
    assert response.status_code == 303
    location = response.headers["Location"]
    head, _, fragment = location.partition("#")
    assert head == RETURN
    assert fragment.startswith("member_token=")
    return fragment[len("member_token=") :]


# --- The path of a member ------------------------------------------------------------------


def test_a_member_gets_the_email_and_its_link_signs_in_once(app, client, ledger, smtp, clock):
    stripe_member(ledger, "cus_A1", "reader@example.org")
    response = ask(client, "  Reader@Example.org ")
    assert response.status_code == 202
    assert response.get_json() == {"accepted": True, "link_minutes": 15}
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert response.headers["Cache-Control"] == "private, no-store"
    settle(app)

    [(sender, recipients, message)] = smtp.messages()
    assert (sender, recipients) == ("members@news.example", ["reader@example.org"])
    assert message["Subject"] == "Your sign-in link for Kyiv Independent"
    path = link_in(message)

    signed_in = client.get(path)
    assert signed_in.headers["Cache-Control"] == "private, no-store"
    assert signed_in.headers["Referrer-Policy"] == "no-referrer"
    claim = Tokens(SECRET_KEY).read_member(token_of(signed_in), clock.at)
    assert claim is not None and claim.subject == "email:reader@example.org"
    assert claim.expires_at - claim.issued_at == 7 * 24 * 3600

    again = client.get(path)
    assert again.status_code == 410
    page = again.get_data(as_text=True)
    assert "This link was already used" in page
    assert 'action="/v1/member/sign-in"' in page
    assert f'name="return_url" value="{RETURN.replace("&", "&amp;")}"' in page


def test_the_410_page_passes_the_security_headers(app, client, ledger):
    add_offline(ledger, "gift@example.org", "a gift")
    ask(client, "gift@example.org")
    settle(app)
    code = "A" * 43  # unknown: the page without a form
    for response in (client.get(f"/v1/member/verify?code={code}"),):
        assert response.status_code == 410
        assert response.content_type == "text/html; charset=utf-8"
        policy = response.headers["Content-Security-Policy"]
        assert "'unsafe-inline'" not in policy and "form-action 'self'" in policy
        assert response.headers["X-Frame-Options"] == "DENY"
        [style] = re.findall(r"<style>(.*?)</style>", response.get_data(as_text=True), re.S)
        assert style in template_styles() and source_hash(style) in policy
        assert "<script" not in response.get_data(as_text=True)


def test_an_offline_member_in_ukrainian(app, client, ledger, smtp, clock):
    add_offline(ledger, "Gift@Example.org", "a gift")
    assert ask(client, "gift@example.org", locale="uk-UA").status_code == 202
    settle(app)
    [(_, _, message)] = smtp.messages()
    assert message["Subject"] == "Посилання для входу — Kyiv Independent"
    assert "упродовж 15 хв" in message.get_content()
    claim = Tokens(SECRET_KEY).read_member(token_of(client.get(link_in(message))), clock.at)
    assert claim.subject == "email:gift@example.org"
    page = client.get(link_in(message)).get_data(as_text=True)
    assert '<html lang="uk">' in page and "Це посилання вже використано" in page


def test_a_link_older_than_15_minutes_is_refused(app, client, ledger, smtp, clock):
    stripe_member(ledger, "cus_A1", "reader@example.org")
    ask(client, "reader@example.org")
    settle(app)
    [(_, _, message)] = smtp.messages()
    clock.at += LINK_SECONDS + 1
    response = client.get(link_in(message))
    assert response.status_code == 410
    assert "This link has expired" in response.get_data(as_text=True)
    assert "Sign-in links work for 15 minutes" in response.get_data(as_text=True)


def test_a_new_link_can_be_asked_for_from_the_410_page(app, client, ledger, smtp):
    stripe_member(ledger, "cus_A1", "reader@example.org")
    ask(client, "reader@example.org", locale="uk")
    settle(app)
    path = link_in(smtp.messages()[0][2])
    client.get(path)
    client.get(path)  # the page with the form
    form = {"email": "reader@example.org", "return_url": RETURN, "locale": "uk"}
    response = client.post("/v1/member/sign-in", data=form)
    assert response.status_code == 202
    assert response.content_type == "text/html; charset=utf-8"
    assert "Перевірте пошту" in response.get_data(as_text=True)
    settle(app)
    second = smtp.wait_for(2)[1][2]
    assert token_of(client.get(link_in(second)))

    bad = client.post("/v1/member/sign-in", data={**form, "email": "nobody"})
    assert bad.status_code == 400 and "email: expected an email address" in bad.get_data(
        as_text=True
    )


# --- Nobody can tell a member from anyone else ----------------------------------------------


def test_a_non_member_gets_the_same_answer_and_no_email(app, client, ledger, smtp, redis_client):
    stripe_member(ledger, "cus_A1", "member@example.org")
    observe(ledger, sp.subscription("sub_gone", "cus_G1", "canceled"), observed_at=100)
    link(ledger, "cus_G1", "lapsed@example.org", observed_at=100)
    member = ask(client, "member@example.org")
    answers = [ask(client, who) for who in ("stranger@example.org", "lapsed@example.org")]
    settle(app)
    for answer in answers:
        assert answer.status_code == member.status_code == 202
        assert answer.get_data() == member.get_data()
        drop = {"X-Request-ID", "Content-Length"}
        assert {k: v for k, v in answer.headers if k not in drop} == {
            k: v for k, v in member.headers if k not in drop
        }
    assert [m[1] for m in smtp.messages()] == [["member@example.org"]]
    links = [k for k in redis_client.keys("*members:link*") if not k.endswith(":note")]
    assert len(links) == 1


def test_the_answer_does_not_wait_for_the_lookup_or_the_mail(app, client, ledger, smtp):
    """Everything that differs between a member and anyone else happens after the answer."""
    stripe_member(ledger, "cus_A1", "member@example.org")
    outbox = members_of(app).outbox
    gate = threading.Event()
    outbox.submit(gate.wait)  # the worker is busy until the gate opens
    started = time.perf_counter()
    assert ask(client, "member@example.org").status_code == 202
    assert ask(client, "stranger@example.org").status_code == 202
    assert time.perf_counter() - started < 1.0
    assert smtp.messages() == []
    gate.set()
    settle(app)
    assert len(smtp.messages()) == 1


def test_a_full_outbox_is_a_503_for_anyone(app, client):
    outbox = members_of(app).outbox
    gate, busy = threading.Event(), threading.Event()
    outbox.submit(lambda: (busy.set(), gate.wait()))
    busy.wait(5)  # the worker holds the gate's job: the queue itself is what fills up
    while outbox.submit(lambda: None):
        pass
    try:
        response = ask(client, "stranger@example.org")
        assert response.status_code == 503
        assert response.get_json()["error"]["code"] == "sign_in_busy"
        assert response.headers["Retry-After"]
    finally:
        gate.set()


def test_mail_that_cannot_be_sent_is_logged_and_the_answer_is_the_same(make, ledger, caplog):
    app = make(smtp_url="smtp://127.0.0.1:9")  # the discard port: nothing listens
    client = app.test_client()
    stripe_member(ledger, "cus_A1", "member@example.org")
    assert ask(client, "member@example.org").status_code == 202
    settle(app)
    assert any("sign-in link was not mailed" in r.getMessage() for r in caplog.records)
    assert not any("member@example.org" in r.getMessage() for r in caplog.records)


# --- Refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email", "return_url": RETURN}, "email"),
        ({"email": "a@example.org", "return_url": "https://evil.example/"}, "return_url"),
        ({"email": "a@example.org", "return_url": "https://news.example.evil/"}, "return_url"),
        ({"email": "a@example.org"}, "return_url"),
        ({"return_url": RETURN}, "email"),
        ({"email": "a@example.org", "return_url": RETURN, "locale": 5}, "locale"),
    ],
)
def test_a_malformed_request_is_a_400_naming_the_field(client, smtp, body, field):
    response = client.post("/v1/member/sign-in", json=body)
    assert response.status_code == 400
    assert response.get_json()["error"]["message"].startswith(f"{field}: ")
    assert smtp.messages() == []


def test_bodies_that_are_not_json(client):
    assert client.post("/v1/member/sign-in", data="x", content_type="text/plain").status_code == 415
    bad = client.post("/v1/member/sign-in", data="{", content_type="application/json")
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_json"
    big = client.post("/v1/member/sign-in", json={"email": "a" * 9000})
    assert big.status_code == 413
    big_form = client.post("/v1/member/sign-in", data={"email": "a" * 9000})
    assert big_form.status_code == 413


def test_verify_without_a_code_is_a_400(client):
    response = client.get("/v1/member/verify")
    assert response.status_code == 400
    assert response.get_json()["error"]["message"].startswith("code: ")
    assert client.get("/v1/member/verify?code=short").status_code == 410


def test_without_smtp_url_sign_in_is_a_503(make):
    client = make(smtp_url=None).test_client()
    response = ask(client, "a@example.org")
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "mail_not_configured"


def test_preflight(client):
    assert_post_preflight(client, "/v1/member/sign-in", ORIGIN)


# --- Rate limits ---------------------------------------------------------------------------


def test_per_email_limit_counts_whoever_asks_and_whether_a_member_or_not(make, ledger, smtp):
    app = make(rate_limit_sign_in="100/hour", rate_limit_sign_in_email="2/hour")
    client = app.test_client()
    stripe_member(ledger, "cus_A1", "member@example.org")
    for who in ("member@example.org", "stranger@example.org"):
        assert ask(client, who).status_code == 202
        assert ask(client, who.upper()).status_code == 202  # the same address
        third = ask(client, who)
        assert third.status_code == 429
        assert "for this email" in third.get_json()["error"]["message"]
        assert 1 <= int(third.headers["Retry-After"]) <= 3600
    assert ask(client, "other@example.org").status_code == 202
    settle(app)
    assert len(smtp.messages()) == 2  # the member's two asks


def test_per_address_limit(make, smtp):
    client = make(rate_limit_sign_in="3/hour").test_client()
    for i in range(3):
        assert ask(client, f"reader{i}@example.org").status_code == 202
    over = ask(client, "reader9@example.org")
    assert over.status_code == 429
    assert "from this address" in over.get_json()["error"]["message"]
    # malformed requests count too: they are how a flood starts
    assert client.post("/v1/member/sign-in", json={}).status_code == 429


def test_the_email_limits_keys_hold_no_address(make, redis_client):
    client = make().test_client()
    ask(client, "private@example.org")
    keys = redis_client.keys("*ratelimit*")
    assert keys and not any("private" in k for k in keys)


# --- Transport -----------------------------------------------------------------------------


def test_mail_goes_over_starttls_when_the_server_offers_it(make, ledger, tmp_path):
    server = SmtpServer(tmp_path, tls="starttls", auth=("mailer", "secret")).start()
    try:
        app = make(
            smtp_url=server.url("mailer", "secret"), smtp_tls_context=server.client_context()
        )
        stripe_member(ledger, "cus_A1", "member@example.org")
        assert ask(app.test_client(), "member@example.org").status_code == 202
        settle(app)
        assert len(server.messages()) == 1
        assert server.inbox.tls_seen == [True] and server.logins == [("mailer", "secret")]
        assert urlsplit(link_in(server.messages()[0][2])).path == "/v1/member/verify"
    finally:
        server.stop()
