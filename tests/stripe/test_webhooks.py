"""POST /webhooks/stripe through the app: verified by the stripe SDK, real Redis."""

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from membership.core.errors import ApiError
from membership.stripe import events as stripe_events
from membership.stripe import webhooks
from tests.support import stripe_payloads as sp
from tests.support.stripe_payloads import WEBHOOK_SECRET
from tests.support.webhooks import URL, active, post


def test_a_signed_event_is_applied_once(client, redis_client, keys):
    e = active()
    response = post(client, e)
    assert response.status_code == 200
    assert response.json == {"id": e["id"], "outcome": "applied"}
    assert redis_client.get(keys.member_count) == "1"
    assert redis_client.get(keys.count_changed_at).endswith("Z")
    again = post(client, e)
    assert again.status_code == 200 and again.json["outcome"] == "duplicate"
    assert redis_client.get(keys.member_count) == "1"


def test_ignored_and_stale_events_answer_200(client):
    assert post(client, sp.event("customer.updated", {"id": "cus_1"})).json["outcome"] == "ignored"
    assert post(client, active(created=sp.T0 + 10)).json["outcome"] == "applied"
    assert post(client, active(created=sp.T0)).json["outcome"] == "stale"


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("unsigned", "missing_signature"),
        ("forged", "invalid_signature"),
        ("tampered", "invalid_signature"),
        ("stale", "stale_signature"),
        ("future", "stale_signature"),
        ("garbled_header", "invalid_signature"),
        ("wrong_scheme", "invalid_signature"),
        ("non_ascii_header", "invalid_signature"),  # found in review: was a 500
    ],
)
def test_unverified_requests_are_refused_and_change_nothing(client, redis_client, kind, code):
    e = active()
    payload = sp.body(e)
    header = sp.sign(payload)
    if kind == "unsigned":
        header = ""
    elif kind == "forged":
        header = sp.sign(payload, "whsec_not_the_right_secret")
    elif kind == "tampered":
        payload = payload.replace('"active"', '"canceled"')
    elif kind == "stale":
        header = sp.sign(payload, timestamp=int(time.time()) - 301)
    elif kind == "future":
        header = sp.sign(payload, timestamp=int(time.time()) + 3600)
    elif kind == "garbled_header":
        header = "t=notanumber,v1=abc"
    elif kind == "wrong_scheme":
        header = header.replace("v1=", "v0=")
    elif kind == "non_ascii_header":
        header = header.split(",v1=")[0] + ",v1=\u00e9\u00e9"
    response = post(client, payload, header=header)
    assert response.status_code == 400
    assert response.json["error"]["code"] == code
    assert redis_client.keys("*") == []  # nothing stored, nothing counted


def test_the_tolerance_is_configurable(make_app, redis_client):
    client = make_app(stripe_webhook_tolerance=30).test_client()
    e = active()
    response = post(client, e, timestamp=int(time.time()) - 60)
    assert response.status_code == 400 and response.json["error"]["code"] == "stale_signature"
    assert post(client, e, timestamp=int(time.time()) - 20).status_code == 200


def test_every_configured_secret_is_tried(make_app):
    secrets = ("whsec_old_secret", "whsec_new_secret")
    client = make_app(stripe_webhook_secrets=secrets).test_client()
    assert post(client, active("sub_1"), secret="whsec_old_secret").status_code == 200
    assert post(client, active("sub_2"), secret="whsec_new_secret").status_code == 200
    assert post(client, active("sub_3"), secret=WEBHOOK_SECRET).status_code == 400


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ("not json at all", "invalid_json"),
        ("[" * 100_000, "invalid_json"),  # deeper than the parser goes: was a 500
        ("[1, 2, 3]", "not_an_event"),
        ('{"id": "evt_1", "object": "event", "created": 1}', "not_an_event"),
        (
            '{"id": "evt_1", "object": "event", "type": "x", "created": 1, "data": {}}',
            "not_an_event",
        ),
    ],
)
def test_signed_bodies_that_are_not_events_are_400(client, redis_client, payload, code):
    response = post(client, payload)
    assert response.status_code == 400
    assert response.json["error"]["code"] == code
    assert redis_client.keys("*") == []


def test_a_body_that_is_not_utf8_is_400(client, redis_client):
    response = client.post(URL, data=b"\xff\xfe\x00", headers={"Stripe-Signature": "t=1,v1=00"})
    assert response.status_code == 400
    assert response.json["error"]["code"] == "invalid_body"
    assert redis_client.keys("*") == []


def test_without_a_secret_the_endpoint_is_503_and_the_rest_serves(make_app, redis_client):
    client = make_app(stripe_webhook_secrets=()).test_client()
    response = post(client, active())
    assert response.status_code == 503
    assert response.json["error"]["code"] == "webhook_secret_not_configured"
    assert "STRIPE_WEBHOOK_SECRET" in response.json["error"]["message"]
    assert response.headers["Retry-After"]
    assert client.get("/readyz").status_code == 200
    assert redis_client.keys("*") == []


def test_a_failing_handler_is_500_and_logged_for_replay(client, app, monkeypatch):
    from membership.core.runtime import runtime
    from membership.ledger import ledger_for

    def broken(obj, event):
        raise RuntimeError("handler bug")

    original = stripe_events.HANDLERS["customer.subscription.updated"]
    monkeypatch.setitem(stripe_events.HANDLERS, "customer.subscription.updated", broken)
    e = active()
    response = post(client, e)
    assert response.status_code == 500
    assert response.json["error"]["code"] == "event_failed"
    message = response.json["error"]["message"]
    assert e["id"] in message and "replay" in message
    assert "handler bug" not in message  # internal exception text stays in the log
    ledger = ledger_for(runtime(app))
    assert ledger.events.failed_ids() == [e["id"]]
    assert "handler bug" in ledger.events.recent(outcome="failed")[0]["error"]
    assert ledger.queries.count() is None
    # Stripe retries once the bug is fixed: applied, no longer failed
    monkeypatch.setitem(stripe_events.HANDLERS, "customer.subscription.updated", original)
    assert post(client, e).json["outcome"] == "applied"
    assert ledger.events.failed_ids() == [] and ledger.queries.count() == 1


def test_the_event_record_keeps_the_body_packed_and_reads_the_earlier_packing(
    client, app, redis_client, keys
):
    """A record keeps the body deflated (Base64 text); a record of the earlier packing
    (Base85) is read back the same, and a failed one of that packing replays."""
    import base64
    import zlib

    from membership.core.runtime import runtime
    from membership.ledger import ledger_for
    from membership.ledger.events import _STRIPE_WORDS
    from membership.stripe.replay import replay

    events = ledger_for(runtime(app)).events
    e = active()
    assert post(client, e).json["outcome"] == "applied"
    packed = events.fields(e["id"])["z"]
    assert packed.startswith(":") and len(packed) < len(sp.body(e)) / 3
    assert events.stored(e["id"]) == e and json.loads(events.record(e["id"])["payload"]) == e

    obj = sp.subscription("sub_2", "cus_2", "active")
    lapsed = sp.subscription_event({**obj, "status": "lapsed"})  # a status it cannot read
    assert post(client, lapsed).status_code == 500
    fixed = sp.subscription_event(obj, id=lapsed["id"])
    squeezer = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, _STRIPE_WORDS)
    deflated = squeezer.compress(sp.body(fixed).encode()) + squeezer.flush()
    redis_client.hset(keys.ledger_event(fixed["id"]), "z", base64.b85encode(deflated).decode())
    assert events.stored(fixed["id"]) == fixed
    assert json.loads(events.record(fixed["id"])["payload"]) == fixed
    assert replay(ledger_for(runtime(app)), fixed["id"], actor="ops").outcome == "applied"
    assert redis_client.get(keys.member_count) == "2"


def test_an_unreadable_event_is_500_not_a_crash(client):
    obj = sp.subscription("sub_1", "cus_1", "active")
    del obj["customer"]
    e = sp.subscription_event(obj)
    response = post(client, e)
    assert response.status_code == 500
    assert e["id"] in response.json["error"]["message"]


def test_redis_down_is_503_with_retry_after(outage_app, own_redis):
    client = outage_app().test_client()
    own_redis.kill()
    response = post(client, active())
    assert response.status_code == 503
    assert response.json["error"]["code"] == "redis_unavailable"
    assert response.headers["Retry-After"]
    own_redis.start()
    assert post(client, active()).status_code == 200


def test_a_redis_that_refuses_writes_is_503_not_a_failed_event(outage_app, own_redis):
    """OOM (as here, a real one), READONLY after a failover: retry later, log nothing as failed."""
    client = outage_app().test_client()
    admin = own_redis.client()
    admin.config_set("maxmemory-policy", "noeviction")
    admin.config_set("maxmemory", 1)
    event = active()
    response = post(client, event)
    assert response.status_code == 503
    assert response.json["error"]["code"] == "redis_error"
    assert response.headers["Retry-After"]
    admin.config_set("maxmemory", 0)
    assert post(client, event).json["outcome"] == "applied"  # Stripe's retry succeeds


def test_a_thin_event_is_ignored_and_its_answer_written_as_before(client, redis_client):
    """A v2 thin event is acknowledged, nothing stored; the answer is the JSON jsonify wrote
    (keys sorted, ASCII), whatever its id holds."""
    for event_id, written in (
        ("evt_thin_1", '"evt_thin_1"'),
        ({"b": 1, "a": "é"}, '{"a":"\\u00e9","b":1}'),
    ):
        body = json.dumps({"id": event_id, "object": "v2.core.event", "type": "v1.x"})
        response = post(client, body)
        assert response.status_code == 200
        assert response.data == b'{"id":%s,"outcome":"ignored"}\n' % written.encode()
    assert redis_client.keys("*") == []


def test_only_post(client):
    response = client.get(URL)
    assert response.status_code == 405
    assert json.loads(response.data)["error"]["code"] == "method_not_allowed"
    for method in ("HEAD", "PUT", "DELETE", "BREW"):
        refused = client.open(URL, method=method)
        assert refused.status_code == 405 and refused.headers["Allow"] == "POST, OPTIONS"
        assert refused.headers["Content-Type"] == "application/json"
        if method == "HEAD":
            assert refused.data == b""
        else:
            assert refused.json["error"]["message"] == f"{method} is not allowed on {URL}"
    # OPTIONS, as Flask answers it for any route: the methods, an empty page
    options = client.options(URL)
    assert options.status_code == 200 and options.data == b""
    assert options.headers["Allow"] == "POST, OPTIONS"
    assert options.headers["Content-Security-Policy"] and options.headers["X-Request-ID"]
    assert client.post(URL + "/").status_code == 404


def test_a_too_contended_ledger_is_503(client, monkeypatch, redis_client):
    from membership.ledger import LedgerBusy, Writer

    def busy(self, delivery, command, **kw):
        raise LedgerBusy("gave up")

    monkeypatch.setattr(Writer, "apply_event", busy)
    response = post(client, active())
    assert response.status_code == 503
    assert response.json["error"]["code"] == "ledger_busy"
    assert response.headers["Retry-After"]


def test_each_event_is_logged_with_its_outcome(client, caplog):
    caplog.set_level("INFO", logger="membership.stripe.webhooks")
    e = active()
    post(client, e)
    post(client, e)
    lines = [r.getMessage() for r in caplog.records if r.name == "membership.stripe.webhooks"]
    assert lines[0].startswith(f"stripe customer.subscription.updated {e['id']}: applied")
    assert lines[0].endswith("members 0 -> 1")
    assert lines[1].startswith(f"stripe customer.subscription.updated {e['id']}: duplicate")


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def _same_reading(body: str):
    """`_parse(body)` is what `json.loads` reads, or both refuse it (400 invalid_json)."""
    try:
        expected = json.loads(body)
    except (ValueError, RecursionError):
        refused_too = True
    else:
        refused_too = webhooks._has_lone_surrogate(body, expected)
    if refused_too:
        with pytest.raises(ApiError) as refused:
            webhooks._parse(body)
        assert (refused.value.status, refused.value.code) == (400, "invalid_json")
        return
    # repr: tells 1 from 1.0 and True, -0.0 from 0.0, keeps nan and inf comparable
    assert repr(webhooks._parse(body)) == repr(expected)


@settings(max_examples=300, deadline=None)
@given(_JSON, st.booleans())
def test_a_body_reads_as_json_loads_reads_it(value, ascii_only):
    _same_reading(json.dumps(value, ensure_ascii=ascii_only))


@pytest.mark.parametrize(
    "body",
    [
        '{"a":1,"a":2}',
        "12345678901234567890123456789",
        "[1e400, -1e400, NaN, Infinity]",
        '"\\ud800"',
        '"\\udfff\\ud800"',
        '"\\ud83d\\ude00"',
        '"a\tb"',
        "-0",
        "-0.0",
        "0.1e-400",
        "1E2",
        "123.456e-5",
        "01",
        "[1,]",
        "\ufeff{}",
        "{} \n\t\r",
        "{}\x0b",
        "[" * 100_000 + "]" * 100_000,
        '{"x": 1}x',
    ],
)
def test_bodies_at_the_edges_of_json_read_as_json_loads_reads_them(body):
    _same_reading(body)
