"""The reader's page with the asks on it, in Chromium at a phone's and a laptop's size: the
bottom bar never hides the page nor an inline ask, one member count shows at a time, a closed
ask stays closed, nothing in view moves, and what an article loads from us stays light on the
wire."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import brotli
import pytest

from membership.goals.widget import built, loads
from membership.prompts.tokens import Tokens
from tests.support.widget_browser import (
    is_ask,
    live_campaign,
    module_glob,
    module_url,
    open_holding_the_ask,
    reader_service,
    serve_demo_as,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

VIEWPORTS = [{"width": 375, "height": 812}, {"width": 1280, "height": 900}]
BAR = ".mp-banner"
INLINE = "[data-membership-prompt] .mp-inline"
COUNT_BOX = "[data-membership-banner]"
# The scripts a page showing any one placement loads from us (prompt.js, which fills the count
# box too, and the placement's module if it has one), summed: at most 4 KiB on the wire, their
# bodies and with their headers (docs/benchmarks.md, "Reader page weight").
WIRE_BUDGET = 4_096
# Sums layout-shift entries without recent input, from the very start of the page.
CLS_OBSERVER = """
window.__cls = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) if (!entry.hadRecentInput) window.__cls += entry.value;
}).observe({type: "layout-shift", buffered: true});
"""


def _bar_campaign(cid: str, section: str) -> dict:
    """A bar that says nothing of `after_dismiss_days`: it gets the default."""
    doc = live_campaign(cid, "banner", section, "Keep Kyiv's trams in the news")
    doc["frequency"] = {"per_days": 30, "min_hours_between": 0}
    return doc


LONG_HEADLINE = "Our reporters stayed in Kharkiv through every night of shelling this winter"
CAMPAIGNS = [
    _bar_campaign("bar-ask", "kyiv"),
    _bar_campaign("bar-beside-inline", "both"),
    live_campaign("inline-beside-bar", "inline", "both", "You've read {articles_read} articles"),
    live_campaign("long-inline", "inline", "long", LONG_HEADLINE),
    live_campaign("modal-ask", "modal", "modal", "Before you go"),
    live_campaign(
        "gate-ask",
        "gate",
        "gate",
        "Members read on",
        gate={"dismissible": True, "free_articles": 0},
    ),
]


SECRET = "reader-page-browser-secret-0123456789"


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    env = {
        "SECRET_KEY": SECRET,
        "JOIN_URL": "https://example.org/join",
        "PUBLICATION_NAME": "The Kyiv Independent",
    }
    with reader_service(tmp_path_factory.mktemp("var"), CAMPAIGNS, env) as service:
        yield service


@pytest.fixture(params=VIEWPORTS, ids=lambda v: f"{v['width']}x{v['height']}")
def page(browser, request):
    """A new reader at one viewport size. Page errors fail the test, and so does anything the
    demo page's CSP refuses (each script's style is allowed by its hash)."""
    context = browser.new_context(viewport=request.param)
    context.add_init_script(CLS_OBSERVER)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.viewport = request.param
    yield page
    context.close()
    assert errors == []


def _open(page, url: str) -> dict:
    with page.expect_response(is_ask, timeout=10_000) as info:
        page.goto(url)
    return info.value.json()


def _rect(locator) -> dict:
    return locator.evaluate("e => e.getBoundingClientRect().toJSON()")


def _no_shift(page) -> None:
    """Nothing on the page moved by itself since it opened (the control that the measure is
    not blind is tests/goals/test_widget_browser.py's)."""
    page.wait_for_timeout(300)
    assert page.evaluate("window.__cls") == 0


def _counts_in_view(page) -> int:
    """How many member counts (a ticker or the count box) are on screen."""
    return page.evaluate(
        """() => [...document.querySelectorAll('.mp-t, [data-membership-banner] .mb')]
        .filter(e => {
          const r = e.getBoundingClientRect();
          return e.offsetParent !== null && getComputedStyle(e).visibility === 'visible'
            && r.bottom > 0 && r.top < innerHeight;
        }).length"""
    )


def test_the_bar_is_low_and_the_last_link_clickable_above_it(page, service):
    answer = _open(page, service.url + "/demo/article")
    assert [p["campaign"] for p in answer["prompts"]] == ["bar-ask"]
    bar = page.locator(BAR)
    bar.wait_for(timeout=5_000)
    height = page.viewport["height"]
    rect = _rect(bar)
    assert bar.evaluate("e => e.scrollHeight <= e.clientHeight")  # all of it shown, unscrolled
    assert rect["bottom"] == height
    assert rect["height"] <= 0.15 * height  # 121 px on a 375x812 phone
    _no_shift(page)
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    page.wait_for_timeout(100)
    for below in ("nav.next a", "footer.site"):
        assert _rect(page.locator(below))["bottom"] <= _rect(bar)["top"] + 1, below
    page.locator("nav.next a").click(timeout=2_000)  # would time out under the bar
    page.wait_for_url("**/demo/article?n=2")


def test_the_bar_waits_while_an_inline_ask_is_in_view(page, service):
    url = serve_demo_as(page, service.url, "/test-only/both-article", "both")
    answer = _open(page, url)
    assert sorted(p["placement"] for p in answer["prompts"]) == ["banner", "inline"]
    bar, ask = page.locator(BAR), page.locator(INLINE)
    bar.wait_for(timeout=5_000)
    ask.wait_for(state="attached", timeout=5_000)
    assert bar.is_visible()
    _no_shift(page)
    ask.scroll_into_view_if_needed()
    page.wait_for_timeout(200)
    assert not bar.is_visible()
    assert _counts_in_view(page) == 1
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(200)
    assert bar.is_visible()
    assert _counts_in_view(page) <= 1
    ask.scroll_into_view_if_needed()
    page.wait_for_timeout(200)
    assert not bar.is_visible()
    ask.get_by_role("button", name="Close").click()  # the reader closes the inline ask
    page.wait_for_timeout(200)
    assert bar.is_visible()


def _overlap(a: dict, b: dict) -> bool:
    across = a["left"] < b["right"] and b["left"] < a["right"]
    return across and a["top"] < b["bottom"] and b["top"] < a["bottom"]


def test_the_close_button_stays_clear_of_a_long_headline(page, service):
    """The inline ask's close button sits beside the headline, never on its last words (the
    headline's box, which its text fills to the end on a phone, keeps clear of the button's)."""
    url = serve_demo_as(page, service.url, "/test-only/long-article", "long")
    answer = _open(page, url)
    assert [p["campaign"] for p in answer["prompts"]] == ["long-inline"]
    ask = page.locator(INLINE)
    ask.wait_for(state="attached", timeout=5_000)
    ask.scroll_into_view_if_needed()
    headline, close = ask.locator(".mp-h"), ask.get_by_role("button", name="Close")
    assert headline.inner_text() == LONG_HEADLINE
    assert close.is_visible()
    head_box, close_box = _rect(headline), _rect(close)
    assert head_box["height"] > 0 and close_box["width"] > 0
    assert not _overlap(head_box, close_box), (head_box, close_box)
    # the words reach the end of the box they keep to: the room is the box's, not luck
    words = headline.evaluate(
        "e => { const r = document.createRange(); r.selectNodeContents(e);"
        " return Math.max(...[...r.getClientRects()].map(q => q.right)); }"
    )
    assert words <= head_box["right"] + 0.5 and words < close_box["left"]


def test_a_closed_bar_stays_closed_on_the_next_three_articles(page, service):
    _open(page, service.url + "/demo/article")
    bar = page.locator(BAR)
    bar.wait_for(timeout=5_000)
    bar.get_by_role("button", name="Close").click()
    assert bar.count() == 0
    assert page.locator(".mp-pad").count() == 0  # the room it made goes with it
    for n in (2, 3, 4):
        answer = _open(page, service.url + f"/demo/article?n={n}")
        assert answer["prompts"] == [], n
        page.wait_for_timeout(200)
        assert bar.count() == 0


def test_one_member_count_in_view_the_ticker_waits_by_the_count_box(page, service):
    """The article's own count box (banner.js) and the bar's ticker never show together: the
    ticker is hidden in place (the bar keeps its height) while the box is on screen."""
    _open(page, service.url + "/demo/article")
    bar, box = page.locator(BAR), page.locator(f"{COUNT_BOX}[data-state=ready]")
    bar.wait_for(timeout=5_000)
    box.wait_for(timeout=5_000)
    ticker = bar.locator(".mp-t")
    assert ticker.count() == 1
    height = _rect(bar)["height"]
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(200)
    assert _counts_in_view(page) == 1
    box.scroll_into_view_if_needed()
    page.wait_for_timeout(200)
    assert bar.is_visible() and not ticker.is_visible()
    assert _rect(bar)["height"] == height
    assert _counts_in_view(page) == 1
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    page.wait_for_timeout(200)
    assert _counts_in_view(page) == 1
    _no_shift(page)


# A page showing each placement: (where it is served, its section, what shows the ask); and a
# member's page, where a sign-in link's token arrives (no ask: the member module's page).
PLACEMENT_PAGES = {
    "banner": ("/demo/article", "kyiv", BAR),
    "inline": ("/test-only/long-article", "long", INLINE),
    "modal": ("/test-only/modal-article", "modal", "dialog.mp-over[open]"),
    "gate": ("/test-only/gate-article", "gate", ".mp-cover"),
    "member": ("/demo/article#member_token=", "kyiv", None),
}


def _member_token() -> str:
    tokens = Tokens(SECRET)
    return tokens.encode_member(tokens.member("email:reader@example.org", time.time()))


@pytest.mark.parametrize("placement", PLACEMENT_PAGES)
def test_what_an_article_loads_from_us_is_light_on_the_wire(page, service, placement):
    """For a page showing each placement (and a member's), every request to us for a script, as
    Chromium counts it: prompt.js and the placement's module (or the member module) only, their
    bodies on the wire (Resource Timing's encodedBodySize) within the budget, and with their
    headers (DevTools' encodedDataLength)."""
    session = page.context.new_cdp_session(page)
    session.send("Network.enable")
    wire: dict[str, int] = {}
    urls: dict[str, str] = {}
    codings: dict[str, str] = {}

    def received(event):
        response = event["response"]
        urls[event["requestId"]] = response["url"]
        headers = {name.lower(): value for name, value in response["headers"].items()}
        codings[urlsplit(response["url"]).path] = headers.get("content-encoding", "")

    session.on("Network.responseReceived", received)
    session.on(
        "Network.loadingFinished",
        lambda e: wire.update({e["requestId"]: int(e["encodedDataLength"])}),
    )
    path, section, shown = PLACEMENT_PAGES[placement]
    url = (
        service.url + path if section == "kyiv" else serve_demo_as(page, service.url, path, section)
    )
    member = placement == "member"
    answer = _open(page, url + _member_token() if member else url)
    assert [p["placement"] for p in answer["prompts"]] == ([] if member else [placement])
    if shown:
        page.locator(shown).wait_for(state="attached", timeout=5_000)
    page.wait_for_timeout(300)
    sizes = {urlsplit(urls[r]).path: n for r, n in wire.items() if r in urls}
    scripts = {u: n for u, n in sizes.items() if u.startswith("/static/")}
    sources = loads(None, member=True) if member else loads(placement)
    expected = {f"/static/{source.name}": source for source in sources}
    assert sorted(scripts) == sorted(expected)  # prompt.js fills the count box too
    page.locator(f"{COUNT_BOX}[data-state=ready] .mb").wait_for(timeout=5_000)
    bodies = page.evaluate(
        """() => Object.fromEntries(performance.getEntriesByType('resource')
        .filter(e => e.name.includes('/static/'))
        .map(e => [new URL(e.name).pathname, e.encodedBodySize]))"""
    )
    assert sorted(bodies) == sorted(scripts)
    # brotli on the wire (Chromium accepts it): each body is the built file's, compressed
    for path, source in expected.items():
        assert codings[path] == "br"
        body = built(source).read_bytes()
        assert bodies[path] == len(brotli.compress(body, mode=brotli.MODE_TEXT, quality=11))
    print(f"\n{placement}: bytes on the wire (headers and body):", sizes)
    print(f"{placement}: script bodies, brotli:", bodies, "sum", sum(bodies.values()))
    assert sum(bodies.values()) <= WIRE_BUDGET
    assert sum(scripts.values()) <= WIRE_BUDGET  # with their headers too


def test_a_placement_whose_module_fails_to_load_shows_nothing(page, service):
    """The bar's module refused (a network error): no bar, no spacer, no page error (the
    fixture's check), and the rest of the page as before: the count box is filled."""
    page.route(module_glob("banner"), lambda route: route.abort("connectionrefused"))
    answer = _open(page, service.url + "/demo/article")
    assert [p["placement"] for p in answer["prompts"]] == ["banner"]
    page.locator(f"{COUNT_BOX}[data-state=ready] .mb").wait_for(timeout=5_000)
    page.wait_for_timeout(500)
    assert page.locator(BAR).count() == 0 and page.locator(".mp-pad").count() == 0
    _no_shift(page)
    page.unroute(module_glob("banner"))  # the control: loaded, it draws the bar
    _open(page, service.url + "/demo/article?n=2")
    page.locator(BAR).wait_for(timeout=5_000)


def test_a_placement_whose_module_comes_late_shows_nothing(page, service):
    """A module that runs more than 2 s after the answer named it is a late answer: no bar,
    no spacer, no view reported, no page error (the fixture's check); the count box filled.
    The control: the same module on time draws the bar."""
    events: list[str] = []
    page.on("request", lambda r: events.append(r.url) if "/v1/prompt/events" in r.url else None)

    def late(route):
        time.sleep(2.5)
        route.continue_()

    page.route(module_glob("banner"), late)
    answer = _open(page, service.url + "/demo/article")
    assert [p["placement"] for p in answer["prompts"]] == ["banner"]
    page.locator(f"{COUNT_BOX}[data-state=ready] .mb").wait_for(timeout=5_000)
    loaded = f"performance.getEntriesByName('{module_url(service.url, 'banner')}').length"
    deadline = time.monotonic() + 10
    while not page.evaluate(loaded):  # loaded (and run at once)
        assert time.monotonic() < deadline, "the module was never loaded"
        page.wait_for_timeout(50)
    page.wait_for_timeout(300)
    assert page.locator(BAR).count() == 0 and page.locator(".mp-pad").count() == 0
    assert events == []
    _no_shift(page)
    page.unroute(module_glob("banner"))
    _open(page, service.url + "/demo/article?n=2")
    page.locator(BAR).wait_for(timeout=5_000)


def test_a_bar_hidden_by_an_inline_ask_in_view_is_not_reported_seen(page, service):
    """A page that reserves the slot's space gets the inline ask even in view; the bar, drawn
    after it, is hidden from the start, so its view is reported only once it shows (here: once
    the reader closes the inline ask), never for the frame before it was hidden."""
    views: list[str] = []
    page.on(
        "request",
        lambda r: (
            views.extend(e["token"] for e in r.post_data_json["events"] if e["type"] == "view")
            if r.url.endswith("/v1/prompt/events")
            else None
        ),
    )
    page.set_viewport_size({"width": page.viewport["width"], "height": 6_000})  # all in view
    url = serve_demo_as(page, service.url, "/test-only/both-article", "both")
    held = open_holding_the_ask(page, url)
    page.evaluate("document.querySelector('[data-membership-prompt]').style.minHeight = '12rem'")
    with page.expect_response(is_ask) as info:
        held.continue_()
    tokens = {p["placement"]: p["token"] for p in info.value.json()["prompts"]}
    assert sorted(tokens) == ["banner", "inline"]
    bar, ask = page.locator(BAR), page.locator(INLINE)
    bar.wait_for(state="attached", timeout=5_000)
    ask.wait_for(timeout=5_000)
    page.wait_for_timeout(500)
    assert not bar.is_visible()
    assert views == [tokens["inline"]]
    ask.get_by_role("button", name="Close").click()  # the control: the bar shows, and is seen
    bar.wait_for(timeout=5_000)
    page.wait_for_timeout(300)
    assert views == [tokens["inline"], tokens["banner"]]
