"""The /v1/prompt request (membership.prompts.request): validation, cuts, locale."""

from __future__ import annotations

import datetime as dt

import pytest

from membership.prompts.request import Page, RequestError, Seen, parse_request, referrer_host

OK = {"reader": "r_3f9c2a1b7d4e"}


def test_the_issues_example():
    r = parse_request(
        {
            "reader": "r_3f9c2a1b7d4e",
            "locale": "uk",
            "page": {
                "section": "war",
                "tags": ["kursk"],
                "referrer": "https://t.co/x",
                "type": "article",
            },
            "history": {"articles": {"2026-11-25": 3, "2026-11-24": 1}},
            "views": [{"campaign": "winter-drive", "at": "2026-11-25T10:00:00Z"}],
            "dismissed": [{"campaign": "winter-drive", "at": "2026-11-25T10:01:00Z"}],
            "member": "tok",
        }
    )
    assert r.reader == "r_3f9c2a1b7d4e" and r.locale == "uk"
    assert r.page == Page(section="war", tags=("kursk",), referrer="https://t.co/x", type="article")
    assert r.page.referrer_host == "t.co"
    assert r.articles == {dt.date(2026, 11, 25): 3, dt.date(2026, 11, 24): 1}
    assert r.views == (Seen("winter-drive", dt.datetime(2026, 11, 25, 10, tzinfo=dt.UTC)),)
    assert r.dismissed[0].at == dt.datetime(2026, 11, 25, 10, 1, tzinfo=dt.UTC)
    assert r.member_token == "tok"


def test_only_the_reader_is_required_and_unknown_fields_are_ignored():
    r = parse_request(
        {**OK, "new_field": {"x": 1}, "page": {"layout": "wide"}, "history": {"weeks": 3}}
    )
    assert r.locale == "en" and r.page == Page() and r.articles == {}
    assert r.views == () and r.dismissed == () and r.member_token is None


@pytest.mark.parametrize(
    ("raw", "served"),
    [
        ("uk", "uk"),
        ("uk-UA", "uk"),
        ("uk_UA.UTF-8", "uk"),
        ("en-GB", "en"),
        ("de", "en"),
        (None, "en"),
        ("", "en"),
    ],
)
def test_locale_is_reduced_as_the_banners(raw, served):
    assert parse_request({**OK, "locale": raw}).locale == served


BAD = [
    ({}, "reader: missing"),
    ({"reader": "short"}, "reader: expected 8 to 64 of A-Z, a-z, 0-9, _ and -"),
    ({"reader": "r" * 65}, "reader: expected 8 to 64 of A-Z, a-z, 0-9, _ and -"),
    ({"reader": "r_3f9c2a1b!"}, "reader: expected 8 to 64 of A-Z, a-z, 0-9, _ and -"),
    ({"reader": "r_3f9c2a1b\n"}, "reader: expected 8 to 64 of A-Z, a-z, 0-9, _ and -"),
    ({**OK, "locale": "??"}, "locale: expected a locale tag such as en or uk"),
    ({**OK, "views": {}}, "views: expected a list"),
    ({**OK, "dismissed": "x"}, "dismissed: expected a list"),
    ({**OK, "views": [3]}, "views[0]: expected an object"),
    ({**OK, "views": [{"campaign": "c"}]}, "views[0].at: missing"),
    (
        {
            **OK,
            "views": [
                {"campaign": "c", "at": "2026-11-25T10:00:00Z"},
                {"campaign": "c", "at": "yesterday"},
            ],
        },
        "views[1].at: expected an ISO-8601 time with a zone, e.g. 2026-12-01T00:00:00Z",
    ),
    (
        {**OK, "dismissed": [{"campaign": "c", "at": "2026-11-25T10:00:00"}]},
        "dismissed[0].at: expected an ISO-8601 time with a zone, e.g. 2026-12-01T00:00:00Z",
    ),
    (
        {**OK, "history": {"articles": {"2026-13-01": 1}}},
        "history.articles.2026-13-01: expected a date as YYYY-MM-DD",
    ),
    (
        {**OK, "history": {"articles": {"20261125": 1}}},
        "history.articles.20261125: expected a date as YYYY-MM-DD",
    ),
    (
        {**OK, "history": {"articles": {"2026-11-25": -1}}},
        "history.articles.2026-11-25: expected a whole number from 0 to 100000",
    ),
    (
        {**OK, "history": {"articles": {"2026-11-25": "3"}}},
        "history.articles.2026-11-25: expected a whole number from 0 to 100000",
    ),
    (
        {**OK, "history": {"articles": []}},
        "history.articles: expected an object of YYYY-MM-DD: number of articles",
    ),
    ({**OK, "page": []}, "page: expected an object"),
    ({**OK, "page": {"tags": "kursk"}}, "page.tags: expected a list"),
    ({**OK, "page": {"section": 3}}, "page.section: expected text"),
    # Valid ISO-8601 with no UTC equivalent: once an OverflowError, a 500.
    (
        {**OK, "views": [{"campaign": "c", "at": "0001-01-01T00:00:00+01:00"}]},
        "views[0].at: expected an ISO-8601 time with a zone, e.g. 2026-12-01T00:00:00Z",
    ),
    (
        {**OK, "dismissed": [{"campaign": "c", "at": "9999-12-31T23:59:59-01:00"}]},
        "dismissed[0].at: expected an ISO-8601 time with a zone, e.g. 2026-12-01T00:00:00Z",
    ),
    (
        {**OK, "views": [{"campaign": 5, "at": "2026-11-25T10:00:00Z"}]},
        "views[0].campaign: expected text",
    ),
    (
        {**OK, "views": [{"campaign": "", "at": "2026-11-25T10:00:00Z"}]},
        "views[0].campaign: expected 1 to 64 characters",
    ),
]


@pytest.mark.parametrize(("body", "expected"), BAD, ids=[e.split(":")[0] for _, e in BAD])
def test_bad_input_names_the_field(body, expected):
    with pytest.raises(RequestError) as caught:
        parse_request(body)
    assert str(caught.value) == expected


def test_not_an_object():
    with pytest.raises(RequestError, match="expected a JSON object"):
        parse_request([OK])


def test_a_long_history_is_cut_to_the_newest_90_days():
    first = dt.date(2026, 1, 1)
    articles = {(first + dt.timedelta(days=i)).isoformat(): 1 for i in range(120)}
    r = parse_request({**OK, "history": {"articles": articles}})
    assert len(r.articles) == 90
    assert min(r.articles) == first + dt.timedelta(days=30)
    assert max(r.articles) == first + dt.timedelta(days=119)


def test_more_than_100_views_are_cut_to_the_newest_and_ordered_newest_first():
    start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    views = [
        {"campaign": "c", "at": (start + dt.timedelta(minutes=i)).isoformat()} for i in range(130)
    ]
    views.reverse()
    views = views[::2] + views[1::2]  # any order in, newest first out
    r = parse_request({**OK, "views": views, "dismissed": views})
    for kept in (r.views, r.dismissed):
        assert len(kept) == 100
        assert kept[0].at == start + dt.timedelta(minutes=129)
        assert kept[-1].at == start + dt.timedelta(minutes=30)
        assert list(kept) == sorted(kept, key=lambda s: s.at, reverse=True)


def test_sections_and_tags_are_lowercased_tags_cut_to_50():
    r = parse_request({**OK, "page": {"section": "War", "tags": [f"T{i}" for i in range(60)]}})
    assert r.page.section == "war"
    assert r.page.tags == tuple(f"t{i}" for i in range(50))


@pytest.mark.parametrize(
    ("referrer", "host"),
    [
        ("https://t.co/x", "t.co"),
        ("https://WWW.News.Example:443/a?b", "www.news.example"),
        ("news.example/path", "news.example"),
        ("android-app://com.google.android.gm/", "com.google.android.gm"),
        ("", None),
        (None, None),
        ("https://[::1", None),
    ],
)
def test_referrer_host(referrer, host):
    assert referrer_host(referrer) == host


def test_articles_in_a_window_of_n_days_ending_today():
    r = parse_request(
        {
            **OK,
            "history": {
                "articles": {
                    "2026-11-25": 1,
                    "2026-11-24": 2,
                    "2026-10-27": 4,
                    "2026-10-26": 8,
                    "2026-11-26": 16,
                }
            },
        }
    )
    today = dt.date(2026, 11, 25)
    assert r.articles_in(today, 1) == 1
    assert r.articles_in(today, 2) == 3
    assert r.articles_in(today, 30) == 7  # 2026-10-27 is the 30th day; 10-26 and 11-26 are out
    assert r.articles_in(today, 31) == 15
