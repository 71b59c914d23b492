"""The msgspec fast path of /v1/prompt's body against the validator it stands in for.

`membership.prompts.wire.decode(raw)` either answers None (the caller falls back to
json.loads + parse_request) or a PromptRequest equal to what that slow path gives. Over
random bodies, well-formed or not, serialized and then mangled as text, the answer is
never a different one; for the bodies the widget sends it is never None; and each way
msgspec and json.loads/fromisoformat part company is pinned down in a table.
"""

from __future__ import annotations

import datetime as dt
import json
import sys

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from membership.prompts.campaigns import MAX_VIEWS
from membership.prompts.request import (
    MAX_TAGS,
    READER,
    Page,
    PromptRequest,
    RequestError,
    parse_request,
)
from membership.prompts.wire import _MAX_BRACKETS, decode
from tests.test_prompt_request_oracle import TIMES, _drop_absent
from tests.test_prompt_request_oracle import bodies as oracle_bodies

NOT_JSON = "not JSON"
READER_OK = "r_3f9c2a1b7d4e"


def slow(raw: bytes) -> object:
    """What the route does without the fast path: a PromptRequest, the error lines, or
    NOT_JSON (a 400 before validation: not UTF-8, not JSON, nested too deeply)."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        return NOT_JSON
    try:
        return parse_request(data)
    except RequestError as exc:
        return exc.errors


def check(raw: bytes) -> PromptRequest | None:
    """decode(raw), checked against the slow path whenever it answers."""
    got = decode(raw)
    if got is not None:
        want = slow(raw)
        assert isinstance(want, PromptRequest), (raw[:300], want)
        assert got == want
        # Stricter than ==: aware datetimes compare equal across zones; these must be UTC.
        assert repr(got) == repr(want)
        for seen in (*got.views, *got.dismissed):
            assert seen.at.tzinfo is dt.UTC
    return got


def body_bytes(body: dict, **kw) -> bytes:
    return json.dumps(body, **kw).encode()


def with_reader(**fields) -> bytes:
    return body_bytes({"reader": READER_OK, **fields})


# --- Random bodies -----------------------------------------------------------------------

# The widget's: what bench/prompt.py's prompt_body sends, and a little around it.
WIDGET_TIMES = st.builds(
    lambda at, fmt: at.strftime(fmt),
    st.datetimes(min_value=dt.datetime(2025, 1, 1), max_value=dt.datetime(2027, 1, 1)),
    st.sampled_from(["%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%S+02:00"]),
)
widget_seen = st.lists(
    st.fixed_dictionaries(
        {
            "campaign": st.one_of(
                st.integers(0, 30).map(lambda i: f"campaign-{i:02d}"), st.text(min_size=1)
            ).filter(lambda c: len(c) <= 64 and not any(0xD800 <= ord(x) <= 0xDFFF for x in c)),
            "at": WIDGET_TIMES,
        }
    ),
    max_size=110,
)
safe_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30
)  # no lone surrogates: msgspec refuses them (None), json.loads does not
widget_bodies = st.fixed_dictionaries(
    {
        "reader": st.from_regex(READER, fullmatch=True),
        "locale": st.sampled_from(["en", "uk", "uk-UA", "en-GB", "de", ""]),
        "page": st.fixed_dictionaries(
            {
                "section": st.sampled_from(["war", "Politics", "", "culture"]),
                "tags": st.lists(safe_text, max_size=MAX_TAGS + 3),
                "referrer": st.sampled_from(["https://t.co/x", "", "news.example/a?b=1"]),
                "type": st.sampled_from(["article", "live", ""]),
            }
        ),
        "history": st.fixed_dictionaries(
            {
                "articles": st.dictionaries(
                    st.integers(0, 120).map(
                        lambda d: (dt.date(2026, 11, 25) - dt.timedelta(days=d)).isoformat()
                    ),
                    st.integers(0, 6),
                    max_size=100,
                )
            }
        ),
        "views": widget_seen,
        "dismissed": widget_seen,
    },
    optional={"member": safe_text, "layout": st.integers()},
)


def _jsonable(value):
    """The oracle's bodies hold bytes and tuples (for parse_request called directly): as
    JSON text, bytes become text."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return value


any_bodies = st.one_of(
    widget_bodies,
    st.tuples(oracle_bodies.map(_drop_absent), st.booleans()).map(
        lambda b: _jsonable({**b[0], "reader": READER_OK} if b[1] else b[0])
    ),
)


@st.composite
def texts(draw, bodies=any_bodies) -> bytes:
    """A body serialized as the widget would, or not, then maybe mangled as text."""
    body = draw(bodies)
    text = json.dumps(
        body,
        ensure_ascii=draw(st.booleans()),
        separators=draw(st.sampled_from([(",", ":"), (", ", ": "), (",\n", " :\t")])),
    )
    for _ in range(draw(st.integers(0, 3))):
        text = draw(st.sampled_from(MANGLES))(draw, text)
    raw = text.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 9)) == 0:  # a few random bytes
        at = draw(st.integers(0, len(raw)))
        raw = (
            raw[:at] + draw(st.binary(min_size=1, max_size=3)) + raw[at + draw(st.integers(0, 2)) :]
        )
    return raw


def _replace(old: str, new: str):
    def mangle(draw, text: str) -> str:
        return text.replace(old, new, draw(st.integers(1, 3)))

    return mangle


def _insert(fragment):
    """`fragment` as an unknown field (or value) right after the first `{`."""

    def mangle(draw, text: str) -> str:
        at = text.find("{") + 1
        if at == 0:
            return text
        piece = draw(fragment) if isinstance(fragment, st.SearchStrategy) else fragment
        return text[:at] + piece + "," + text[at:]

    return mangle


def _duplicate(draw, text: str) -> str:
    """A key sent twice: an earlier value of it, or another one, before the last."""
    key = draw(st.sampled_from(["reader", "locale", "page", "history", "views", "member"]))
    value = draw(st.sampled_from(['"x"', "null", "3", "{}", "[]", f'"{READER_OK}"', '"uk"']))
    return _insert(f'"{key}":{value}')(draw, text)


def _within(draw, text: str) -> str:
    """A duplicate or stray field inside a nested object (a day, a view, the page)."""
    starts = [i for i, c in enumerate(text) if c == "{"][1:]
    if not starts:
        return text
    at = draw(st.sampled_from(starts)) + 1
    piece = draw(
        st.sampled_from(
            [
                '"2026-11-25":1',
                '"2026-11-25":-1',
                '"2026-W48-3":2',
                '"campaign":"c1"',
                '"at":"2026-11-25T10:00:00Z"',
                '"at":"2026-11-25t10:00:00z"',
                '"section":null',
                '"tags":[]',
                '"x":NaN',
            ]
        )
    )
    return text[:at] + piece + "," + text[at:]


def _deep(draw, text: str) -> str:
    n = draw(st.sampled_from([10, _MAX_BRACKETS - 10, _MAX_BRACKETS + 10, 3000]))
    return _insert(f'"deep":{"[" * n}{"]" * n}')(draw, text)


MANGLES = [
    _replace("T", "t"),
    _replace("T", " "),
    _replace("T", "x"),
    _replace("Z", "z"),
    _replace("Z", "+00:00:30"),
    _replace("Z", ""),  # naive
    _replace(":00Z", ":00.1234567Z"),
    _replace(":00Z", ":60Z"),
    _replace("2026-", "0001-"),
    _replace("-11-", "-W48"),
    _replace(":1", ":1.0"),
    _replace(":2", ":2e0"),
    _replace(":3", ":true"),
    _replace('"c', '"\\ud800'),
    _replace('"c', '"\\ud83d\\ude00'),
    _replace("[", "[[]"),
    _replace(",", ",,"),
    _duplicate,
    _within,
    _deep,
    _insert(st.sampled_from(['"x":NaN', '"x":-Infinity', '"x":1e400', '"x":"\\ud800"'])),
    _insert('"big":' + "7" * 5000),
    _insert('"x":"\udcff"'),  # becomes a raw (invalid UTF-8) surrogate
    lambda draw, text: "\ufeff" + text,
    lambda draw, text: text + draw(st.sampled_from([" ", "\n", "\f", "\x0b", "x"])),
]


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(texts())
@example(with_reader(views=[{"campaign": "c", "at": "0001-01-01T00:00:00+01:00"}]))
def test_an_answer_is_always_the_slow_paths(raw):
    check(raw)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(widget_bodies, st.booleans())
def test_widget_bodies_take_the_fast_path(body, ascii_only):
    raw = body_bytes(body, ensure_ascii=ascii_only)
    assert check(raw) is not None


def test_the_bench_body_takes_the_fast_path():
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
    got = check(body_bytes(body))
    assert got is not None
    assert got.page == Page(section="war", tags=("kursk", "kyiv"), referrer="https://t.co/x")
    assert len(got.articles) == 55 and len(got.views) == 50


# --- The traps, one by one ---------------------------------------------------------------

FAST = "fast"  # decode answers, and the slow path agrees (checked)
SLOW = "slow"  # decode answers None


def _outcome(raw: bytes) -> str:
    return SLOW if check(raw) is None else FAST


def _at(value: str) -> bytes:
    return with_reader(views=[{"campaign": "c1", "at": value}])


@pytest.mark.parametrize(
    ("at", "outcome", "slow_path"),
    [
        ("2026-11-25T10:00:00Z", FAST, "ok"),
        ("2026-11-25T10:00:00+02:00", FAST, "ok"),
        ("2026-11-25 10:00:00Z", FAST, "ok"),  # both parsers take a space
        ("2026-11-25x10:00:00Z", FAST, "ok"),  # fromisoformat takes any separator
        ("2026-11-25t10:00:00z", SLOW, "error"),  # msgspec would take it
        ("2026-11-25T10:00:00z", SLOW, "error"),
        ("2026-11-25T10:00:00.9999999Z", FAST, "ok"),  # truncated, as fromisoformat does
        ("2026-11-25T10:00:00.1234567+02:00", FAST, "ok"),
        ("2026-11-25T23:59:60Z", SLOW, "error"),  # leap second
        ("2026-11-25T10:00:00+02:00:30", FAST, "ok"),  # offset with seconds
        ("2026-11-25T10:00:00+0200", FAST, "ok"),
        ("0001-01-01T00:00:00+01:00", SLOW, "error"),  # no UTC equivalent: OverflowError
        ("0001-01-01T00:00:00Z", FAST, "ok"),
        ("2026-11-25T10:00:00", SLOW, "error"),  # naive
        ("2026-11-25", SLOW, "error"),  # naive
        ("2026-11-25T10Z", FAST, "ok"),
        ("yesterday", SLOW, "error"),
    ],
)
def test_times_are_read_as_fromisoformat_reads_them(at, outcome, slow_path):
    raw = _at(at)
    assert _outcome(raw) == outcome
    assert isinstance(slow(raw), PromptRequest) == (slow_path == "ok")


def test_times_more_precise_than_microseconds_are_truncated_not_rounded():
    got = decode(_at("2026-11-25T10:00:00.9999999Z"))
    assert got.views[0].at == dt.datetime(2026, 11, 25, 10, 0, 0, 999999, tzinfo=dt.UTC)


def test_times_in_other_zones_are_converted_to_utc_and_sorted_newest_first_stably():
    views = [
        {"campaign": "a", "at": "2026-11-25T10:00:00Z"},
        {"campaign": "b", "at": "2026-11-25T12:00:00+02:00"},  # the same moment as a
        {"campaign": "c", "at": "2026-11-25T11:00:00Z"},
    ]
    got = check(with_reader(views=views))
    assert [s.campaign for s in got.views] == ["c", "a", "b"]
    assert got.views[1].at.tzinfo is dt.UTC


@pytest.mark.parametrize(
    ("text", "outcome", "reader"),
    [
        # json.loads keeps the last of a key sent twice; so does msgspec, for fields ...
        ('{"reader":"first1234","reader":"second12"}', FAST, "second12"),
        ('{"reader":"bad","reader":"second12"}', FAST, "second12"),
        ('{"reader":"first1234","reader":"bad"}', SLOW, None),
        ('{"reader":3,"reader":"second12"}', SLOW, None),  # msgspec checks every one
        ('{"reader":"second12","page":{"section":"A","section":"B"}}', FAST, "second12"),
        ('{"reader":"second12","views":null,"views":[]}', FAST, "second12"),
        ('{"read\\u0065r":"first1234","reader":"second12"}', FAST, "second12"),
    ],
)
def test_duplicate_fields_keep_the_last(text, outcome, reader):
    assert _outcome(text.encode()) == outcome
    if reader:
        assert decode(text.encode()).reader == reader


@pytest.mark.parametrize(
    ("articles", "outcome"),
    [
        ('{"2026-11-25":1,"2026-11-24":2,"2026-11-25":3}', FAST),  # ... and for dict keys
        ('{"2026-11-25":-1,"2026-11-25":3}', SLOW),  # json.loads would take the last
        ('{"2026-11-25":3,"2026-11-25":-1}', SLOW),
        ('{"2026-W48-3":1}', FAST),  # date.fromisoformat's: the same date both ways
        ('{"2026-W48-3":1,"2026-11-25":2}', FAST),  # the same day twice: the last wins
        ('{"2026-11-25":2,"2026-W48-3":1}', FAST),
        ('{"20261125":1}', SLOW),
        ('{"2026-13-01":1}', SLOW),
        ('{"2026-11-25":3.0}', SLOW),
        ('{"2026-11-25":1e2}', SLOW),
        ('{"2026-11-25":true}', SLOW),
        ('{"2026-11-25":100001}', SLOW),
        ('{"2026-11-25":100000}', FAST),
        ('{"2026-11-25":-0}', FAST),
        ('{"2026-11-25":NaN}', SLOW),
        ("null", SLOW),
        ("[]", SLOW),
    ],
)
def test_history(articles, outcome):
    raw = f'{{"reader":"{READER_OK}","history":{{"articles":{articles}}}}}'.encode()
    assert _outcome(raw) == outcome


def test_the_same_day_twice_keeps_the_last_count():
    raw = f'{{"reader":"{READER_OK}","history":{{"articles":{{"2026-W48-3":1,"2026-11-25":2}}}}}}'
    assert decode(raw.encode()).articles == {dt.date(2026, 11, 25): 2}


@pytest.mark.parametrize(
    "raw",
    [
        b'{"reader":"r_3f9c2a1b7d4e","x":NaN}',
        b'{"reader":"r_3f9c2a1b7d4e","x":[Infinity,-Infinity]}',
        b'{"reader":"r_3f9c2a1b7d4e","x":"\\ud800"}',  # a lone surrogate, escaped
        b'{"reader":"r_3f9c2a1b7d4e","member":"\\udfff"}',
        b'{"reader":"r_3f9c2a1b7d4e","x":"\xff"}',  # not UTF-8, in a field msgspec skips
        b'{"reader":"r_3f9c2a1b7d4e","x":"\xed\xa0\x80"}',  # a surrogate, UTF-8 encoded
        b'{"reader":"r_3f9c2a1b7d4e","x":"\xc0\xaf"}',  # an overlong encoding
        b'\xef\xbb\xbf{"reader":"r_3f9c2a1b7d4e"}',  # a BOM
        b'{"reader":"r_3f9c2a1b7d4e","x":' + b"7" * 4301 + b"}",  # json.loads: ValueError
        b'{"reader":"r_3f9c2a1b7d4e","x":' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"reader":"r_3f9c2a1b7d4e","x":' + b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"}",
        # Deep, but not too deep for json.loads: refused all the same (cheaply)
        b'{"reader":"r_3f9c2a1b7d4e","x":' + b"[" * 400 + b"]" * 400 + b"}",
        b'{"reader":"r_3f9c2a1b7d4e","x":"a\tb"}',  # a control character in a string
        b'{"reader":"r_3f9c2a1b7d4e"}\x0c',
        b'{"reader":"r_3f9c2a1b7d4e",}',
        b'{"reader":"r_3f9c2a1b7d4e\\n"}',  # \Z, not $
        b'["r_3f9c2a1b7d4e"]',
        b"",
        b"{}",
    ],
)
def test_what_json_loads_and_msgspec_read_differently_takes_the_slow_path(raw):
    assert _outcome(raw) == SLOW


def test_what_json_loads_refuses_is_never_answered():
    for raw in (
        b'{"reader":"r_3f9c2a1b7d4e","x":' + b"7" * 4301 + b"}",
        b'{"reader":"r_3f9c2a1b7d4e","x":' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"reader":"r_3f9c2a1b7d4e","x":"\xff"}',
        b'\xef\xbb\xbf{"reader":"r_3f9c2a1b7d4e"}',
    ):
        assert slow(raw) == NOT_JSON
        assert decode(raw) is None


def test_long_integers_follow_the_interpreters_limit():
    raw = b'{"reader":"r_3f9c2a1b7d4e","x":' + b"7" * 5000 + b"}"
    before = sys.get_int_max_str_digits()
    try:
        sys.set_int_max_str_digits(0)  # no limit: json.loads takes it, and so does decode
        assert _outcome(raw) == FAST
    finally:
        sys.set_int_max_str_digits(before)
    assert _outcome(raw) == SLOW


@pytest.mark.parametrize(
    "raw",
    [
        b'{"reader":"r_3f9c2a1b7d4e","x":' + b"[" * 50 + b"]" * 50 + b"}",
        b'{"reader":"r_3f9c2a1b7d4e","x":' + b"7" * 4000 + b"}",  # all digits: <= 4300
        b'{"reader":"r_3f9c2a1b7d4e","x":"\\ud83d\\ude00","y":"\xf0\x9f\x98\x80"}',  # a pair
        b'{"reader":"r_3f9c2a1b7d4e","x":1e400,"y":[null,true,{"z":-0.5e-3}]}',
        b' \t\r\n{"reader":"r_3f9c2a1b7d4e"}\n ',
        b'{"reader":"r_3f9c2a1b7d4e","member":"\\u0000\x7f"}',
    ],
)
def test_what_both_read_alike_takes_the_fast_path(raw):
    assert _outcome(raw) == FAST


@pytest.mark.parametrize(
    ("fields", "outcome"),
    [
        ({"page": None}, FAST),
        ({"page": {}}, FAST),
        ({"page": {"layout": 3}}, FAST),
        ({"page": {"section": None, "tags": None, "referrer": None, "type": None}}, FAST),
        ({"page": {"section": "", "referrer": "", "type": ""}}, FAST),
        ({"page": {"section": "x" * 100}}, FAST),
        ({"page": {"section": "x" * 101}}, SLOW),
        ({"page": {"referrer": "r" * 2001}}, SLOW),
        ({"page": {"type": "t" * 41}}, SLOW),
        ({"page": {"tags": ["T"] * (MAX_TAGS + 2)}}, FAST),
        ({"page": {"tags": ["a", None]}}, SLOW),
        ({"page": {"tags": "kursk"}}, SLOW),
        ({"page": []}, SLOW),
        ({"history": None}, FAST),
        ({"history": {}}, FAST),
        ({"history": {"articles": None}}, SLOW),
        ({"history": {"weeks": 3}}, FAST),
        ({"history": 3}, SLOW),
        ({"views": None, "dismissed": []}, FAST),
        ({"views": {}}, SLOW),
        ({"views": [{"campaign": "c" * 64, "at": TIMES[0]}]}, FAST),
        ({"views": [{"campaign": "я" * 64, "at": TIMES[0]}]}, FAST),
        ({"views": [{"campaign": "😀" * 64, "at": TIMES[0]}]}, FAST),  # characters, not bytes
        ({"views": [{"campaign": "c" * 65, "at": TIMES[0]}]}, SLOW),
        ({"views": [{"campaign": "", "at": TIMES[0]}]}, SLOW),
        ({"views": [{"campaign": "c", "at": TIMES[0], "other": 1}]}, FAST),
        ({"views": [{"campaign": "c"}]}, SLOW),
        ({"views": [{"campaign": None, "at": TIMES[0]}]}, SLOW),
        ({"views": [{"campaign": "c", "at": TIMES[0]}, 3]}, SLOW),
        ({"member": ""}, FAST),
        ({"member": "m" * 4096}, FAST),
        ({"member": "m" * 4097}, SLOW),
        ({"member": 3}, SLOW),
        ({"locale": "uk-UA"}, FAST),
        ({"locale": ""}, FAST),
        ({"locale": None}, FAST),
        ({"locale": "??"}, SLOW),  # CopyError
        ({"locale": 3}, SLOW),
    ],
)
def test_fields(fields, outcome):
    assert _outcome(with_reader(**fields)) == outcome


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
    got = check(with_reader(views=views, dismissed=views[::-1], history={"articles": history}))
    assert len(got.views) == len(got.dismissed) == MAX_VIEWS
    assert len(got.articles) == 90 and max(got.articles) == start.date()


@pytest.mark.parametrize(
    "reader", ["short", "r" * 65, "r_3f9c2a1b!", "r_3f9c2a1b\n", "r_3f9c2a1b7d4é", None, 12345678]
)
def test_readers_the_pattern_refuses(reader):
    assert _outcome(body_bytes({"reader": reader})) == SLOW


def test_decode_never_raises():
    for raw in (b"\x00", b"{" * 100_000, b'{"reader":' + b"9" * 100_000 + b"}", b"\xff" * 10):
        assert decode(raw) is None
