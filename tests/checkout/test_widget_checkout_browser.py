"""The prompt widget's call to action through Stripe Checkout, and its member token, in
headless Chromium against one real `membership serve` with the fake Stripe.

Nothing leaves the machine: the service calls tests/support/fake_stripe.py for Stripe's API, and the
browser's visit to https://checkout.stripe.com is answered by `page.route`, which "pays" the
session in the fake (optionally delivering the signed events Stripe would send to
/webhooks/stripe) and sends the reader to the session's success URL with a 303, as Checkout
does. CHECKOUT_SUCCESS_URL is the demo article with `?session_id={CHECKOUT_SESSION_ID}`.
"""

from __future__ import annotations

import json
import time

import pytest

from membership import create_app
from membership.core.runtime import runtime
from membership.ledger import ledger_for
from membership.members import rules
from membership.prompts import campaigns, counts, results, store
from membership.prompts.tokens import Tokens
from membership.store import Keys
from tests.support import stripe_payloads as sp
from tests.support.fake_stripe import FakeStripe
from tests.support.member_count import set_member_count
from tests.support.processes import RedisServer, ServiceProcess
from tests.support.widget_browser import is_ask, live_campaign, new_reader, serve_demo_as

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SECRET = "checkout-browser-test-secret-0123456789"
JOIN = "https://example.org/join"
OWN_URL = "https://example.org/winter-drive"  # a variant's cta_url chosen by staff
MEMBER = "offline.member@example.org"
DESKTOP = {"width": 1280, "height": 720}
ASK = ".mp-banner"
DAY = 24 * 3600

# A banner ask (fixed bar: shown and clickable at once) for every non-member on the demo's
# section, and one whose variant has a URL of its own on another section.
CAMPAIGNS = [
    live_campaign("checkout-ask", "banner", "kyiv", "Keep Kyiv's trams in the news"),
    live_campaign("own-url-ask", "banner", "own-url-test", "The winter drive"),
]
CAMPAIGNS[1]["variants"][0]["cta_url"] = OWN_URL


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """(service, fake Stripe, redis client)."""
    redis = RedisServer().start()
    client = redis.client()
    keys = Keys()
    set_member_count(client, keys, 25012)  # the answer carries banner data (JOIN_URL)
    store.apply(client, keys, [campaigns.parse(c) for c in CAMPAIGNS], actor="test")
    data_dir = tmp_path_factory.mktemp("var")
    app = create_app({"redis_url": redis.url, "data_dir": data_dir, "secret_key": SECRET})
    ledger_for(runtime(app)).writer.add_offline_member(MEMBER, "test", actor="test")
    fake = FakeStripe().start()
    fake.add_price("price_monthly", 500, interval="month")
    fake.add_price("price_yearly", 5000, interval="year")
    service = ServiceProcess({})
    service.env.update(
        {
            "REDIS_URL": redis.url,
            "MEMBERSHIP_DATA_DIR": str(data_dir),
            "SECRET_KEY": SECRET,
            "JOIN_URL": JOIN,
            "PUBLICATION_NAME": "The Kyiv Independent",
            "STRIPE_API_KEY": "sk_test_widget_checkout",
            "STRIPE_API_BASE": fake.url,
            "STRIPE_WEBHOOK_SECRET": sp.WEBHOOK_SECRET,
            "STRIPE_PRICES": "monthly=price_monthly,yearly=price_yearly",
            "CHECKOUT_SUCCESS_URL": service.url + "/demo/article?session_id={CHECKOUT_SESSION_ID}",
        }
    )
    service.start()
    yield service, fake, client
    service.stop()
    fake.stop()
    redis.stop()


@pytest.fixture
def page(browser):
    """A new reader (empty localStorage); page errors fail the test. Example.org's pages (the
    links a failed checkout falls back to) are answered here, never fetched."""
    with new_reader(browser, DESKTOP) as page:
        page.route("https://example.org/**", lambda route: route.fulfill(body="<p>elsewhere</p>"))
        yield page


def _read(page, url: str | None = None, *, click_next: bool = False) -> tuple[dict, dict]:
    with page.expect_response(is_ask, timeout=10_000) as info:
        if click_next:
            page.locator("nav.next a").click()
        else:
            page.goto(url)
    response = info.value
    assert response.status == 200
    return response.request.post_data_json, response.json()


def _stored_token(page) -> str | None:
    return page.evaluate("localStorage.getItem('member_token')")


def _results(client, campaign_id: str) -> dict:
    """`membership campaigns results ID --json`, in-process."""
    keys = Keys()
    c = store.get(client, keys, campaign_id)
    return results.build(c, counts.read_campaign(client, keys, c, time.time(), 0))


def _variant(client, campaign_id: str) -> dict:
    return next(v for v in _results(client, campaign_id)["variants"] if v["id"] == "a")


def _deliver(service, events: list[dict]) -> None:
    seen, pending = sp.deliver(service.url + "/webhooks/stripe", [sp.body(e) for e in events])
    assert pending == [] and set(seen) == {200}


@pytest.mark.parametrize("webhook", ["before-return", "after-return"])
def test_checkout_from_the_ask_returns_a_member_who_is_not_asked_again(page, world, webhook):
    service, fake, client = world
    before = _variant(client, "checkout-ask")
    paid = []  # (session id, the events Stripe would send)

    def checkout(route):
        """Stripe's hosted page: the reader pays; Stripe redirects to the success URL."""
        session_id = route.request.url.rsplit("/", 1)[1].split("#")[0]
        events = fake.complete(session_id)
        paid.append((session_id, events))
        if webhook == "before-return":
            _deliver(service, events)
            _deliver(service, events)  # a redelivery: still one conversion
        success = fake.checkout.sessions[session_id]["success_url"]
        route.fulfill(
            status=303, headers={"Location": success.replace("{CHECKOUT_SESSION_ID}", session_id)}
        )

    page.route("https://checkout.stripe.com/**", checkout)
    _, answer = _read(page, service.url + "/demo/article")
    assert [p["campaign"] for p in answer["prompts"]] == ["checkout-ask"]
    prompt_token = answer["prompts"][0]["token"]
    ask = page.locator(ASK)
    ask.wait_for(timeout=5_000)

    with (
        page.expect_request("**/v1/checkout", timeout=10_000) as checkout_call,
        page.expect_response("**/v1/member/token?session_id=*", timeout=10_000) as token_call,
        page.expect_response(is_ask, timeout=10_000) as back,
    ):
        ask.get_by_role("link", name="Join").click()
    assert checkout_call.value.post_data_json == {
        "plan": "monthly",
        "locale": "en",
        "token": prompt_token,
    }
    [(session_id, _)] = paid
    assert fake.checkout.sessions[session_id]["metadata"]["variant"] == "a"
    # Back on the demo article, the session id out of the address, a member.
    assert token_call.value.url.endswith(f"/v1/member/token?session_id={session_id}")
    assert token_call.value.status == 200
    token = token_call.value.json()["token"]
    # (A redirect keeps the Checkout URL's #fragment; Stripe's page leaves by script instead.)
    assert page.url.split("#")[0] == service.url + "/demo/article"
    assert _stored_token(page) == token
    assert back.value.request.post_data_json["member"] == token
    assert back.value.json()["prompts"] == []

    body, answer = _read(page, click_next=True)
    assert body["member"] == token
    assert answer["prompts"] == []
    page.wait_for_timeout(300)
    assert page.locator(".mp").count() == 0

    if webhook == "after-return":  # the token came from the session alone
        assert _variant(client, "checkout-ask")["conversions"] == before["conversions"]
        _deliver(service, paid[0][1])
        _deliver(service, paid[0][1])
    after = _variant(client, "checkout-ask")
    assert after["conversions"] == before["conversions"] + 1
    assert after["revenue"]["eur"] == before["revenue"].get("eur", 0) + 500
    assert after["clicks"] == before["clicks"] + 1  # the click is still reported (keepalive)


@pytest.mark.parametrize("failure", ["500", "503", "network", "not-https"])
def test_a_failed_checkout_follows_the_link(page, world, failure):
    """503 is what a service without STRIPE_API_KEY answers; 500 anything unforeseen."""
    service, fake, _ = world
    sessions = len(fake.checkout.sessions)

    def broken(route):
        if failure in ("500", "503"):
            route.fulfill(status=int(failure), content_type="application/json", body='{"error":{}}')
        elif failure == "network":
            route.abort("connectionrefused")
        else:
            route.fulfill(content_type="application/json", body='{"url":"javascript:alert(1)"}')

    page.route("**/v1/checkout", broken)
    _read(page, service.url + "/demo/article")
    with page.expect_request("**/v1/checkout"), page.expect_navigation(url=JOIN, timeout=10_000):
        page.locator(ASK).get_by_role("link", name="Join").click()
    assert len(fake.checkout.sessions) == sessions


def test_a_variant_with_its_own_url_skips_checkout(page, world):
    service, _, _ = world
    url = serve_demo_as(page, service.url, "/test-only/own-url-article", "own-url-test")
    asked = []
    page.on("request", lambda r: asked.append(r.url) if "/v1/checkout" in r.url else None)
    _, answer = _read(page, url)
    assert answer["prompts"][0]["cta"]["url"] == OWN_URL
    with page.expect_navigation(url=OWN_URL, timeout=10_000):
        page.locator(ASK).get_by_role("link", name="Join").click()
    assert asked == []


def test_data_plan_chooses_the_plan(page, world):
    service, fake, _ = world
    url = service.url + "/test-only/yearly-article"

    def yearly(route):
        response = route.fetch(url=service.url + "/demo/article")
        body = response.text().replace("<article ", '<article data-plan="yearly" ')
        route.fulfill(response=response, body=body)

    page.route(url, yearly)
    page.route("https://checkout.stripe.com/**", lambda route: route.fulfill(body="Checkout"))
    _read(page, url)
    with page.expect_request("**/v1/checkout") as sent, page.expect_navigation(timeout=10_000):
        page.locator(ASK).get_by_role("link", name="Join").click()
    assert sent.value.post_data_json["plan"] == "yearly"
    assert page.url.startswith("https://checkout.stripe.com/c/pay/cs_")
    created = fake.calls("POST", "/v1/checkout/sessions")[-1]["params"]
    assert created["line_items"]["0"]["price"] == "price_yearly"


def _token(subject: str, issued_days_ago: float) -> str:
    """As a sign-in link made it (the subjects here are `email:`)."""
    tokens = Tokens(SECRET)
    issued = time.time() - issued_days_ago * DAY
    return tokens.encode_member(tokens.member(subject, issued, proof=rules.LINK))


def _expires_at(token: str) -> int:
    return Tokens(SECRET).read_member(token, time.time()).expires_at


@pytest.mark.parametrize(
    ("subject", "days_ago", "trouble", "outcome"),
    [
        ("email:" + MEMBER, 6.5, None, "renewed"),
        ("email:lapsed@example.org", 6.5, None, "dropped"),  # 401 membership_ended
        ("email:" + MEMBER, 6.5, "network", "kept"),
        ("email:" + MEMBER, 6.5, "503", "kept"),
        ("email:" + MEMBER, 5.5, None, "not-due"),  # 1.5 days left: not yet
    ],
    ids=["renewed", "lapsed-dropped", "network-kept", "503-kept", "not-due"],
)
def test_a_token_is_renewed_a_day_before_it_ends(page, world, subject, days_ago, trouble, outcome):
    service, _, _ = world
    old = _token(subject, days_ago)
    page.goto(service.url + "/healthz")
    page.evaluate("t => localStorage.setItem('member_token', t)", old)
    refreshes = []
    page.on(
        "request",
        lambda r: refreshes.append(r.post_data_json) if r.url.endswith("/token/refresh") else None,
    )
    if trouble == "network":
        page.route("**/v1/member/token/refresh", lambda route: route.abort("connectionrefused"))
    elif trouble == "503":
        page.route(
            "**/v1/member/token/refresh",
            lambda route: route.fulfill(status=503, content_type="application/json", body="{}"),
        )
    if outcome == "not-due":
        _read(page, service.url + "/demo/article")
        page.wait_for_timeout(300)
        assert refreshes == [] and _stored_token(page) == old
        return
    with (
        page.expect_request("**/v1/member/token/refresh", timeout=10_000),
        page.expect_response(is_ask, timeout=10_000),  # alongside: the ask does not wait
    ):
        page.goto(service.url + "/demo/article")
    assert refreshes == [{"token": old}]
    if outcome == "renewed":
        page.wait_for_function(
            "old => ![null, old].includes(localStorage.getItem('member_token'))",
            arg=old,
            timeout=5_000,
        )
        fresh = _stored_token(page)
        assert _expires_at(fresh) > time.time() + 6.9 * DAY
        body, _ = _read(page, click_next=True)  # the fresh token is sent, and not renewed
        assert body["member"] == fresh and len(refreshes) == 1
    elif outcome == "dropped":
        page.wait_for_function("() => !localStorage.getItem('member_token')", timeout=5_000)
        body, answer = _read(page, click_next=True)  # asked again
        assert "member" not in body
        assert [p["campaign"] for p in answer["prompts"]] == ["checkout-ask"]
    else:
        page.wait_for_timeout(500)
        assert _stored_token(page) == old


def test_a_sign_in_fragment_token_is_read_for_its_expiry(page, world):
    """#member_token= (the sign-in link) is stored as before; its end is read from the token
    itself, so a fresh one is not renewed and a nearly spent one is, at once."""
    service, _, _ = world
    fresh, spent = _token("email:" + MEMBER, 0), _token("email:" + MEMBER, 6.5)
    refreshes = []
    page.on("request", lambda r: refreshes.append(r.url) if "/token/refresh" in r.url else None)
    body, _ = _read(page, service.url + f"/demo/article#member_token={fresh}")
    assert body["member"] == fresh and _stored_token(page) == fresh
    page.wait_for_timeout(300)
    assert refreshes == []
    with page.expect_response("**/v1/member/token/refresh", timeout=10_000) as renewed:
        page.goto(service.url + f"/demo/article?n=2#member_token={spent}")
    assert renewed.value.status == 200
    page.wait_for_function("t => localStorage.getItem('member_token') !== t", arg=spent)
    assert json.loads(renewed.value.request.post_data) == {"token": spent}


def test_a_session_id_not_from_checkout_is_left_alone(page, world):
    """A site's own `session_id` is neither sent to the service nor taken from the address."""
    service, _, _ = world
    asked = []
    page.on("request", lambda r: asked.append(r.url) if "/v1/member/" in r.url else None)
    body, _ = _read(page, service.url + "/demo/article?session_id=abc123")
    assert "member" not in body and asked == []
    assert page.url == service.url + "/demo/article?session_id=abc123"


def test_a_checkout_return_without_a_token_asks_nothing_on_that_page(page, world):
    """Back from Checkout with a session that gives no token (not paid yet, as a bank debit
    still processing; here one Stripe does not know), the reader gets no ask on that page view
    (they have just been through Checkout); the session id still leaves the address, and the
    next page view asks as before."""
    service, _, _ = world
    unpaid = "cs_test_not_paid_0123456789"
    asks, scripts = [], []
    page.on("request", lambda r: asks.append(r.url) if is_ask(r) else None)
    page.on("request", lambda r: scripts.append(r.url) if "/static/" in r.url else None)
    with page.expect_response("**/v1/member/token?session_id=*", timeout=10_000) as token_call:
        page.goto(service.url + f"/demo/article?session_id={unpaid}")
    assert token_call.value.status != 200
    page.wait_for_timeout(300)
    assert asks == [] and page.locator(".mp").count() == 0 and _stored_token(page) is None
    assert page.url == service.url + "/demo/article"
    assert not any("prompt-banner" in url for url in scripts)  # no placement module either
    _, answer = _read(page, click_next=True)
    assert [p["campaign"] for p in answer["prompts"]] == ["checkout-ask"]
