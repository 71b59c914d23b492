"""Money and times on the staff pages: staff/format.py's filters, the TIMEZONE setting and
each staff member's own zone (chosen on /staff/me, audited)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from flask import g, render_template_string

from membership.core import audit
from membership.core.config import ConfigError, load_settings
from membership.core.runtime import runtime
from membership.prompts import campaigns, store
from membership.staff import accounts_for
from membership.staff.format import amounts, money, when
from tests.support.clock import Clock
from tests.support.prompt_helpers import EXAMPLE
from tests.support.staff import FAST, signed_in, with_role_accounts

AT = dt.datetime(2026, 12, 7, 10, 14, 5, tzinfo=dt.UTC)
ISO = "2026-12-07T10:14:05Z"


# --- money ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("minor", "currency", "shown"),
    [
        (1000, "eur", "€10.00"),
        (1000, "EUR", "€10.00"),
        (123456789, "eur", "€1,234,567.89"),
        (-250, "eur", "-€2.50"),
        (500, "jpy", "¥500"),  # no minor unit: 500 yen, not ¥5.00
        (12345, "uah", "UAH123.45"),
        ("700", "usd", "$7.00"),
    ],
)
def test_money_is_babel_in_the_currency_by_its_digits(minor, currency, shown):
    assert money(minor, currency) == shown


def test_money_in_another_locale_and_nothing():
    assert money(1000, "eur", "uk") == "10,00\xa0EUR"
    assert money(12345, "uah", "uk") == "123,45\xa0₴"
    assert money(None, "eur") == money("", "eur") == money(5, "") == "—"


def test_the_ledger_amounts_in_an_event_detail_read_as_money():
    assert amounts("contribution pi_1: net 1000 eur") == "contribution pi_1: net €10.00"
    assert amounts("contribution pi_2: net 500 jpy") == "contribution pi_2: net ¥500"
    assert amounts("sub_1: (new) -> active") == "sub_1: (new) -> active"
    assert amounts("") == amounts(None) == ""


# --- when -------------------------------------------------------------------------------
@pytest.fixture
def kyiv_app(make_app):
    """The newsroom in Kyiv (UTC+2 in December), its clock 3 days after AT."""
    clock = Clock(AT.timestamp() + 3 * 86400)
    return make_app(timezone="Europe/Kyiv", staff_clock=clock, staff_hasher=FAST)


def _when(app, value, staff=None, **kwargs):
    with app.test_request_context("/staff/"):
        g.staff = staff
        return str(when(value, **kwargs))


SAME_MOMENT = [AT.timestamp(), int(AT.timestamp()), str(AT.timestamp()), ISO,
               "2026-12-07T12:14:05+02:00", AT, AT.replace(tzinfo=None)]  # fmt: skip


def test_a_time_in_the_newsroom_zone_from_epoch_iso_or_datetime(kyiv_app, subtests):
    for value in SAME_MOMENT:
        with subtests.test(value=repr(value)):
            assert _when(kyiv_app, value) == (
                f'<time datetime="{ISO}" title="7 Dec 2026, 12:14:05 Europe/Kyiv">'
                "7 Dec 2026, 12:14</time>"
            )


def test_relative_form_keeps_the_exact_time_on_hover(kyiv_app):
    shown = _when(kyiv_app, ISO, relative=True)
    assert shown == (
        f'<time datetime="{ISO}" title="7 Dec 2026, 12:14:05 Europe/Kyiv">3 days ago</time>'
    )
    assert _when(kyiv_app, AT.timestamp() + 3 * 86400 - 120, relative=True).endswith(
        ">2 minutes ago</time>"
    )
    soon = AT.timestamp() + 3 * 86400 + 20
    assert _when(kyiv_app, soon - 40, relative=True).endswith(">just now</time>")
    assert _when(kyiv_app, soon + 86400, relative=True).endswith(">in 1 day</time>")


def test_nothing_is_a_dash_and_text_that_is_no_time_is_escaped(kyiv_app):
    assert _when(kyiv_app, None) == _when(kyiv_app, "") == "—"
    assert _when(kyiv_app, "<b>soon</b>") == "&lt;b&gt;soon&lt;/b&gt;"
    assert _when(kyiv_app, ISO, plain=True) == "7 Dec 2026, 12:14"


def test_the_viewer_zone_wins_over_the_newsroom_zone(kyiv_app):
    accounts = accounts_for(runtime(kyiv_app))
    accounts.add("ny@news.example", "viewer", actor="test")
    ny = accounts.set_timezone("ny@news.example", "America/New_York", actor="test")
    assert _when(kyiv_app, ISO, staff=ny) == (
        f'<time datetime="{ISO}" title="7 Dec 2026, 05:14:05 America/New_York">'
        "7 Dec 2026, 05:14</time>"
    )


def test_utc_by_default_and_outside_a_request(make_app):
    app = make_app()
    assert runtime(app).settings.timezone == "UTC"
    assert ">7 Dec 2026, 10:14<" in _when(app, ISO)
    exact = f'<time datetime="{ISO}" title="7 Dec 2026, 10:14:05 UTC">7 Dec 2026, 10:14</time>'
    assert str(when(ISO)) == exact


def test_the_filters_are_registered_for_every_template(kyiv_app):
    with kyiv_app.test_request_context("/staff/"):
        g.staff = None
        page = render_template_string("{{ 500 | money('jpy') }} {{ at | when }}", at=ISO)
    assert page.startswith("¥500 <time datetime=")


# --- TIMEZONE ---------------------------------------------------------------------------
def test_timezone_setting_is_an_iana_zone():
    assert load_settings({"TIMEZONE": "Europe/Kyiv"}).timezone == "Europe/Kyiv"
    assert load_settings({}).timezone == "UTC"
    # posixrules opens in zoneinfo but is no zone a staff member could pick on /staff/me
    for bad in (
        "Mars/Olympus_Mons",
        "../../etc/passwd",
        "Europe",
        "UTC+2",
        "posixrules",
    ):
        with pytest.raises(ConfigError, match=r"^TIMEZONE: expected an IANA time zone"):
            load_settings({"TIMEZONE": bad})


# --- a staff member's own zone ----------------------------------------------------------
@pytest.fixture
def staff_app(kyiv_app):
    return with_role_accounts(kyiv_app)


def _set_zone(client, token, name):
    return client.post("/staff/me/timezone", data={"csrf_token": token, "timezone": name})


def test_a_staff_member_picks_a_zone_and_times_follow_it(staff_app):
    client, token = signed_in(staff_app, "viewer")
    me = client.get("/staff/me").get_data(as_text=True)
    assert "now the newsroom's, Europe/Kyiv" in me
    assert re.search(r'<select id="timezone" name="timezone">\s*<option value="">', me)
    assert "<option>America/New_York</option>" in me
    # The session table shows the session's start in Kyiv time (the clock is 10 Dec 12:14:05).
    assert 'title="10 Dec 2026, 12:14:05 Europe/Kyiv">10 Dec 2026, 12:14</time>' in me

    saved = _set_zone(client, token, "America/New_York")
    page = saved.get_data(as_text=True)
    assert saved.status_code == 200 and "Time zone saved" in page
    assert "<option selected>America/New_York</option>" in page
    assert 'title="10 Dec 2026, 05:14:05 America/New_York">10 Dec 2026, 05:14</time>' in page
    account = accounts_for(runtime(staff_app)).get("viewer@news.example")
    assert account.timezone == "America/New_York"

    # Other staff keep the newsroom's zone.
    other, _ = signed_in(staff_app, "editor")
    assert "10 Dec 2026, 12:14</time>" in other.get("/staff/me").get_data(as_text=True)

    # Back to the newsroom's.
    assert _set_zone(client, token, "").status_code == 200
    assert accounts_for(runtime(staff_app)).get("viewer@news.example").timezone == ""


def test_the_change_is_audited(staff_app):
    client, token = signed_in(staff_app, "viewer")
    _set_zone(client, token, "Asia/Tokyo")
    rt = runtime(staff_app)
    entries, _ = audit.page(rt.redis, rt.keys, action="staff_timezone_changed")
    assert len(entries) == 1
    entry = entries[0]
    assert (entry["actor"], entry["target"]) == ("viewer@news.example", "staff viewer@news.example")
    assert entry["before"] == {"email": "viewer@news.example", "role": "viewer", "disabled": False}
    assert entry["after"] == {**entry["before"], "timezone": "Asia/Tokyo"}


@pytest.mark.parametrize("bad", ["Mars/Olympus_Mons", "../etc/passwd", "x" * 2000, "utc+2"])
def test_a_refused_zone_re_renders_the_form_naming_the_field(staff_app, bad):
    client, token = signed_in(staff_app, "viewer")
    refused = _set_zone(client, token, bad)
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert '<p class="error" role="alert" id="me-error">Time zone: expected a zone from' in page
    marked = 'name="timezone" aria-invalid="true" aria-describedby="me-error"'
    assert f'<select id="timezone" {marked}' in page
    assert accounts_for(runtime(staff_app)).get("viewer@news.example").timezone == ""
    rt = runtime(staff_app)
    assert audit.page(rt.redis, rt.keys, action="staff_timezone_changed")[0] == []


def test_the_zone_form_needs_the_csrf_token(staff_app):
    client, _ = signed_in(staff_app, "viewer")
    refused = client.post("/staff/me/timezone", data={"timezone": "Asia/Tokyo"})
    assert refused.status_code == 400
    assert accounts_for(runtime(staff_app)).get("viewer@news.example").timezone == ""


def test_the_audit_log_shows_its_utc_entries_in_the_viewer_zone(staff_app):
    client, token = signed_in(staff_app, "admin")
    _set_zone(client, token, "Asia/Tokyo")
    rt = runtime(staff_app)
    entry = audit.page(rt.redis, rt.keys, action="staff_timezone_changed")[0][0]
    assert entry["at"] == "2026-12-10T10:14:05Z"  # stored and served as ISO-8601 UTC
    page = client.get("/staff/audit").get_data(as_text=True)
    assert (
        '<time datetime="2026-12-10T10:14:05Z" title="10 Dec 2026, 19:14:05 Asia/Tokyo">'
        "10 Dec 2026, 19:14</time>"
    ) in page


def test_campaign_results_show_revenue_and_refunds_as_money(staff_app):
    rt = runtime(staff_app)
    store.apply(rt.redis, rt.keys, [campaigns.parse(EXAMPLE)], actor="test")
    rt.redis.hset(rt.keys.prompt_counts(EXAMPLE["id"]), mapping={
        "a:views": 10, "a:conversions": 3, "a:revenue:eur": 2500, "a:revenue:jpy": 500,
        "a:refunds": 1, "a:refunded:eur": 1000})  # fmt: skip
    client, _ = signed_in(staff_app, "viewer")
    page = client.get(f"/staff/campaign/{EXAMPLE['id']}/results").get_data(as_text=True)
    assert "<td>€25.00, ¥500</td><td>1 (€10.00)</td>" in page
    assert "2500" not in page
