"""The widget in a real browser: headless Debian Chromium via Playwright, real `membership serve`.

Screenshots land in test-artifacts/ (gitignored) for a human to look at.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from membership.goals import rules as goal_rules
from membership.store import Keys
from tests.support.member_count import seed_banner
from tests.support.processes import REPO, RedisServer, ServiceProcess, service_on_own_redis

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = REPO / "test-artifacts"
JOIN = "https://kyivindependent.com/membership/"
NBSP = "\u00a0"
BOX = "[data-membership-banner]"
DESKTOP = {"width": 1280, "height": 900}
MOBILE = {"width": 375, "height": 740}

# Sums layout-shift entries without recent input, from the very start of the page.
CLS_OBSERVER = """
window.__cls = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) if (!entry.hadRecentInput) window.__cls += entry.value;
}).observe({type: "layout-shift", buffered: true});
"""


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    def seed(client):
        keys = Keys()
        seed_banner(client, keys, {"target": 30000, "name": "Winter"}, reached=25000)

    env = {"JOIN_URL": JOIN, "PUBLICATION_NAME": "The Kyiv Independent"}
    with service_on_own_redis(tmp_path_factory.mktemp("var"), env, seed=seed) as service:
        yield service


@pytest.fixture(scope="module")
def service_never_saw_redis(tmp_path_factory):
    """A service whose Redis died before it ever read a banner: the API answers 503."""
    redis = RedisServer().start()
    redis.kill()
    service = ServiceProcess(
        {"REDIS_URL": redis.url, "MEMBERSHIP_DATA_DIR": str(tmp_path_factory.mktemp("var"))}
    ).start()
    yield service
    service.stop()
    redis.stop()  # its data dir


def _page(browser, viewport=DESKTOP):
    page = browser.new_page(viewport=viewport)
    page.add_init_script(CLS_OBSERVER)
    return page


def _delay_banner(page, seconds: float) -> None:
    """Let the article paint first, so a widget that shifts the page would be caught."""

    def handle(route):
        time.sleep(seconds)
        route.continue_()

    page.route("**/v1/banner*", handle)


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("article").screenshot(path=str(ARTIFACTS / f"{name}.png"))


def _settle(page) -> float:
    page.wait_for_timeout(300)
    return page.evaluate("window.__cls")


def _reserved_and_fits(page) -> None:
    box = page.locator(BOX)
    height = box.evaluate("e => e.getBoundingClientRect().height")
    min_height = box.evaluate("e => parseFloat(getComputedStyle(e).minHeight)")
    assert height == pytest.approx(min_height, abs=0.5), "the banner outgrew its reserved space"


@pytest.mark.parametrize("viewport", [DESKTOP, MOBILE], ids=["desktop", "mobile"])
def test_english_article_shows_count_and_progress_without_layout_shift(browser, service, viewport):
    page = _page(browser, viewport)
    _delay_banner(page, 0.6)
    page.goto(service.url + "/demo/article")
    page.wait_for_selector(f"{BOX}[data-state=ready]", timeout=10_000)
    box = page.locator(BOX)
    assert box.locator(".mb-h").inner_text() == "25,012 members on board"
    assert box.locator(".mb-m").inner_text() == "Help us reach 30,000 members"
    bar = box.get_by_role("progressbar")
    assert bar.get_attribute("aria-valuenow") == "25012"
    assert bar.get_attribute("aria-valuemin") == "0"
    assert bar.get_attribute("aria-valuemax") == "30000"
    assert bar.get_attribute("aria-valuetext") == "25,012 / 30,000"
    fill = box.locator(".mb-fill").evaluate("e => e.style.transform")
    assert fill == "scaleX(0.8337)"
    cta = box.get_by_role("link", name="Become a member")
    assert cta.get_attribute("href") == JOIN
    assert _settle(page) == 0
    _reserved_and_fits(page)
    _shot(page, f"banner-en-{viewport['width']}")
    page.close()


@pytest.mark.parametrize("viewport", [DESKTOP, MOBILE], ids=["desktop", "mobile"])
def test_ukrainian_article(browser, service, viewport):
    page = _page(browser, viewport)
    _delay_banner(page, 0.6)
    page.goto(service.url + "/demo/article?locale=uk")
    page.wait_for_selector(f"{BOX}[data-state=ready]", timeout=10_000)
    box = page.locator(BOX)
    assert box.locator(".mb-h").text_content() == f"25{NBSP}012 учасників спільноти"
    assert box.locator(".mb-m").text_content() == (
        f"Допоможіть нам досягти мети — 30{NBSP}000 учасників"
    )
    assert box.get_by_role("progressbar").get_attribute("aria-valuenow") == "25012"
    assert box.get_by_role("link", name="Стати учасником").is_visible()
    assert page.evaluate("document.documentElement.lang") == "uk"
    assert _settle(page) == 0
    _reserved_and_fits(page)
    _shot(page, f"banner-uk-{viewport['width']}")
    page.close()


def _assert_nothing_shown(page) -> None:
    page.wait_for_selector(f"{BOX}[data-state=error]", timeout=10_000)
    box = page.locator(BOX)
    assert box.evaluate("e => e.childElementCount") == 0
    assert box.inner_text() == ""
    text = page.locator("body").inner_text()
    assert "0" not in text
    for word in ("undefined", "NaN", "null"):
        assert word not in text
    assert _settle(page) == 0
    _reserved_and_fits(page)  # the empty space stays: nothing below moves


def test_api_down_for_real_shows_nothing(browser, service_never_saw_redis):
    page = _page(browser)
    response = page.request.get(service_never_saw_redis.url + "/v1/banner")
    assert response.status == 503
    page.goto(service_never_saw_redis.url + "/demo/article")
    _assert_nothing_shown(page)
    _shot(page, "banner-api-down")
    page.close()


@pytest.mark.parametrize("failure", ["503", "network", "garbage", "zero-fields", "zero-members"])
def test_failures_show_nothing(browser, service, failure):
    page = _page(browser)

    def handle(route):
        if failure == "503":
            route.fulfill(status=503, content_type="application/json", body='{"error":{}}')
        elif failure == "network":
            route.abort("connectionrefused")
        elif failure == "garbage":
            route.fulfill(status=200, content_type="application/json", body="<html>oops")
        elif failure == "zero-fields":  # a 200 that lacks what the widget needs
            route.fulfill(status=200, content_type="application/json", body='{"count":0}')
        else:  # a complete banner whose count is 0: never print "0 members on board"
            body = {
                "count": 0, "count_display": "0", "locale": "en",
                "headline": "0 members on board", "message": "Join us",
                "cta": {"label": "Become a member", "url": "https://example.org/join"},
                "goal": None, "milestone": None, "stale": False, "updated_at": None,
            }  # fmt: skip
            route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    page.route("**/v1/banner*", handle)
    page.goto(service.url + "/demo/article")
    _assert_nothing_shown(page)
    page.close()


def test_a_response_slower_than_two_seconds_is_dropped(browser, service):
    page = _page(browser)
    _delay_banner(page, 2.6)
    started = time.monotonic()
    page.goto(service.url + "/demo/article", wait_until="domcontentloaded")
    page.wait_for_selector(f"{BOX}[data-state=error]", timeout=10_000)
    assert 1.8 < time.monotonic() - started < 10
    page.wait_for_timeout(800)  # the late response has arrived by now and is ignored
    assert page.locator(BOX).evaluate("e => e.childElementCount") == 0
    assert page.evaluate("window.__cls") == 0
    page.close()


def test_the_layout_shift_measurement_is_not_blind(browser, service):
    """A control: pushing the article down after paint does register as a shift."""
    page = _page(browser)
    page.goto(service.url + "/demo/article")
    page.wait_for_selector(f"{BOX}[data-state=ready]", timeout=10_000)
    page.wait_for_timeout(200)
    page.evaluate(
        "document.querySelector('main').prepend(Object.assign(document.createElement('div'),"
        " {style: 'height:200px'}))"
    )
    page.wait_for_timeout(300)
    assert page.evaluate("window.__cls") > 0
    page.close()


def test_widget_fetches_from_its_own_origin_with_a_locale(browser, service):
    page = _page(browser)
    with page.expect_request(re.compile(r".*/v1/banner\?locale=uk$")) as request:
        page.goto(service.url + "/demo/article?locale=uk")
    assert request.value.url == service.url + "/v1/banner?locale=uk"
    page.close()


@pytest.mark.parametrize(
    ("html_lang", "data_locale", "asked"),
    [
        ("uk-UA", None, "uk"),
        ("en-US", None, "en"),
        ("fr-CA", None, "en"),
        (None, None, "en"),
        ("en-GB", "uk-UA", "uk"),  # the box's own data-locale wins over the page's
        ("uk", "pt-BR", "en"),
        ("uk", "<bad>", "en"),
    ],
)
def test_the_page_language_is_reduced_to_one_we_serve(
    browser, service, html_lang, data_locale, asked
):
    """A CDN then holds one banner per served language, not one per browser language."""
    lang = f' lang="{html_lang}"' if html_lang else ""
    box = f' data-locale="{data_locale}"' if data_locale else ""
    html = (
        f"<!doctype html><html{lang}><head><title>news</title></head><body>"
        f"<div data-membership-banner{box}></div>"
        f'<script src="{service.url}/static/banner.js" async></script></body></html>'
    )
    page = _page(browser)
    # An article page on the service's own origin (Chromium keeps a public page from loading
    # a script from loopback), answered by the browser itself: the server never sees it.
    article = service.url + "/test-only/article"
    page.route(
        article, lambda route: route.fulfill(status=200, content_type="text/html", body=html)
    )
    with page.expect_request(re.compile(r".*/v1/banner\b.*")) as request:
        page.goto(article)
    assert request.value.url == f"{service.url}/v1/banner?locale={asked}"
    page.close()


@pytest.mark.parametrize("locale", ["en", "uk"])
@pytest.mark.parametrize("state", ["thanks", "invite"])
def test_the_longest_copy_fits_the_reserved_space_on_a_phone(browser, service, locale, state):
    """The thank-you and the no-goal invitation are the longest texts; they must fit too."""
    import json

    from membership.goals import banner
    from membership.goals.cache import Snapshot

    reached = (goal_rules.Goal(id=1, target=25000, reached_at="2026-11-20T10:00:00Z"),)
    snapshot = Snapshot(25012, "2026-11-25T19:00:00Z", reached if state == "thanks" else ())
    body = banner.view(snapshot, locale, publication="The Kyiv Independent", join_url=JOIN)
    page = _page(browser, MOBILE)
    page.route(
        "**/v1/banner*",
        lambda route: route.fulfill(
            status=200, content_type="application/json", body=json.dumps(body)
        ),
    )
    page.goto(service.url + f"/demo/article?locale={locale}")
    page.wait_for_selector(f"{BOX}[data-state=ready]", timeout=10_000)
    assert page.locator(f"{BOX} .mb-m").text_content() == body["message"]
    assert page.locator(f"{BOX} [role=progressbar]").count() == 0
    assert _settle(page) == 0
    _reserved_and_fits(page)
    _shot(page, f"banner-{state}-{locale}-375")
    page.close()


@pytest.mark.parametrize(
    "scripts",
    [("banner.js",), ("prompt.js",), ("banner.js", "prompt.js"), ("prompt.js", "banner.js")],
)
def test_either_script_fills_each_box_once(browser, service, scripts):
    """banner.js alone (a page that wants only the count), prompt.js alone (an article page:
    it fills the boxes too), or both, as a page embedded them before: each box is filled
    once, from one request per language, with one copy of the boxes' style."""
    tags = "".join(f'<script src="{service.url}/static/{name}" async></script>' for name in scripts)
    html = (
        '<!doctype html><html lang="en"><head><title>news</title></head><body><article>'
        '<div data-membership-banner></div><div data-membership-banner data-locale="uk"></div>'
        f'<div data-membership-banner data-locale="uk"></div></article>{tags}</body></html>'
    )
    page = _page(browser)
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/v1/banner" in r.url else None)
    article = service.url + "/test-only/both-scripts"
    page.route(
        article, lambda route: route.fulfill(status=200, content_type="text/html", body=html)
    )
    page.goto(article)
    page.wait_for_selector(f"{BOX}:nth-child(3)[data-state=ready]", timeout=10_000)
    page.wait_for_timeout(300)
    boxes = page.locator(BOX)
    assert [boxes.nth(i).locator(".mb").count() for i in range(3)] == [1, 1, 1]
    assert boxes.nth(0).locator(".mb-h").inner_text() == "25,012 members on board"
    assert boxes.nth(2).locator(".mb-h").text_content() == f"25{NBSP}012 учасників спільноти"
    assert page.locator("#mb-look").count() == 1
    assert sorted(asked) == [f"{service.url}/v1/banner?locale={x}" for x in ("en", "uk")]
    page.close()
