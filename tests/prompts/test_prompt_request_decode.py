"""The body of /v1/prompt as sent (membership.prompts.request.decode): bytes in, a
PromptRequest or a RequestError naming the first bad field (or saying how the text is not
JSON) out. One definition, the PromptBody Struct: msgspec's one pass, read as json.loads
reads the text, explained in the order of the Struct's fields, and the OpenAPI component
generated from it.
"""

from __future__ import annotations

import datetime as dt
import json
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from membership.prompts.campaigns import MAX_VIEWS
from membership.prompts.request import (
    AT_MESSAGE,
    MAX_TAGS,
    Page,
    PromptBody,
    PromptRequest,
    RequestError,
    decode,
    parse_request,
    schema_components,
)

READER = "r_3f9c2a1b7d4e"
AT = "2026-11-25T10:00:00Z"
OK = None  # decoded
COUNT = "expected a whole number from 0 to 100000"
NOT_A_DATE = "expected a date as YYYY-MM-DD"
READER_MESSAGE = "reader: expected 8 to 64 of A-Z, a-z, 0-9, _ and -"


def outcome(raw: bytes) -> str | tuple[str, str] | None:
    """None: decoded; the message of an invalid_request; (code, message) of an invalid_json."""
    try:
        decode(raw)
    except RequestError as exc:
        return str(exc) if exc.code == "invalid_request" else (exc.code, str(exc))
    return OK


def with_reader(**fields) -> bytes:
    return json.dumps({"reader": READER, **fields}).encode()


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2026-11-25T10:00:00Z", OK),
        ("2026-11-25T10:00:00+02:00", OK),
        ("2026-11-25 10:00:00Z", OK),
        ("2026-11-25x10:00:00Z", OK),  # fromisoformat takes any separator
        ("2026-11-25t10:00:00z", AT_MESSAGE),  # msgspec's datetime would take it
        ("2026-11-25T10:00:00z", AT_MESSAGE),
        ("2026-11-25T10:00:00.9999999Z", OK),  # truncated, as fromisoformat does
        ("2026-11-25T23:59:60Z", AT_MESSAGE),  # leap second
        ("2026-11-25T10:00:00+02:00:30", OK),  # offset with seconds
        ("2026-11-25T10:00:00+0200", OK),
        ("0001-01-01T00:00:00+01:00", AT_MESSAGE),  # no UTC equivalent: OverflowError
        ("0001-01-01T00:00:00Z", OK),
        ("2026-11-25T10:00:00", AT_MESSAGE),  # naive
        ("2026-11-25", AT_MESSAGE),
        ("2026-11-25T10Z", OK),
        ("yesterday", AT_MESSAGE),
    ],
)
def test_times_are_read_as_fromisoformat_reads_them(at, expected):
    got = outcome(with_reader(views=[{"campaign": "c1", "at": at}]))
    assert got == (expected and f"views[0].at: {expected}")


def test_times_more_precise_than_microseconds_are_truncated_not_rounded():
    got = decode(with_reader(views=[{"campaign": "c", "at": "2026-11-25T10:00:00.9999999Z"}]))
    assert got.views[0].at == dt.datetime(2026, 11, 25, 10, 0, 0, 999999, tzinfo=dt.UTC)


def test_times_in_other_zones_are_converted_to_utc_and_sorted_newest_first_stably():
    views = [
        {"campaign": "a", "at": "2026-11-25T10:00:00Z"},
        {"campaign": "b", "at": "2026-11-25T12:00:00+02:00"},  # the same moment as a
        {"campaign": "c", "at": "2026-11-25T11:00:00Z"},
    ]
    got = decode(with_reader(views=views))
    assert [s.campaign for s in got.views] == ["c", "a", "b"]
    assert all(s.at.tzinfo is dt.UTC for s in got.views)


@pytest.mark.parametrize(
    ("articles", "expected"),
    [
        ('{"2026-11-25":1,"2026-11-24":2,"2026-11-25":3}', OK),  # the last of a key wins
        ('{"2026-11-25":-1,"2026-11-25":3}', OK),
        ('{"2026-11-25":3,"2026-11-25":-1}', f"history.articles.2026-11-25: {COUNT}"),
        ('{"2026-W48-3":1}', OK),  # date.fromisoformat's
        ('{"20261125":1}', f"history.articles.20261125: {NOT_A_DATE}"),
        ('{"2026-13-01":1}', f"history.articles.2026-13-01: {NOT_A_DATE}"),
        ('{"2026-11-25":3.0}', f"history.articles.2026-11-25: {COUNT}"),
        ('{"2026-11-25":1e2}', f"history.articles.2026-11-25: {COUNT}"),
        ('{"2026-11-25":true}', f"history.articles.2026-11-25: {COUNT}"),
        ('{"2026-11-25":100001}', f"history.articles.2026-11-25: {COUNT}"),
        ('{"2026-11-25":100000}', OK),
        ('{"2026-11-25":-0}', OK),
        ('{"2026-11-25":NaN}', f"history.articles.2026-11-25: {COUNT}"),  # json.loads reads NaN
        ('{"2026-11-25":null}', f"history.articles.2026-11-25: {COUNT}"),
        ('{"2026-11-25":99999999999999999999999}', f"history.articles.2026-11-25: {COUNT}"),
        (
            '{"2026-11-01":-1,"2026-13-01":1}',
            f"history.articles.2026-11-01: {COUNT}",
        ),  # the first bad key
        ('{"2026-13-01":1,"2026-11-01":-1}', f"history.articles.2026-13-01: {NOT_A_DATE}"),
        ("null", "history.articles: Field may not be null."),
        ("[]", "history.articles: expected an object of YYYY-MM-DD: number of articles"),
    ],
)
def test_history(articles, expected):
    raw = f'{{"reader":"{READER}","history":{{"articles":{articles}}}}}'.encode()
    assert outcome(raw) == expected


def test_the_same_day_twice_keeps_the_last_count():
    raw = f'{{"reader":"{READER}","history":{{"articles":{{"2026-W48-3":1,"2026-11-25":2}}}}}}'
    assert decode(raw.encode()).articles == {dt.date(2026, 11, 25): 2}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # json.loads takes these; msgspec alone would not
        (b'{"reader":"r_3f9c2a1b7d4e","x":NaN}', OK),
        (b'{"reader":"r_3f9c2a1b7d4e","x":[Infinity,-Infinity]}', OK),
        (b'{"reader":"r_3f9c2a1b7d4e","x":"\\ud800"}', OK),  # a lone surrogate, escaped
        (b'{"reader":"r_3f9c2a1b7d4e","x":1e400,"y":[null,true,{"z":-0.5e-3}]}', OK),
        (b' \t\r\n{"reader":"r_3f9c2a1b7d4e"}\n ', OK),
        # json.loads refuses these, even in a field msgspec would skip
        (b'{"reader":"r_3f9c2a1b7d4e","x":"\xff"}', ("invalid_json", "body: not UTF-8 text")),
        (
            b'{"reader":"r_3f9c2a1b7d4e","x":"\xed\xa0\x80"}',
            ("invalid_json", "body: not UTF-8 text"),
        ),
        (
            b'\xef\xbb\xbf{"reader":"r_3f9c2a1b7d4e"}',
            (
                "invalid_json",
                "body: not JSON (Unexpected UTF-8 BOM (decode using utf-8-sig) at character 0)",
            ),
        ),
        (
            b'{"reader":"r_3f9c2a1b7d4e","x":"a\tb"}',
            ("invalid_json", "body: not JSON (Invalid control character at at character 33)"),
        ),
        (
            b'{"reader":"r_3f9c2a1b7d4e"}\x0c',
            ("invalid_json", "body: not JSON (Extra data at character 27)"),
        ),
        (
            b'{"reader":"r_3f9c2a1b7d4e",}',
            (
                "invalid_json",
                "body: not JSON (Expecting property name enclosed in double quotes"
                " at character 27)",
            ),
        ),
        (b"", ("invalid_json", "body: not JSON (Expecting value at character 0)")),
        (
            b'{"reader":"r_3f9c2a1b7d4e","x":' + b"7" * 4301 + b"}",
            ("invalid_json", "body: not JSON"),  # past the interpreter's int-from-text limit
        ),
        (
            b'{"reader":"r_3f9c2a1b7d4e","x":' + b"[" * 5000 + b"]" * 5000 + b"}",
            ("invalid_json", "body: nested too deeply"),
        ),
        # the body itself
        (b'{"reader":"r_3f9c2a1b7d4e\\n"}', READER_MESSAGE),
        (b'["r_3f9c2a1b7d4e"]', "expected a JSON object"),
        (b"null", "expected a JSON object"),
        (b"{}", "reader: missing"),
        # a field sent twice: the last counts, as json.loads reads it
        (b'{"reader":"first1234","reader":"second12"}', OK),
        (b'{"reader":"first1234","reader":"bad"}', READER_MESSAGE),
        (b'{"reader":3,"reader":"second12"}', OK),
        # several things wrong: the first in the order of the fields, whatever the text's
        (b'{"views":3,"reader":5}', "reader: expected text"),
        (b'{"views":[{"at":5}],"page":{"tags":[null]}}', "reader: missing"),
        (
            b'{"reader":"r_3f9c2a1b7d4e","views":[{"at":5,"campaign":7}]}',
            "views[0].campaign: expected text",
        ),
        (
            b'{"reader":"r_3f9c2a1b7d4e","views":3,"history":{"articles":{"2026-13-01":1}}}',
            f"history.articles.2026-13-01: {NOT_A_DATE}",
        ),
        (b'{"reader":"r_3f9c2a1b7d4e","locale":"??","views":3}', "views: expected a list"),
        (
            b'{"reader":"r_3f9c2a1b7d4e","member":3,"page":{"type":4,"section":5}}',
            "page.section: expected text",
        ),
        (
            b'{"reader":"r_3f9c2a1b7d4e","locale":"??","views":[{"campaign":"c","at":"x"}]}',
            f"views[0].at: {AT_MESSAGE}",
        ),
    ],
)
def test_bodies(raw, expected):
    got = outcome(raw)
    if isinstance(expected, tuple) and expected[1] == "body: not JSON":
        assert got[0] == "invalid_json" and got[1].startswith("body: not JSON")
    else:
        assert got == expected


def test_long_integers_follow_the_interpreters_limit():
    raw = b'{"reader":"r_3f9c2a1b7d4e","x":' + b"7" * 5000 + b"}"
    before = sys.get_int_max_str_digits()
    try:
        sys.set_int_max_str_digits(0)  # no limit: json.loads takes it, and so does decode
        assert outcome(raw) == OK
    finally:
        sys.set_int_max_str_digits(before)
    assert outcome(raw)[0] == "invalid_json"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"page": None}, OK),
        ({"page": {}}, OK),
        ({"page": {"layout": 3}}, OK),
        ({"page": {"section": None, "tags": None, "referrer": None, "type": None}}, OK),
        ({"page": {"section": "", "referrer": "", "type": ""}}, OK),
        ({"page": {"section": "x" * 100}}, OK),
        ({"page": {"section": "x" * 101}}, "page.section: expected at most 100 characters"),
        ({"page": {"referrer": "r" * 2001}}, "page.referrer: expected at most 2000 characters"),
        ({"page": {"type": "t" * 41}}, "page.type: expected at most 40 characters"),
        ({"page": {"tags": ["T"] * (MAX_TAGS + 2)}}, OK),
        ({"page": {"tags": ["a", None]}}, "page.tags[1]: Field may not be null."),
        ({"page": {"tags": ["a", 3]}}, "page.tags[1]: expected text"),
        ({"page": {"tags": "kursk"}}, "page.tags: expected a list"),
        ({"page": []}, "page: expected an object"),
        ({"history": None}, OK),
        ({"history": {}}, OK),
        ({"history": {"weeks": 3}}, OK),
        ({"history": 3}, "history: expected an object"),
        ({"views": None, "dismissed": []}, OK),
        ({"views": {}}, "views: expected a list"),
        ({"views": [{"campaign": "c" * 64, "at": AT}]}, OK),
        ({"views": [{"campaign": "😀" * 64, "at": AT}]}, OK),  # characters, not bytes
        (
            {"views": [{"campaign": "c" * 65, "at": AT}]},
            "views[0].campaign: expected 1 to 64 characters",
        ),
        ({"views": [{"campaign": "", "at": AT}]}, "views[0].campaign: expected 1 to 64 characters"),
        ({"views": [{"campaign": "c", "at": AT, "other": 1}]}, OK),
        ({"views": [{"campaign": "c"}]}, "views[0].at: missing"),
        ({"views": [{"campaign": "c", "at": None}]}, "views[0].at: missing"),
        ({"views": [{"campaign": None, "at": AT}]}, "views[0].campaign: missing"),
        ({"views": [{"campaign": "c", "at": AT}, 3]}, "views[1]: expected an object"),
        ({"dismissed": [{"campaign": "c", "at": AT}, None]}, "dismissed[1]: expected an object"),
        ({"member": ""}, OK),
        ({"member": "m" * 4096}, OK),
        ({"member": "m" * 4097}, "member: expected at most 4096 characters"),
        ({"member": 3}, "member: expected text"),
        ({"locale": "uk-UA"}, OK),
        ({"locale": ""}, OK),
        ({"locale": None}, OK),
        ({"locale": "??"}, "locale: expected a locale tag such as en or uk"),
        ({"locale": 3}, "locale: expected text"),
        ({"reader": None}, "reader: Field may not be null."),
        ({"reader": 12345678}, "reader: expected text"),
        ({"reader": "r_3f9c2a1b7d4é"}, READER_MESSAGE),
    ],
)
def test_fields(fields, expected):
    assert outcome(with_reader(**fields)) == expected


def test_an_empty_page_is_the_default_page():
    for page in (None, {}, {"layout": 3}, {"section": ""}):
        assert decode(with_reader(page=page)).page == Page()


def test_the_cuts():
    start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    views = [
        {"campaign": f"c{i % 3}", "at": (start + dt.timedelta(minutes=i)).isoformat()}
        for i in range(MAX_VIEWS + 30)
    ]
    history = {(start.date() - dt.timedelta(days=d)).isoformat(): 1 for d in range(130)}
    got = decode(with_reader(views=views, dismissed=views[::-1], history={"articles": history}))
    assert len(got.views) == len(got.dismissed) == MAX_VIEWS
    assert len(got.articles) == 90 and max(got.articles) == start.date()


def test_the_bench_body():
    now = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
    views = [
        {
            "campaign": f"campaign-{i % 20:02d}",
            "at": (now - dt.timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        for i in range(50)
    ]
    body = {
        "reader": "r_" + "0a1b2c3d4e5f6789",
        "locale": "uk",
        "page": {"section": "War", "tags": ["Kursk", "kyiv"], "referrer": "https://t.co/x"},
        "history": {
            "articles": {(now.date() - dt.timedelta(days=d)).isoformat(): 3 for d in range(55)}
        },
        "views": views,
        "dismissed": views[:3],
    }
    got = decode(json.dumps(body).encode())
    assert got.page == Page(section="war", tags=("kursk", "kyiv"), referrer="https://t.co/x")
    assert len(got.articles) == 55 and len(got.views) == 50
    assert got == parse_request(body)


# --- Random bodies ------------------------------------------------------------------------

WIDGET_TIMES = st.builds(
    lambda at, fmt: at.strftime(fmt),
    st.datetimes(min_value=dt.datetime(2025, 1, 1), max_value=dt.datetime(2027, 1, 1)),
    st.sampled_from(["%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%S+02:00"]),
)
widget_seen = st.lists(
    st.fixed_dictionaries(
        {
            "campaign": st.integers(0, 30).map(lambda i: f"campaign-{i:02d}")
            | st.text(min_size=1, max_size=64),
            "at": WIDGET_TIMES,
        }
    ),
    max_size=110,
)
widget_bodies = st.fixed_dictionaries(
    {
        "reader": st.from_regex(r"[A-Za-z0-9_-]{8,64}", fullmatch=True),
        "locale": st.sampled_from(["en", "uk", "uk-UA", "en-GB", "de", ""]),
        "page": st.fixed_dictionaries(
            {
                "section": st.sampled_from(["war", "Politics", "", "culture"]),
                "tags": st.lists(st.text(max_size=20), max_size=60),
                "referrer": st.sampled_from(["https://t.co/x", "news.example/a", ""]),
            }
        ),
        "history": st.fixed_dictionaries(
            {
                "articles": st.dictionaries(
                    st.integers(0, 120).map(
                        lambda d: (dt.date(2026, 11, 25) - dt.timedelta(days=d)).isoformat()
                    ),
                    st.integers(0, 100_000),
                    max_size=100,
                )
            }
        ),
        "views": widget_seen,
        "dismissed": widget_seen,
    }
)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(widget_bodies, st.booleans())
def test_widget_bodies_are_read_whole(body, ascii_only):
    got = decode(json.dumps(body, ensure_ascii=ascii_only).encode())
    assert isinstance(got, PromptRequest) and got == parse_request(body)
    assert got.page.section == (body["page"]["section"].lower() or None)
    assert got.page.tags == tuple(t.lower() for t in body["page"]["tags"][:MAX_TAGS])
    for seen in (got.views, got.dismissed):
        assert len(seen) <= MAX_VIEWS
        assert all(s.at.tzinfo is dt.UTC for s in seen)
        assert [s.at for s in seen] == sorted((s.at for s in seen), reverse=True)
    assert len(got.articles) <= 90


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
mangled_bodies = st.fixed_dictionaries(
    {},
    optional={
        "reader": st.sampled_from([READER, "short", None, 3]) | json_values,
        "locale": json_values,
        "page": json_values
        | st.fixed_dictionaries({}, optional={"section": json_values, "tags": json_values}),
        "history": json_values | st.fixed_dictionaries({}, optional={"articles": json_values}),
        "views": json_values
        | st.lists(
            st.fixed_dictionaries({}, optional={"campaign": json_values, "at": json_values})
        ),
        "member": json_values,
    },
)


@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
@given(mangled_bodies, st.integers(0, 200), st.binary(max_size=3))
def test_any_body_is_decoded_or_refused_by_name_never_an_exception(body, cut, junk):
    raw = json.dumps(body).encode()
    for text in (raw, raw[:cut] + junk + raw[cut:]):
        try:
            decode(text)
        except RequestError as exc:
            assert exc.code in ("invalid_json", "invalid_request") and str(exc)


# --- The OpenAPI component -----------------------------------------------------------------


def test_the_openapi_component_is_generated_from_the_struct():
    ref, components = schema_components("#/components/schemas/{name}")
    assert ref == {"$ref": "#/components/schemas/PromptBody"}
    body = components["PromptBody"]
    assert body["required"] == ["reader"]
    assert list(body["properties"]) == list(PromptBody.__struct_fields__)
    assert body["properties"]["reader"]["pattern"] == r"^[A-Za-z0-9_-]{8,64}(?!\n)$"
    seen = components["PromptSeen"]
    assert seen["required"] == ["campaign", "at"]
    assert seen["properties"]["campaign"] == {"type": "string", "minLength": 1, "maxLength": 64}
    counts = components["PromptHistory"]["properties"]["articles"]["additionalProperties"]
    assert counts == {"type": "integer", "minimum": 0, "maximum": 100_000}
