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
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple
from urllib.parse import urlsplit

from marshmallow import EXCLUDE, Schema, ValidationError, validate
from marshmallow import fields as mf

from membership import i18n
from membership.prompts.campaigns import MAX_HISTORY_DAYS, MAX_VIEWS, UtcTime, utc_time
from membership.prompts.errors import DocumentError, flatten

READER = re.compile(r"[A-Za-z0-9_-]{8,64}\Z")  # \Z: marshmallow's Regexp only matches
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

    def views_of(self, campaign: str) -> tuple[dt.datetime, ...]:
        """When the campaign's prompt was seen, newest first."""
        return self._by_campaign[0].get(campaign, ())

    def dismissals_of(self, campaign: str) -> tuple[dt.datetime, ...]:
        """When the campaign's prompt was dismissed, newest first."""
        return self._by_campaign[1].get(campaign, ())

    @cached_property
    def _articles_memo(self) -> dict[tuple[dt.date, int], int]:
        return {}

    @cached_property
    def _by_campaign(self) -> tuple[dict[str, tuple], dict[str, tuple]]:
        """views and dismissed grouped by campaign, once: every campaign's frequency
        filters read only their own, instead of scanning all 100 (x 20 campaigns)."""
        grouped: tuple[dict[str, list], dict[str, list]] = ({}, {})
        for seen, out in ((self.views, grouped[0]), (self.dismissed, grouped[1])):
            for campaign, at in seen:  # newest first already
                out.setdefault(campaign, []).append(at)
        return tuple({c: tuple(ats) for c, ats in g.items()} for g in grouped)


def referrer_host(referrer: str | None) -> str | None:
    """`https://www.T.co/x` -> `www.t.co`; a bare `t.co/x` too; None when there is none."""
    if not referrer:
        return None
    try:
        parts = urlsplit(referrer if "//" in referrer else "//" + referrer)
        host = parts.hostname
    except ValueError:
        return None
    return (host.rstrip(".") or None) if host else None


# --- Validation -----------------------------------------------------------------------


def _m(**extra: str) -> dict:
    return {"required": "missing", **extra}


class _Base(Schema):
    error_messages = {"type": "expected an object"}

    class Meta:
        unknown = EXCLUDE


class _Text(mf.String):
    """Text up to `max_len` characters; null and "" are None."""

    def __init__(self, max_len: int, lower: bool = False, **kw) -> None:
        super().__init__(
            load_default=None, allow_none=True, error_messages=_m(invalid="expected text"), **kw
        )
        self.max_len, self.lower = max_len, lower

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if len(text) > self.max_len:
            raise ValidationError(f"expected at most {self.max_len} characters")
        return (text.lower() if self.lower else text) or None


class _Articles(mf.Field):
    """{"YYYY-MM-DD": n} -> {date: n}, the newest MAX_HISTORY_DAYS dates kept."""

    default_error_messages = _m(invalid="expected an object of YYYY-MM-DD: number of articles")

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, Mapping):
            raise self.make_error("invalid")
        days: dict[dt.date, int] = {}
        errors: dict[str, list[str]] = {}
        for key, n in value.items():
            try:
                day = (
                    dt.date.fromisoformat(key) if isinstance(key, str) and len(key) == 10 else None
                )
            except ValueError:
                day = None
            if day is None:
                errors[str(key)] = ["expected a date as YYYY-MM-DD"]
            elif (
                isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_ARTICLES_PER_DAY
            ):
                errors[str(key)] = [f"expected a whole number from 0 to {MAX_ARTICLES_PER_DAY}"]
            else:
                days[day] = n
        if errors:
            raise ValidationError(errors)
        newest = sorted(days, reverse=True)[:MAX_HISTORY_DAYS]
        return {day: days[day] for day in newest}


class _HistorySchema(_Base):
    articles = _Articles(load_default=dict)


class _PageSchema(_Base):
    section = _Text(100, lower=True)
    tags = mf.List(
        mf.String(error_messages=_m(invalid="expected text")),
        load_default=list,
        allow_none=True,
        error_messages=_m(invalid="expected a list"),
    )
    referrer = _Text(2000)
    type = _Text(40)


class _SeenList(mf.Field):
    """[{"campaign": "...", "at": "<ISO-8601>"}] -> the newest MAX_VIEWS as Seen, newest first.

    A plain loop, not a nested schema: a request carries up to 100 views and dismissals,
    and marshmallow's per-item machinery cost 0.6 ms a request, most of a decision."""

    default_error_messages = _m(invalid="expected a list")

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, list):
            raise self.make_error("invalid")
        seen: list[Seen] = []
        errors: dict[int, object] = {}
        for i, item in enumerate(value):
            if not isinstance(item, dict):  # JSON objects; an ABC check cost more than the rest
                errors[i] = ["expected an object"]
                continue
            problems = {}
            campaign, at = item.get("campaign"), item.get("at")
            if campaign is None:
                problems["campaign"] = ["missing"]
            elif not isinstance(campaign, str):
                problems["campaign"] = ["expected text"]
            elif not 1 <= len(campaign) <= 64:
                problems["campaign"] = ["expected 1 to 64 characters"]
            when = utc_time(at)
            if when is None:
                problems["at"] = [
                    "missing" if at is None else UtcTime.default_error_messages["invalid"]
                ]
            if problems:
                errors[i] = problems
            else:
                seen.append(Seen(campaign, when))
        if errors:
            raise ValidationError(errors)
        seen.sort(key=lambda s: s.at, reverse=True)
        return tuple(seen[:MAX_VIEWS])


def _seen_list() -> _SeenList:
    return _SeenList(load_default=tuple, allow_none=True)


class _RequestSchema(_Base):
    reader = mf.String(
        required=True,
        validate=validate.Regexp(READER, error="expected 8 to 64 of A-Z, a-z, 0-9, _ and -"),
        error_messages=_m(invalid="expected text"),
    )
    locale = mf.String(
        load_default=None, allow_none=True, error_messages=_m(invalid="expected text")
    )
    page = mf.Nested(
        _PageSchema,
        load_default=dict,
        allow_none=True,
        error_messages=_m(type="expected an object"),
    )
    history = mf.Nested(
        _HistorySchema,
        load_default=dict,
        allow_none=True,
        error_messages=_m(type="expected an object"),
    )
    views = _seen_list()
    dismissed = _seen_list()
    member = _Text(4096)


# Built once: a schema holds no state between loads, and building one per request cost more
# than the load itself.
_SCHEMA = _RequestSchema()


def parse_request(data: object) -> PromptRequest:
    """The JSON body (already decoded) -> PromptRequest; RequestError names the first bad field
    (`errors` holds them all)."""
    if not isinstance(data, Mapping):
        raise RequestError(["expected a JSON object"])
    try:
        d = _SCHEMA.load(dict(data))
    except ValidationError as exc:
        raise RequestError(flatten(exc.messages)) from None
    try:
        locale = i18n.resolve_locale(d["locale"])
    except i18n.CopyError as exc:
        raise RequestError([f"locale: {exc}"]) from None
    page = d["page"] or {}
    tags = tuple(t.lower() for t in (page.get("tags") or ())[:MAX_TAGS])
    history = d["history"] or {}
    return PromptRequest(
        reader=d["reader"],
        locale=locale,
        page=Page(
            section=page.get("section"),
            tags=tags,
            referrer=page.get("referrer"),
            type=page.get("type"),
        ),
        articles=history.get("articles") or {},
        views=d["views"] or (),
        dismissed=d["dismissed"] or (),
        member_token=d["member"],
    )
