"""The body of `POST /v1/prompt`, validated into a frozen `PromptRequest` (pure, no I/O).

```
{"reader": "r_3f9c2a1b7d4e", "locale": "uk",
 "page": {"section": "war", "tags": ["kursk"], "referrer": "https://t.co/x", "type": "article"},
 "history": {"articles": {"2026-11-25": 3, "2026-11-24": 1}},
 "views": [{"campaign": "winter-drive", "at": "2026-11-25T10:00:00Z"}],
 "dismissed": [{"campaign": "winter-drive", "at": "2026-11-25T10:01:00Z"}],
 "member": "<member token>"}
```

- Unknown fields are ignored at every level, so the widget and the service can be upgraded
  separately. A field of the wrong shape is a RequestError naming it (`views: expected a
  list`, `history.articles.2026-13-01: expected a date as YYYY-MM-DD`).
- Cut, not refused: the history to its newest 90 days (dates), `views` and `dismissed` to
  their newest 100 entries, `page.tags` to its first 50.
- The locale is reduced as the banner's is (membership.i18n.resolve_locale): `uk-UA` -> uk,
  one we do not serve -> en, none -> en.
- Only `reader` is required. Sections and tags are lower-cased (campaigns store them so);
  the referrer's host is kept apart, lower-cased, for the `referrers` filter.
- `member` is kept as sent; checking the token (a secret) is the caller's business.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from operator import itemgetter
from typing import NamedTuple
from urllib.parse import urlsplit

from membership import i18n
from membership.prompts.campaigns import MAX_HISTORY_DAYS, MAX_VIEWS, UtcTime, utc_time
from membership.prompts.errors import DocumentError

READER = re.compile(r"[A-Za-z0-9_-]{8,64}\Z")  # \Z: `match` anchors only the start
MAX_TAGS = 50
MAX_ARTICLES_PER_DAY = 100_000


class RequestError(DocumentError):
    """A request that does not validate; the message names the field (`reader: ...`)."""


class Seen(NamedTuple):
    """A view or a dismissal of a campaign's prompt (a tuple: a request builds up to 200)."""

    campaign: str
    at: dt.datetime


@dataclass(frozen=True)
class Page:
    section: str | None = None
    tags: tuple[str, ...] = ()
    referrer: str | None = None
    type: str | None = None

    @cached_property
    def referrer_host(self) -> str | None:
        return referrer_host(self.referrer)


@dataclass(frozen=True)
class PromptRequest:
    reader: str
    locale: str = i18n.DEFAULT_LOCALE
    page: Page = Page()
    articles: Mapping[dt.date, int] = field(default_factory=dict)  # per UTC day
    views: tuple[Seen, ...] = ()  # newest first
    dismissed: tuple[Seen, ...] = ()  # newest first
    member_token: str | None = None

    def articles_in(self, today: dt.date, days: int) -> int:
        """Articles read on `today` and the days before it, `days` days in all (a date after
        `today`, from a clock that runs ahead, is not in the window). Remembered per
        (today, days): a decision asks for the same window of many campaigns."""
        key = (today, days)
        found = self._articles_memo.get(key)
        if found is None:
            first = today - dt.timedelta(days=days - 1)
            found = sum(n for day, n in self.articles.items() if first <= day <= today)
            self._articles_memo[key] = found
        return found

    def views_of(self, campaign: str) -> Sequence[dt.datetime]:
        """When the campaign's prompt was seen, newest first."""
        return self._views_by_campaign.get(campaign, ())

    def dismissals_of(self, campaign: str) -> Sequence[dt.datetime]:
        """When the campaign's prompt was dismissed, newest first."""
        return self._dismissals_by_campaign.get(campaign, ())

    @cached_property
    def _articles_memo(self) -> dict[tuple[dt.date, int], int]:
        return {}

    # Grouped by campaign once: every campaign's frequency filters read only their own,
    # instead of scanning all 100 (x 20 campaigns).
    @cached_property
    def _views_by_campaign(self) -> dict[str, list[dt.datetime]]:
        return _by_campaign(self.views)

    @cached_property
    def _dismissals_by_campaign(self) -> dict[str, list[dt.datetime]]:
        return _by_campaign(self.dismissed)


def _by_campaign(seen: Iterable[Seen]) -> dict[str, list[dt.datetime]]:
    grouped: dict[str, list[dt.datetime]] = {}
    for campaign, at in seen:  # newest first already
        found = grouped.get(campaign)
        if found is None:
            grouped[campaign] = [at]
        else:
            found.append(at)
    return grouped


def referrer_host(referrer: str | None) -> str | None:
    """`https://www.T.co/x` -> `www.t.co`; a bare `t.co/x` too; None when there is none.
    Remembered: most page views come from a few referrers, and urlsplit is slow."""
    if not referrer:
        return None
    found = _HOSTS.get(referrer, _ABSENT)
    if found is _ABSENT:
        found = _referrer_host(referrer)
        if len(_HOSTS) >= _HOSTS_HELD:
            _HOSTS.clear()
        _HOSTS[referrer] = found
    return found


_HOSTS: dict[str, str | None] = {}  # threads may race here; each writes the same value
_HOSTS_HELD = 4096


def _referrer_host(referrer: str) -> str | None:
    try:
        parts = urlsplit(referrer if "//" in referrer else "//" + referrer)
        host = parts.hostname
    except ValueError:
        return None
    return (host.rstrip(".") or None) if host else None


# --- Validation ---------------------------------------------------------------------
#
# By hand, not marshmallow: this runs on every page view, and the schema's per-field
# machinery cost more than the rest of a decision. The messages are marshmallow's, in its
# order (the fields as declared below, nested ones in place); tests/test_prompt_request_oracle.py
# checks both against the schema this replaced, over random bodies.

_ABSENT = object()  # a key not sent (None is a JSON null)
NULL = "Field may not be null."  # marshmallow's words for a null where none is allowed
TEXT = "expected text"
READER_MESSAGE = "expected 8 to 64 of A-Z, a-z, 0-9, _ and -"
OBJECT = "expected an object"
LIST = "expected a list"
AT_MESSAGE = UtcTime.default_error_messages["invalid"]
ARTICLES_MESSAGE = "expected an object of YYYY-MM-DD: number of articles"
DATE_MESSAGE = "expected a date as YYYY-MM-DD"
COUNT_MESSAGE = f"expected a whole number from 0 to {MAX_ARTICLES_PER_DAY}"
_UTC = dt.UTC
_from_iso = dt.datetime.fromisoformat
_new_tuple = tuple.__new__  # Seen(...) without NamedTuple's Python-level __new__
_at = itemgetter(1)


def _string(value: object, path: str, errors: list[str]) -> str | None:
    """A string as marshmallow's String takes it (bytes as UTF-8); None after an error."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            errors.append(f"{path}: Not a valid utf-8 string.")
            return None
    errors.append(f"{path}: {TEXT}")
    return None


def _text(value: object, path: str, errors: list[str], max_len: int, lower=False) -> str | None:
    """Text up to `max_len` characters; absent, null and "" are None."""
    if value is None or value is _ABSENT:
        return None
    text = _string(value, path, errors)
    if text is None:
        return None
    if len(text) > max_len:
        errors.append(f"{path}: expected at most {max_len} characters")
        return None
    return (text.lower() if lower else text) or None


def _object(value: object, path: str, errors: list[str]) -> Mapping | None:
    """A nested object that may be absent or null (both: None)."""
    if value is None or value is _ABSENT:
        return None
    if not isinstance(value, Mapping):
        errors.append(f"{path}: {OBJECT}")
        return None
    return value


def _collection(value: object) -> bool:
    """marshmallow's List takes any iterable that is neither text nor a mapping."""
    if type(value) is list:
        return True
    return (
        hasattr(value, "__iter__")
        and not hasattr(value, "strip")
        and not isinstance(value, Mapping)
    )


def _tags(value: object, errors: list[str]) -> tuple[str, ...]:
    if value is None or value is _ABSENT:
        return ()
    if not _collection(value):
        errors.append(f"page.tags: {LIST}")
        return ()
    tags = []
    for i, tag in enumerate(value):
        if tag is None:
            errors.append(f"page.tags[{i}]: {NULL}")
        else:
            text = _string(tag, f"page.tags[{i}]", errors)
            if text is not None:
                tags.append(text)
    return tuple(t.lower() for t in tags[:MAX_TAGS])


def _page(value: object, errors: list[str]) -> Page:
    page = _object(value, "page", errors)
    if not page:
        return _NO_PAGE
    return Page(
        section=_text(page.get("section"), "page.section", errors, 100, lower=True),
        tags=_tags(page.get("tags", _ABSENT), errors),
        referrer=_text(page.get("referrer"), "page.referrer", errors, 2000),
        type=_text(page.get("type"), "page.type", errors, 40),
    )


_NO_PAGE = Page()


def _articles(value: object, errors: list[str]) -> dict[dt.date, int]:
    """{"YYYY-MM-DD": n} -> {date: n}, the newest MAX_HISTORY_DAYS dates kept."""
    history = _object(value, "history", errors)
    if history is None:
        return {}
    value = history.get("articles", _ABSENT)
    if value is _ABSENT:
        return {}
    if value is None:
        errors.append(f"history.articles: {NULL}")
        return {}
    if not isinstance(value, Mapping):
        errors.append(f"history.articles: {ARTICLES_MESSAGE}")
        return {}
    days: dict[dt.date, int] = {}
    bad: dict[str, str] = {}  # by key, as marshmallow reports them
    known = _DAYS
    for key, n in value.items():
        day = known.get(key) if type(key) is str else None
        if day is None:
            day = _day(key)
        if day is None:
            bad[str(key)] = DATE_MESSAGE
        elif (type(n) is int or _whole(n)) and 0 <= n <= MAX_ARTICLES_PER_DAY:
            days[day] = n
        else:
            bad[str(key)] = COUNT_MESSAGE
    if bad:
        errors += [f"history.articles.{key}: {message}" for key, message in bad.items()]
        return {}
    if len(days) > MAX_HISTORY_DAYS:
        newest = sorted(days, reverse=True)[:MAX_HISTORY_DAYS]
        return {day: days[day] for day in newest}
    return days


# The history's keys, read: a day's requests carry the same 90 or so dates. Cleared when
# full; threads may race on it, and each writes the same value.
_DAYS: dict[str, dt.date] = {}
_DAYS_HELD = 4096


def _day(key: object) -> dt.date | None:
    """A history key as a date (None: not YYYY-MM-DD), remembered."""
    try:
        day = dt.date.fromisoformat(key) if isinstance(key, str) and len(key) == 10 else None
    except ValueError:
        return None
    if day is not None and type(key) is str:
        if len(_DAYS) >= _DAYS_HELD:
            _DAYS.clear()
        _DAYS[key] = day
    return day


def _whole(n: object) -> bool:
    """An int that is not a bool."""
    return isinstance(n, int) and not isinstance(n, bool)


def _seen(value: object, name: str, errors: list[str]) -> tuple[Seen, ...]:
    """[{"campaign": "...", "at": "<ISO-8601>"}] -> the newest MAX_VIEWS as Seen, newest
    first. Up to 100 items a list: the loop is kept plain."""
    if value is None or value is _ABSENT:
        return ()
    if not isinstance(value, list):
        errors.append(f"{name}: {LIST}")
        return ()
    seen: list[Seen] = []
    append = seen.append
    failed = False
    for i, item in enumerate(value):
        if type(item) is dict:
            campaign, at = item.get("campaign"), item.get("at")
            if type(campaign) is str and type(at) is str and 0 < len(campaign) <= 64:
                try:
                    when = _from_iso(at)
                    zone = when.tzinfo
                    if zone is _UTC:  # "Z", as the widget writes it
                        append(_new_tuple(Seen, (campaign, when)))
                        continue
                    if zone is not None:
                        append(_new_tuple(Seen, (campaign, when.astimezone(_UTC))))
                        continue
                except (ValueError, OverflowError):
                    pass
        one = _seen_item(item, f"{name}[{i}]", errors)
        if one is None:
            failed = True
        else:
            append(one)
    if failed:
        return ()
    seen.sort(key=_at, reverse=True)
    return tuple(seen[:MAX_VIEWS])


def _seen_item(item: object, path: str, errors: list[str]) -> Seen | None:
    """One item of `views` or `dismissed` the loop above did not take: what is wrong with
    it, or the item (text of a subclass of str)."""
    if not isinstance(item, dict):  # JSON objects; an ABC check cost more than the rest
        errors.append(f"{path}: {OBJECT}")
        return None
    campaign, at = item.get("campaign"), item.get("at")
    problems = len(errors)
    if campaign is None:
        errors.append(f"{path}.campaign: missing")
    elif not isinstance(campaign, str):
        errors.append(f"{path}.campaign: {TEXT}")
    elif not 1 <= len(campaign) <= 64:
        errors.append(f"{path}.campaign: expected 1 to 64 characters")
    when = utc_time(at)
    if when is None:
        errors.append(f"{path}.at: {'missing' if at is None else AT_MESSAGE}")
    return Seen(campaign, when) if len(errors) == problems else None


def _reader(value: object, errors: list[str]) -> str:
    if value is _ABSENT:
        errors.append("reader: missing")
    elif value is None:
        errors.append(f"reader: {NULL}")
    else:
        reader = _string(value, "reader", errors)
        if reader is not None:
            if READER.match(reader):
                return reader
            errors.append(f"reader: {READER_MESSAGE}")
    return ""


def parse_request(data: object) -> PromptRequest:
    """The JSON body (already decoded) -> PromptRequest; RequestError names the first bad field
    (`errors` holds them all)."""
    if not isinstance(data, Mapping):
        raise RequestError(["expected a JSON object"])
    errors: list[str] = []
    get = data.get
    reader = _reader(get("reader", _ABSENT), errors)
    locale = get("locale")
    if locale is not None:
        locale = _string(locale, "locale", errors)
    page = _page(get("page"), errors)
    articles = _articles(get("history"), errors)
    views = _seen(get("views"), "views", errors)
    dismissed = _seen(get("dismissed"), "dismissed", errors)
    member = _text(get("member"), "member", errors, 4096)
    if errors:
        raise RequestError(errors)
    try:
        locale = i18n.resolve_locale(locale)
    except i18n.CopyError as exc:
        raise RequestError([f"locale: {exc}"]) from None
    return PromptRequest(
        reader=reader,
        locale=locale,
        page=page,
        articles=articles,
        views=views,
        dismissed=dismissed,
        member_token=member,
    )
