"""The banner: the pure view model, then GET /v1/banner over HTTP (real Redis)."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from membership.core.runtime import runtime
from membership.goals import banner
from membership.goals import store as goals
from membership.goals.cache import Snapshot
from membership.goals.rules import Goal
from membership.ledger import Outcome
from tests.support.member_count import CHANGED_AT, seed_banner, set_member_count

pytestmark = pytest.mark.topologies  # each test on a single server, a Cluster and Sentinel

NBSP = "\u00a0"
JOIN = "https://kyivindependent.com/membership"
FIELDS = {
    "count",
    "count_display",
    "locale",
    "headline",
    "message",
    "cta",
    "goal",
    "milestone",
    "stale",
    "updated_at",
}


def _view(count, gs, locale="en", **kw):
    return banner.view(
        Snapshot(count, CHANGED_AT, tuple(gs)),
        locale,
        publication="The Kyiv Independent",
        join_url=JOIN,
        **kw,
    )


# --- View model ------------------------------------------------------------------


def test_view_toward_a_goal_matches_the_issue_example():
    gs = [
        Goal(id=1, target=25000, reached_at="2026-11-20T10:00:00Z"),
        Goal(id=2, target=30000, deadline="2026-12-31", name="Winter drive"),
    ]
    assert _view(25012, gs) == {
        "count": 25012,
        "count_display": "25,012",
        "locale": "en",
        "headline": "25,012 members on board",
        "message": "Help us reach 30,000 members",
        "cta": {"label": "Become a member", "url": JOIN},
        "goal": {
            "target": 30000,
            "target_display": "30,000",
            "progress": 0.8337,
            "remaining": 4988,
            "deadline": "2026-12-31",
            "name": "Winter drive",
        },
        "milestone": {"target": 25000, "reached_at": "2026-11-20T10:00:00Z"},
        "stale": False,
        "updated_at": CHANGED_AT,
    }


def test_view_in_ukrainian():
    body = _view(25012, [Goal(id=2, target=30000)], "uk")
    assert body["count_display"] == f"25{NBSP}012"
    assert body["headline"] == f"25{NBSP}012 учасників спільноти"
    assert body["message"] == f"Допоможіть нам досягти мети — 30{NBSP}000 учасників"
    assert body["goal"]["target_display"] == f"30{NBSP}000"
    assert body["cta"]["label"] == "Стати учасником"


def test_thank_you_once_the_last_goal_is_reached():
    gs = [Goal(id=1, target=20000, reached_at="a"), Goal(id=2, target=25000, reached_at="b")]
    body = _view(25012, gs)
    assert body["goal"] is None
    assert body["milestone"] == {"target": 25000, "reached_at": "b"}
    assert body["message"] == "25,000 people chose to be part of the community — thank you"
    assert _view(24000, gs)["milestone"]["target"] == 25000  # stays reached as the count falls


def test_no_goals_invites_readers():
    body = _view(7, [])
    assert body["goal"] is None and body["milestone"] is None
    assert body["headline"] == "7 members on board"
    assert "The Kyiv Independent" in body["message"]


def test_goal_copy_overrides_apply_while_it_is_current():
    copy = {"en": {"message": "Only {remaining} to go to {goal}!", "cta": "Join {publication}"}}
    body = _view(25012, [Goal(id=2, target=30000, copy=copy)])
    assert body["message"] == "Only 4,988 to go to 30,000!"
    assert body["cta"]["label"] == "Join The Kyiv Independent"
    assert _view(25012, [Goal(id=2, target=30000, copy=copy)], "uk")["cta"]["label"] == (
        "Стати учасником"
    )


def test_progress_is_never_full_before_the_goal():
    assert banner.progress(29999, 30000) == 0.9999
    assert banner.progress(0, 30000) == 0.0
    assert banner.progress(1, 3) == 0.3333


@given(
    count=st.integers(0, 10**7),
    targets=st.lists(st.integers(1, 10**7), unique=True, max_size=6),
    locale=st.sampled_from(["en", "uk"]),
)
def test_view_is_always_complete_and_consistent(count, targets, locale):
    body = _view(count, [Goal(id=i + 1, target=t) for i, t in enumerate(targets)], locale)
    assert set(body) == FIELDS
    for text in (body["headline"], body["message"], body["cta"]["label"]):
        assert text and "{" not in text and "None" not in text
    assert body["count_display"] in body["headline"]
    unreached = [t for t in targets if t > count]
    if unreached:
        assert body["goal"]["target"] == min(unreached)
        assert body["goal"]["remaining"] == min(unreached) - count > 0
        assert 0 <= body["goal"]["progress"] < 1
        assert body["goal"]["target_display"] in body["message"]
    else:
        assert body["goal"] is None
    reached = [t for t in targets if t <= count]
    assert (body["milestone"] or {}).get("target") == (max(reached) if reached else None)
    assert banner.serialize(body) == banner.serialize(json.loads(json.dumps(body)))


# --- HTTP ------------------------------------------------------------------------


@pytest.fixture
def site(make_app, redis_client):
    app = make_app(
        allowed_origins=("https://kyivindependent.com",),
        join_url=JOIN,
        publication_name="The Kyiv Independent",
        banner_refresh_seconds=0,  # no micro-cache here: every request reads Redis
    )
    keys = runtime(app).keys
    seed_banner(redis_client, keys, {"target": 30000, "deadline": "2099-12-31"}, reached=25000)
    return app


def test_get_banner_fields(site):
    response = site.test_client().get("/v1/banner")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == FIELDS
    assert body["count"] == 25012
    assert body["headline"] == "25,012 members on board"
    assert body["goal"]["target"] == 30000
    assert body["goal"]["deadline"] == "2099-12-31"
    assert body["milestone"] == {"target": 25000, "reached_at": "2026-11-20T10:00:00Z"}
    assert body["updated_at"] == CHANGED_AT  # the count's change time, not the read time
    assert body["cta"]["url"] == JOIN
    assert body["stale"] is False


@pytest.mark.parametrize(
    ("query", "locale", "count_display"),
    [
        ("", "en", "25,012"),
        ("?locale=en", "en", "25,012"),
        ("?locale=uk", "uk", f"25{NBSP}012"),
        ("?locale=uk-UA", "uk", f"25{NBSP}012"),
        ("?locale=de", "en", "25,012"),
        ("?locale=", "en", "25,012"),
    ],
)
def test_locale_formats_and_english_fallback(site, query, locale, count_display):
    body = site.test_client().get("/v1/banner" + query).get_json()
    assert body["locale"] == locale
    assert body["count_display"] == count_display
    assert body["headline"].startswith(count_display)


@pytest.mark.parametrize(
    ("served", "variants"),
    [
        ("en", ["en-US", "EN", "en_GB.UTF-8", "de", "fr-CA", "zh-Hant-TW", "de-DE-u-co-phonebk"]),
        ("uk", ["uk-UA", "UK", "uk_UA", "uk_UA.UTF-8", "uk-Cyrl-UA"]),
    ],
)
def test_any_variant_of_a_language_gets_its_one_canonical_body_and_etag(site, served, variants):
    client = site.test_client()
    canonical = client.get(f"/v1/banner?locale={served}")
    assert canonical.status_code == 200
    for variant in variants:
        answer = client.get(f"/v1/banner?locale={variant}")
        assert answer.status_code == 200, variant
        assert answer.get_data() == canonical.get_data(), variant
        assert answer.headers["ETag"] == canonical.headers["ETag"], variant
        again = client.get(
            f"/v1/banner?locale={variant}", headers={"If-None-Match": canonical.headers["ETag"]}
        )
        assert again.status_code == 304, variant


def test_uk_body_carries_a_real_no_break_space(site):
    raw = site.test_client().get("/v1/banner?locale=uk").get_data()
    assert "25\u00a0012".encode() in raw


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("?locale=<script>", "locale: expected a locale tag"),
        ("?locale=en&locale=uk", "once"),
        ("?lang=uk", "lang: unknown query parameter"),
        ("?locale=%ff", "locale: expected a locale tag"),
    ],
)
def test_bad_query_is_a_json_400(site, query, problem):
    response = site.test_client().get("/v1/banner" + query)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_query"
    assert problem in error["message"]


def test_cache_control_and_strong_etag(site, make_app):
    response = site.test_client().get("/v1/banner")
    assert response.headers["Cache-Control"] == (
        "public, max-age=30, stale-while-revalidate=300, stale-if-error=86400"
    )
    etag = response.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    # Another process (another app) over the same data gives the same body and ETag.
    other = make_app(
        allowed_origins=("https://kyivindependent.com",),
        join_url=JOIN,
        publication_name="The Kyiv Independent",
    ).test_client()
    again = other.get("/v1/banner")
    assert again.headers["ETag"] == etag
    assert again.get_data() == response.get_data()
    assert other.get("/v1/banner?locale=uk").headers["ETag"] != etag


def test_banner_max_age_is_configurable(make_app, redis_client):
    app = make_app(banner_max_age=5)
    set_member_count(redis_client, runtime(app).keys, 7)
    client = app.test_client()
    assert client.get("/v1/banner").headers["Cache-Control"].startswith("public, max-age=5,")


def test_if_none_match_gives_304(site, redis_client):
    client = site.test_client()
    etag = client.get("/v1/banner").headers["ETag"]
    for header in (etag, f"W/{etag}", f'"nope", {etag}', "*"):
        response = client.get("/v1/banner", headers={"If-None-Match": header})
        assert response.status_code == 304, header
        assert response.get_data() == b""
        assert response.headers["ETag"] == etag
        assert "max-age=30" in response.headers["Cache-Control"]
    assert client.get("/v1/banner", headers={"If-None-Match": '"other"'}).status_code == 200
    set_member_count(redis_client, runtime(site).keys, 25013, "2026-11-25T19:30:00Z")
    changed = client.get("/v1/banner", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.get_json()["count"] == 25013
    assert changed.headers["ETag"] != etag


def test_cors_for_allowed_origins_only(site):
    client = site.test_client()
    allowed = client.get("/v1/banner", headers={"Origin": "https://kyivindependent.com"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://kyivindependent.com"
    assert "Origin" in allowed.headers["Vary"]

    refused = client.get("/v1/banner", headers={"Origin": "https://evil.example"})
    assert refused.status_code == 200  # the data is public; the browser withholds it
    assert "Access-Control-Allow-Origin" not in refused.headers
    assert "Origin" in refused.headers["Vary"]

    plain = client.get("/v1/banner")
    assert "Access-Control-Allow-Origin" not in plain.headers
    assert "Origin" in plain.headers["Vary"]

    not_modified = client.get(
        "/v1/banner",
        headers={"Origin": "https://kyivindependent.com", "If-None-Match": allowed.headers["ETag"]},
    )
    assert not_modified.status_code == 304
    assert not_modified.headers["Access-Control-Allow-Origin"] == "https://kyivindependent.com"


def test_an_origin_configured_with_its_default_port_is_the_browser_s_origin(make_app, monkeypatch):
    """Browsers leave the default port out of Origin: ALLOWED_ORIGINS spelled with :443 must
    still let the site read the banner (and a return URL on it pass, members' rules)."""
    monkeypatch.setenv("ALLOWED_ORIGINS", "https://kyivindependent.com:443")
    client = make_app().test_client()
    allowed = client.get("/v1/banner", headers={"Origin": "https://kyivindependent.com"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://kyivindependent.com"


def test_cors_preflight(site):
    client = site.test_client()
    ok = client.options(
        "/v1/banner",
        headers={"Origin": "https://kyivindependent.com", "Access-Control-Request-Method": "GET"},
    )
    assert ok.status_code == 204
    assert ok.headers["Access-Control-Allow-Origin"] == "https://kyivindependent.com"
    assert ok.headers["Access-Control-Allow-Methods"] == "GET"
    assert int(ok.headers["Access-Control-Max-Age"]) > 0
    refused = client.options(
        "/v1/banner",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert refused.status_code == 204
    assert "Access-Control-Allow-Origin" not in refused.headers
    assert "Access-Control-Allow-Methods" not in refused.headers


def test_no_count_in_redis_is_unknown_not_zero(make_app, redis_client):
    app = make_app(banner_refresh_seconds=0, banner_retry_seconds=0)
    client = app.test_client()
    missing = client.get("/v1/banner")
    assert missing.status_code == 503  # a new or emptied Redis: never print "0 members"
    assert missing.get_json()["error"]["code"] == "banner_unavailable"

    set_member_count(redis_client, runtime(app).keys, 0)  # the ledger counted down to zero
    body = client.get("/v1/banner").get_json()
    assert body["count"] == 0
    assert body["stale"] is False


def test_the_banner_reads_and_never_writes_a_goal_the_count_reached(site, redis_client):
    """Marking goals is the ledger writer's (and `ledger rebuild`'s) job: no read writes.
    A goal the count reached but nobody marked (a crash after a commit) still shows as
    the milestone, without a reached time; `ledger rebuild` marks it."""
    keys = runtime(site).keys
    set_member_count(redis_client, keys, 30001, "2026-11-26T08:00:00Z")
    before = redis_client.hgetall(keys.goals_reached)
    body = site.test_client().get("/v1/banner").get_json()
    assert body["goal"] is None
    assert body["milestone"] == {"target": 30000, "reached_at": None}
    assert redis_client.hgetall(keys.goals_reached) == before

    reach = goals.reach_goals(redis_client, keys)  # what the app subscribes to the writer
    reach(Outcome("applied", count_before=30001, count_after=30001))  # no rise: no mark
    assert redis_client.hgetall(keys.goals_reached) == before
    reach(Outcome("rebuilt", count_before=30001, count_after=30001))
    stored = {g.target: g.reached_at for g in goals.load(redis_client, keys)}
    assert stored[30000] is not None


def test_corrupt_count_is_not_served_as_a_number(make_app, redis_client):
    app = make_app(banner_refresh_seconds=0)
    redis_client.set(runtime(app).keys.member_count, "lots")
    response = app.test_client().get("/v1/banner")
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "banner_unavailable"
