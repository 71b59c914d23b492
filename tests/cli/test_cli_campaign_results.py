"""`membership campaigns results ID [--json] [--days N]` against a real redis-server."""

from __future__ import annotations

import functools
import json
import time

import pytest

from membership.prompts import counts
from membership.prompts.tokens import DecisionClaim
from membership.store import Keys, connect
from tests.support.prompt_helpers import EXAMPLE

pytestmark = pytest.mark.topologies("single", "cluster")

KEYS = Keys()


@pytest.fixture
def run(membership_cli):
    return functools.partial(membership_cli, "campaigns")


@pytest.fixture
def campaign(run):
    assert run("apply", "-", input=json.dumps(EXAMPLE)).exit_code == 0
    return EXAMPLE["id"]


def record(redis_url, events):
    client = connect(redis_url)
    now = time.time()
    try:
        pairs = [
            (DecisionClaim(f"d{i}", EXAMPLE["id"], variant, reader, int(now)), kind)
            for i, (variant, reader, kind) in enumerate(events)
        ]
        counts.record(client, KEYS, pairs, now)
        with client.pipeline(transaction=True) as pipe:
            counts.queue_conversion(pipe, KEYS, EXAMPLE["id"], "a", now, amount=500, currency="eur")
            pipe.execute()
    finally:
        client.close()


def test_json_has_every_variant_the_holdout_and_the_days(run, campaign, redis_url):
    record(
        redis_url,
        [
            ("a", "r_reader01", "view"),
            ("a", "r_reader01", "click"),
            ("a", "r_reader02", "view"),
            ("b", "r_reader03", "view"),
            ("b", "r_reader03", "dismiss"),
            (None, "r_reader04", "holdout"),
        ],
    )
    result = run("results", campaign, "--json", "--days", "3")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["campaign"] == "winter-drive"
    a, b = data["variants"]
    assert (a["id"], a["views"], a["readers"], a["clicks"], a["conversions"]) == ("a", 2, 2, 1, 1)
    assert a["click_rate"] == 0.5
    assert a["conversion_rate"] == 0.5
    assert a["revenue"] == {"eur": 500}
    assert a["verdict"] == "too early"
    assert (b["views"], b["dismissals"], b["revenue"]) == (1, 1, {"eur": 0})
    assert data["holdout"]["readers"] == 1
    assert [d["day"] for d in data["days"]] == counts.last_days(time.time(), 3)
    today = data["days"][-1]
    assert [v["views"] for v in today["variants"]] == [2, 1]
    assert today["holdout"]["events"] == 1


def test_the_table_reads_as_text(run, campaign, redis_url):
    record(redis_url, [("a", "r_reader01", "view"), (None, "r_reader04", "holdout")])
    result = run("results", campaign, "--days", "2")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("campaign winter-drive, all time")
    assert lines[1].split()[:5] == ["VARIANT", "VIEWS", "READERS", "CLICKS", "CLICK"]
    row_a = lines[2].split()
    assert row_a[:5] == ["a", "1", "1", "0", "0.00%"]
    assert row_a[8:10] == ["100.00%", "20.65%-100.00%"]
    assert row_a[-4:] == ["€5.00", "-", "too", "early"]  # revenue, refunded, verdict
    assert lines[3].split()[0] == "b"
    assert lines[4].split()[:3] == ["holdout", "-", "1"]
    assert "per UTC day" in result.stdout
    assert len([line for line in lines if line.startswith("20")]) == 2 * 3  # a, b, holdout


def steer(redis_url, variant, n, kind="view", per_address=2):
    """What one address sends to push a variant: `n` events with fresh tokens."""
    client = connect(redis_url)
    now = time.time()
    try:
        pairs = [
            (DecisionClaim(f"s{kind}{i}", EXAMPLE["id"], variant, f"r_steer{i:04}", int(now)), kind)
            for i in range(n)
        ]
        return counts.record(
            client, KEYS, pairs, now, address="b25lYWRkcmVzcw", per_address=per_address
        )
    finally:
        client.close()


def test_excess_is_shown_per_variant_in_the_json_and_the_table(run, campaign, redis_url):
    assert steer(redis_url, "b", 7).excess == 5
    assert steer(redis_url, "b", 4, kind="click").excess == 2
    assert steer(redis_url, None, 3, kind="holdout").excess == 1
    data = json.loads(run("results", campaign, "--json", "--days", "1").stdout)
    a, b = data["variants"]
    assert (a["excess"], b["excess"], data["holdout"]["excess"]) == (0, 7, 1)
    assert (b["views"], b["clicks"], b["readers"]) == (2, 2, 2)  # only the bound counted
    (today,) = data["days"]
    assert [v["excess"] for v in today["variants"]] == [0, 7]
    assert today["holdout"]["excess"] == 1

    result = run("results", campaign, "--days", "1")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = lines[1].split()
    assert header[7] == "EXCESS"  # after CLICK RATE and DISMISSALS
    rows = {line.split()[0]: line.split() for line in lines[2:5]}
    assert (rows["a"][6], rows["b"][6]) == ("0", "7")
    assert rows["holdout"][:7] == ["holdout", "-", "2", "-", "-", "-", "1"]  # readers, excess
    assert lines[5] == (
        "excess: 8 events not counted, their address past PROMPT_EVENTS_PER_ADDRESS in the hour"
        " (someone may be steering these results)"
    )
    day_header = next(line for line in lines if line.startswith("DAY")).split()
    assert day_header[5] == "EXCESS"
    day_b = next(line for line in lines if line.startswith("20") and line.split()[1] == "b")
    assert day_b.split()[5] == "7"


def test_no_figures_yet(run, campaign):
    result = run("results", campaign)
    assert result.exit_code == 0, result.output
    assert "too early" in result.stdout
    assert "per UTC day" not in result.stdout
    assert json.loads(run("results", campaign, "--json").stdout)["days"] == []


def test_an_unknown_campaign_is_one_line_and_exit_1(run):
    result = run("results", "nope")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: no campaign 'nope' (see `membership campaigns list`)"
    ]


def test_days_out_of_range_is_a_usage_error(run, campaign):
    for days in ("0", "401", "x"):
        result = run("results", campaign, "--days", days)
        assert result.exit_code == 2
        assert "--days" in result.output


def test_a_corrupt_counter_is_one_line_and_exit_1(run, campaign, redis_client):
    redis_client.hset(KEYS.prompt_counts(campaign), "a:views", "lots")
    result = run("results", campaign)
    assert result.exit_code == 1
    assert "a stored prompt counter is corrupt: all time a:views" in result.output
