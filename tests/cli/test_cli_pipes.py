"""Every listing piped into a program that stops reading (`membership events list | head -1`)
ends quietly with status 0: no "Broken pipe" error, no traceback, on a store that has something
to list."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from membership.ledger import Ledger
from membership.store import Keys
from membership.stripe.apply import apply_event
from tests.support import stripe_payloads as sp
from tests.support.processes import REPO

SECRET = "cli-pipes-secret-0123456789abcdefghij"
# Every command that lists (each prints at least a line for the store `seeded` fills).
LISTINGS = [
    ["stats"],
    ["stats", "--json"],
    ["events", "list"],
    ["goals", "list"],
    ["audit", "list"],
    ["members", "list"],
    ["staff", "list"],
    ["campaigns", "list"],
    ["campaigns", "export"],
    ["campaigns", "show", "winter-drive"],
    ["campaigns", "results", "winter-drive"],
]


@pytest.fixture
def seeded(membership_cli, redis_client):
    """A store with something in every listing: Stripe events and members, offline members, a
    goal, a campaign, a staff account and their audit entries."""
    ledger = Ledger.on(redis_client, Keys(), ("active", "trialing", "past_due"))
    for n in range(3):
        event = sp.subscription_event(sp.subscription(f"sub_{n}", f"cus_{n}", "active"))
        assert apply_event(ledger.writer, event).outcome == "applied"
    env = {"SECRET_KEY": SECRET}
    for args in (
        ["members", "add", "reader@example.org", "--name", "A Reader", "--reason", "gift"],
        ["goals", "add", "1000"],
        ["campaigns", "apply", str(REPO / "examples" / "campaign.json")],
        ["staff", "add", "editor@news.example", "--role", "editor"],
    ):
        done = membership_cli(*args, env=env, catch_exceptions=False)
        assert done.exit_code == 0, (args, done.output)
    return lambda args: membership_cli(*args, env=env, catch_exceptions=False)


@pytest.mark.parametrize("args", LISTINGS, ids=" ".join)
def test_a_reader_that_stops_reading_ends_the_listing_quietly(args, seeded, redis_url, tmp_path):
    listed = seeded(args)
    assert listed.exit_code == 0 and listed.stdout.strip(), listed.output  # something to write
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line: every write is EPIPE
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "MEMBERSHIP_"))}
    env |= {"REDIS_URL": redis_url, "MEMBERSHIP_DATA_DIR": str(tmp_path), "SECRET_KEY": SECRET}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "membership.cli", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            env=env,
            cwd=REPO,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
