"""POST /v1/prompt over HTTP (in-process), against real redis-servers: validation, the
decision from memory (no Redis command per decision, decisions during an outage, changes
within a second, after a fork), member tokens, debug, CORS and caching."""

from __future__ import annotations

import io
import json
import logging
import os
import random
import re
import signal
import time

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.test import EnvironBuilder, run_wsgi_app

from membership.core import logs
from membership.goals import banner
from membership.goals import rules as goal_rules
from membership.goals import store as goals
from membership.prompts import assign, campaigns, snapshot, store
from membership.prompts import http as prompts_http
from membership.prompts.filters import INTERRUPTIVE, decide
from membership.prompts.request import parse_request
from membership.store import Keys
from tests.support.cors import assert_post_preflight
from tests.support.member_count import set_member_count
from tests.support.prompt_helpers import EXAMPLE, PLAIN_COPY, doc
from tests.support.settings import member_token

KEYS = Keys()
STAFF = "staff-token-0123456789abcdef"
READER = "r_3f9c2a1b7d4e"
ORIGIN = "https://news.example"
COUNT_COPY = {
    "en": {"headline": {"one": "{count} member", "other": "{count} members"}, "cta": "Join"},
    "uk": {"headline": "{count} учасників", "cta": "Долучитися"},
}


@pytest.fixture
def apps(make_app):
    """make_app, and every app's refresher stopped after the test."""
    made = []

    def build(**overrides):
        app = make_app(**overrides)
        made.append(app)
        return app

    yield build
    for app in made:
        snapshot.for_app(app).close()


@pytest.fixture
def app(apps):
    return apps(staff_api_token=STAFF, allowed_origins=(ORIGIN,))


def apply(r, *docs) -> None:
    store.apply(r, KEYS, campaigns.parse_list(list(docs)), actor="test")


def refresh(app) -> None:
    """What the refresher does within a second, now (tests that change data mid-way)."""
    snapshot.for_app(app).refresh()


def body(**fields) -> dict:
    return {"reader": READER, **fields}


def post(client, data=None, **kw):
    return client.post("/v1/prompt", json=body() if data is None else data, **kw)


def placements(response) -> dict:
    return {p["placement"]: p["campaign"] for p in response.get_json()["prompts"]}


# --- The answer ----------------------------------------------------------------------


def test_a_prompt_as_the_issue_shows_it(app, client, redis_client, tokens):
    set_member_count(redis_client, KEYS, 25012)
    apply(redis_client, EXAMPLE)
    refresh(app)  # not the refresher's first read, which a loaded machine may take past 1 s
    reader = next(
        f"reader-{i:04d}"
        for i in range(100)
        if assign.bucket(f"reader-{i:04d}", "winter-drive") >= 1000
    )
    today = time.strftime("%Y-%m-%d", time.gmtime())
    response = post(
        client, {"reader": reader, "locale": "uk-UA", "history": {"articles": {today: 3}}}
    )
    assert response.status_code == 200, response.get_data()
    assert response.headers["Cache-Control"] == "private, no-store"
    assert response.headers["Content-Type"] == "application/json"
    answer = response.get_json()
    assert answer["holdout"] == []
    (prompt,) = answer["prompts"]
    variant = assign.assign(campaigns.parse(EXAMPLE), reader).variant.id
    assert {k: v for k, v in prompt.items() if k not in ("headline", "body", "cta", "token")} == {
        "placement": "inline",
        "campaign": "winter-drive",
        "variant": variant,
        "banner": banner.view(
            snapshot.for_app(app).banner().snapshot,
            "uk",
            publication="our newsroom",
            join_url="https://example.org/membership",
        ),
        "dismissible": True,
    }
    assert prompt["banner"]["count"] == 25012
    assert prompt["headline"] in ("Ви прочитали 3 статей цього місяця", "25\u00a0012 учасників")
    claim = tokens.read_decision(prompt["token"], time.time())
    assert (claim.campaign, claim.variant, claim.reader) == ("winter-drive", variant, reader)


def test_a_decision_id_per_request_and_a_token_per_prompt(client, redis_client, tokens):
    apply(
        redis_client, doc(id="i"), doc(id="b", placement="banner"), doc(id="m", placement="modal")
    )
    first = post(client).get_json()["prompts"]
    second = post(client).get_json()["prompts"]
    assert [p["placement"] for p in first] == ["banner", "inline", "modal"]
    claims = [tokens.read_decision(p["token"], time.time()) for p in first + second]
    assert len({c.decision for c in claims[:3]}) == 1  # one decision per request...
    assert claims[0].decision != claims[3].decision  # ...and a new one for the next
    assert len({p["token"] for p in first}) == 3


def test_holdout_is_listed_with_a_token(client, redis_client, tokens):
    apply(redis_client, doc(control_share=0.5))
    reader = next(
        f"reader-{i:04d}" for i in range(100) if assign.bucket(f"reader-{i:04d}", "c1") < 5000
    )
    answer = post(client, {"reader": reader}).get_json()
    assert answer["prompts"] == []
    (entry,) = answer["holdout"]
    assert (entry["campaign"], entry["placement"]) == ("c1", "inline")
    claim = tokens.read_decision(entry["token"], time.time())
    assert (claim.campaign, claim.variant, claim.holdout, claim.reader) == (
        "c1",
        None,
        True,
        reader,
    )


def test_banner_is_null_before_any_count(client, redis_client):
    apply(redis_client, doc())
    (prompt,) = post(client).get_json()["prompts"]
    assert prompt["banner"] is None
    assert prompt["headline"] == "Support us"


def test_copy_needing_the_count_is_not_shown_while_the_count_is_unknown(apps, redis_client):
    # The banner cache re-reads at every refresh here (by default within a second).
    app = apps(staff_api_token=STAFF, banner_refresh_seconds=0, banner_retry_seconds=0)
    client = app.test_client()
    apply(redis_client, doc(variants=[{"id": "a", "weight": 1, "copy": COUNT_COPY}]))
    answer = post(client, query_string={"debug": "1"}, headers=_staff()).get_json()
    assert answer["prompts"] == []
    assert answer["debug"][0]["filters"][-1] == {
        "name": "copy",
        "passed": False,
        "reason": "variant a needs the member count, unknown yet",
    }
    set_member_count(redis_client, KEYS, 1)
    refresh(app)
    (prompt,) = post(client).get_json()["prompts"]
    assert prompt["headline"] == "1 member"
    assert prompt["banner"]["count"] == 1


def test_at_most_one_prompt_per_placement_and_never_modal_with_gate(client, redis_client):
    gate = {"placement": "gate", "gate": {"dismissible": False, "free_articles": 0}}
    apply(
        redis_client,
        doc(id="i1", priority=2),
        doc(id="i2", priority=1),
        doc(id="m", placement="modal", priority=5),
        doc(id="g", priority=3, **gate),
    )
    answer = post(client, body(history={"articles": {time.strftime("%Y-%m-%d"): 1}})).get_json()
    assert placements_of(answer) == {"inline": "i2", "gate": "g"}
    (gate_prompt,) = [p for p in answer["prompts"] if p["placement"] == "gate"]
    assert gate_prompt["dismissible"] is False


def placements_of(answer: dict) -> dict:
    return {p["placement"]: p["campaign"] for p in answer["prompts"]}


# --- Members and countries -----------------------------------------------------------


def test_a_member_token_silences_a_non_members_campaign(client, redis_client):
    apply(
        redis_client,
        doc(id="ask"),
        doc(id="thanks", placement="banner", audience={"readers": "members"}),
    )
    assert placements(post(client)) == {"inline": "ask"}
    assert placements(post(client, body(member=member_token()))) == {"banner": "thanks"}
    assert placements(post(client, body(member=member_token("email:a@b.org")))) == {
        "banner": "thanks"
    }


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",
        member_token(secret="another-secret-key-0123456789"),  # forged: another key
        member_token()[:-2] + ("AA" if not member_token().endswith("AA") else "BB"),  # tampered
        member_token(now=time.time() - 8 * 86400),  # expired
        "x" * 4000,
    ],
    ids=["garbage", "other-key", "tampered", "expired", "long"],
)
def test_a_forged_or_expired_member_token_is_a_non_member_not_an_error(client, redis_client, token):
    apply(redis_client, doc(id="ask"))
    response = post(client, body(member=token))
    assert response.status_code == 200
    assert placements(response) == {"inline": "ask"}


@pytest.mark.parametrize(
    ("header", "shown"),
    [
        ("UA", True),
        (" ua ", True),
        ("PL", False),
        ("XX", False),
        ("T1", False),
        ("", False),
        (None, False),
        ("UKR", False),
    ],
)
def test_country_from_the_cdn_header(client, redis_client, header, shown):
    apply(redis_client, doc(audience={"countries": {"include": ["UA"]}}))
    headers = {} if header is None else {"CF-IPCountry": header}
    assert bool(post(client, headers=headers).get_json()["prompts"]) is shown


def test_country_header_is_a_setting(apps, redis_client):
    client = apps(country_header="CloudFront-Viewer-Country").test_client()
    apply(redis_client, doc(audience={"countries": {"exclude": ["RU"]}}))
    assert post(client, headers={"CloudFront-Viewer-Country": "RU"}).get_json()["prompts"] == []
    assert post(client, headers={"CF-IPCountry": "RU"}).get_json()["prompts"] != []


# --- Validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"reader": "r_3f9c!a1b7d4e"}, "reader: expected 8 to 64 of A-Z, a-z, 0-9, _ and -"),
        ({"reader": "short"}, "reader: expected 8 to 64"),
        ({"reader": "r" * 65}, "reader: expected 8 to 64"),
        ({"reader": 12345678}, "reader: expected text"),
        ({}, "reader: missing"),
        (body(views={"campaign": "c1"}), "views: expected a list"),
        (body(views=[{"campaign": "c1", "at": "yesterday"}]), "views[0].at: expected an ISO-8601"),
        (
            body(dismissed=[{"campaign": "c1", "at": "2026-11-25 10:00"}]),
            "dismissed[0].at: expected an ISO-8601",
        ),
        (
            body(history={"articles": {"2026-13-01": 1}}),
            "history.articles.2026-13-01: expected a date",
        ),
        (
            body(history={"articles": {"25.11.2026": 1}}),
            "history.articles.25.11.2026: expected a date",
        ),
        (body(locale="<script>"), "locale: expected a locale tag"),
        (body(page={"tags": "kursk"}), "page.tags: expected a list"),
        ([READER], "expected a JSON object"),
        ("reader", "expected a JSON object"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(client, data, message):
    response = post(client, data)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_request"
    assert error["message"].startswith(message), error["message"]
    assert response.headers["Cache-Control"] == "private, no-store"


@pytest.mark.parametrize(
    ("raw", "content_type", "status", "code"),
    [
        (b'{"reader": "r_3f9c2a1b7d4e"', "application/json", 400, "invalid_json"),
        (b"\xff\xfe{}", "application/json", 400, "invalid_json"),
        (b"[" * 10000 + b"]" * 10000, "application/json", 413, "request_entity_too_large"),
        (b"[" * 8000 + b"]" * 8000, "application/json", 400, "invalid_json"),  # deeper than Python
        (b"", "application/json", 400, "invalid_json"),
        (b'{"reader": "r_3f9c2a1b7d4e"}', "text/plain", 415, "unsupported_media_type"),
        (
            b'{"reader": "r_3f9c2a1b7d4e"}',
            "application/x-www-form-urlencoded",
            415,
            "unsupported_media_type",
        ),
        (b'{"reader": "r_3f9c2a1b7d4e"}', None, 415, "unsupported_media_type"),
    ],
)
def test_a_body_that_is_not_json_is_refused_clearly(client, raw, content_type, status, code):
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/v1/prompt", data=raw, headers=headers)
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code


def test_json_with_a_charset_is_json(client, redis_client):
    apply(redis_client, doc())
    response = client.post(
        "/v1/prompt",
        data=json.dumps(body()).encode(),
        headers={"Content-Type": "Application/JSON; charset=utf-8"},
    )
    assert response.status_code == 200 and placements(response) == {"inline": "c1"}


def test_unknown_fields_are_ignored_and_long_lists_cut(client, redis_client):
    apply(redis_client, doc())
    views = [{"campaign": "other", "at": "2026-11-25T10:00:00Z", "extra": 1}] * 150
    data = body(
        widget="2.0", page={"section": "war", "colour": "red"}, views=views, future={"a": [1]}
    )
    response = post(client, data)
    assert response.status_code == 200
    assert placements(response) == {"inline": "c1"}


def _sized(size: int) -> bytes:
    """A valid request of exactly `size` bytes (padded with an unknown field)."""
    base = json.dumps(body(pad="")).encode()
    raw = json.dumps(body(pad="x" * (size - len(base)))).encode()
    assert len(raw) == size
    return raw


def _send_chunked(app, raw: bytes):
    environ = EnvironBuilder(
        path="/v1/prompt",
        method="POST",
        input_stream=io.BytesIO(raw),
        headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json"},
    ).get_environ()
    del environ["CONTENT_LENGTH"]  # as a server hands over a chunked body
    out, status, _ = run_wsgi_app(app, environ, buffered=True)
    return int(status.split()[0]), json.loads(b"".join(out))


def test_a_body_over_16_kib_is_a_413_chunked_or_not(app, client, redis_client):
    apply(redis_client, doc())
    ok = client.post("/v1/prompt", data=_sized(16 * 1024), content_type="application/json")
    assert ok.status_code == 200 and placements(ok) == {"inline": "c1"}
    over = client.post("/v1/prompt", data=_sized(16 * 1024 + 1), content_type="application/json")
    assert over.status_code == 413
    assert over.get_json()["error"] == {
        "code": "request_entity_too_large",
        "message": "request body is larger than 16384 bytes",
    }
    status, answer = _send_chunked(app, _sized(16 * 1024))
    assert status == 200 and answer["prompts"][0]["campaign"] == "c1"
    status, answer = _send_chunked(app, _sized(16 * 1024 + 1))
    assert status == 413 and answer["error"]["code"] == "request_entity_too_large"


# --- Debug ------------------------------------------------------------------------------


def _staff(token: str = STAFF) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_debug_with_the_staff_token_traces_every_campaign(client, redis_client):
    apply(
        redis_client,
        doc(id="a1", priority=1),
        doc(id="a2", priority=2),
        doc(id="no", audience={"sections": {"include": ["war"]}}),
    )
    answer = post(client, query_string={"debug": "1"}, headers=_staff()).get_json()
    assert placements_of(answer) == {"inline": "a1"}
    assert [(d["campaign"], d["result"]) for d in answer["debug"]] == [
        ("a1", "shown"),
        ("no", "rejected"),
        ("a2", "outranked"),
    ]
    rejected = answer["debug"][1]
    assert {
        "name": "sections",
        "passed": False,
        "reason": "no section: not in the include list",
    } in rejected["filters"]
    assert [f["name"] for f in answer["debug"][0]["filters"]] == [
        "live", "scheduled", "locale", "readers", "sections", "tags", "referrers",
        "countries", "articles_read", "max_views", "min_hours_between", "dismissed", "copy",
    ]  # fmt: skip
    assert "debug" not in post(client).get_json()  # only when asked
    lower = post(
        client, query_string={"debug": "true"}, headers={"Authorization": f"bearer {STAFF}"}
    )
    assert "debug" in lower.get_json()


def test_the_answer_is_compact_utf8_json_as_json_dumps_writes_it(app, client, redis_client):
    """Reader text echoed by the trace (a section here) is written unescaped but for what
    JSON must escape; a lone surrogate, which UTF-8 cannot carry, makes the answer ASCII
    with escapes. The banner's progress (a float) is written as json.dumps writes it."""
    set_member_count(redis_client, KEYS, 25012)
    goal = goal_rules.parse_goal({"target": 30000, "deadline": "2099-12-31"})
    goals.add(redis_client, KEYS, goal, actor="test")
    apply(redis_client, doc(id="a1"), doc(id="no", audience={"sections": {"include": ["war"]}}))
    refresh(app)
    section = 'війна \u2028\x7f\t\n\x01"</script>\\ \U0001f600'
    response = post(
        client, body(page={"section": section}), query_string={"debug": "1"}, headers=_staff()
    )
    raw = response.get_data()
    answer = json.loads(raw)
    assert raw == json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    assert "війна" in raw.decode("utf-8")
    assert answer["prompts"][0]["banner"]["goal"]["progress"] == 0.8337
    assert f"{section}: not in the include list" in [
        f["reason"] for d in answer["debug"] for f in d["filters"]
    ]
    lone = post(
        client, body(page={"section": "a\ud800"}), query_string={"debug": "1"}, headers=_staff()
    )
    raw = lone.get_data()
    assert lone.status_code == 200 and raw.isascii()
    assert raw == json.dumps(json.loads(raw), separators=(",", ":")).encode("ascii")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        _staff("wrong-token-0123456789abcdef"),
        _staff(STAFF + "x"),
        {"Authorization": STAFF},
        {"Authorization": f"Basic {STAFF}"},
    ],
    ids=["none", "wrong", "longer", "no-scheme", "basic"],
)
def test_debug_without_a_valid_staff_token_is_403(client, redis_client, headers):
    apply(redis_client, doc())
    response = post(client, query_string={"debug": "1"}, headers=headers)
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"
    assert "debug" not in response.get_data(as_text=True).split('"message"')[0]


def test_debug_is_always_403_while_staff_api_token_is_unset(apps, redis_client):
    client = apps().test_client()  # no staff_api_token
    for headers in ({}, _staff(), {"Authorization": "Bearer "}, {"Authorization": "Bearer None"}):
        assert post(client, query_string={"debug": "1"}, headers=headers).status_code == 403
    assert post(client, query_string={"debug": "0"}).status_code == 200


def test_a_bad_debug_value_is_a_400(client):
    response = post(client, query_string={"debug": "yes"}, headers=_staff())
    assert response.status_code == 400
    assert response.get_json()["error"]["message"].startswith("debug:")


# --- CORS and caching -------------------------------------------------------------------


def test_cors_for_allowed_origins_only(client, redis_client):
    apply(redis_client, doc())
    allowed = post(client, headers={"Origin": ORIGIN})
    assert allowed.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Origin" in allowed.headers["Vary"]
    refused = post(client, headers={"Origin": "https://evil.example"})
    assert refused.status_code == 200 and "Access-Control-Allow-Origin" not in refused.headers
    assert "Origin" in refused.headers["Vary"]
    error = post(client, {"reader": "bad"}, headers={"Origin": ORIGIN})
    assert error.status_code == 400
    assert error.headers["Access-Control-Allow-Origin"] == ORIGIN  # the widget can read why

    preflight = assert_post_preflight(client, "/v1/prompt", ORIGIN)
    assert int(preflight.headers["Access-Control-Max-Age"]) > 0


def test_every_answer_is_private_and_never_stored(client, redis_client):
    apply(redis_client, doc())
    for response in (
        post(client),
        post(client, {"reader": "bad"}),
        post(client, query_string={"debug": "1"}),
        client.post("/v1/prompt", data=b"x" * 20000, content_type="application/json"),
    ):
        assert response.headers["Cache-Control"] == "private, no-store", response.status
    assert client.get("/v1/prompt").status_code == 405  # POST only
    assert "ratelimit" not in " ".join(redis_client.keys("*"))  # not rate-limited


# --- One door: what every answer carries, its errors, its count ------------------------


def _counted(client) -> dict[tuple, float]:
    """membership_http_requests_total and the latency count, by their labels."""
    text = client.get("/metrics").get_data(as_text=True)
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in (
                "membership_http_requests_total",
                "membership_http_request_duration_seconds_count",
            ):
                found[(sample.name, *sorted(sample.labels.items()))] = sample.value
    return found


def _grew(before: dict, after: dict) -> dict[tuple, float]:
    return {key: n - before.get(key, 0) for key, n in after.items() if n != before.get(key, 0)}


def test_every_answer_has_the_request_id_and_nosniff(client, redis_client):
    apply(redis_client, doc())
    answers = [
        post(client),
        post(client, {"reader": "bad"}),
        post(client, query_string={"debug": "1"}),
        client.post("/v1/prompt", data=b"x" * 20000, content_type="application/json"),
        client.post("/v1/prompt", data=b"{}", content_type="text/plain"),
        client.options("/v1/prompt", headers={"Origin": ORIGIN}),
        client.get("/v1/prompt"),
    ]
    assert [a.status_code for a in answers] == [200, 400, 403, 413, 415, 204, 405]
    for response in answers:
        assert response.headers["X-Content-Type-Options"] == "nosniff", response.status
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"]), response.status
    given = post(client, headers={"X-Request-ID": "page-view.42"})
    assert given.headers.getlist("X-Request-ID") == ["page-view.42"]
    assert answers[-1].headers["Allow"] == "POST, OPTIONS"
    assert answers[-1].get_json()["error"] == {
        "code": "method_not_allowed",
        "message": "GET is not allowed on /v1/prompt",
    }


def test_decisions_errors_and_preflights_are_counted_and_timed(client, redis_client):
    apply(redis_client, doc())
    before = _counted(client)
    for _ in range(3):
        assert post(client).status_code == 200
    assert post(client, {"reader": "bad"}).status_code == 400
    assert client.options("/v1/prompt").status_code == 204
    assert client.get("/v1/prompt").status_code == 405
    grew = _grew(before, _counted(client))
    requests = "membership_http_requests_total"
    timed = "membership_http_request_duration_seconds_count"
    labels = (("endpoint", "/v1/prompt"), ("method", "POST"))
    assert grew[(requests, *labels, ("status", "200"))] == 3
    assert grew[(requests, *labels, ("status", "400"))] == 1
    assert grew[(timed, *labels)] == 4
    options = (("endpoint", "/v1/prompt"), ("method", "OPTIONS"), ("status", "204"))
    assert grew[(requests, *options)] == 1
    # A method the endpoint does not have is counted as a path without a route is.
    unmatched = (("endpoint", "unmatched"), ("method", "GET"), ("status", "405"))
    assert grew[(requests, *unmatched)] == 1


def test_a_redis_error_in_the_decision_is_a_503_with_retry_after(client, redis_client, monkeypatch):
    apply(redis_client, doc())

    def down(*args, **kwargs):
        raise redis.exceptions.ConnectionError("gone")

    monkeypatch.setattr(prompts_http, "answer", down)
    response = post(client, headers={"Origin": ORIGIN})
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "redis_unavailable"
    assert response.headers["Retry-After"] == "5"
    assert response.headers["Cache-Control"] == "private, no-store"
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_an_unexpected_error_is_a_logged_500_and_never_answered_again(
    client, redis_client, monkeypatch, caplog
):
    """One door: an error is answered as an error (500, logged with the request's id), not
    silently answered again by a second implementation of the endpoint."""
    apply(redis_client, doc())
    real, calls = prompts_http.answer, []

    def failing_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("planted")
        return real(*args, **kwargs)

    monkeypatch.setattr(prompts_http, "answer", failing_once)
    caplog.set_level(logging.ERROR, logger="membership.core.errors")
    caplog.handler.addFilter(logs.RequestIdFilter())  # as the service's handler has it
    response = post(client, headers={"Origin": ORIGIN, "X-Request-ID": "req-planted"})
    assert response.status_code == 500 and len(calls) == 1
    assert response.get_json()["error"] == {
        "code": "internal_error",
        "message": "an unexpected error occurred",
    }
    assert "planted" not in response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "private, no-store"
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    logged = [r for r in caplog.records if "unhandled error during POST /v1/prompt" in r.message]
    assert len(logged) == 1 and logged[0].exc_info is not None
    assert logged[0].request_id == "req-planted"
    assert post(client).status_code == 200  # and the next one is answered


def test_a_declared_length_over_1_mib_is_refused_with_the_endpoints_headers(client):
    response = client.post(
        "/v1/prompt",
        data=b"x" * (1024 * 1024 + 1),
        content_type="application/json",
        headers={"Origin": ORIGIN},
    )
    assert response.status_code == 413
    assert response.get_json()["error"] == {
        "code": "request_entity_too_large",
        "message": "request body is larger than 1048576 bytes",
    }
    assert response.headers["Cache-Control"] == "private, no-store"
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_a_body_shorter_than_its_declared_length_is_answered_as_read(client, redis_client):
    """A client that stops mid-body: what arrived is the body (werkzeug's reading)."""
    apply(redis_client, doc())
    raw = json.dumps(body()).encode()
    environ = EnvironBuilder(
        path="/v1/prompt", method="POST", data=raw, content_type="application/json"
    ).get_environ()
    environ["CONTENT_LENGTH"] = str(len(raw) + 10)
    out, status, _ = run_wsgi_app(client.application, environ, buffered=True)
    assert status == "200 OK" and json.loads(b"".join(out))["prompts"][0]["campaign"] == "c1"


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    changes=st.dictionaries(
        st.sampled_from(["reader", "locale", "page", "history", "views", "dismissed", "member"]),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(-5, 200_000),
            st.floats(allow_nan=False),
            st.text(max_size=70),
            st.lists(st.text(max_size=5), max_size=3),
            st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
        ),
        max_size=3,
    )
)
def test_any_body_gets_a_decision_or_a_400_naming_the_field(client, changes):
    response = post(client, body(**changes))
    assert response.status_code in (200, 400), response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "private, no-store"
    if response.status_code == 400:
        error = response.get_json()["error"]
        assert error["code"] == "invalid_request"
        assert error["message"].split(":")[0].split(".")[0].split("[")[0] in changes


# --- From memory: no Redis per decision, outages, changes, forks ------------------------


def _commands(r) -> dict[str, int]:
    stats = r.info("commandstats")
    return {name: s["calls"] for name, s in stats.items() if name != "cmdstat_info"}


def _mixed_bodies(n: int) -> list[dict]:
    rng = random.Random(9)
    out = []
    for i in range(n):
        b = body(reader=f"reader-{i:05d}", locale=rng.choice(["en", "uk", "de"]))
        if i % 3 == 0:
            b["member"] = member_token()
        if i % 4 == 0:
            b["views"] = [{"campaign": "c2", "at": "2026-11-25T10:00:00Z"}]
        out.append(b)
    return out


def _many_campaigns() -> list[dict]:
    kinds = ["banner", "inline", "modal", "inline", "banner"]
    return [
        doc(
            id=f"c{i}",
            priority=i % 3,
            placement=kinds[i % 5],
            control_share=0.1,
            variants=[{"id": "a", "weight": 1, "copy": COUNT_COPY if i % 2 else PLAIN_COPY}],
        )
        for i in range(10)
    ]


def test_decisions_send_no_redis_command(apps, own_redis):
    """Counted on the test's own Redis (INFO commandstats): N decisions, 0 commands, with
    the refresher held still between its ticks."""
    r = own_redis.client()
    app = apps(redis_url=own_redis.url, prompt_refresh_seconds=3600, banner_refresh_seconds=3600)
    set_member_count(r, KEYS, 25012)
    apply(r, *_many_campaigns())
    client = app.test_client()
    assert post(client).status_code == 200  # the first decision waits for the first read
    holder = snapshot.for_app(app)
    assert holder.ticks == 1 and len(holder.live().campaigns) == 10
    before = _commands(r)
    shown = 0
    for data in _mixed_bodies(300):
        response = post(client, data)
        assert response.status_code == 200
        shown += len(response.get_json()["prompts"])
    after = _commands(r)
    assert shown > 100  # real decisions, with prompts
    assert {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)} == {}


def test_redis_commands_per_decision_with_the_refresher_running(apps, own_redis):
    """Default refresh: Redis sees the refresher's ticks (about one GET and one banner MULTI a
    second), never anything per decision."""
    r = own_redis.client()
    app = apps(redis_url=own_redis.url)
    set_member_count(r, KEYS, 25012)
    apply(r, *_many_campaigns())
    client = app.test_client()
    post(client)
    bodies = _mixed_bodies(400)
    before = _commands(r)
    started = time.monotonic()
    for data in bodies * 2:
        assert post(client, data).status_code == 200
    elapsed = time.monotonic() - started
    spent = sum(_commands(r).values()) - sum(before.values())
    ticks = elapsed / 0.9 + 2
    assert spent <= 8 * ticks, (spent, elapsed)
    assert spent / len(bodies * 2) < 0.1


def test_decisions_go_on_from_memory_while_redis_is_down(apps, own_redis, caplog):
    r = own_redis.client()
    app = apps(redis_url=own_redis.url, prompt_refresh_seconds=0.05, banner_refresh_seconds=0)
    set_member_count(r, KEYS, 25012)
    apply(
        r,
        doc(variants=[{"id": "a", "weight": 1, "copy": COUNT_COPY}]),
        doc(id="m", placement="modal"),
    )
    client = app.test_client()
    # until this app's memory holds both campaigns and the count (its refreshers' first reads
    # may come late on a loaded machine: the count's campaign waits for a count, never 0)
    deadline = time.monotonic() + 5
    while [p["headline"] for p in post(client).get_json()["prompts"]] != [
        "25,012 members",
        "Support us",
    ]:
        assert time.monotonic() < deadline, post(client).get_json()["prompts"]
        time.sleep(0.02)

    caplog.set_level(logging.INFO, logger="membership.prompts")
    own_redis.kill()
    time.sleep(0.4)  # several ticks fail meanwhile
    for _ in range(20):
        response = post(client)
        assert response.status_code == 200
        prompts = response.get_json()["prompts"]
        assert [(p["campaign"], p["headline"]) for p in prompts] == [
            ("c1", "25,012 members"),
            ("m", "Support us"),
        ]
    assert prompts[0]["banner"]["count"] == 25012
    assert prompts[0]["banner"]["stale"] is True  # the banner cache says so too
    # This app's refresher's records (an earlier test's app may still tick until collected).
    ours = f":{own_redis.port}."
    lost = [
        rec
        for rec in caplog.records
        if "cannot read the campaigns" in rec.getMessage() and ours in rec.getMessage()
    ]
    assert len(lost) == 1  # logged once, not per tick
    assert lost[0].levelno == logging.WARNING

    own_redis.start()  # back (empty: a lost volume); then a change is applied
    apply(own_redis.client(), doc(id="back", placement="banner"))
    deadline = time.monotonic() + 2
    while placements(post(client)) != {"banner": "back"}:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert [rec.getMessage() for rec in caplog.records if "campaigns read" in rec.getMessage()]


def test_a_corrupt_stored_campaign_keeps_its_last_good_version(app, client, redis_client, caplog):
    apply(redis_client, doc(id="a"), doc(id="b", placement="banner"))
    assert placements(post(client)) == {"inline": "a", "banner": "b"}
    redis_client.hset(KEYS.campaigns, "a", "{not json")
    redis_client.incr(KEYS.campaigns_version)
    apply(
        redis_client,
        doc(id="b", placement="banner", variants=[{"id": "z", "weight": 1, "copy": PLAIN_COPY}]),
    )
    with caplog.at_level(logging.INFO, logger="membership.prompts"):
        refresh(app)
        refresh(app)
        refresh(app)
    answer = post(client).get_json()
    assert [(p["campaign"], p["variant"]) for p in answer["prompts"]] == [("b", "z"), ("a", "a")]
    errors = [rec for rec in caplog.records if rec.levelno == logging.ERROR]
    assert len(errors) == 1 and "a: not JSON" in errors[0].getMessage()
    # A process that never had it goes on without it.
    other = snapshot.for_app(app).__class__(redis_client, KEYS, snapshot.for_app(app).banner_cache)
    other.refresh()
    assert [c.id for c in other.live().campaigns] == ["b"]


def test_a_redis_refilled_up_to_the_same_version_is_seen_by_the_periodic_full_read(
    apps, redis_client
):
    app = apps(prompt_refresh_seconds=3600, prompt_full_read_seconds=0.3)
    client = app.test_client()
    apply(redis_client, doc(id="old"))
    assert placements(post(client)) == {"inline": "old"}
    redis_client.flushall()  # a lost volume, then the campaigns applied again
    apply(redis_client, doc(id="new"))
    assert redis_client.get(KEYS.campaigns_version) == "1"
    refresh(app)
    assert placements(post(client)) == {"inline": "old"}  # the same version: not read again
    time.sleep(0.35)
    refresh(app)
    assert placements(post(client)) == {"inline": "new"}


def test_a_campaign_change_shows_within_a_second_in_every_process(apps, redis_client):
    clients = [apps().test_client(), apps().test_client()]  # two processes' worth
    apply(redis_client, doc(variants=[{"id": "a", "weight": 1, "copy": PLAIN_COPY}]))
    for client in clients:
        assert post(client).get_json()["prompts"][0]["variant"] == "a"
    apply(redis_client, doc(variants=[{"id": "b", "weight": 1, "copy": PLAIN_COPY}]))
    changed = time.monotonic()
    waiting = list(clients)
    while waiting:
        for client in list(waiting):
            began = time.monotonic() - changed  # a request judged by when it began
            if post(client).get_json()["prompts"][0]["variant"] == "b":
                waiting.remove(client)
            else:
                assert began < 1.0, f"{began:.2f} s after the change, still the old campaign"
        time.sleep(0.01)


def test_a_forked_process_runs_its_own_refresher(apps, redis_client, redis_url):
    app = apps(prompt_refresh_seconds=3600)  # the parent's refresher sleeps after one read
    apply(redis_client, doc(variants=[{"id": "a", "weight": 1, "copy": PLAIN_COPY}]))
    client = app.test_client()
    assert post(client).get_json()["prompts"][0]["variant"] == "a"
    pid = os.fork()
    if pid == 0:  # the child: a change made now must reach its decisions
        code = 1
        try:
            import redis

            r = redis.Redis.from_url(redis_url, decode_responses=True)
            apply(r, doc(variants=[{"id": "b", "weight": 1, "copy": PLAIN_COPY}]))
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                if post(client).get_json()["prompts"][0]["variant"] == "b":
                    code = 0
                    break
                time.sleep(0.02)
        finally:
            os._exit(code)
    deadline = time.monotonic() + 10
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0:
        if time.monotonic() > deadline:  # never hang the suite on a stuck child
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child did not finish within 10 s")
        time.sleep(0.02)
    assert os.waitstatus_to_exitcode(done[1]) == 0
    # The parent's refresher sleeps (3600 s): it still holds the old set, as it should.
    assert post(client).get_json()["prompts"][0]["variant"] == "a"


# --- Order and duplication do not matter ----------------------------------------------------

_ids = st.lists(
    st.sampled_from(["a", "b", "c", "d", "e", "f"]), min_size=1, max_size=6, unique=True
)


@st.composite
def _campaign_docs(draw) -> list[dict]:
    docs = []
    for cid in draw(_ids):
        placement = draw(st.sampled_from(campaigns.PLACEMENTS))
        extra = {"gate": {"dismissible": True, "free_articles": 0}} if placement == "gate" else {}
        docs.append(
            doc(
                id=cid,
                placement=placement,
                priority=draw(st.integers(0, 2)),
                control_share=draw(st.sampled_from([0, 0.2])),
                audience={"readers": draw(st.sampled_from(campaigns.READERS))},
                **extra,
            )
        )
    return docs


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    docs=_campaign_docs(),
    seed=st.integers(0, 1000),
    member=st.booleans(),
    reader=st.sampled_from(["reader-0001", "reader-0002", "reader-0003"]),
)
def test_any_order_and_repetition_of_applies_gives_the_same_decision(
    app, redis_client, docs, seed, member, reader
):
    client = app.test_client()
    rng = random.Random(seed)
    today = time.strftime("%Y-%m-%d", time.gmtime())
    data = body(
        reader=reader,
        history={"articles": {today: 1}},
        **({"member": member_token()} if member else {}),
    )
    answers = []
    for _ in range(2):
        redis_client.delete(KEYS.campaigns)  # the version goes on rising, as in real life
        shuffled = docs[:]
        rng.shuffle(shuffled)
        for d in shuffled + rng.sample(shuffled, k=len(shuffled) // 2):  # some applied twice
            apply(redis_client, d)
        refresh(app)
        answer = post(client, data).get_json()
        answers.append(
            (
                [(p["placement"], p["campaign"], p["variant"]) for p in answer["prompts"]],
                [h["campaign"] for h in answer["holdout"]],
            )
        )
        shown = [p["placement"] for p in answer["prompts"]]
        held = [campaigns.parse(d).placement for d in docs if d["id"] in answers[-1][1]]
        assert len(shown) == len(set(shown))
        assert len(set(shown + held) & set(INTERRUPTIVE)) <= 1
    assert answers[0] == answers[1]
    # ...and it is the pure decision over the same campaigns.
    pure = decide(
        [campaigns.parse(d) for d in docs], parse_request(data), _now(), member, None, False, False
    )
    assert answers[0][0] == [(p.placement, p.campaign.id, p.variant.id) for p in pure.prompts]
    assert answers[0][1] == [h.campaign.id for h in pure.holdout]


def _now():
    import datetime as dt

    return dt.datetime.now(dt.UTC)
