"""The body of `POST /v1/prompt` decoded and validated in one pass by msgspec: a fast path.

Why: /v1/prompt runs on every page view, and `json.loads` then `request.parse_request`
cost ~61 us for the body the widget sends (55 days of history, 50 views); a typed
msgspec decoder does the same work in C. This module is used for the common, valid case
only; `request.parse_request` stays the definition of what a body means and the only
source of error messages.

Contract: whenever `decode(raw)` returns a PromptRequest,
`parse_request(json.loads(raw.decode("utf-8")))` succeeds and returns an equal one. It
returns None whenever msgspec refuses the body or anything about it needs the full
validator (the caller then runs json.loads + parse_request, which gives the exact error
or the same answer). It never raises.

What msgspec would do differently, and how it is kept out (tests/test_prompt_wire.py):
- Times: msgspec's datetime parser takes `t`/`z`, rounds past 6 fractional digits and
  keeps a year-1 time's offset, where `datetime.fromisoformat` refuses, truncates or
  overflows. So `at` is decoded as text and converted exactly as parse_request does.
- History keys: decoded as text and read through request's own date cache (`_DAYS`,
  `_day`), so "2026-W48-4" means what it means there.
- What msgspec skips (unknown fields) it checks less than json.loads: invalid UTF-8 and
  integers longer than Python's int-from-text limit pass there. Both are checked here.
- Depth: json.loads raises RecursionError past the interpreter's recursion limit (the
  route answers 400); bodies with more brackets than any widget body has are left to it.
- Duplicate keys: msgspec keeps the last, as json.loads does (struct fields and dicts).
- NaN/Infinity, lone surrogates (`"\\ud800"`), a BOM, control characters in strings:
  msgspec refuses them (json.loads takes some): None, the slow path decides.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import sys
from typing import Annotated

import msgspec

from membership import i18n
from membership.prompts.campaigns import MAX_HISTORY_DAYS, MAX_VIEWS
from membership.prompts.request import (
    _DAYS,
    _NO_PAGE,
    MAX_ARTICLES_PER_DAY,
    MAX_TAGS,
    READER,
    Page,
    PromptRequest,
    Seen,
    _at,
    _day,
    _new_tuple,
    _text,
)

__all__ = ["decode"]

_Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_ARTICLES_PER_DAY)]  # int: not bool, not 3.0


class _Seen(msgspec.Struct):
    campaign: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]  # in characters
    at: str  # text: converted as parse_request does (see the module's docstring)


class _Page(msgspec.Struct):
    # Text, any length: the lengths, "" and lower-casing go through request._text.
    section: str | None = None
    tags: list[str] | None = None
    referrer: str | None = None
    type: str | None = None


class _History(msgspec.Struct):
    articles: dict[str, _Count] = {}  # absent: {}; null: refused (as parse_request does)


class _Body(msgspec.Struct):
    reader: str
    locale: str | None = None
    page: _Page | None = None
    history: _History | None = None
    views: list[_Seen] | None = None
    dismissed: list[_Seen] | None = None
    member: str | None = None


_decode = msgspec.json.Decoder(_Body).decode

# json.loads recurses once per nested array or object and raises RecursionError past the
# interpreter's limit (1000, less the caller's frames). A body with fewer brackets than
# this cannot nest that deep; a widget body has one per view and dismissal (<= 200) and a
# handful more. Counting bytes is far cheaper than measuring the depth.
_MAX_BRACKETS = 300

_UTC = dt.UTC
_from_iso = dt.datetime.fromisoformat


def decode(raw: bytes) -> PromptRequest | None:
    """The body as a PromptRequest, decoded and validated in one pass by msgspec; None when
    msgspec refuses it or anything about it needs the full validator (the caller then runs
    json.loads + parse_request, which gives the exact error or the same answer)."""
    try:
        if not _plain(raw):
            return None
        body = _decode(raw)
        return _request(body)
    except Exception:  # msgspec's errors, ValueError/OverflowError of a conversion, ...
        return None


def _plain(raw: bytes) -> bool:
    """Nothing in the text json.loads would refuse that msgspec might take while skipping an
    unknown field: bytes that are not UTF-8, nesting too deep, a too long integer."""
    if not raw.isascii():
        raw.decode("utf-8")  # UnicodeDecodeError (a ValueError): decode() answers None
    # json.loads turns an integer of more digits than this into ValueError; a body with no
    # more digits than that in all (any body no longer than that) cannot hold one, and a
    # body with more (a heavy reader's, 200 times) is searched for so long a run of them.
    limit = sys.get_int_max_str_digits()
    if limit and len(raw) > limit:
        kept = raw.translate(None, _NOT_DIGITS_OR_OPENERS)  # one pass for both counts
        openers = kept.count(b"[") + kept.count(b"{")
        if openers > _MAX_BRACKETS:
            return False
        return len(kept) - openers <= limit or _digits(limit).search(raw) is None
    return raw.count(b"[") + raw.count(b"{") <= _MAX_BRACKETS


@functools.cache
def _digits(limit: int) -> re.Pattern[bytes]:
    return re.compile(rb"[0-9]{%d}" % (limit + 1))


_NOT_DIGITS_OR_OPENERS = bytes(c for c in range(256) if c not in b"0123456789[{")


def _request(body: _Body) -> PromptRequest | None:
    if not READER.match(body.reader):
        return None
    errors: list[str] = []  # request._text's; any entry: the slow path says what is wrong
    page = _page(body.page, errors)
    member = _text(body.member, "member", errors, 4096)
    if errors:
        return None
    articles = _articles(body.history)
    views = _seen(body.views)
    dismissed = _seen(body.dismissed)
    if articles is None or views is None or dismissed is None:
        return None
    try:
        locale = i18n.resolve_locale(body.locale)
    except i18n.CopyError:
        return None
    return PromptRequest(
        reader=body.reader,
        locale=locale,
        page=page,
        articles=articles,
        views=views,
        dismissed=dismissed,
        member_token=member,
    )


def _page(page: _Page | None, errors: list[str]) -> Page:
    if page is None:
        return _NO_PAGE
    # As request._page and _tags: length checked before lower-casing, tags cut then lowered.
    tags = () if page.tags is None else tuple(t.lower() for t in page.tags[:MAX_TAGS])
    return Page(
        section=_text(page.section, "page.section", errors, 100, lower=True),
        tags=tags,
        referrer=_text(page.referrer, "page.referrer", errors, 2000),
        type=_text(page.type, "page.type", errors, 40),
    )


def _articles(history: _History | None) -> dict[dt.date, int] | None:
    """As request._articles: keys through its date cache, the newest MAX_HISTORY_DAYS kept;
    None for a key that is not a date."""
    if history is None:
        return {}
    days: dict[dt.date, int] = {}
    known = _DAYS
    for key, n in history.articles.items():
        day = known.get(key)
        if day is None:
            day = _day(key)
            if day is None:
                return None
        days[day] = n
    if len(days) > MAX_HISTORY_DAYS:
        newest = sorted(days, reverse=True)[:MAX_HISTORY_DAYS]
        return {day: days[day] for day in newest}
    return days


def _seen(items: list[_Seen] | None) -> tuple[Seen, ...] | None:
    """As request._seen: each time with a zone, in UTC, newest first (a stable sort), the
    newest MAX_VIEWS kept; None for a time without a zone. fromisoformat's ValueError and
    astimezone's OverflowError reach decode(), which answers None."""
    if not items:
        return ()
    seen: list[Seen] = []
    append = seen.append
    for item in items:
        when = _from_iso(item.at)
        zone = when.tzinfo
        if zone is not _UTC:
            if zone is None:
                return None
            when = when.astimezone(_UTC)
        append(_new_tuple(Seen, (item.campaign, when)))
    seen.sort(key=_at, reverse=True)
    return tuple(seen[:MAX_VIEWS])
