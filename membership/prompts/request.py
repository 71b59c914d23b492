"""The body of `POST /v1/prompt`, decoded and validated into a frozen `PromptRequest` (pure).

`PromptBody` (a msgspec Struct) is the one definition of the body: `decode` checks a body
against it in one pass, the OpenAPI component is generated from it, and a refused body is
explained from it, naming the first bad field in declared order. What is kept and cut:
docs/prompts.md ("The decision"). A body msgspec refuses as JSON (NaN, a lone surrogate) is
read by json.loads and checked against the same Struct, so the text reads as json.loads
reads it; one json.loads would refuse never takes msgspec's pass (`_plain`)."""

from __future__ import annotations

import datetime as dt
import functools
import re
import sys
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter
from typing import Annotated, NamedTuple, Union, get_args, get_origin
from urllib.parse import urlsplit

import msgspec
from msgspec import Meta

from membership.core import i18n
from membership.http.bodies import BodyError, parse_json
from membership.prompts.campaigns import MAX_HISTORY_DAYS, MAX_VIEWS, UtcTime, utc_time
from membership.prompts.errors import DocumentError, join

MAX_TAGS = 50
MAX_ARTICLES_PER_DAY = 100_000


class RequestError(DocumentError):
    """A request that does not validate; the message names the field (`reader: ...`), or
    says how the text is not JSON (`code` "invalid_json")."""

    def __init__(self, errors: Sequence[str], code: str = "invalid_request") -> None:
        super().__init__(errors)
        self.code = code


class _once:
    """A computed attribute, kept in the instance once computed (as functools.cached_property,
    without the lock it takes on every read in Python 3.11: a decision reads these per
    campaign). Threads may race to compute it; each computes the same."""

    def __init__(self, compute: Callable) -> None:
        self.compute = compute
        self.name = compute.__name__
        self.__doc__ = compute.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        value = instance.__dict__[self.name] = self.compute(instance)
        return value


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

    @_once
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
            found = sum(filter(None, map(self.articles.get, _WINDOWS[today, days])))
            self._articles_memo[key] = found
        return found

    def views_of(self, campaign: str) -> Sequence[dt.datetime]:
        """When the campaign's prompt was seen, newest first."""
        return self._views_by_campaign.get(campaign, ())

    def dismissals_of(self, campaign: str) -> Sequence[dt.datetime]:
        """When the campaign's prompt was dismissed, newest first."""
        return self._dismissals_by_campaign.get(campaign, ())

    @_once
    def _articles_memo(self) -> dict[tuple[dt.date, int], int]:
        return {}

    # Grouped by campaign once: every campaign's frequency filters read only their own,
    # instead of scanning all 100 (x 20 campaigns).
    @_once
    def _views_by_campaign(self) -> dict[str, list[dt.datetime]]:
        return _by_campaign(self.views)

    @_once
    def _dismissals_by_campaign(self) -> dict[str, list[dt.datetime]]:
        return _by_campaign(self.dismissed)


class _Memo(dict):
    """`compute(key)`, remembered (a day's requests ask for the same few windows, dates and
    referrers); cleared when `held` are kept. Threads may race; each writes the same."""

    def __init__(self, compute: Callable, held: int) -> None:
        super().__init__()
        self.compute, self.held = compute, held

    def __missing__(self, key):
        value = self.compute(key)
        if len(self) >= self.held:
            self.clear()
        self[key] = value
        return value


# (today, days) -> the dates of that window: `today` and the `days` - 1 before it
_WINDOWS = _Memo(
    lambda key: tuple(key[0] - dt.timedelta(days=n) for n in range(max(key[1], 0))), 64
)


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
    """`https://www.T.co/x` -> `www.t.co`; a bare `t.co/x` too; None when there is none."""
    return _HOSTS[referrer] if referrer else None


def _referrer_host(referrer: str) -> str | None:
    try:
        parts = urlsplit(referrer if "//" in referrer else "//" + referrer)
        host = parts.hostname
    except ValueError:
        return None
    return (host.rstrip(".") or None) if host else None


_HOSTS = _Memo(_referrer_host, 4096)


# --- The body: one definition ---------------------------------------------------------
#
# The Structs below are the body's only definition. Each value's words for what is wrong
# with it are in its Meta's `extra`: `null` (a null where none is allowed; default NULL),
# `type` (another kind of value; default "expected text", "a list", "an object"), `invalid`
# (the right kind, out of bounds; default "expected at most N characters"); `read` converts
# text the Struct cannot check (dates, times), None for text it refuses.

NULL = "Field may not be null."  # marshmallow's words, kept
TEXT = "expected text"
READER_MESSAGE = "expected 8 to 64 of A-Z, a-z, 0-9, _ and -"
OBJECT = "expected an object"
LIST = "expected a list"
AT_MESSAGE = UtcTime.default_error_messages["invalid"]
ARTICLES_MESSAGE = "expected an object of YYYY-MM-DD: number of articles"
DATE_MESSAGE = "expected a date as YYYY-MM-DD"
COUNT_MESSAGE = f"expected a whole number from 0 to {MAX_ARTICLES_PER_DAY}"


def _parse_day(key: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(key) if len(key) == 10 else None
    except ValueError:
        return None


_DAYS = _Memo(_parse_day, 4096)


# What the document says of the text the Struct leaves to `_parse_day`, `utc_time` and
# i18n.resolve_locale (its `extra_json_schema`: the Struct itself does not check them, so
# a refused body keeps naming its first bad field as `_build` finds it). A history key is
# what date.fromisoformat reads in 10 characters: a real date (`format`) as 2026-11-25, or
# the week date 2026-W48-3 (the document leaves out week 53, which only some years have).
# A time is an RFC 3339 date-time (`format`) as datetime.fromisoformat reads it: an
# upper-case Z, no leap second, and not so near the calendar's ends that its offset takes
# it past them in UTC.
DAY_SCHEMA = {
    "anyOf": [
        {"format": "date", "pattern": r"^(?!0000)[0-9]{4}-[0-9]{2}-[0-9]{2}(?!\n)$"},
        {"pattern": r"^(?!0000)[0-9]{4}-W(?:0[1-9]|[1-4][0-9]|5[0-2])-[1-7](?!\n)$"},
    ]
}
AT_PATTERN = (
    r"^(?!(?:0001-01-01|9999-12-31).*[0-9][+-])"
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-5][0-9](?:\.[0-9]+)?"
    r"(?:Z|[+-][0-9]{2}:[0-9]{2})(?!\n)$"
)

_Section = Annotated[str, Meta(max_length=100)]
_Referrer = Annotated[str, Meta(max_length=2000)]
_PageType = Annotated[str, Meta(max_length=40)]
_Tags = Annotated[list[str], Meta(description=f"The first {MAX_TAGS} are kept")]
_Day = Annotated[str, Meta(extra={"read": _DAYS.__getitem__, "invalid": DATE_MESSAGE})]
_Count = Annotated[
    int,  # not a bool, not 3.0
    Meta(
        ge=0,
        le=MAX_ARTICLES_PER_DAY,
        extra=dict.fromkeys(("null", "type", "invalid"), COUNT_MESSAGE),
    ),
]
_Articles = Annotated[
    dict[_Day, _Count],
    Meta(
        description=f"YYYY-MM-DD (UTC) -> articles read; the newest {MAX_HISTORY_DAYS} are kept",
        extra_json_schema={"propertyNames": DAY_SCHEMA},
        extra={"type": ARTICLES_MESSAGE},
    ),
]
_Campaign = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=64,
        extra={"null": "missing", "invalid": "expected 1 to 64 characters"},
    ),
]
_At = Annotated[
    str,
    Meta(
        description="ISO-8601 with a zone",
        extra_json_schema={"format": "date-time", "pattern": AT_PATTERN},
        extra={"read": utc_time, "null": "missing", "type": AT_MESSAGE, "invalid": AT_MESSAGE},
    ),
]
# (?!\n): msgspec searches with the pattern, and `$` also matches before a final newline
_Reader = Annotated[
    str, Meta(pattern=r"^[A-Za-z0-9_-]{8,64}(?!\n)$", extra={"invalid": READER_MESSAGE})
]
_Member = Annotated[str, Meta(max_length=4096, description="A member token")]
_Locale = Annotated[
    str,
    Meta(
        description="A locale tag; en when absent",
        extra_json_schema={
            "pattern": f"^(?:{i18n.LOCALE_TAG.pattern})?(?!\\n)$",
            "maxLength": i18n.LOCALE_TAG_MAX,
        },
    ),
]


class PromptPage(msgspec.Struct):
    section: _Section | None = None
    tags: _Tags | None = None
    referrer: _Referrer | None = None
    type: _PageType | None = None


class PromptHistory(msgspec.Struct):
    articles: _Articles = {}


class PromptSeen(msgspec.Struct):
    campaign: _Campaign
    at: _At


_SeenList = Annotated[
    list[Annotated[PromptSeen, Meta(extra={"null": OBJECT})]],
    Meta(description=f"The newest {MAX_VIEWS} are kept"),
]


class PromptBody(msgspec.Struct):
    reader: _Reader
    locale: _Locale | None = None
    page: PromptPage | None = None
    history: PromptHistory | None = None
    views: _SeenList | None = None
    dismissed: _SeenList | None = None
    member: _Member | None = None


def schema_components(ref_template: str) -> tuple[dict, dict]:
    """The body's JSON Schema: its reference and the components it needs (OpenAPI)."""
    (ref,), components = msgspec.json.schema_components([PromptBody], ref_template=ref_template)
    return ref, components


# --- Decoding ---------------------------------------------------------------------------

_decode = msgspec.json.Decoder(PromptBody).decode


def decode(raw: bytes) -> PromptRequest:
    """A body as sent -> PromptRequest. RequestError names what is wrong: its `code` is
    `invalid_json` for text that is not JSON, `invalid_request` for a bad field."""
    if _plain(raw):
        try:
            body = _decode(raw)
        except msgspec.DecodeError:  # ValidationError too: parse_request says what is wrong
            pass
        else:
            return _build(body)
    try:
        data = parse_json(raw)
    except BodyError as exc:
        raise RequestError([str(exc)], code="invalid_json") from None
    return parse_request(data)


def parse_request(data: object) -> PromptRequest:
    """The JSON body, already decoded -> PromptRequest; RequestError names the first bad
    field (in the order of PromptBody's fields, nested ones in place)."""
    if not isinstance(data, dict):
        raise RequestError(["expected a JSON object"])
    try:
        body = msgspec.convert(data, PromptBody)
    except msgspec.ValidationError as exc:
        raise RequestError([_problem(data, PromptBody, "") or str(exc)]) from None
    return _build(body)


# json.loads recurses once per nested array or object and raises RecursionError past the
# interpreter's limit (1000, less the caller's frames). A body with fewer brackets than
# this cannot nest that deep; a widget body has one per view and dismissal (<= 200) and a
# handful more. Counting bytes is far cheaper than measuring the depth.
_MAX_BRACKETS = 300


def _plain(raw: bytes) -> bool:
    """Nothing in the text json.loads would refuse that msgspec might take while skipping an
    unknown field: bytes that are not UTF-8, nesting too deep, a too long integer."""
    if not raw.isascii():
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return False
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


# --- From the Struct to a PromptRequest ---------------------------------------------------

_NO_PAGE = Page()
_from_iso = dt.datetime.fromisoformat
_new_tuple = tuple.__new__  # Seen(...) without NamedTuple's Python-level __new__
_at = itemgetter(1)
_at_text = attrgetter("at")
_campaign = attrgetter("campaign")
_zone = attrgetter("tzinfo")
_ONLY_UTC = {dt.UTC}
_new_seen = functools.partial(_new_tuple, Seen)  # (campaign, at) -> Seen


def _build(body: PromptBody) -> PromptRequest:
    """What the Struct cannot check (dates, times, the locale; in that order, after every
    field it checks), the cuts, lower-casing, and "" as absent."""
    page = body.page
    if page is not None:
        page = Page(
            section=page.section.lower() or None if page.section else None,
            tags=tuple(t.lower() for t in page.tags[:MAX_TAGS]) if page.tags else (),
            referrer=page.referrer or None,
            type=page.type or None,
        )
    articles = _articles(body.history.articles) if body.history is not None else {}
    views = _seen(body.views, "views")
    dismissed = _seen(body.dismissed, "dismissed")
    try:
        locale = i18n.resolve_locale(body.locale)
    except i18n.CopyError as exc:
        raise RequestError([f"locale: {exc}"]) from None
    return PromptRequest(
        reader=body.reader,
        locale=locale,
        page=page or _NO_PAGE,
        articles=articles,
        views=views,
        dismissed=dismissed,
        member_token=body.member or None,
    )


def _articles(counts: dict[str, int]) -> dict[dt.date, int]:
    """{"YYYY-MM-DD": n} -> {date: n}, the newest MAX_HISTORY_DAYS dates kept."""
    days = {_DAYS[key]: n for key, n in counts.items()}
    if None in days:
        bad = next(key for key in counts if _DAYS[key] is None)
        raise RequestError([f"history.articles.{bad}: {DATE_MESSAGE}"])
    if len(days) > MAX_HISTORY_DAYS:
        newest = sorted(days, reverse=True)[:MAX_HISTORY_DAYS]
        return {day: days[day] for day in newest}
    return days


def _seen(items: list[PromptSeen] | None, name: str) -> tuple[Seen, ...]:
    """The items as Seen, each time in UTC (as `utc_time` reads it), newest first (a stable
    sort), the newest MAX_VIEWS kept. Up to 100 items a list: read all at once when every
    time is already in UTC ("Z", as the widget writes them), else one by one (`_utc_at`)."""
    if not items:
        return ()
    try:
        times = list(map(_from_iso, map(_at_text, items)))
    except (ValueError, OverflowError):
        times = None
    if times is None or set(map(_zone, times)) != _ONLY_UTC:
        times = [_utc_at(item.at, f"{name}[{i}].at") for i, item in enumerate(items)]
    seen = list(map(_new_seen, zip(map(_campaign, items), times, strict=True)))
    seen.sort(key=_at, reverse=True)
    return tuple(seen[:MAX_VIEWS])


def _utc_at(text: str, where: str) -> dt.datetime:
    """One time in UTC (`utc_time`); a RequestError names `where` it is bad."""
    when = utc_time(text)
    if when is None:
        raise RequestError([f"{where}: {AT_MESSAGE}"])
    return when


# --- What is wrong with a body the Struct refuses ----------------------------------------


def _problem(value: object, hint: object, path: str) -> str | None:
    """The first thing wrong with `value` as `hint` (a type of PromptBody, walked in the
    order of its fields), as `path: message`; None when nothing is."""
    base, whole, optional, meta = _parts(hint)
    extra = meta.extra or {} if meta else {}
    if value is None:
        return None if optional else _say(path, extra.get("null", NULL))
    if isinstance(base, type) and issubclass(base, msgspec.Struct):
        if not isinstance(value, dict):
            return _say(path, extra.get("type", OBJECT))
        for f in msgspec.structs.fields(base):
            where = join(path, f.encode_name)
            if f.encode_name in value:
                found = _problem(value[f.encode_name], f.type, where)
            else:
                found = _say(where, "missing") if f.required else None
            if found:
                return found
        return None
    origin = get_origin(base)
    if origin is list or origin is dict:
        if not isinstance(value, origin):
            return _say(path, extra.get("type", LIST if origin is list else OBJECT))
        if origin is list:
            (item,) = get_args(base)
            found = (_problem(v, item, join(path, i)) for i, v in enumerate(value))
        else:
            key, item = get_args(base)
            found = (
                _problem(k, key, f"{path}.{k}") or _problem(v, item, f"{path}.{k}")
                for k, v in value.items()
            )
        return next(filter(None, found), None)
    try:  # a leaf: text or a whole number
        msgspec.convert(value, base)
    except msgspec.ValidationError:
        return _say(path, extra.get("type", TEXT))
    read = extra.get("read")
    try:
        msgspec.convert(value, whole)
        if read is None or read(value) is not None:
            return None
    except msgspec.ValidationError:
        pass
    return _say(path, extra.get("invalid") or f"expected at most {meta.max_length} characters")


def _parts(hint: object) -> tuple[object, object, bool, Meta | None]:
    """`Annotated[X, Meta(...)] | None` -> (X, Annotated[X, Meta(...)], optional, the Meta)."""
    args = get_args(hint) if get_origin(hint) in (Union, types.UnionType) else (hint,)
    kept = [a for a in args if a is not type(None)]
    (whole,) = kept
    if get_origin(whole) is Annotated:
        base, *metas = get_args(whole)
        return base, whole, len(kept) < len(args), metas[-1]
    return whole, whole, len(kept) < len(args), None


def _say(path: str, message: str) -> str:
    return f"{path}: {message}" if path else message
