"""Signed events built to break the ledger: refused whole, or never half-committed.

Redis does not roll back a MULTI/EXEC whose commands fail inside it. Each case
here used to leave part of an event committed (or answer 500 with nothing
replayable); now it is refused before anything is queued (400 for values
Stripe never sends, 503 for a corrupt stored record), or, when EXEC itself
reports an error, answered 500 with the event kept for replay and the ledger
marked as needing a rebuild. Only HTTP and raw Redis reads are used to judge.
"""

import json
import time

import pytest
from click.testing import CliRunner

from membership.cli import cli
from membership.core.runtime import runtime
from membership.ledger import ledger_for
from tests.support import stripe_payloads as sp
from tests.support.webhooks import URL, active, post


def ledger_keys(redis_client, keys):
    return sorted(redis_client.scan_iter(match=keys.ledger_pattern))


def assert_nothing_stored(redis_client, keys):
    assert ledger_keys(redis_client, keys) == []
    assert redis_client.get(keys.member_count) is None


def sub_with(**item_price):
    obj = sp.subscription("sub_1", "cus_1", "active")
    obj["items"]["data"][0]["price"].update(item_price)
    return obj


@pytest.mark.parametrize(
    "build",
    [
        # an amount that overflowed a counter inside the transaction (found in review)
        lambda: sub_with(unit_amount=10**20, unit_amount_decimal=str(10**20)),
        lambda: sub_with(unit_amount=10**12, unit_amount_decimal=str(10**12)),
        # a customer id that is another customer's key (`cus_V:subs`, found in review)
        lambda: sp.subscription("sub_1", "cus_V:subs", "active"),
        lambda: sp.subscription("sub_1:x", "cus_1", "active"),
        lambda: sp.subscription("sub_" + "x" * 300, "cus_1", "active"),
        lambda: sp.subscription("sub_1", "cus_1", "active", quantity=-1),
        lambda: sub_with(currency="euro!"),
        lambda: sub_with(recurring={"interval": "decade", "interval_count": 1}),
        lambda: sub_with(recurring={"interval": "month", "interval_count": 100_000}),
        lambda: sp.subscription("sub_1", "cus_1", "active", prices=[sp.price()] * 21),
    ],
)
def test_subscription_values_stripe_never_sends_are_400_and_nothing_is_stored(
    client, redis_client, keys, build
):
    response = post(client, sp.subscription_event(build()))
    assert response.status_code == 400, response.json
    assert response.json["error"]["code"] == "invalid_event"
    assert_nothing_stored(redis_client, keys)


@pytest.mark.parametrize(
    "event",
    [
        lambda: sp.checkout_payment("pi_1", 10**13),
        lambda: sp.checkout_payment("pi_1:x", 1000),
        lambda: sp.checkout_payment("pi_1", 1000, currency="eu"),
        lambda: sp.checkout_payment("pi_1", 1000, customer="cus_1 2"),
        lambda: sp.checkout_payment("pi_1", 1000, email="x" * 300 + "@example.org"),
        lambda: sp.charge_refunded("pi_1", 1000, -5),
        lambda: sp.customer_deleted("cus_{x}"),
        lambda: sp.checkout_subscription("cus_1\n", "a@example.org"),
    ],
)
def test_other_events_with_impossible_values_are_400(client, redis_client, keys, event):
    response = post(client, event())
    assert response.status_code == 400, response.json
    assert_nothing_stored(redis_client, keys)


@pytest.mark.parametrize(
    "name",
    [{"x": 1}, 12345, ["a"], True, "A\x1b[31mB", "\u202eevil", "x" * 257, "   "],
    ids=["object", "number", "list", "boolean", "escape", "bidi", "too-long", "blank"],
)
@pytest.mark.parametrize("email", [None, "a@example.org"])
def test_a_checkout_s_name_that_cannot_be_shown_is_no_name_and_the_rest_applies(
    client, app, name, email
):
    """Stripe sends text, but a name that is not short printable text (before: a 500, or a 503
    that Stripe retries for days) is kept as no name; the email still links."""
    for _ in range(2):  # the same second twice: a tie compares the names
        response = post(client, sp.checkout_subscription("cus_1", email, name=name))
        assert response.status_code == 200, response.json
    customer = ledger_for(runtime(app)).queries.customer("cus_1")
    if email is None:
        assert customer is None  # no email and no name: nothing to link
    else:
        assert (customer.email, customer.name) == (email, None)


def test_an_event_id_that_is_not_stripe_shaped_is_400(client, redis_client, keys):
    e = active()
    e["id"] = "evt_1:{membership}:count"
    response = post(client, e)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "not_an_event"
    assert_nothing_stored(redis_client, keys)


def test_a_corrupt_count_is_503_and_nothing_is_written(client, redis_client, keys, caplog):
    redis_client.set(keys.member_count, "lots")
    e = active()
    response = post(client, e)
    assert response.status_code == 503
    assert response.json["error"]["code"] == "ledger_corrupt"
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert any(keys.member_count in r.getMessage() and e["id"] in r.getMessage() for r in errors)
    assert response.headers["Retry-After"]
    assert ledger_keys(redis_client, keys) == []  # no event record, no subscription, no log
    redis_client.set(keys.member_count, "0")  # an operator mends it; Stripe's retry applies
    assert post(client, e).json["outcome"] == "applied"
    assert redis_client.get(keys.member_count) == "1"


@pytest.mark.parametrize(
    ("key", "field", "value"),
    [
        ("ledger_counters", "subs:active", "x"),
        ("ledger_counters", "mrr:eur", str(2**63 - 10)),  # no room left for this event
        ("ledger_customer", "live", "1.5"),
        ("ledger_subscription", "created", "yesterday"),
    ],
)
def test_a_corrupt_record_the_event_touches_is_503_before_anything_is_queued(
    client, redis_client, keys, key, field, value
):
    name = getattr(keys, key)
    name = name("sub_1" if key == "ledger_subscription" else "cus_1") if callable(name) else name
    if key == "ledger_subscription":
        redis_client.hset(name, mapping={"id": "sub_1", "customer": "cus_1", "status": "active"})
        redis_client.hset(name, "stripe_status", "active")
    redis_client.hset(name, field, value)
    before = {k: redis_client.dump(k) for k in ledger_keys(redis_client, keys)}
    e = active()
    response = post(client, e)
    assert response.status_code == 503
    assert response.json["error"]["code"] == "ledger_corrupt"
    after = {k: redis_client.dump(k) for k in ledger_keys(redis_client, keys)}
    assert after == before
    assert redis_client.get(keys.member_count) is None


def test_a_failed_exec_is_500_replayable_and_flags_a_rebuild(
    client, app, redis_client, keys, tmp_path
):
    """What checks before queueing cannot foresee (here, the member index's rows turned
    into a string by hand) must still never be answered as if nothing happened."""
    redis_client.set(keys.ledger_index_rows, "not a hash")
    e = active()
    response = post(client, e)
    assert response.status_code == 500
    assert response.json["error"]["code"] == "event_failed"
    assert e["id"] in response.json["error"]["message"]
    assert redis_client.hget(keys.ledger_event(e["id"]), "outcome") == "failed"
    assert redis_client.zrange(keys.ledger_failed_events, 0, -1) == [e["id"]]
    assert client.get("/readyz").json["ledger"] == "needs_rebuild"
    assert redis_client.hgetall(keys.ledger_needs_rebuild)["reason"]

    redis_client.delete(keys.ledger_index_rows)  # the operator mends the key...
    env = {"REDIS_URL": runtime(app).settings.redis_url, "MEMBERSHIP_DATA_DIR": str(tmp_path)}
    replay = CliRunner().invoke(cli, ["events", "replay", "--failed", "--actor", "ops"], env=env)
    assert replay.exit_code == 0, replay.output
    assert f"{e['id']}: applied" in replay.output
    rebuilt = CliRunner().invoke(cli, ["ledger", "rebuild", "--json", "--actor", "ops"], env=env)
    assert rebuilt.exit_code == 0, rebuilt.output
    assert json.loads(rebuilt.stdout)["members_after"] == 1
    assert client.get("/readyz").json["ledger"] == "ok"
    stats = CliRunner().invoke(cli, ["stats", "--json"], env=env)
    assert json.loads(stats.stdout)["needs_rebuild"] is None


def test_an_event_created_after_it_was_signed_is_400(client, redis_client, keys):
    now = int(time.time())
    e = active(created=now + 400)  # the default tolerance is 300 s
    response = post(client, e, timestamp=now)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "created_after_signing"
    assert_nothing_stored(redis_client, keys)
    assert post(client, active("sub_2", created=now + 250), timestamp=now).status_code == 200


def test_only_the_first_signed_timestamp_counts_as_in_the_sdk(client, redis_client, keys):
    now = int(time.time())
    e = active(created=now + 600)
    payload = sp.body(e)
    signed = sp.sign(payload, timestamp=now)  # t=now,v1=...
    header = f"{signed.split(',')[0]},t={now + 600},{signed.split(',')[1]}"
    response = post(client, payload, header=header)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "created_after_signing"
    assert_nothing_stored(redis_client, keys)


@pytest.mark.parametrize("where", ["id", "name"])
def test_a_lone_surrogate_is_400_not_500(client, redis_client, keys, where):
    e = sp.checkout_subscription("cus_1", "a@example.org")
    if where == "id":
        payload = sp.body(e).replace(e["id"], "evt_\\ud800", 1)
    else:
        payload = sp.body(e).replace('"name":"', '"name":"\\udfff', 1)
    assert "\\u" in payload
    response = post(client, payload)
    assert response.status_code == 400
    assert response.json["error"]["code"] in ("invalid_json", "not_an_event")
    assert_nothing_stored(redis_client, keys)


def test_a_valid_surrogate_pair_is_fine(client, redis_client, keys):
    e = sp.checkout_subscription("cus_1", "a@example.org")
    payload = sp.body(e).replace('"name":"', '"name":"\\ud83d\\ude00 ', 1)
    response = post(client, payload)
    assert response.status_code == 200, response.json
    assert redis_client.hget(keys.ledger_customer("cus_1"), "name").startswith("\U0001f600")


def test_a_thin_event_is_answered_ignored(client, redis_client, keys):
    thin = {
        "id": "evt_test_65R6Bx",
        "object": "v2.core.event",
        "type": "v1.billing.meter.error_report_triggered",
        "created": "2026-11-26T10:00:00.000Z",
        "livemode": False,
        "related_object": {"id": "mtr_1", "type": "billing.meter", "url": "/v1/billing/meters"},
    }
    response = post(client, json.dumps(thin))
    assert response.status_code == 200
    assert response.json == {"id": "evt_test_65R6Bx", "outcome": "ignored"}
    assert_nothing_stored(redis_client, keys)


def test_the_webhook_url_is_the_one_the_tests_use(client):
    assert client.post(URL).status_code == 400  # unsigned: refused, never a 500


def test_a_garbled_banner_version_refuses_the_count_change_whole(
    client, app, redis_client, keys, tmp_path
):
    """Every change of the count INCRs the banner's version inside the transaction: a
    version that cannot be incremented must refuse the event before anything is queued."""
    redis_client.set(keys.banner_version, "v2")
    before = {k: redis_client.dump(k) for k in ledger_keys(redis_client, keys)}
    e = active()
    response = post(client, e)
    assert response.status_code == 503
    assert response.json["error"]["code"] == "ledger_corrupt"
    assert {k: redis_client.dump(k) for k in ledger_keys(redis_client, keys)} == before
    assert redis_client.get(keys.member_count) is None

    env = {"REDIS_URL": runtime(app).settings.redis_url, "MEMBERSHIP_DATA_DIR": str(tmp_path)}
    goal = CliRunner().invoke(cli, ["goals", "add", "10", "--actor", "ops"], env=env)
    assert goal.exit_code != 0 and "ledger rebuild" in goal.output
    assert redis_client.hgetall(keys.goals) == {}  # refused whole: no goal, no audit entry

    rebuilt = CliRunner().invoke(cli, ["ledger", "rebuild", "--json", "--actor", "ops"], env=env)
    assert rebuilt.exit_code == 0, rebuilt.output
    assert json.loads(rebuilt.stdout)["rewritten"] == {"banner version": 1}
    assert int(redis_client.get(keys.banner_version)) > 10**12  # mended: milliseconds
    assert post(client, e).json["outcome"] == "applied"
    assert redis_client.get(keys.member_count) == "1"
