"""POST /v1/prompt/events through the app, on a real Redis."""

from __future__ import annotations

import json
import threading
import time

import pytest
import redis

from membership.core.config import ConfigError, load_settings
from membership.core.runtime import runtime
from membership.prompts import counts, event_api
from membership.prompts.counts import HOLDOUT, digest
from membership.prompts.tokens import DECISION_MAX_AGE, Tokens
from tests.support.cors import assert_post_preflight

pytestmark = pytest.mark.topologies("single", "cluster")

URL = "/v1/prompt/events"
SITE = "https://news.example"
CAMPAIGN = "winter-drive"


@pytest.fixture
def app(make_app):
    return make_app(allowed_origins=(SITE,), rate_limit_prompt_events="off")


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


# --- One address cannot steer a campaign ----------------------------------------------------


def views(tokens, start, n):
    return [
        {"type": "view", "token": token(tokens, decision=f"d{i}")} for i in range(start, start + n)
    ]


def _send_all(app, calls, environ=None):
    """Each call's events from its own thread, all at once: the answers, in call order."""
    barrier = threading.Barrier(len(calls))
    answers = [None] * len(calls)

    def send(i):
        client = app.test_client()
        barrier.wait()
        answers[i] = post(client, calls[i], environ_base=environ or {})

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def test_one_address_has_at_most_its_bound_counted_even_all_at_once(app, tokens, redis_client):
    """The review's attack: tokens for one variant, views and clicks sent as fast as can be.
    From one address 150 views and 150 clicks arrive in 30 calls at once; 100 of each type
    count (PROMPT_EVENTS_PER_ADDRESS's default), the rest are answered as rejected and
    counted as the variant's excess, and no reader is added past the bound."""
    assert runtime(app).settings.prompt_events_per_address == 100
    shown = [token(tokens, "b", f"d{i}", f"r_steer{i:04}") for i in range(150)]
    events = [{"type": kind, "token": t} for t in shown for kind in ("view", "click")]
    calls = [events[i : i + 10] for i in range(0, 300, 10)]
    answers = _send_all(app, calls)
    assert {a.status_code for a in answers} == {202}
    assert sum(a.get_json()["accepted"] for a in answers) == 200
    assert sum(a.get_json()["rejected"] for a in answers) == 100
    assert figures(app, redis_client) == {"b:views": 100, "b:clicks": 100, "b:excess": 100}
    # No reader added past the bound: the variant's readers are those of the counted views
    # (whose mark is set), as a HyperLogLog of just those gives exactly.
    keys = runtime(app).keys
    claims = [tokens.read_decision(t, time.time()) for t in shown]
    counted = [c for c in claims if redis_client.exists(keys.prompt_event_mark(digest(c), "view"))]
    assert len(counted) == 100
    redis_client.pfadd(keys.prompt_readers(CAMPAIGN, "check"), *[c.reader for c in counted])
    readers = [redis_client.pfcount(keys.prompt_readers(CAMPAIGN, s)) for s in ("b", "check")]
    assert readers[0] == readers[1]
    # Everything again, one call after another: the counted events are duplicates (accepted,
    # not counted again), the rest still over the bound.
    client = app.test_client()
    again = [post(client, events).get_json() for events in calls]
    assert sum(a["accepted"] for a in again) == 200
    assert sum(a["rejected"] for a in again) == 100
    assert figures(app, redis_client) == {"b:views": 100, "b:clicks": 100, "b:excess": 200}


def test_each_address_gets_its_own_bound_and_no_address_is_stored(make_app, tokens, redis_client):
    app = make_app(
        allowed_origins=(SITE,), rate_limit_prompt_events="off", prompt_events_per_address=3
    )
    client = app.test_client()

    first = post(client, views(tokens, 0, 4), environ_base={"REMOTE_ADDR": "192.0.2.1"})
    second = post(client, views(tokens, 10, 4), environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert first.get_json() == second.get_json() == {"accepted": 3, "rejected": 1}
    assert figures(app, redis_client) == {"a:views": 6, "a:excess": 2}
    # The same host by another port, or another address of its IPv6 /64, is the same client.
    more = post(client, views(tokens, 20, 2), environ_base={"REMOTE_ADDR": "2001:db8::1"})
    assert more.get_json() == {"accepted": 2, "rejected": 0}
    same_64 = post(client, views(tokens, 30, 2), environ_base={"REMOTE_ADDR": "2001:db8::2"})
    assert same_64.get_json() == {"accepted": 1, "rejected": 1}
    budgets = [redis_client.hgetall(k) for k in redis_client.scan_iter(match="*:budget:*")]
    assert len(budgets) == 3  # one per client: two IPv4 hosts and one IPv6 /64
    stored = " ".join(redis_client.scan_iter(match="*")) + repr(budgets)
    for address in ("192.0.2.1", "198.51.100.7", "2001:db8"):
        assert address not in stored


def test_behind_a_proxy_the_forwarded_address_is_bounded_as_the_rate_limits_read_it(
    make_app, tokens, redis_client
):
    app = make_app(
        rate_limit_prompt_events="off", prompt_events_per_address=2, trusted_proxy_hops=1
    )
    client = app.test_client()
    proxy = {"REMOTE_ADDR": "127.0.0.9"}

    one = post(
        client, views(tokens, 0, 3), environ_base=proxy, headers={"X-Forwarded-For": "192.0.2.1"}
    )
    other = post(
        client, views(tokens, 10, 3), environ_base=proxy, headers={"X-Forwarded-For": "192.0.2.2"}
    )
    assert one.get_json() == other.get_json() == {"accepted": 2, "rejected": 1}
    # A made-up leftmost entry does not make a new client: the proxy's own entry counts.
    forged = post(
        client,
        views(tokens, 20, 3),
        environ_base=proxy,
        headers={"X-Forwarded-For": "203.0.113.9, 192.0.2.1"},
    )
    assert forged.get_json() == {"accepted": 0, "rejected": 3}
    assert figures(app, redis_client) == {"a:views": 4, "a:excess": 5}


def test_the_bound_is_a_setting_checked_at_start():
    env = {"SECRET_KEY": "s" * 32}
    assert load_settings(env).prompt_events_per_address == counts.PER_ADDRESS == 100
    loaded = load_settings({**env, "PROMPT_EVENTS_PER_ADDRESS": "250"})
    assert loaded.prompt_events_per_address == 250
    for bad in ("0", "-1", "ten", "1.5", "1000000001"):
        with pytest.raises(ConfigError, match=r"^PROMPT_EVENTS_PER_ADDRESS: expected a whole"):
            load_settings({**env, "PROMPT_EVENTS_PER_ADDRESS": bad})


def test_redis_down_is_503_with_retry_after(outage_app, own_redis, tokens):
    app = outage_app(rate_limit_prompt_events="off")
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


@pytest.mark.topologies("single")  # INFO commandstats of the one server it asks
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

    assert_post_preflight(client, URL, SITE)


def test_get_is_405_json(client):
    response = client.get(URL)
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"
