"""The prompt lane (membership/prompts/lane.py) against the Flask route it stands in front of.

Every request goes to both doors: the whole app (the lane first) and the route alone
(`lane.app`, the stack behind the lane). The answers must be the same (status, headers,
body) but for what is made anew per request (the request id, the decision id inside each
token, the token's time). The plain valid case must be answered by the lane itself, and
everything else by the route.
"""

from __future__ import annotations

import json
import random
import re
import time
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder, run_wsgi_app

from bench.prompt import campaign, prompt_body
from membership import goals
from membership.prompts import campaigns, lane, snapshot, store
from membership.prompts.tokens import Tokens
from membership.store import Keys
from tests.member_count import set_member_count
from tests.test_metrics import requests_total, scrape, value

KEYS = Keys()
SECRET = "test-secret-key-0123456789"  # tests/conftest.py make_app's
STAFF = "staff-token-0123456789abcdef"
ORIGIN = "https://news.example"
RNG = random.Random(20261126)
DOCS = [campaign(i, RNG) for i in range(20)]
IDS = [d["id"] for d in DOCS]
NOW = datetime.now(UTC)
BODIES = [prompt_body(RNG, NOW, IDS) for _ in range(40)]


@pytest.fixture
def app(make_app, redis_client):
    set_member_count(redis_client, KEYS, 25012)
    goals.add(
        redis_client, KEYS, goals.parse_goal({"target": 30000, "deadline": "2099-12-31"}), actor="t"
    )
    store.apply(redis_client, KEYS, campaigns.parse_list(DOCS), actor="test")
    app = make_app(staff_api_token=STAFF, allowed_origins=(ORIGIN,), country_header="CF-IPCountry")
    yield app
    snapshot.for_app(app).close()


class Doors:
    """The app's two doors, and how often the route behind the lane was reached."""

    def __init__(self, app) -> None:
        self.app = app
        self.lane = app.wsgi_app
        assert isinstance(self.lane, lane.PromptLane)
        self.route = self.lane.app
        self.reached = 0

        def counted(environ, start_response):
            self.reached += 1
            return self.route(environ, start_response)

        self.lane.app = counted

    def both(self, **request):
        """(answer through the lane, answer of the route alone, whether the lane passed)."""
        before = self.reached
        whole = _call(self.app, request)
        passed = self.reached > before
        alone = _call(self.route, request)
        return whole, alone, passed


def _call(wsgi, request: dict):
    environ = EnvironBuilder(path="/v1/prompt", method="POST", **request).get_environ()
    body, status, headers = run_wsgi_app(wsgi, environ, buffered=True)
    return status, headers, b"".join(body)


def _tokens_checked(answer: dict, reader: str) -> dict:
    """The answer with each token replaced by what it signs (its ids and time checked)."""
    tokens = Tokens(SECRET)
    for entry in [*answer.get("prompts", []), *answer.get("holdout", [])]:
        claim = tokens.read_decision(entry["token"], time.time())
        assert claim is not None and claim.reader == reader and claim.campaign == entry["campaign"]
        assert re.fullmatch(r"[0-9a-f]{16,32}", claim.decision), claim.decision
        entry["token"] = (claim.campaign, claim.variant)
    return answer


def _same(whole, alone, reader: str | None = None) -> None:
    (status, headers, body), (status2, headers2, body2) = whole, alone
    assert status == status2
    ids = headers.get("X-Request-ID"), headers2.get("X-Request-ID")
    assert all(re.fullmatch(r"[0-9a-f]{32}", i or "") for i in ids), ids
    drop = {"X-Request-ID", "Content-Length"}  # lengths: the tokens' ids differ in length
    assert sorted(h for h in headers.items() if h[0] not in drop) == sorted(
        h for h in headers2.items() if h[0] not in drop
    )
    assert int(headers["Content-Length"]) == len(body)
    if status.startswith("200") and reader is not None:
        assert _tokens_checked(json.loads(body), reader) == _tokens_checked(
            json.loads(body2), reader
        )
    else:
        assert body == body2


def test_the_plain_case_is_answered_by_the_lane_as_the_route_answers_it(app):
    doors = Doors(app)
    member = Tokens(SECRET)
    token = member.encode_member(member.member("cus_1", time.time()))
    shown = 0
    for i, data in enumerate(BODIES):
        if i % 5 == 0:
            data = {**data, "member": token}
        headers = {"Origin": ORIGIN if i % 2 else "https://elsewhere.example"}
        if i % 3:
            headers["CF-IPCountry"] = ["UA", "PL", "DE"][i % 3]
        whole, alone, passed = doors.both(json=data, headers=headers)
        assert not passed, f"body {i} went past the lane"
        assert whole[0] == "200 OK"
        _same(whole, alone, data["reader"])
        shown += bool(json.loads(whole[2])["prompts"])
    assert shown >= 10  # the comparison covered answers with prompts, not only empty ones


SENT_ON = [
    pytest.param({"query_string": "debug=1", "json": BODIES[0]}, id="debug-without-token"),
    pytest.param(
        {
            "query_string": "debug=1",
            "json": BODIES[0],
            "headers": {"Authorization": f"Bearer {STAFF}"},
        },
        id="debug",
    ),
    pytest.param({"query_string": "debug=0", "json": BODIES[1]}, id="debug-0"),
    pytest.param({"data": json.dumps(BODIES[2]), "content_type": "text/plain"}, id="text-plain"),
    pytest.param(
        {"data": json.dumps(BODIES[2]), "content_type": "application/json; charset=latin-1"},
        id="type-with-another-charset",
    ),
    pytest.param({"data": b"{not json", "content_type": "application/json"}, id="not-json"),
    pytest.param({"data": b"", "content_type": "application/json"}, id="empty"),
    pytest.param({"json": {"reader": "bad reader!"}}, id="bad-reader"),
    pytest.param({"json": {**BODIES[3], "views": "no"}}, id="views-not-a-list"),
    pytest.param({"json": {**BODIES[3], "reader": "x" * 16, "pad": "y" * 17000}}, id="too-large"),
    pytest.param({"json": [BODIES[3]]}, id="a-list"),
    pytest.param(
        {"data": json.dumps(BODIES[4]).encode("utf-16"), "content_type": "application/json"},
        id="utf-16",
    ),
]


@pytest.mark.parametrize("request_", SENT_ON)
def test_everything_else_goes_to_the_route_and_is_answered_as_before(app, request_):
    doors = Doors(app)
    whole, alone, passed = doors.both(**request_)
    assert passed
    data = request_.get("json")
    if data is None and request_.get("content_type", "").startswith("application/json;"):
        data = json.loads(request_["data"])
    _same(whole, alone, data.get("reader") if isinstance(data, dict) else None)


def test_a_chunked_body_goes_to_the_route(app):
    doors = Doors(app)
    raw = json.dumps(BODIES[5]).encode()
    environ = EnvironBuilder(
        path="/v1/prompt",
        method="POST",
        data=raw,
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
    ).get_environ()
    environ.pop("CONTENT_LENGTH")
    body, status, _ = run_wsgi_app(app.wsgi_app, environ, buffered=True)
    assert status == "200 OK" and "prompts" in json.loads(b"".join(body))
    assert doors.reached == 1


def test_a_body_shorter_than_its_length_goes_to_the_route(app):
    """A client that stops mid-body: the lane leaves it to the route (whatever werkzeug
    makes of the short stream there, it is what the route always answered)."""
    doors = Doors(app)
    raw = json.dumps(BODIES[6]).encode()

    def short(wsgi):
        environ = EnvironBuilder(
            path="/v1/prompt", method="POST", data=raw, content_type="application/json"
        ).get_environ()
        environ["CONTENT_LENGTH"] = str(len(raw) + 10)
        body, status, headers = run_wsgi_app(wsgi, environ, buffered=True)
        return status, headers, b"".join(body)

    whole = short(app.wsgi_app)
    assert doors.reached == 1
    _same(whole, short(doors.route), BODIES[6]["reader"])


def test_an_error_in_the_lanes_decision_is_left_to_the_route(app, monkeypatch):
    """Whatever goes wrong in the lane, the route answers (with its error handling, its
    logging, its 503s): here the lane's decision raises once and the route's does not."""
    from membership.prompts import http

    doors = Doors(app)
    real, calls = http.answer, []

    def failing_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("planted")
        return real(*args, **kwargs)

    monkeypatch.setattr(http, "answer", failing_once)
    whole, alone, passed = doors.both(json=BODIES[7])
    assert passed and len(calls) == 3  # the lane's, the route's behind it, the route's alone
    _same(whole, alone, BODIES[7]["reader"])


def test_lane_answers_are_counted_in_the_metrics(app):
    client = app.test_client()
    before = scrape(client)
    for data in BODIES[:7]:
        assert client.post("/v1/prompt", json=data).status_code == 200
    after = scrape(client)
    assert (
        requests_total(after, "/v1/prompt", "200", "POST")
        - requests_total(before, "/v1/prompt", "200", "POST")
        == 7
    )
    timed = "membership_http_request_duration_seconds_count"
    grew = value(after, timed, endpoint="/v1/prompt", method="POST") - value(
        before, timed, endpoint="/v1/prompt", method="POST"
    )
    assert grew == 7


_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 200_000),
    st.floats(allow_nan=False),
    st.text(max_size=70),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)
_FIELDS = ["reader", "locale", "page", "history", "views", "dismissed", "member", "other"]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    base=st.integers(0, len(BODIES) - 1),
    changes=st.dictionaries(st.sampled_from(_FIELDS), _JUNK, max_size=3),
    drop=st.lists(st.sampled_from(_FIELDS), max_size=2),
)
def test_any_body_gets_the_same_answer_at_both_doors(app, base, changes, drop):
    data = {k: v for k, v in {**BODIES[base], **changes}.items() if k not in drop}
    doors = Doors(app)
    whole, alone, _ = doors.both(json=data)
    reader = data.get("reader") if isinstance(data.get("reader"), str) else None
    _same(whole, alone, reader)
