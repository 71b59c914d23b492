"""The ledger's commands: members, events, stats, sync (against a local fake Stripe API)."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from click.testing import CliRunner

from membership.cli import cli
from membership.core import audit
from membership.ledger import Ledger
from membership.store import Keys
from membership.stripe.apply import apply_event
from tests.support import stripe_payloads as sp
from tests.support.ledger_helpers import add_offline
from tests.support.processes import ServiceProcess, run_cli

pytestmark = pytest.mark.topologies  # each test on a single server, a Cluster and Sentinel


@pytest.fixture
def ledger(redis_client):
    return Ledger.on(redis_client, Keys(), ("active", "trialing", "past_due"))


def run(env, *args):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def members_count(env) -> int:
    result = run(env, "stats", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)["members"]


def test_members_add_list_remove(env):
    added = run(env, "members", "add", "Olena@Example.org", "--reason", "bank transfer")
    assert added.exit_code == 0, added.output
    assert "0 -> 1" in added.output
    assert members_count(env) == 1

    again = run(env, "members", "add", "olena@example.org", "--reason", "again")
    assert again.exit_code == 0
    assert members_count(env) == 1

    listed = run(env, "members", "list", "--json")
    assert [m["email"] for m in json.loads(listed.output)] == ["olena@example.org"]
    assert json.loads(listed.output)[0]["reason"] == "bank transfer"

    removed = run(env, "members", "remove", "olena@example.org", "--reason", "ended")
    assert removed.exit_code == 0
    assert members_count(env) == 0

    gone = run(env, "members", "remove", "olena@example.org", "--reason", "twice")
    assert gone.exit_code == 1
    assert "is not an offline member" in gone.output


@pytest.mark.parametrize(
    "args",
    [
        ["members", "add", "not-an-email", "--reason", "x"],
        ["members", "add", "a@b.org", "--reason", "   "],
        ["members", "add", "a@b.org"],
    ],
)
def test_members_add_refuses_bad_input(env, args):
    result = run(env, *args)
    assert result.exit_code == 2
    assert members_count(env) is None  # nothing was written, not even a count


def test_offline_member_who_also_pays_counts_once(env, ledger):
    apply_event(ledger.writer, sp.checkout_subscription("cus_1", "reader@example.org"))
    apply_event(ledger.writer, sp.subscription_event(sp.subscription("sub_1", "cus_1", "active")))
    assert members_count(env) == 1
    run(env, "members", "add", "READER@example.org", "--reason", "comp")
    assert members_count(env) == 1
    listed = json.loads(run(env, "members", "list", "--json").output)
    assert listed[0]["also_in_stripe"] is True


def test_stats_text_and_json(env, ledger):
    apply_event(ledger.writer, sp.subscription_event(sp.subscription("sub_1", "cus_1", "active")))
    apply_event(ledger.writer, sp.subscription_event(sp.subscription("sub_2", "cus_2", "canceled")))
    data = json.loads(run(env, "stats", "--json").output)
    assert data["members"] == 1
    assert data["subscriptions_by_status"] == {"active": 1, "canceled": 1}
    assert data["mrr"] == {"eur": 500}
    text = run(env, "stats").output
    assert "members: 1" in text
    assert "€5.00" in text


def test_events_list_and_replay(env, ledger):
    good = sp.subscription_event(sp.subscription("sub_1", "cus_1", "active"))
    bad = sp.subscription_event(sp.subscription("sub_2", "cus_2", "active"))
    bad["data"]["object"]["status"] = "mystery"
    assert apply_event(ledger.writer, good).outcome == "applied"
    assert apply_event(ledger.writer, bad).outcome == "failed"

    listed = json.loads(run(env, "events", "list", "--json").output)
    assert {e["id"]: e["outcome"] for e in listed} == {good["id"]: "applied", bad["id"]: "failed"}
    failed = json.loads(run(env, "events", "list", "--outcome", "failed", "--json").output)
    assert [e["id"] for e in failed] == [bad["id"]]

    again = run(env, "events", "replay", good["id"])
    assert again.exit_code == 0
    assert f"{good['id']}: duplicate" in again.output

    retried = run(env, "events", "replay", "--failed", "--actor", "olena")
    assert retried.exit_code == 1
    assert f"{bad['id']}: failed" in retried.output
    assert members_count(env) == 1

    # a replay that applies is audited, with who did it and what changed
    fixed = dict(bad)
    fixed["data"] = {"object": {**bad["data"]["object"], "status": "active"}}
    ledger.queries.redis.hset(Keys().ledger_event(bad["id"]), "payload", sp.body(fixed))
    assert (
        f"{bad['id']}: applied"
        in run(env, "events", "replay", "--failed", "--actor", "olena").output
    )
    entries = audit.entries(ledger.queries.redis, Keys())
    replays = [e for e in entries if e["action"] == "event_replayed"]
    # every replay is audited: those that failed again or were duplicates too
    assert {e["after"]["outcome"] for e in replays} >= {"applied", "failed", "duplicate"}
    (entry,) = [e for e in replays if e["after"]["outcome"] == "applied"]
    assert (entry["actor"], entry["target"]) == ("olena", bad["id"])
    assert entry["before"] == {"outcome": "failed"} and entry["after"]["outcome"] == "applied"
    assert members_count(env) == 2

    unknown = run(env, "events", "replay", "evt_unknown")
    assert unknown.exit_code == 1
    assert "no stored payload" in unknown.output

    assert run(env, "events", "replay").exit_code == 2
    assert run(env, "events", "list", "--outcome", "weird").exit_code == 2


def test_sync_reports_then_repairs_drift(env, ledger, fake_stripe):
    old = int(time.time()) - 3600
    # In both and agreeing.
    fake_stripe.add(sp.subscription("sub_same", "cus_same", "active"))
    apply_event(
        ledger.writer,
        sp.subscription_event(sp.subscription("sub_same", "cus_same", "active"), created=old),
    )
    # Canceled in Stripe; the ledger missed the webhook.
    fake_stripe.add(sp.subscription("sub_ended", "cus_ended", "canceled"))
    apply_event(
        ledger.writer,
        sp.subscription_event(sp.subscription("sub_ended", "cus_ended", "active"), created=old),
    )
    # In Stripe only, with a customer whose email matches nobody yet.
    fake_stripe.add(
        sp.subscription("sub_new", "cus_new", "active"),
        {"id": "cus_new", "object": "customer", "email": "new@example.org", "name": "New"},
    )
    # In the ledger only.
    apply_event(
        ledger.writer,
        sp.subscription_event(sp.subscription("sub_ghost", "cus_ghost", "active"), created=old),
    )
    assert ledger.queries.count() == 3

    env = {**env, "STRIPE_API_KEY": "sk_test_fake", "STRIPE_API_BASE": fake_stripe.url}
    report = run(env, "sync", "--json")
    assert report.exit_code == 0, report.output
    data = json.loads(report.output)
    assert data["listed"] == 3
    assert data["drift"] == {
        "missing": ["sub_new"],
        "extra": ["sub_ghost"],
        "status_differs": [{"id": "sub_ended", "ledger": "active", "stripe": "canceled"}],
    }
    assert ledger.queries.count() == 3  # a report changes nothing
    assert fake_stripe.requests[0]["authorization"] == "Bearer sk_test_fake"
    assert fake_stripe.requests[0]["query"]["status"] == ["all"]

    repaired = run(env, "sync", "--apply", "--actor", "ops")
    assert repaired.exit_code == 0, repaired.output
    assert "members 3 -> 2" in repaired.output
    (entry,) = audit.entries(ledger.queries.redis, Keys())
    assert (entry["action"], entry["actor"]) == ("sync_applied", "ops")
    assert entry["before"] == {"members": 3} and entry["after"]["members"] == 2
    assert ledger.queries.count() == 2  # sub_same + sub_new
    assert ledger.queries.customer("cus_new").email == "new@example.org"

    clean = json.loads(run(env, "sync", "--json").output)
    assert clean["drift"] == {"missing": [], "extra": [], "status_differs": []}


def test_sync_names_a_customer_stripe_keeps_without_an_email(env, ledger, fake_stripe):
    fake_stripe.add(
        sp.subscription("sub_named", "cus_named", "active"),
        {"id": "cus_named", "object": "customer", "email": None, "name": "Olena Koval"},
    )
    env = {**env, "STRIPE_API_KEY": "sk_test_fake", "STRIPE_API_BASE": fake_stripe.url}
    repaired = run(env, "sync", "--apply", "--actor", "ops")
    assert repaired.exit_code == 0, repaired.output
    customer = ledger.queries.customer("cus_named")
    assert (customer.email, customer.name, customer.member) == (None, "Olena Koval", True)
    assert [row.customer for row in ledger.queries.search("koval").rows] == ["cus_named"]


def test_sync_keeps_a_webhook_newer_than_the_listing(env, ledger, fake_stripe):
    fake_stripe.add(sp.subscription("sub_1", "cus_1", "active"))
    later = int(time.time()) + 120  # the webhook was created after the listing began
    apply_event(
        ledger.writer,
        sp.subscription_event(sp.subscription("sub_1", "cus_1", "past_due"), created=later),
    )
    # A subscription the ledger learned of moments ago is not judged "extra" yet.
    apply_event(
        ledger.writer,
        sp.subscription_event(sp.subscription("sub_2", "cus_2", "active"), created=later),
    )

    env = {**env, "STRIPE_API_KEY": "sk_test_fake", "STRIPE_API_BASE": fake_stripe.url}
    result = json.loads(run(env, "sync", "--apply", "--json").output)
    assert sorted(result["kept_newer"]) == ["sub_1", "sub_2"]
    assert ledger.queries.subscription("sub_1").sub.status == "past_due"
    assert ledger.queries.count() == 2


def test_sync_survives_a_stripe_error_and_paginates(env, ledger, fake_stripe):
    for i in range(250):
        fake_stripe.add(sp.subscription(f"sub_{i:03d}", f"cus_{i:03d}", "active"))
    fake_stripe.fail_next = 1
    env = {**env, "STRIPE_API_KEY": "sk_test_fake", "STRIPE_API_BASE": fake_stripe.url}
    result = run(env, "sync", "--apply")
    assert result.exit_code == 0, result.output
    assert ledger.queries.count() == 250
    pages = [r for r in fake_stripe.requests if r["path"] == "/v1/subscriptions"]
    assert len(pages) == 4  # one 500, then three pages of at most 100


def test_sync_without_an_api_key_says_so(env):
    result = run(env, "sync")
    assert result.exit_code == 2
    assert "STRIPE_API_KEY" in result.output


@pytest.mark.slow
def test_cli_shares_the_embedded_redis_with_a_running_server(tmp_path):
    data_dir = tmp_path / "var"
    # No server running: the command starts the embedded Redis, and stops it after.
    added = run_cli(data_dir, "members", "add", "gift@example.org", "--reason", "gift")
    assert added.returncode == 0, added.stderr
    assert not (data_dir / "redis.sock").exists()

    service = ServiceProcess({"MEMBERSHIP_DATA_DIR": str(data_dir)}, workers=1).start()
    try:
        # The same commands in this process (CliRunner): no new interpreter each, the same
        # code from the command line down (test_embedded_ownership runs them beside a
        # server as processes).
        on_data_dir = {"MEMBERSHIP_DATA_DIR": str(data_dir)}
        assert members_count(on_data_dir) == 1  # kept across restarts
        added = run(on_data_dir, "members", "add", "second@example.org", "--reason", "comp")
        assert added.exit_code == 0, added.output
        # The command used the server's Redis and left it running.
        with urllib.request.urlopen(service.url + "/readyz", timeout=5) as response:
            assert response.status == 200
        assert members_count(on_data_dir) == 2
    finally:
        service.stop()


def test_sync_refuses_to_end_everything_on_an_empty_listing(env, ledger, fake_stripe):
    old = int(time.time()) - 3600
    for i in range(3):
        sub = sp.subscription(f"sub_{i}", f"cus_{i}", "active")
        apply_event(ledger.writer, sp.subscription_event(sub, created=old))
    env = {**env, "STRIPE_API_KEY": "sk_test_other_account", "STRIPE_API_BASE": fake_stripe.url}
    result = run(env, "sync", "--apply")
    assert result.exit_code == 1
    assert "refusing to apply, nothing was changed" in result.output
    assert "listed no subscriptions" in result.output
    assert ledger.queries.count() == 3


def test_sync_refuses_to_end_many_unless_forced(env, ledger, fake_stripe):
    old = int(time.time()) - 3600
    for i in range(20):
        sub = sp.subscription(f"sub_{i:02d}", f"cus_{i:02d}", "active")
        apply_event(ledger.writer, sp.subscription_event(sub, created=old))
        if i < 5:
            fake_stripe.add(sub)
    env = {**env, "STRIPE_API_KEY": "sk_test_fake", "STRIPE_API_BASE": fake_stripe.url}
    refused = run(env, "sync", "--apply")
    assert refused.exit_code == 1
    assert "15 of the ledger's 20 open subscriptions are unknown" in refused.output
    assert ledger.queries.count() == 20

    forced = run(env, "sync", "--apply", "--force")
    assert forced.exit_code == 0, forced.output
    assert ledger.queries.count() == 5


def test_sync_links_emails_even_where_statuses_agree(env, ledger, fake_stripe):
    """A missed checkout webhook leaves a paying offline member counted twice; sync mends it."""
    old = int(time.time()) - 3600
    sub = sp.subscription("sub_1", "cus_1", "active")
    apply_event(ledger.writer, sp.subscription_event(sub, created=old))
    add_offline(ledger, "reader@example.org", "bank transfer, then joined online")
    assert ledger.queries.count() == 2
    fake_stripe.add(sub, {"id": "cus_1", "object": "customer", "email": "Reader@example.org"})
    env = {**env, "STRIPE_API_KEY": "sk_test_fake", "STRIPE_API_BASE": fake_stripe.url}
    result = json.loads(run(env, "sync", "--apply", "--json").output)
    assert result["drift"] == {"missing": [], "extra": [], "status_differs": []}
    assert result["linked_customers"] == ["cus_1"]
    assert ledger.queries.count() == 1
    again = json.loads(run(env, "sync", "--apply", "--json").output)
    assert again["linked_customers"] == []  # already linked: no write


def test_sync_reports_what_the_rules_keep_final(env, ledger, fake_stripe):
    apply_event(ledger.writer, sp.subscription_event(sp.subscription("sub_1", "cus_1", "canceled")))
    fake_stripe.add(sp.subscription("sub_1", "cus_1", "active"))
    env = {**env, "STRIPE_API_KEY": "sk_test_fake", "STRIPE_API_BASE": fake_stripe.url}
    text = run(env, "sync").output
    assert "final in the ledger, so a listing cannot change them: 1" in text
    result = json.loads(run(env, "sync", "--apply", "--json").output)
    assert result["unrepairable"] == ["sub_1"]
    assert ledger.queries.subscription("sub_1").sub.status == "canceled"
