"""The whole path, as in production: Stripe webhooks -> ledger -> goals -> the banner.

A real `membership serve` (gunicorn) on a real Redis; events signed as Stripe signs
them; goals added through the CLI; the banner read over HTTP.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
from click.testing import CliRunner

from membership.cli import cli
from tests.support import stripe_payloads as sp
from tests.support.ledger_helpers import add_offline
from tests.support.stripe_payloads import WEBHOOK_SECRET

pytestmark = pytest.mark.slow


def banner(service, locale="en"):
    with urllib.request.urlopen(f"{service.url}/v1/banner?locale={locale}", timeout=5) as r:
        return json.load(r)


def wait_for_count(service, count, locale="en", timeout=5.0):
    """Each worker refreshes its micro-cache within a second: poll until this one has (a
    worker that answered 503 before the first member was counted, too)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            body = banner(service, locale)
        except urllib.error.HTTPError as exc:
            if exc.code != 503 or time.monotonic() > deadline:
                raise
            body = None
        if (body is not None and body["count"] == count) or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


def test_webhooks_move_the_banner_and_reach_goals(serve, redis_url, tmp_path):
    env = {
        "REDIS_URL": redis_url,
        "MEMBERSHIP_DATA_DIR": str(tmp_path / "var"),
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "PUBLICATION_NAME": "The Kyiv Independent",
    }
    runner = CliRunner()
    for target in ("2", "5"):
        added = runner.invoke(cli, ["goals", "add", target], env=env, catch_exceptions=False)
        assert added.exit_code == 0, added.output

    service = serve(env)
    hook = service.url + "/webhooks/stripe"
    with pytest.raises(urllib.error.HTTPError) as nothing_yet:
        banner(service)  # no member ever counted: no banner, rather than "0 members"
    assert nothing_yet.value.code == 503

    subs = [sp.subscription(f"sub_{i}", f"cus_{i}", "active") for i in range(3)]
    for sub in subs:
        assert sp.post(hook, sp.body(sp.subscription_event(sub))) == 200
    body = wait_for_count(service, 3)
    assert body["count"] == 3
    assert body["headline"] == "3 members on board"
    assert body["goal"]["target"] == 5
    assert body["goal"]["remaining"] == 2
    assert body["milestone"]["target"] == 2  # reached by the webhooks, kept reached

    # One member leaves: the goal of 2 stays reached; the banner follows the count.
    ended = sp.subscription("sub_0", "cus_0", "canceled")
    assert sp.post(hook, sp.body(sp.subscription_event(ended, created=sp.T0 + 60))) == 200
    body = wait_for_count(service, 2)
    assert body["count"] == 2
    assert body["milestone"]["target"] == 2
    assert wait_for_count(service, 2, "uk")["headline"].startswith("2 учасники")
    service.stop()

    listed = runner.invoke(cli, ["goals", "list", "--json"], env=env, catch_exceptions=False)
    goals = {g["target"]: g for g in json.loads(listed.output)["goals"]}
    assert goals[2]["reached_at"] is not None
    assert goals[5]["reached_at"] is None


def test_the_ledger_marks_goals_the_moment_the_count_rises(app, redis_client):
    from membership.core.runtime import runtime
    from membership.goals import rules as goal_rules
    from membership.goals import store as goals
    from membership.ledger import Ledger

    rt = runtime(app)
    goals.add(rt.redis, rt.keys, goal_rules.parse_goal({"target": 2}), actor="test")
    ledger = Ledger.on(
        rt.redis,
        rt.keys,
        rt.settings.member_statuses,
        clock=lambda: 1_790_000_000.0,  # 2026-09-21T14:13:20Z
        subscribers=rt.ledger_subscribers,  # what ledger_for(rt) wires: goals
    )
    add_offline(ledger, "a@example.org", "comp")
    assert goals.load(rt.redis, rt.keys)[0].reached_at is None
    add_offline(ledger, "b@example.org", "comp")
    # No banner was read: the ledger itself marked it, at the time of the rise.
    assert goals.load(rt.redis, rt.keys)[0].reached_at == "2026-09-21T14:13:20Z"
