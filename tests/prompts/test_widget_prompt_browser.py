"""The prompt widget (static/prompt.js) in a real browser: headless Debian Chromium via
Playwright, against one real `membership serve` per module with campaigns in its Redis.

Each test gets a fresh browser context, so a fresh localStorage: a new reader. The server's
clock is real, so a test that needs a dismissal to be old sets the *browser's* clock back
before the reader dismisses (the widget stamps dismissals with the browser's time).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time

import pytest
from playwright.sync_api import expect

from membership.prompts import assign
from membership.prompts.tokens import Tokens
from tests.support.widget_browser import (
    MODULE_QUERY,
    is_ask,
    live_campaign,
    module_glob,
    module_url,
    new_reader,
    open_holding_the_ask,
    reader_service,
    serve_demo_as,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SECRET = "prompt-browser-test-secret-0123456789"
JOIN = "https://example.org/join"
DESKTOP = {"width": 1280, "height": 720}
SLOT = "[data-membership-prompt]"
INLINE = f"{SLOT} .mp-inline"
DAY = dt.timedelta(days=1)

CLS_OBSERVER = """
window.__cls = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) if (!entry.hadRecentInput) window.__cls += entry.value;
}).observe({type: "layout-shift", buffered: true});
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(e.violatedDirective + " " + (e.blockedURI || "inline"));
});
"""


NAME_OF_FOCUSED = (
    "document.activeElement.getAttribute('aria-label') || document.activeElement.textContent"
)


CAMPAIGNS = [
    live_campaign(
        "inline-ask", "inline", "kyiv", "You've read {articles_read} articles this month",
        articles_min=3,
    ),
    # Also on the demo article, but only for heavy readers: the layout-shift test.
    live_campaign("banner-ask", "banner", "kyiv", "Keep Kyiv's trams in the news", articles_min=10),
    live_campaign("modal-ask", "modal", "modal-test", "Before you go"),
    live_campaign(
        "gate-ask", "gate", "gate-test", "You've reached this month's free articles",
        gate={"dismissible": True, "free_articles": 0},
    ),
    live_campaign("holdout-ask", "banner", "holdout-test", "Held out", control_share=0.5),
    live_campaign("holdout-inline", "inline", "holdout-test", "Held out", control_share=0.5),
]  # fmt: skip


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    env = {"SECRET_KEY": SECRET, "JOIN_URL": JOIN, "PUBLICATION_NAME": "The Kyiv Independent"}
    with reader_service(tmp_path_factory.mktemp("var"), CAMPAIGNS, env) as service:
        yield service


@pytest.fixture
def page(browser):
    """A new reader: a fresh context (empty localStorage). Page errors fail the test."""
    with new_reader(browser, DESKTOP) as page:
        page.add_init_script(CLS_OBSERVER)
        events: list[dict] = []  # what the widget reported, in order
        page.on(
            "request",
            lambda r: (
                events.extend(json.loads(r.post_data)["events"])
                if r.url.endswith("/v1/prompt/events")
                else None
            ),
        )
        page.reported = events
        yield page


def _read(page, url: str | None = None, *, click_next: bool = False) -> tuple[dict, dict]:
    """Open an article (or follow its "next" link, or reload it); (request body, answer)."""
    with page.expect_response(is_ask, timeout=10_000) as info:
        if click_next:
            page.locator("nav.next a").click()
        elif url is None:
            page.reload()
        else:
            page.goto(url)
    response = info.value
    assert response.status == 200
    return response.request.post_data_json, response.json()


def _state(page) -> dict:
    return page.evaluate("JSON.parse(localStorage.getItem('membership'))")


def _today(page) -> str:
    return page.evaluate("new Date().toISOString().slice(0, 10)")


def _seed(page, service, **state) -> None:
    """Give the reader a stored state before the widget runs (from a page of the origin)."""
    page.goto(service.url + "/healthz")
    full = {"reader": "reader_seeded_0001", "articles": {}, "views": [], "dismissed": []}
    full.update(state)
    page.evaluate("s => localStorage.setItem('membership', JSON.stringify(s))", full)


def _delay_asks(page, seconds: float) -> None:
    def handle(route):
        time.sleep(seconds)
        route.continue_()

    page.route("**/v1/prompt", handle)


def _events_of(page, kind: str) -> list[dict]:
    return [e for e in page.reported if e["type"] == kind]


def test_a_new_reader_is_asked_inline_on_the_third_article(page, service):
    body, answer = _read(page, service.url + "/demo/article")
    assert answer["prompts"] == []
    reader = body["reader"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", reader)
    _, answer = _read(page, click_next=True)
    assert answer["prompts"] == []
    assert page.locator(SLOT).evaluate("e => e.childElementCount") == 0

    body, answer = _read(page, click_next=True)
    today = _today(page)
    assert body["reader"] == reader  # kept across page views
    assert body["history"] == {"articles": {today: 3}}
    assert body["page"] == {
        "section": "kyiv",
        "tags": ["transport", "blackouts"],
        "type": "article",
        "referrer": service.url + "/demo/article?n=2",
    }
    assert body["locale"] == "en" and "member" not in body
    assert [p["placement"] for p in answer["prompts"]] == ["inline"]
    box = page.locator(INLINE)
    box.wait_for(timeout=5_000)
    assert box.locator(".mp-h").text_content() == "You've read 3 articles this month"
    assert box.get_by_role("link", name="Join").get_attribute("href") == JOIN
    # The ticker: the live count and the goal from the answer's banner data.
    assert box.locator(".mp-t").text_content().startswith("25,012 members on board")
    bar = box.get_by_role("progressbar")
    assert (bar.get_attribute("aria-valuenow"), bar.get_attribute("aria-valuemax")) == (
        "25012",
        "30000",
    )
    assert _state(page)["articles"] == {today: 3}

    # A reload shows the same article: not another read.
    body, answer = _read(page)
    assert body["history"] == {"articles": {today: 3}}
    assert _state(page)["articles"] == {today: 3}


@pytest.mark.parametrize(
    ("dismissed_ago", "shown_again"),
    [(7 * DAY - dt.timedelta(hours=1), False), (7 * DAY + dt.timedelta(hours=1), True)],
    ids=["6d23h-ago-still-hidden", "7d1h-ago-shown-again"],
)
def test_a_dismissal_hides_the_ask_for_after_dismiss_days(
    page, service, dismissed_ago, shown_again
):
    """after_dismiss_days is 7. The server judges with its real clock, so the reader's clock
    is set back by `dismissed_ago` while they read and dismiss; then they read on."""
    at = (dt.datetime.now(dt.UTC) - dismissed_ago).replace(microsecond=0)
    if (at + dt.timedelta(minutes=5)).date() != at.date():  # the next read on the same day
        at -= dt.timedelta(minutes=10)
    page.clock.set_fixed_time(at)
    for n in (1, 2, 3):
        _, answer = _read(page, service.url + f"/demo/article?n={n}")
    assert [p["campaign"] for p in answer["prompts"]] == ["inline-ask"]
    box = page.locator(INLINE)
    box.wait_for(timeout=5_000)
    with page.expect_request("**/v1/prompt/events") as sent:
        box.get_by_role("button", name="Close").click()
    assert box.count() == 0
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert _state(page)["dismissed"] == [{"campaign": "inline-ask", "at": stamp}]
    assert sent.value.headers["content-type"].startswith("text/plain")
    page.wait_for_timeout(200)
    token = answer["prompts"][0]["token"]
    assert {"type": "dismiss", "token": token} in page.reported

    page.clock.set_fixed_time(at + dt.timedelta(minutes=5))
    body, answer = _read(page, service.url + "/demo/article?n=4")
    assert body["dismissed"] == [{"campaign": "inline-ask", "at": stamp}]
    assert body["history"]["articles"] == {at.date().isoformat(): 4}
    assert [p["campaign"] for p in answer["prompts"]] == (["inline-ask"] if shown_again else [])
    if shown_again:
        box.wait_for(timeout=5_000)
    else:
        page.wait_for_timeout(200)
        assert page.locator(SLOT).evaluate("e => e.childElementCount") == 0


def test_the_view_is_reported_only_once_the_ask_is_scrolled_into_view(page, service):
    _seed(page, service, articles={_today(page): 2})
    _, answer = _read(page, service.url + "/demo/article")
    token = answer["prompts"][0]["token"]
    box = page.locator(INLINE)
    box.wait_for(timeout=5_000)
    assert box.evaluate("e => e.getBoundingClientRect().top") > DESKTOP["height"]
    page.wait_for_timeout(500)
    assert page.reported == [] and _state(page)["views"] == []

    page.mouse.wheel(0, 300)  # a little: still under half visible
    page.wait_for_timeout(300)
    assert page.reported == []
    with page.expect_request("**/v1/prompt/events") as sent:
        box.scroll_into_view_if_needed()
    assert json.loads(sent.value.post_data) == {"events": [{"type": "view", "token": token}]}
    views = _state(page)["views"]
    assert [v["campaign"] for v in views] == ["inline-ask"]
    # The server took it (the event's answer is not the page's business, so ask the server).
    response = page.request.post(
        service.url + "/v1/prompt/events",
        data=json.dumps({"events": [{"type": "view", "token": token}]}),
        headers={"Content-Type": "text/plain"},
    )
    assert response.status == 202 and response.json() == {"accepted": 1, "rejected": 0}
    page.mouse.wheel(0, -2000)
    box.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    assert len(_events_of(page, "view")) == 1  # once per page view


def test_the_modal_is_keyboard_accessible(page, service):
    url = serve_demo_as(page, service.url, "/test-only/modal-article", "modal-test")
    held = open_holding_the_ask(page, url)  # the ask waits until the reader's focus is set
    page.locator("nav.next a").focus()
    held.continue_()
    dialog = page.get_by_role("dialog", name="Before you go")
    dialog.wait_for(timeout=5_000)
    # the browser's own modal dialog: the page behind it inert
    assert dialog.evaluate("e => e.tagName == 'DIALOG' && e.matches(':modal')")
    inside = "document.querySelector('dialog').contains(document.activeElement)"
    assert page.evaluate(inside)
    focused = set()
    for key in ["Tab"] * 5 + ["Shift+Tab"] * 5:
        page.keyboard.press(key)
        assert page.evaluate(inside), f"focus left the dialog after {key}"
        focused.add(page.evaluate(NAME_OF_FOCUSED))
    assert focused == {"Close", "Join"}  # both controls reached, nothing else

    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)  # closed, then taken out of the page (its close event)
    assert page.locator("dialog").count() == 0
    assert page.evaluate("document.activeElement.textContent") == "Next story →"
    assert [d["campaign"] for d in _state(page)["dismissed"]] == ["modal-ask"]
    page.wait_for_timeout(200)
    assert [e["type"] for e in page.reported if e["type"] != "view"] == ["dismiss"]
    assert page.evaluate("window.__violations") == []  # its style passes the page's CSP

    # The close button dismisses too (a new reader: nothing stored).
    page.evaluate("localStorage.clear()")
    page.unroute("**/v1/prompt")
    _read(page)
    dialog.wait_for(timeout=5_000)
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_have_count(0)
    assert page.locator("dialog").count() == 0
    assert [d["campaign"] for d in _state(page)["dismissed"]] == ["modal-ask"]


def test_the_article_s_data_locale_is_the_ask_s_language(page, service):
    """data-locale on the <article>, as data-section and data-tags are (the <script>'s would
    win): over <html lang>, in the request and in the widget's own words."""

    def in_ukrainian(route):
        response = route.fetch()
        body = response.text().replace("<article ", '<article data-locale="uk" ')
        route.fulfill(response=response, body=body)

    page.route("**/demo/article", in_ukrainian)
    _seed(page, service, articles={_today(page): 2})
    body, answer = _read(page, service.url + "/demo/article")
    assert page.evaluate("document.documentElement.lang") == "en"
    assert body["locale"] == "uk"
    assert [p["campaign"] for p in answer["prompts"]] == ["inline-ask"]
    box = page.locator(INLINE)
    box.wait_for(timeout=5_000)
    assert box.get_by_role("button", name="Закрити").count() == 1


def test_a_member_is_not_asked(page, service):
    tokens = Tokens(SECRET)
    token = tokens.encode_member(tokens.member("email:reader@example.org", time.time()))
    _seed(page, service, articles={_today(page): 5})
    # A sign-in link brings the token in the fragment: kept, and taken out of the address.
    body, answer = _read(page, service.url + f"/demo/article?n=2#member_token={token}")
    assert body["member"] == token
    assert answer["prompts"] == []
    assert page.url == service.url + "/demo/article?n=2"
    assert page.evaluate("localStorage.getItem('member_token')") == token
    page.wait_for_timeout(200)
    assert page.locator(SLOT).evaluate("e => e.childElementCount") == 0

    # The control: the same reader without the token is asked.
    page.evaluate("localStorage.removeItem('member_token')")
    body, answer = _read(page, service.url + "/demo/article?n=3")
    assert "member" not in body
    assert [p["campaign"] for p in answer["prompts"]] == ["inline-ask"]


def test_a_member_module_that_fails_to_load_leaves_a_reader_s_page(page, service):
    """The token's arrival is the member module's: refused (a network error), the page view goes
    on as a reader's (asked, the token not kept), with no page error; the module is loaded only
    for a page that needs it (the control: a page without a token does not ask for it)."""
    tokens = Tokens(SECRET)
    token = tokens.encode_member(tokens.member("email:reader@example.org", time.time()))
    loaded = []
    page.on("request", lambda r: loaded.append(r.url) if "/static/prompt-member" in r.url else None)
    _seed(page, service, articles={_today(page): 5})
    _read(page, service.url + "/demo/article?n=2")
    assert loaded == []
    page.route(module_glob("member"), lambda route: route.abort("connectionrefused"))
    body, answer = _read(page, service.url + f"/demo/article?n=3#member_token={token}")
    assert loaded == [module_url(service.url, "member")]
    assert "member" not in body
    assert [p["campaign"] for p in answer["prompts"]] == ["inline-ask"]
    assert page.evaluate("localStorage.getItem('member_token')") is None


@pytest.mark.parametrize("module", ["refused", "loaded"])
def test_checkout_is_loaded_on_the_click_and_a_click_is_never_lost(page, service, module):
    """Checkout is the checkout module's, loaded only once a call to action is clicked. Refused
    (a network error), the click follows the link at once; the control: loaded, it asks for a
    Checkout session, which a service without Stripe refuses (503), and follows the link too."""
    asked = []
    page.on(
        "request",
        lambda r: (
            asked.append(r.url)
            if re.search(r"/static/prompt-checkout|/v1/checkout", r.url)
            else None
        ),
    )
    if module == "refused":
        page.route(module_glob("checkout"), lambda route: route.abort("connectionrefused"))
    page.route(JOIN, lambda route: route.fulfill(content_type="text/html", body="<p>Join us</p>"))
    _seed(page, service, articles={_today(page): 2})
    _read(page, service.url + "/demo/article")
    box = page.locator(INLINE)
    box.wait_for(timeout=5_000)
    page.wait_for_timeout(200)
    assert asked == []  # nothing of Checkout before a click
    with page.expect_navigation(url=JOIN, timeout=10_000):
        box.get_by_role("link", name="Join").click()
    checkout = [service.url + "/v1/checkout"] if module == "loaded" else []
    assert asked == [module_url(service.url, "checkout"), *checkout]


@pytest.mark.parametrize("height", [720, 6000], ids=["slot-below-the-fold", "slot-in-view"])
def test_nothing_in_view_moves_when_the_answer_arrives(page, service, height):
    """A heavy reader gets the banner (a fixed bar) and the inline ask: the inline ask fills
    its slot only while the slot is below the fold; in view, it is left out."""
    page.set_viewport_size({"width": 1280, "height": height})
    _seed(page, service, articles={_today(page): 12})
    _delay_asks(page, 0.6)  # the article has painted before the answer
    page.goto(service.url + "/demo/article")
    bar = page.locator(".mp-banner")
    bar.wait_for(timeout=5_000)
    rect = bar.evaluate("e => e.getBoundingClientRect().toJSON()")
    assert rect["bottom"] == height and rect["left"] == 0
    if height == 720:
        page.locator(INLINE).wait_for(timeout=5_000)
    else:
        page.wait_for_timeout(300)
        assert page.locator(SLOT).evaluate("e => e.childElementCount") == 0
    page.wait_for_timeout(300)
    assert page.evaluate("window.__cls") == 0


def test_the_gate_covers_the_article_until_maybe_later(page, service):
    url = serve_demo_as(page, service.url, "/test-only/gate-article", "gate-test")
    _, answer = _read(page, url)
    assert [p["placement"] for p in answer["prompts"]] == ["gate"]
    gate = page.locator(".mp-cover")
    gate.wait_for(timeout=5_000)
    article = page.locator("article").evaluate("e => e.getBoundingClientRect().toJSON()")
    cover = gate.evaluate("e => e.getBoundingClientRect().toJSON()")
    assert cover == article
    assert page.locator("article h1").evaluate("e => e.closest('[inert]') !== null")
    page.get_by_role("button", name="Maybe later").click()
    assert gate.count() == 0
    assert page.locator("article [inert]").count() == 0
    assert [d["campaign"] for d in _state(page)["dismissed"]] == ["gate-ask"]
    assert page.evaluate("window.__cls") == 0


def _held_reader() -> str:
    """A reader in the holdout of both campaigns of the holdout test's section."""
    return next(
        reader
        for reader in (f"holdout_reader_{i:04d}" for i in range(1000))
        if assign.bucket(reader, "holdout-ask") < 5000
        and assign.bucket(reader, "holdout-inline") < 5000
    )


def test_a_holdout_is_reported_once_its_place_is_on_screen(page, service):
    """As a view is: the banner's place once its module has run, the inline slot once
    scrolled to (counting readers who never reach the slot would bias the lift)."""
    _seed(page, service, reader=_held_reader())
    url = serve_demo_as(page, service.url, "/test-only/holdout-article", "holdout-test")
    with page.expect_request("**/v1/prompt/events") as sent:
        _, answer = _read(page, url)
    assert answer["prompts"] == []
    tokens = {h["placement"]: h["token"] for h in answer["holdout"]}
    assert sorted(h["campaign"] for h in answer["holdout"]) == ["holdout-ask", "holdout-inline"]
    assert json.loads(sent.value.post_data) == {
        "events": [{"type": "holdout", "token": tokens["banner"]}]
    }
    page.wait_for_timeout(500)
    assert page.reported == [{"type": "holdout", "token": tokens["banner"]}]

    with page.expect_request("**/v1/prompt/events") as sent:
        page.locator(SLOT).scroll_into_view_if_needed()
    assert json.loads(sent.value.post_data) == {
        "events": [{"type": "holdout", "token": tokens["inline"]}]
    }
    page.mouse.wheel(0, -3000)
    page.locator(SLOT).scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    assert len(page.reported) == 2  # each once per page view
    assert page.locator(".mp").count() == 0


BAR_MODULE = module_glob("banner")


def _bar_modules_loaded(page) -> int:
    path = f"/static/prompt-banner.js{MODULE_QUERY}"  # as prompt.js asks for it
    return page.evaluate(f"performance.getEntriesByName(location.origin + '{path}').length")


def test_a_bars_holdout_passes_the_gate_its_ask_does(page, service):
    """The bar's module more than 2 s late draws no ask, so no view is sent for it: a holdout
    of the bar loads the same module and is reported only once it has run in time, or else
    the holdout would keep the readers with slow or failing loads that the ask group loses.
    On time: exactly one holdout event, and nothing drawn."""
    _seed(page, service, reader=_held_reader())
    url = serve_demo_as(page, service.url, "/test-only/holdout-article", "holdout-test")

    def late(route):
        time.sleep(2.5)
        route.continue_()

    page.route(BAR_MODULE, late)
    _, answer = _read(page, url)
    assert answer["prompts"] == []
    assert "banner" in [h["placement"] for h in answer["holdout"]]
    deadline = time.monotonic() + 10
    while not _bar_modules_loaded(page):  # loaded (and run at once), late
        assert time.monotonic() < deadline, "the bar's module was never loaded"
        page.wait_for_timeout(50)
    page.wait_for_timeout(500)
    assert page.reported == []
    assert page.locator(".mp, .mp-pad, dialog").count() == 0

    page.unroute(BAR_MODULE)  # on time: reported once, still nothing drawn
    with page.expect_request("**/v1/prompt/events") as sent:
        _, answer = _read(page, url)
    token = next(h["token"] for h in answer["holdout"] if h["placement"] == "banner")
    assert json.loads(sent.value.post_data) == {"events": [{"type": "holdout", "token": token}]}
    page.wait_for_timeout(500)
    assert page.reported == [{"type": "holdout", "token": token}]
    assert _bar_modules_loaded(page) == 1
    assert page.locator(".mp, .mp-pad, dialog").count() == 0


@pytest.mark.parametrize("failure", ["slow", "500", "garbage", "network"])
def test_no_answer_in_time_or_a_bad_one_shows_nothing(page, service, failure):
    _seed(page, service, articles={_today(page): 12})  # would get the banner and the inline ask
    started = time.monotonic()

    def handle(route):
        if failure == "slow":
            time.sleep(2.5)
            route.continue_()
        elif failure == "500":
            route.fulfill(status=500, content_type="application/json", body='{"error":{}}')
        elif failure == "garbage":
            route.fulfill(status=200, content_type="application/json", body="<html>oops")
        else:
            route.abort("connectionrefused")

    page.route("**/v1/prompt", handle)
    page.goto(service.url + "/demo/article", wait_until="domcontentloaded")
    page.wait_for_timeout(3_000 if failure == "slow" else 500)
    assert page.locator(".mp").count() == 0
    styles = page.locator("style").evaluate_all("s => s.map(e => e.textContent)")
    assert not [css for css in styles if ".mp-inline" in css or ".mp-banner" in css]  # no style
    if failure == "slow":
        assert time.monotonic() - started > 2.5


SEEDED = '"reader":"reader_seeded_0001"'


@pytest.mark.parametrize(
    ("stored", "refused"),
    [
        ("{not json", False),
        ("null", False),
        ('{"reader":"short","articles":{},"views":[],"dismissed":[]}', True),
        ("{" + SEEDED + ',"articles":{"2026-13-01":1},"views":[],"dismissed":[]}', True),
        ("{" + SEEDED + ',"articles":{},"views":{},"dismissed":[]}', True),
    ],
    ids=["not-json", "null", "bad-reader", "bad-day", "views-not-a-list"],
)
def test_a_corrupt_state_means_no_ask_and_a_new_reader_next(page, service, stored, refused):
    """What is not JSON (or no object) is dropped at once; the rest the service refuses (a 400
    naming the field: it is the one judge of the state's shape), and then it is dropped."""
    page.goto(service.url + "/healthz")
    page.evaluate("s => localStorage.setItem('membership', s)", stored)
    answers = []
    page.on("response", lambda r: answers.append(r.status) if is_ask(r) else None)
    page.goto(service.url + "/demo/article")
    deadline = time.monotonic() + 5
    while page.evaluate("localStorage.getItem('membership')") is not None:
        assert time.monotonic() < deadline, "the stored state was kept"
        page.wait_for_timeout(50)
    page.wait_for_timeout(300)
    assert answers == ([400] if refused else [])
    assert page.locator(".mp").count() == 0
    body, _ = _read(page, service.url + "/demo/article?n=2")  # a fresh start: a new reader
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", body["reader"])
    assert body["history"] == {"articles": {_today(page): 1}}


@pytest.mark.parametrize(
    "lists", ["", ',"views":null,"dismissed":null'], ids=["lists-missing", "lists-null"]
)
def test_a_state_without_its_lists_still_keeps_what_is_seen(page, service, lists):
    """The service takes a state without `views` and `dismissed` (or with them null): the
    widget starts them, so what the reader sees and closes is still kept (a dismissed ask stays
    away), where it once could keep neither, on any page view, and never got a 400 to reset."""
    page.goto(service.url + "/healthz")
    stored = "{" + SEEDED + ',"articles":{"' + _today(page) + '":2}' + lists + "}"
    page.evaluate("s => localStorage.setItem('membership', s)", stored)
    _, answer = _read(page, service.url + "/demo/article")
    assert [p["campaign"] for p in answer["prompts"]] == ["inline-ask"]
    box = page.locator(INLINE)
    box.wait_for(timeout=5_000)
    with page.expect_request("**/v1/prompt/events"):
        box.scroll_into_view_if_needed()
    with page.expect_request("**/v1/prompt/events"):
        box.get_by_role("button", name="Close").click()
    state = _state(page)
    assert [v["campaign"] for v in state["views"]] == ["inline-ask"]
    assert [d["campaign"] for d in state["dismissed"]] == ["inline-ask"]
    _, answer = _read(page, service.url + "/demo/article?n=2")
    assert answer["prompts"] == []  # closed: left out for its after_dismiss_days


def test_a_cached_banner_js_of_before_the_shared_look_leaves_the_ask_its_look(page, service):
    """A page that embeds banner.js too may run a cached copy from before the asks shared the
    count box's look: its <style> for the boxes alone went in first (under the id it used).
    The ask still gets the look it shares with the boxes (background, padding, button)."""
    yesterdays = (
        "var s = document.createElement('style'); s.id = 'mb-css';"
        " s.textContent = '[data-membership-banner]{min-height:12rem}';"
        " document.head.appendChild(s);"
    )
    page.route(
        "**/static/banner-of-yesterday.js",
        lambda route: route.fulfill(content_type="text/javascript", body=yesterdays),
    )

    def with_it_first(route):
        response = route.fetch()
        body = response.text().replace(
            "</head>", '<script src="/static/banner-of-yesterday.js"></script></head>'
        )
        route.fulfill(response=response, body=body)

    page.route("**/demo/article", with_it_first)
    _seed(page, service, articles={_today(page): 2})
    _read(page, service.url + "/demo/article")
    assert page.locator("style#mb-css").text_content().startswith("[data-membership-banner]{")
    box = page.locator(INLINE)
    box.wait_for(timeout=5_000)
    look = box.evaluate(
        "e => { const s = getComputedStyle(e), c = getComputedStyle(e.querySelector('.mp-cta'));"
        " return [s.backgroundColor, s.paddingLeft, c.backgroundColor, c.color]; }"
    )
    assert look == ["rgb(255, 246, 209)", "20px", "rgb(22, 20, 15)", "rgb(255, 255, 255)"]


def test_no_local_storage_means_no_ask_and_no_error(page, service):
    page.add_init_script(
        "Object.defineProperty(window, 'localStorage', {get() {"
        " throw new DOMException('blocked', 'SecurityError'); }});"
    )
    asked = []
    page.on("request", lambda r: asked.append(r.url) if "/v1/prompt" in r.url else None)
    page.goto(service.url + "/demo/article")
    page.wait_for_timeout(300)
    assert asked == []


def test_a_prerendered_page_asks_nothing_until_it_is_shown(page, service):
    """Headless Chromium does not prerender here, so `document.prerendering` is played by the
    test: true until it fires `prerenderingchange`, as Chrome does on activation."""
    page.add_init_script(
        "window.__prerendering = true;"
        "Object.defineProperty(Document.prototype, 'prerendering',"
        " {get() { return window.__prerendering; }, configurable: true});"
    )
    today = _today(page)
    _seed(page, service, articles={today: 2})
    asked = []
    page.on("request", lambda r: asked.append(r.url) if "/v1/prompt" in r.url else None)
    page.goto(service.url + "/demo/article")
    page.wait_for_timeout(500)
    assert asked == []
    assert _state(page)["articles"] == {today: 2}  # not read yet

    with page.expect_response(is_ask, timeout=10_000):
        page.evaluate(
            "window.__prerendering = false; document.dispatchEvent(new Event('prerenderingchange'))"
        )
    page.locator(INLINE).wait_for(timeout=5_000)
    assert _state(page)["articles"] == {today: 3}


def test_a_long_memory_is_cut_to_fit_the_body_limit(page, service):
    """100 views and 100 dismissals of 64-character campaigns are about 20 KB of JSON; the
    service refuses bodies over 16 KiB, so the widget drops the oldest until the body fits
    (before the fix: a 413 on every page view, and never an ask again)."""
    now = dt.datetime.now(dt.UTC)

    def seen(i: int) -> dict:
        at = (now - dt.timedelta(hours=200 - i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"campaign": f"{i:03d}".ljust(64, "x"), "at": at}

    views = [seen(i) for i in range(100)]  # oldest first, as the widget keeps them
    _seed(page, service, views=views, dismissed=[seen(i) for i in range(100)])
    assert len(json.dumps({"views": views, "dismissed": views})) > 16_384
    with page.expect_response(is_ask, timeout=10_000) as info:
        page.goto(service.url + "/demo/article")
    response = info.value
    assert response.status == 200
    sent = response.request.post_data_buffer
    assert 15_000 < len(sent) <= 16_000
    body = json.loads(sent)
    assert body["views"][-1] == views[-1] and body["views"][0] != views[0]  # the oldest went
    assert len(body["views"]) + len(body["dismissed"]) < 200
