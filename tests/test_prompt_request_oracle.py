"""The hand-written request validator against the marshmallow schema it replaced.

`membership.prompts.request.parse_request` validates by hand (it runs on every page view);
the schema below is the one it replaced, kept here as an independent oracle: over random
bodies, valid and not, both give the same PromptRequest or the same error lines in the
same order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from marshmallow import EXCLUDE, Schema, ValidationError, validate
from marshmallow import fields as mf

from membership import i18n
from membership.prompts.campaigns import MAX_HISTORY_DAYS, MAX_VIEWS, UtcTime, utc_time
from membership.prompts.errors import flatten
from membership.prompts.request import (
    MAX_ARTICLES_PER_DAY,
    MAX_TAGS,
    READER,
    Page,
    PromptRequest,
    RequestError,
    Seen,
    parse_request,
)

# --- The oracle: the marshmallow schema /v1/prompt used before ---------------------------


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


_SCHEMA = _RequestSchema()


def oracle_parse(data: object) -> PromptRequest:
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


# --- Random bodies, good and bad at every level ---------------------------------------------

ABSENT = object()
TIMES = [
    "2026-11-25T10:00:00Z",
    "2026-11-25T10:00:00+02:00",
    "2026-11-24T23:59:59.5-05:00",
    "2026-11-25T10:00:00",  # no zone
    "0001-01-01T00:00:00+01:00",  # no UTC equivalent
    "yesterday",
    "",
]
DATES = ["2026-11-25", "2026-11-24", "2025-01-01", "2026-13-01", "20261125", "2026-W48-3", "x"]


def _maybe(values):
    """A field: absent, null, or one of `values`."""
    return st.one_of(st.just(ABSENT), st.none(), values)


texts = st.one_of(
    st.sampled_from(["", "War", "kursk", "https://t.co/x", "x" * 101, "y" * 2001]),
    st.text(max_size=12),
    st.integers(),
    st.binary(max_size=4),
    st.lists(st.just("a"), max_size=1),
)
readers = st.one_of(
    st.from_regex(READER, fullmatch=True),
    st.sampled_from(["short", "r" * 65, "r_3f9c2a1b!", "r_3f9c2a1b\n", "r_3f9c2a1b7d4e"]),
    st.integers(),
    st.binary(min_size=8, max_size=9),
)
seen_items = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "campaign": st.one_of(
                st.none(), st.sampled_from(["c1", "c2", "", "c" * 65]), st.integers()
            ),
            "at": st.one_of(st.none(), st.sampled_from(TIMES), st.integers()),
            "other": st.integers(),
        },
    ),
    st.sampled_from([3, None, [], "x"]),
)
seen_lists = st.one_of(
    st.lists(seen_items, max_size=5),
    st.lists(
        st.fixed_dictionaries({"campaign": st.just("c1"), "at": st.sampled_from(TIMES[:3])}),
        min_size=98,
        max_size=104,
    ),
    st.sampled_from([{}, "x", 3]),
)
articles = st.one_of(
    st.dictionaries(
        st.sampled_from(DATES),
        st.one_of(
            st.integers(-1, 3),
            st.just(MAX_ARTICLES_PER_DAY + 1),
            st.booleans(),
            st.text(max_size=1),
        ),
        max_size=4,
    ),
    st.dictionaries(
        st.integers(0, 120).map(
            lambda d: (dt.date(2026, 11, 25) - dt.timedelta(days=d)).isoformat()
        ),
        st.integers(0, 5),
        min_size=85,
        max_size=100,
    ),
    st.sampled_from([[], "x", 3]),
)
pages = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "section": _maybe(texts),
            "tags": _maybe(
                st.one_of(
                    st.lists(
                        st.one_of(st.sampled_from(["Kursk", "kyiv"]), st.none(), st.integers()),
                        max_size=3,
                    ),
                    st.lists(st.just("T"), min_size=49, max_size=52),
                    st.sampled_from(["kursk", {"a": 1}, 3]),
                    st.tuples(st.just("a")),
                )
            ),
            "referrer": _maybe(texts),
            "type": _maybe(texts),
            "layout": st.integers(),
        },
    ),
    st.sampled_from([[], "x", 3]),
)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "reader": st.one_of(st.none(), readers),
        "locale": st.one_of(
            st.none(), st.sampled_from(["uk", "uk-UA", "de", "", "??", "en_GB"]), st.integers()
        ),
        "page": st.one_of(st.none(), pages),
        "history": st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {}, optional={"articles": st.one_of(st.none(), articles), "weeks": st.integers()}
            ),
            st.sampled_from([[], 3]),
        ),
        "views": st.one_of(st.none(), seen_lists),
        "dismissed": st.one_of(st.none(), seen_lists),
        "member": st.one_of(st.none(), texts, st.just("m" * 4097)),
        "new_field": st.integers(),
    },
)


def _drop_absent(value):
    if isinstance(value, dict):
        return {k: _drop_absent(v) for k, v in value.items() if v is not ABSENT}
    return value


def _outcome(parse, body):
    try:
        return parse(body)
    except RequestError as exc:
        return exc.errors


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies.map(_drop_absent), st.booleans())
@example(
    {"reader": "r_3f9c2a1b7d4e", "views": [{"campaign": "c", "at": "0001-01-01T00:00:00+01:00"}]},
    True,
)
def test_the_hand_written_validator_answers_as_the_schema(body, valid_reader):
    if valid_reader and not isinstance(body.get("reader"), str):
        body = {**body, "reader": "r_3f9c2a1b7d4e"}  # so later fields are reached and compared
    assert _outcome(parse_request, body) == _outcome(oracle_parse, body)


def test_not_a_mapping_is_refused_by_both():
    for body in ([], "x", None, 3):
        assert _outcome(parse_request, body) == ["expected a JSON object"]


def test_the_cuts_agree_at_their_edges():
    today = dt.date(2026, 11, 25)
    start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    for n in (89, 90, 91, 100, 101, 130):
        history = {(today - dt.timedelta(days=d)).isoformat(): d % 4 for d in range(n)}
        views = [
            {"campaign": f"c{i % 3}", "at": (start + dt.timedelta(minutes=i)).isoformat()}
            for i in range(n)
        ]
        body = {
            "reader": "r_3f9c2a1b7d4e",
            "history": {"articles": history},
            "views": views,
            "dismissed": views[::-1],
        }
        assert parse_request(body) == oracle_parse(body)
