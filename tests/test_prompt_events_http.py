"""POST /v1/prompt/events through the app, on a real Redis."""

from __future__ import annotations

import json
import threading
import time

import pytest
import redis

from membership.prompts import event_api
from membership.prompts.counts import HOLDOUT
from membership.prompts.tokens import DECISION_MAX_AGE, Tokens
from membership.runtime import runtime

URL = "/v1/prompt/events"
SITE = "https://news.example"
CAMPAIGN = "winter-drive"


@pytest.fixture
def app(make_app):
    return make_app(allowed_origins=(SITE,), rate_limit_prompt_events="off")


@pytest.fixture
def tokens(app):
    return Tokens(runtime(app).settings.secret_key)


def token(tokens, variant="a", decision="d1", reader="r_reader01", at=None, campaign=CAMPAIGN):
    return tokens.decision(decision, campaign, variant, reader, time.time() if at is None else at)


def post(client, events, content_type="application/json", **kwargs):
    body = events if isinstance(events, str | bytes) else json.dumps({"events": events})
    return client.post(URL, data=body, content_type=content_type, **kwargs)


def figures(app, redis_client) -> dict[str, int]:
    key = runtime(app).keys.prompt_counts(CAMPAIGN)
    return {k: int(v) for k, v in redis_client.hgetall(key).items()}


def test_events_are_counted_and_answered_202(app, client, tokens, redis_client):
    shown, held = token(tokens), token(tokens, variant=None, decision="d2")
    response = post(
        client,
        [
            {"type": "view", "token": shown},
            {"type": "click", "token": shown},
            {"type": "dismiss", "token": shown},
            {"type": "holdout", "token": held},
        ],
    )
    assert response.status_code == 202
    assert response.get_json() == {"accepted": 4, "rejected": 0}
    assert response.headers["Cache-Control"] == "no-store"
    assert figures(app, redis_client) == {
        "a:views": 1,
        "a:clicks": 1,
        "a:dismissals": 1,
        f"{HOLDOUT}:events": 1,
    }


def test_the_same_token_and_type_is_accepted_and_counted_once(app, client, tokens, redis_client):
    view = {"type": "view", "token": token(tokens)}
    assert post(client, [view, view]).get_json() == {"accepted": 2, "rejected": 0}
    assert post(client, [view]).get_json() == {"accepted": 1, "rejected": 0}
    assert figures(app, redis_client) == {"a:views": 1}


def test_another_spelling_of_the_same_token_is_rejected(app, client, tokens, redis_client):
    """Base64 leaves spare bits in the signature's last character; tokens.py reads only the
    one spelling it writes, so a respelled token cannot pass as a second event."""
    original = token(tokens)
    payload, signature = original.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    spellings = [f"{payload}.{signature[:-1]}{c}" for c in alphabet]
    spellings = [original, *[s for s in spellings if s != original][:49]]  # 50 a call
    answer = post(client, [{"type": "view", "token": s} for s in spellings]).get_json()
    assert answer == {"accepted": 1, "rejected": len(spellings) - 1}
    assert figures(app, redis_client) == {"a:views": 1}


def test_two_concurrent_calls_count_an_event_once(app, tokens, redis_client):
    events = [{"type": "view", "token": token(tokens, decision=f"d{i}")} for i in range(10)]
    barrier = threading.Barrier(2)
    answers = []

    def send():
        client = app.test_client()
        barrier.wait()
        answers.append(post(client, events))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a.status_code for a in answers] == [202, 202]
    assert figures(app, redis_client) == {"a:views": 10}


def test_forged_expired_unknown_and_mismatched_events_are_rejected(
    app, client, tokens, redis_client
):
    good = token(tokens)
    forged = Tokens("another-secret-0123456789").decision("d9", CAMPAIGN, "a", "r_x1234567", 0)
    tampered = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    expired = token(tokens, decision="old", at=time.time() - DECISION_MAX_AGE - 1)
    held = token(tokens, variant=None, decision="h")
    response = post(
        client,
        [
            {"type": "view", "token": good},
            {"type": "view", "token": forged},
            {"type": "view", "token": tampered},
            {"type": "view", "token": expired},
            {"type": "hover", "token": good},
            {"type": "view", "token": held},  # a holdout token is only for `holdout`
            {"type": "holdout", "token": good},  # and a prompt's token never is
            {"type": "view"},
            {"type": "view", "token": 12345},
            {"type": ["view"], "token": good},
            {"token": good},
        ],
    )
    assert response.status_code == 202
    assert response.get_json() == {"accepted": 1, "rejected": 10}
    assert figures(app, redis_client) == {"a:views": 1}


def test_fifty_events_are_taken_and_fifty_one_refused(app, client, tokens, redis_client):
    events = [{"type": "view", "token": token(tokens, decision=f"d{i}")} for i in range(51)]
    refused = post(client, events)
    assert refused.status_code == 400
    assert refused.get_json()["error"] == {
        "code": "invalid_events",
        "message": "events: at most 50 per call, got 51",
    }
    assert figures(app, redis_client) == {}
    assert post(client, events[:50]).get_json() == {"accepted": 50, "rejected": 0}
    assert figures(app, redis_client) == {"a:views": 50}


def test_text_plain_from_send_beacon_is_accepted(app, client, tokens, redis_client):
    body = json.dumps({"events": [{"type": "view", "token": token(tokens)}], "v": 2})
    response = post(client, body, content_type="text/plain;charset=UTF-8")
    assert response.status_code == 202
    assert figures(app, redis_client) == {"a:views": 1}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "body: not JSON (Expecting property name enclosed in double quotes"),
        (b"\xff\xfe{}", "body: not UTF-8 text"),
        (b"[" * 5000 + b"]" * 5000, "body: nested too deeply"),
        (b"[]", "body: expected a JSON object with `events`"),
        (b"{}", "events: missing"),
        (b'{"events": {"type": "view"}}', "events: expected a list"),
        (b'{"events": [{"type": "view", "token": "x"}, "view"]}', "events[1]: expected an object"),
        (b"", "body: not JSON"),
    ],
)
def test_a_malformed_body_is_a_400_naming_the_field(client, body, message):
    response = post(client, body)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_events"
    assert error["message"].startswith(message)


def test_other_content_types_are_415(client):
    body = json.dumps({"events": []})
    for content_type in ("application/x-www-form-urlencoded", "text/html", None):
        response = client.post(URL, data=body, content_type=content_type)
        assert response.status_code == 415, content_type
        assert response.get_json()["error"]["code"] == "unsupported_media_type"


def test_a_body_over_16_kib_is_413(client, tokens):
    events = [{"type": "view", "token": token(tokens, decision="d" * 300)}] * 50
    body = json.dumps({"events": events})
    assert len(body) > event_api.MAX_BODY_BYTES
    response = post(client, body)
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "request_entity_too_large"
    assert post(client, json.dumps({"events": [], "pad": "x" * 16000})).status_code == 202


def test_over_the_limit_is_429_with_retry_after(make_app, tokens):
    client = make_app(allowed_origins=(SITE,), rate_limit_prompt_events="2/minute").test_client()
    events = [{"type": "view", "token": token(tokens)}]
    assert [post(client, events).status_code for _ in range(2)] == [202, 202]
    refused = post(client, events, headers={"Origin": SITE})
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.get_json()["error"]["code"] == "rate_limited"
    assert refused.headers["Access-Control-Allow-Origin"] == SITE  # the page can read why
    other = post(client, events, environ_base={"REMOTE_ADDR": "192.0.2.9"})
    assert other.status_code == 202  # per client address


def test_redis_down_is_503_with_retry_after(make_app, own_redis, tokens):
    app = make_app(redis_url=own_redis.url, rate_limit_prompt_events="off")
    client = app.test_client()
    events = [{"type": "view", "token": token(tokens)}]
    assert post(client, events).status_code == 202
    own_redis.kill()
    response = post(client, events)
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    error = response.get_json()["error"]
    assert error["code"] == "redis_unavailable"
    assert str(own_redis.port) not in error["message"]


def test_a_corrupt_counter_is_503_and_counts_nothing(app, client, tokens, redis_client):
    redis_client.set(runtime(app).keys.prompt_counts(CAMPAIGN), "not a hash")
    response = post(client, [{"type": "view", "token": token(tokens)}])
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "redis_error"


def _round_trips(monkeypatch):
    sent = []
    original = redis.connection.AbstractConnection.send_packed_command

    def counting(self, command, check_health=True):
        sent.append(command)
        return original(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
    return sent


def _calls(redis_client) -> dict[str, int]:
    return {k: v["calls"] for k, v in redis_client.info("commandstats").items()}


def test_one_call_is_one_redis_round_trip(app, client, tokens, redis_client, monkeypatch):
    held = token(tokens, variant=None, decision="h")
    post(client, [{"type": "holdout", "token": held}])  # the script is cached from now on
    events = [{"type": "view", "token": token(tokens, decision=f"d{i}")} for i in range(50)]
    before = _calls(redis_client)
    sent = _round_trips(monkeypatch)
    assert post(client, events).get_json() == {"accepted": 50, "rejected": 0}
    monkeypatch.undo()
    after = _calls(redis_client)
    assert len(sent) == 1  # what the app sent: one request
    # What the server saw from outside a script: one EVALSHA (the INFO is the test's own).
    grew = {k for k in after if after[k] != before.get(k, 0)}
    assert after["cmdstat_evalsha"] - before["cmdstat_evalsha"] == 1
    assert not grew & {"cmdstat_eval", "cmdstat_multi", "cmdstat_exec", "cmdstat_script"}


def test_cors_for_allowed_origins_only(client, tokens):
    events = [{"type": "view", "token": token(tokens)}]
    allowed = post(client, events, headers={"Origin": SITE})
    assert allowed.headers["Access-Control-Allow-Origin"] == SITE
    assert "Origin" in allowed.headers["Vary"]
    other = post(client, events, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    assert "Origin" in other.headers["Vary"]
    error = post(client, b"nope", headers={"Origin": SITE})
    assert error.status_code == 400
    assert error.headers["Access-Control-Allow-Origin"] == SITE

    preflight = client.options(
        URL,
        headers={
            "Origin": SITE,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == SITE
    assert preflight.headers["Access-Control-Allow-Methods"] == "POST"
    assert preflight.headers["Access-Control-Allow-Headers"] == "Content-Type"
    refused = client.options(URL, headers={"Origin": "https://evil.example"})
    assert refused.status_code == 204
    assert "Access-Control-Allow-Methods" not in refused.headers
    assert "Access-Control-Allow-Origin" not in refused.headers


def test_get_is_405_json(client):
    response = client.get(URL)
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"
