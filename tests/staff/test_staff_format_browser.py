"""Money and times on the staff pages in Chromium: amounts formatted in their currency, times
in the newsroom's zone (TIMEZONE) until the staff member picks their own on /staff/me, the
exact time on hover."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from membership.core.runtime import runtime
from membership.ledger import ledger_for
from membership.prompts import campaigns, store
from membership.stripe.apply import apply_event
from tests.support import stripe_payloads as sp
from tests.support.ledger_helpers import join
from tests.support.prompt_helpers import EXAMPLE
from tests.support.staff import FAST, with_role_accounts
from tests.support.staff_browser import fits, open_page, url

pytestmark = pytest.mark.browser

ISO_CREATED = "2026-05-28T20:26:40Z"  # sp.T0, when Stripe made the test events


@pytest.fixture
def kyiv_app(make_app):
    app = make_app(timezone="Europe/Kyiv", staff_hasher=FAST, staff_insecure_cookies=True)
    return with_role_accounts(app)


def _seed(app) -> str:
    """A member at 12.50 EUR a month, gifts in JPY and UAH, a campaign from 1 Nov 00:00 UTC;
    the id of the JPY gift's event."""
    rt = runtime(app)
    ledger = ledger_for(rt)
    join(ledger, "cus_1", "ann@example.org", "Ann", amount=1250)
    gift = sp.checkout_payment("pi_jpy", 500, currency="jpy")
    assert apply_event(ledger.writer, gift).outcome == "applied"
    other = sp.checkout_payment("pi_uah", 12345, currency="uah", email="olena@example.org")
    assert apply_event(ledger.writer, other).outcome == "applied"
    store.apply(rt.redis, rt.keys, [campaigns.parse(EXAMPLE)], actor="test")
    return gift["id"]


def _time(page, selector: str, shown: str, zone: str, iso: str) -> None:
    """The <time> at `selector` shows `shown`, names `zone` on hover and keeps ISO UTC."""
    element = page.locator(selector).first
    expect(element).to_have_text(shown)
    expect(element).to_have_attribute("datetime", iso)
    expect(element).to_have_attribute("title", f"{shown}:40 {zone}")


def test_money_and_times_follow_the_currency_and_the_viewer_zone(kyiv_app, browser):
    event_id = _seed(kyiv_app)
    page = open_page(kyiv_app, browser, "viewer")

    page.goto(url("/staff/"))
    expect(page.locator("#mrr")).to_contain_text("€12.50")
    contributions = page.locator("#contributions tbody")
    expect(contributions).to_contain_text("¥500")  # no minor unit: not ¥5.00
    expect(contributions).to_contain_text("UAH123.45")
    expect(page.locator("main")).not_to_contain_text("1250 eur")
    fits(page)

    # The newsroom's zone: Kyiv is UTC+3 in May, UTC+2 in November.
    page.goto(url(f"/staff/webhooks/events/{event_id}"))
    _time(page, "dl.facts time", "28 May 2026, 23:26", "Europe/Kyiv", ISO_CREATED)
    expect(page.locator("#event-detail")).to_have_text("contribution pi_jpy: net ¥500")
    page.goto(url("/staff/campaigns"))
    expect(page.locator("td.dates time").first).to_have_text("1 Nov 2026, 02:00")

    # The viewer's own zone.
    page.goto(url("/staff/me"))
    page.get_by_role("combobox", name="Time zone").select_option("America/New_York")
    page.get_by_role("button", name="Save time zone").click()
    expect(page.locator("p.notice")).to_contain_text("Time zone saved")
    expect(page.get_by_role("combobox", name="Time zone")).to_have_value("America/New_York")
    expect(page.locator("table time").first).to_have_attribute(
        "title", re.compile(r"America/New_York$")
    )

    page.goto(url(f"/staff/webhooks/events/{event_id}"))
    _time(page, "dl.facts time", "28 May 2026, 16:26", "America/New_York", ISO_CREATED)
    page.goto(url("/staff/campaigns"))
    expect(page.locator("td.dates time").first).to_have_text("31 Oct 2026, 20:00")
    page.goto(url("/staff/webhooks"))
    received = page.locator("#events time").first
    expect(page.locator("#events")).to_contain_text("contribution pi_uah: net UAH123.45")
    expect(received).to_have_attribute("title", re.compile(r" America/New_York$"))
    fits(page)
    assert page.console_errors == []
    page.close()


def test_another_staff_member_keeps_the_newsroom_zone(kyiv_app, browser):
    event_id = _seed(kyiv_app)
    mine = open_page(kyiv_app, browser, "editor", width=375)
    mine.goto(url("/staff/me"))
    mine.get_by_role("combobox", name="Time zone").select_option("Asia/Tokyo")
    mine.get_by_role("button", name="Save time zone").click()
    expect(mine.locator("p.notice")).to_contain_text("Time zone saved")
    mine.goto(url(f"/staff/webhooks/events/{event_id}"))
    _time(mine, "dl.facts time", "29 May 2026, 05:26", "Asia/Tokyo", ISO_CREATED)
    mine.close()

    theirs = open_page(kyiv_app, browser, "viewer", width=375)
    theirs.goto(url(f"/staff/webhooks/events/{event_id}"))
    _time(theirs, "dl.facts time", "28 May 2026, 23:26", "Europe/Kyiv", ISO_CREATED)
    fits(theirs)
    theirs.close()
