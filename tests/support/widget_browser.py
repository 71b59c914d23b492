"""The prompt widget in Chromium: campaigns for the demo article and the ask it sends."""

from __future__ import annotations

import contextlib
import time

from membership.prompts import campaigns, store
from membership.store import Keys
from tests.support.member_count import seed_banner
from tests.support.processes import service_on_own_redis


@contextlib.contextmanager
def reader_service(data_dir, campaign_docs: list[dict], env: dict[str, str]):
    """`membership serve` with the settings `env` on a Redis of its own that holds 25,012
    members, a goal of 30,000 and the live `campaign_docs`: what a reader's page meets."""

    def seed(client):
        keys = Keys()
        seed_banner(client, keys, {"target": 30000})
        store.apply(client, keys, [campaigns.parse(c) for c in campaign_docs], actor="test")

    with service_on_own_redis(data_dir, env, seed=seed) as service:
        yield service


def live_campaign(cid: str, placement: str, section: str, headline: str, **extra) -> dict:
    """A live campaign for non-members on one section, no holdout, hidden 7 days by a
    dismissal; `extra` replaces top-level fields or (`articles_min`) the articles filter."""
    articles_min = extra.pop("articles_min", None)
    doc = {
        "id": cid,
        "name": cid,
        "status": "live",
        "priority": 10,
        "placement": placement,
        "locales": None,
        "audience": {
            "readers": "non-members",
            "sections": {"include": [section], "exclude": []},
            "articles_read": (
                {"min": articles_min, "max": None, "days": 30} if articles_min else None
            ),
        },
        "frequency": {"per_days": 30, "min_hours_between": 0, "after_dismiss_days": 7},
        "control_share": 0.0,
        "variants": [
            {
                "id": "a",
                "weight": 1,
                "cta_url": None,
                "copy": {
                    "en": {"headline": headline, "body": "Join {publication}.", "cta": "Join"},
                    "uk": {"headline": headline, "body": "Долучайтеся.", "cta": "Долучитися"},
                },
            }
        ],
    }
    doc.update(extra)
    return doc


# The query prompt.js asks for its modules with (the kit's version: its module()).
MODULE_QUERY = "?2"


def module_url(base: str, name: str) -> str:
    """The URL prompt.js loads its module `name` (banner, inline, member, checkout...) from."""
    return f"{base}/static/prompt-{name}.js{MODULE_QUERY}"


def module_glob(name: str) -> str:
    """A Playwright route pattern for that URL, whatever its query."""
    return f"**/static/prompt-{name}.js*"


def is_ask(response) -> bool:
    """A Playwright response to the widget's ask (POST /v1/prompt)."""
    return response.url.endswith("/v1/prompt") and response.request.method == "POST"


def serve_demo_as(page, base: str, path: str, section: str) -> str:
    """The demo article of the service at `base`, with its real headers (CSP included), under
    `path` and with another section, so a test can reach a campaign of its own."""
    url = base + path

    def handle(route):
        response = route.fetch(url=base + "/demo/article")
        body = response.text().replace('data-section="kyiv"', f'data-section="{section}"')
        route.fulfill(response=response, body=body)

    page.route(url, handle)
    return url


def open_holding_the_ask(page, url: str):
    """Open `url` with the widget's ask (POST /v1/prompt) held back: returns the held route,
    for the test to set the page up and then `continue_()` it."""
    held: list = []
    page.route("**/v1/prompt", lambda route: held.append(route))
    page.goto(url)
    deadline = time.monotonic() + 10
    while not held:
        assert time.monotonic() < deadline, "the widget never asked"
        page.wait_for_timeout(20)
    return held[0]


@contextlib.contextmanager
def new_reader(browser, viewport: dict):
    """A page in a fresh context (empty localStorage) at `viewport`; a page error fails the
    test when the page is done with."""
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    page.unroute_all(behavior="ignoreErrors")  # a failed test may leave a request held
    context.close()
    assert errors == []
