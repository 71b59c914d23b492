"""The Members page's list (/staff/members) and its JSON (GET /staff/api/members): newest
first, filters and sorts from the query string, bad values refused by their label, and
the same list in Chromium at 1280 and 375 px."""

from __future__ import annotations

import csv
import io
import re

import pytest
from playwright.sync_api import expect

from membership.core.runtime import runtime
from membership.ledger import ledger_for
from membership.stripe.apply import apply_event
from tests.support import stripe_payloads as sp
from tests.support.ledger_helpers import add_offline, join
from tests.support.staff import signed_in
from tests.support.staff_browser import WIDTHS, fits, open_page, url

DAY = 86_400
NEWEST_FIRST = [
    "offline@example.org",  # added today
    "cus_nomail",  # no email, no name
    "dmytro@example.org",
    "bohdan@example.org",
    "anna@example.org",
]


@pytest.fixture
def world(app):
    """Anna (monthly), Bohdan (yearly, past due), Dmytro (cancelled), a Stripe customer
    without an email or a name, and an offline member."""
    ledger = ledger_for(runtime(app))
    join(ledger, "cus_anna", "anna@example.org", "Anna Kovalenko", at=sp.T0)
    join(ledger, "cus_bohd", "bohdan@example.org", "Bohdan Ivanenko", at=sp.T0 + DAY)
    late = sp.subscription("sub_bohd", "cus_bohd", "past_due", start=sp.T0 + DAY)
    assert apply_event(ledger.writer, sp.subscription_event(late, created=sp.T0 + 9 * DAY))
    join(ledger, "cus_dmyt", "dmytro@example.org", "Dmytro Shevchuk", at=sp.T0 + 2 * DAY)
    ended = sp.subscription("sub_dmyt", "cus_dmyt", "canceled", start=sp.T0 + 2 * DAY)
    assert apply_event(ledger.writer, sp.subscription_event(ended, created=sp.T0 + 9 * DAY))
    join(ledger, "cus_nomail", None, None, at=sp.T0 + 3 * DAY)
    add_offline(ledger, "offline@example.org", "bank transfer", name="Zenon Offline")
    return ledger


def listed(html: str) -> list[str]:
    """What the list's first column shows, in order (the email, else the customer id)."""
    table = re.search(r'<table id="results">(.*?)</table>', html, re.S)
    if table is None:
        return []
    return re.findall(r'<td><a href="/staff/members/[^"]+">([^<]+)</a></td>', table.group(1))


def test_the_page_opens_on_the_members_newest_first(app, world):
    client, _ = signed_in(app, "viewer")
    html = client.get("/staff/members").get_data(as_text=True)
    assert listed(html) == NEWEST_FIRST
    assert 'aria-sort="descending"' in html and "newest first" in html
    assert '<p class="lead" id="count">4 counted now</p>' in html
    anna = re.search(r'<td><a href="/staff/members/cus_anna">.*?</tr>', html, re.S).group(0)
    assert "<td>Stripe</td>" in anna  # the source as the filter names it
    assert "<td>€5.00</td>" in anna  # Babel's money, and when they joined in the viewer's zone
    assert '<time datetime="2026-05-28T20:26:40Z" title="28 May 2026, 20:26:40 UTC">' in anna
    api = client.get("/staff/api/members").get_json()
    assert [m["email"] or m["customer"] for m in api["members"]] == NEWEST_FIRST
    assert (
        api["cursor"] is None and api["members"][1]["joined"] == "2026-05-31T20:26:40Z"
    )  # T0 + 3 days


A, B, D = "anna@example.org", "bohdan@example.org", "dmytro@example.org"
OFF, N = "offline@example.org", "cus_nomail"


FILTERED = [
    ({"current": "false"}, [D]),
    ({"current": "true", "source": "stripe"}, [N, B, A]),
    ({"source": "offline"}, [OFF]),
    ({"status": "past_due"}, [B]),
    ({"plan": "offline"}, [OFF]),
    ({"joined_from": "2026-05-29", "joined_to": "2026-05-30"}, [D, B]),
    ({"sort": "joined", "order": "asc"}, [A, B, D, N, OFF]),
    ({"sort": "name"}, [A, B, D, OFF, N]),  # Zenon Offline; no name last
    ({"sort": "email", "order": "desc"}, [N, OFF, D, B, A]),  # no email: after every email
    ({"sort": "name", "source": "stripe", "current": "true"}, [A, B, N]),
    ({"q": "cus_no"}, [N]),
    ({"q": "o", "source": "offline"}, [OFF]),  # the search, filtered
]


def test_filters_and_sorts_on_the_page_and_in_json(app, world, subtests):
    """Each query a subtest: reads only, so they share one app, its world and a session."""
    client, _ = signed_in(app, "viewer")
    for query, expected in FILTERED:
        with subtests.test(query=query):
            page = client.get("/staff/members", query_string=query)
            assert page.status_code == 200 and listed(page.get_data(as_text=True)) == expected
            api = client.get("/staff/api/members", query_string=query).get_json()
            assert [m["email"] or m["customer"] for m in api["members"]] == expected


def test_pages_of_the_list_by_link_and_cursor(app, world):
    client, _ = signed_in(app, "viewer")
    html = client.get("/staff/members?limit=2&sort=name").get_data(as_text=True)
    assert listed(html) == ["anna@example.org", "bohdan@example.org"]
    assert 'aria-sort="ascending"' in html
    seen = listed(html)
    while 'rel="next"' in html:
        more = re.search(r'href="([^"]+)" rel="next"', html).group(1).replace("&amp;", "&")
        assert "sort=name" in more and "limit=2" in more
        html = client.get(more).get_data(as_text=True)
        seen += listed(html)
        assert "First page" in html
    assert seen == [
        "anna@example.org", "bohdan@example.org", "dmytro@example.org", "offline@example.org",
        "cus_nomail",
    ]  # fmt: skip
    # The column header sorts, and the other way round once sorted by it
    first = client.get("/staff/members").get_data(as_text=True)
    name = re.search(r'<a href="([^"]+)" class="sort">Name', first).group(1).replace("&amp;", "&")
    assert "sort=name" in name and "order=asc" in name
    joined = re.search(r'<a href="([^"]+)" class="sort">Joined', first).group(1)
    assert "order=asc" in joined


def test_the_list_shows_50_a_page_and_the_export_keeps_a_member_without_an_email(app, world):
    """Without a limit the list (page and JSON) holds 50 members; the CSV export's row of a
    Stripe member without an email carries their customer id."""
    for n in range(50):
        add_offline(world, f"more{n:02d}@example.org", "comp")
    client, _ = signed_in(app, "viewer")
    html = client.get("/staff/members").get_data(as_text=True)
    first = listed(html)
    assert len(first) == 50
    more = re.search(r'href="([^"]+)" rel="next"', html).group(1).replace("&amp;", "&")
    rest = listed(client.get(more).get_data(as_text=True))
    offline = {f"more{n:02d}@example.org" for n in range(50)} | {OFF}  # all added this second
    assert set(first + rest[:1]) == offline and rest[1:] == NEWEST_FIRST[1:]  # Stripe's older
    api = client.get("/staff/api/members").get_json()
    assert len(api["members"]) == 50 and api["cursor"]
    export = client.get("/staff/members/export.csv").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(export)))
    assert rows[0][0] == "email" and rows[0][-1] == "customer"
    (nomail,) = [row for row in rows[1:] if row[-1] == "cus_nomail"]
    assert nomail[:4] == ["", "", "stripe", "active"]
    assert all(row[0] or row[-1] for row in rows[1:])  # no anonymous row


BAD_VALUES = [
    ({"status": "gone"}, "status", "Status: one of incomplete, "),
    ({"current": "maybe"}, "current", "Counted: one of true, false"),
    ({"source": "paypal"}, "source", "Source: one of stripe, offline"),
    ({"joined_from": "7 Dec 2026"}, "joined_from", "Joined from: a date as YYYY-MM-DD"),
    ({"joined_to": "2026-02-30"}, "joined_to", "Joined to: a date as YYYY-MM-DD"),
    (
        {"joined_from": "2026-06-02", "joined_to": "2026-06-01"},
        "joined_to",
        "Joined to: on or after Joined from (2026-06-02)",
    ),
    ({"plan": "x\x07"}, "plan", "Plan: at most 200 characters"),
    ({"sort": "age"}, "sort", "Sort by: one of joined, name, email"),
    ({"order": "up"}, "order", "Order: one of desc, asc"),
    ({"limit": "101"}, "limit", "Per page: a whole number from 1 to 100"),
    ({"q": "a" * 255}, "q", "Search: at most 254 characters"),
]


def test_bad_values_are_400_naming_the_field_by_its_label(app, world, subtests):
    client, _ = signed_in(app, "viewer")
    for query, field, message in BAD_VALUES:
        with subtests.test(query=repr(query)[:60]):
            api = client.get("/staff/api/members", query_string=query)
            error = api.get_json()["error"]
            assert api.status_code == 400 and error["field"] == field
            assert error["message"].startswith(message)
            page = client.get("/staff/members", query_string=query)
            html = page.get_data(as_text=True)
            assert page.status_code == 400 and message in html.replace("&#39;", "'")
            prefix = "search" if field == "q" else "list"
            assert f'id="{prefix}-{field}-error"' in html
            if field.startswith("joined"):  # the form shows what was typed, marked
                typed = query[field].replace("'", "&#39;")
                assert f'name="{field}" type="date" value="{typed}" aria-describedby' in html


def test_a_cursor_of_another_sort_is_refused(app, world):
    client, _ = signed_in(app, "viewer")
    cursor = client.get("/staff/api/members?limit=1").get_json()["cursor"]
    api = client.get("/staff/api/members", query_string={"sort": "email", "cursor": cursor})
    assert api.status_code == 400 and api.get_json()["error"]["field"] == "cursor"
    ok = client.get("/staff/api/members", query_string={"cursor": cursor, "limit": 1})
    assert [m["customer"] for m in ok.get_json()["members"]] == ["cus_nomail"]


@pytest.mark.browser
@pytest.mark.parametrize("width", WIDTHS)
def test_the_list_with_its_filters_and_sorting_in_chromium(app, world, browser, width):
    page = open_page(app, browser, "viewer", width=width)
    page.goto(url("/staff/members"))
    rows = page.locator("#results tbody tr td:first-child")
    expect(rows).to_have_text(NEWEST_FIRST)
    fits(page)

    page.select_option("#f-status", "past_due")
    page.click("#filters button")
    expect(rows).to_have_text(["bohdan@example.org"])
    expect(page.locator("#f-status")).to_have_value("past_due")

    page.click("#clear")
    page.select_option("#f-source", "stripe")
    page.fill("#f-joined_from", "2026-05-29")
    page.select_option("#f-sort", "name")
    page.click("#filters button")
    expect(rows).to_have_text(["bohdan@example.org", "dmytro@example.org", "cus_nomail"])
    expect(page.locator('th[aria-sort="ascending"]')).to_have_text("Name ↑")
    fits(page)

    page.click("th a.sort >> text=Name")  # the other way round
    expect(rows).to_have_text(["cus_nomail", "dmytro@example.org", "bohdan@example.org"])
    page.click("th a.sort >> text=Email")
    expect(rows).to_have_text(["bohdan@example.org", "dmytro@example.org", "cus_nomail"])

    page.fill("#q", "cus_no")
    page.keyboard.press("Enter")
    expect(rows).to_have_text(["cus_nomail"])
    page.click("#results a")
    expect(page.locator("h1")).to_have_text("cus_nomail")
    assert "· a member" not in page.content()
    assert page.console_errors == []
    page.close()
