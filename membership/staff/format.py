"""Money and times on the staff pages, as Jinja filters (registered once, by views.py):

    {{ 1000 | money("eur") }}        €10.00 (Babel, by the currency's digits: ¥500 for 500 jpy)
    {{ session.seen | when }}        <time datetime="2026-12-07T10:14:05Z" title="7 Dec
                                     2026, 12:14:05 Europe/Kyiv">7 Dec 2026, 12:14</time>
    {{ at | when(relative=True) }}   <time ...>3 days ago</time>

A time is shown in the viewer's zone: the one chosen on their account page, else the
newsroom's TIMEZONE setting. JSON and CSV keep ISO-8601 UTC and minor units.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import zoneinfo

from babel.dates import format_date, format_datetime, format_timedelta
from flask import g, has_app_context, has_request_context
from markupsafe import Markup, escape

from membership.core import i18n
from membership.core.runtime import runtime
from membership.staff.access.stored import clock_for

LOCALE = "en"  # the dashboard's language
SHOWN = "d MMM y, HH:mm"  # 7 Dec 2026, 10:14
EXACT = "d MMM y, HH:mm:ss"  # the hover text, followed by the zone's name
DAY = "d MMM y"  # 7 Dec 2026
NOTHING = "—"
# The ledger's words for an amount in an event's detail ("contribution pi_1: net 1000 eur");
# the event log and its JSON keep them as they are.
_LEDGER_AMOUNT = re.compile(r"\bnet (-?\d{1,15}) ([a-z]{3})\b")
JUST_NOW = dt.timedelta(minutes=1)  # closer than this, a relative time says "just now"


def money(amount_minor, currency: str, locale: str = LOCALE) -> str:
    """Minor units as money in their currency, by the currency's digits: 1000 eur ->
    "€10.00" (en; "10,00 EUR" in uk), 500 jpy -> "¥500". Empty -> "—"."""
    if amount_minor is None or amount_minor == "" or not currency:
        return NOTHING
    try:
        minor = int(amount_minor)
    except (TypeError, ValueError):
        return str(amount_minor)  # not an amount: shown as it is
    return i18n.format_money(locale, minor, str(currency))


def date(day: str, locale: str = LOCALE, pattern: str = DAY) -> str:
    """A UTC day as the ledger and the results key it ("2026-12-07") as the dashboard shows
    dates ("7 Dec 2026", or by `pattern`: "d MMM" on a chart's axis); anything else as it is."""
    try:
        return format_date(dt.date.fromisoformat(str(day)), pattern, locale=locale)
    except ValueError:
        return str(day)


def zone(name: str | None) -> dt.tzinfo:
    """The zone named `name`; UTC when it is empty or unknown here."""
    try:
        return zoneinfo.ZoneInfo(name) if name else dt.UTC
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def amounts(text: str) -> str:
    """The ledger's "net 1000 eur" in a detail text as "net €10.00"; the rest as it is."""
    return _LEDGER_AMOUNT.sub(lambda m: f"net {money(m[1], m[2])}", str(text or ""))


def viewer_zone_name() -> str:
    """The signed-in staff member's zone, else the newsroom's TIMEZONE, else UTC."""
    staff = g.get("staff") if has_request_context() else None
    chosen = getattr(staff, "timezone", "")
    if chosen:
        return chosen
    return runtime().settings.timezone if has_app_context() else "UTC"


def moment(value) -> dt.datetime | None:
    """An aware datetime from epoch seconds, ISO-8601 text or a datetime (naive: UTC);
    None when empty or unreadable."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    try:
        if isinstance(value, int | float):
            return dt.datetime.fromtimestamp(value, dt.UTC)
        text = str(value).strip()
        try:
            return dt.datetime.fromtimestamp(float(text), dt.UTC)
        except ValueError:
            return moment(dt.datetime.fromisoformat(text))
    except (ValueError, OverflowError, OSError):
        return None


def _now() -> float:
    return clock_for(runtime())() if has_app_context() else time.time()


def when(value, relative: bool = False, plain: bool = False) -> Markup | str:
    """A <time> element in the viewer's zone: "7 Dec 2026, 10:14", or with `relative`
    "3 days ago"; the exact time and the zone on hover, ISO-8601 UTC in `datetime`.
    `plain`: only the shown text (for an attribute). Empty -> "—"; text that is no time
    is shown as it is."""
    at = moment(value)
    if at is None:
        return Markup(NOTHING) if value is None or value == "" else escape(str(value))
    tz = zone(viewer_zone_name())
    try:
        at.astimezone(tz)
    except OverflowError:  # past the calendar's end there (9999-12-31T23:00Z in Kyiv)
        tz = dt.UTC
    name = getattr(tz, "key", "UTC")
    iso = at.astimezone(dt.UTC).replace(tzinfo=None).isoformat("T", "seconds") + "Z"
    exact = f"{format_datetime(at, EXACT, tzinfo=tz, locale=LOCALE)} {name}"
    if relative:
        ago = dt.timedelta(seconds=at.timestamp() - _now())
        shown = (
            "just now"
            if abs(ago) < JUST_NOW
            else format_timedelta(ago, add_direction=True, locale=LOCALE)
        )
    else:
        shown = format_datetime(at, SHOWN, tzinfo=tz, locale=LOCALE)
    if plain:
        return shown
    return Markup('<time datetime="{}" title="{}">{}</time>').format(iso, exact, shown)
