"""`membership campaigns ...` against a real redis-server."""

from __future__ import annotations

import functools
import json

import pytest

from membership.core import audit
from membership.store import Keys
from tests.support.prompt_helpers import EXAMPLE, doc

KEYS = Keys()


@pytest.fixture
def run(membership_cli):
    return functools.partial(membership_cli, "campaigns", catch_exceptions=False)


def apply_json(run, value, *extra):
    return run("apply", "-", *extra, input=json.dumps(value))


def test_apply_list_show_export(run, redis_client, tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps([EXAMPLE, doc(id="c2", priority=20)]), encoding="utf-8")
    result = run("apply", str(path), "--actor", "olena")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["created winter-drive", "created c2"]

    again = run("apply", str(path))
    assert again.stdout.splitlines() == ["unchanged winter-drive", "unchanged c2"]
    assert redis_client.get(KEYS.campaigns_version) == "1"

    listed = json.loads(run("list", "--json").stdout)
    assert listed == [
        {
            "id": "winter-drive",
            "name": "Winter drive",
            "status": "live",
            "placement": "inline",
            "priority": 10,
            "variants": [{"id": "a", "weight": 1}, {"id": "b", "weight": 1}],
        },
        {
            "id": "c2",
            "name": "C1",
            "status": "live",
            "placement": "inline",
            "priority": 20,
            "variants": [{"id": "a", "weight": 1}],
        },
    ]
    table = run("list").stdout.splitlines()
    assert table[0].split() == ["ID", "NAME", "STATUS", "PLACEMENT", "PRIORITY", "VARIANTS"]
    assert table[1].startswith("winter-drive  Winter drive  live")
    assert table[1].endswith("a:1, b:1")

    shown = run("show", "winter-drive", "--json")
    assert json.loads(shown.stdout)["name"] == "Winter drive"
    text = run("show", "winter-drive").stdout
    assert "holdout:       10%" in text
    # c2 says nothing of dismissals: the one default (7 days) is what it shows
    assert "dismissed:     hidden 7 days" in run("show", "c2").stdout
    assert "  a  weight 1  You've read {articles_read} articles this month" in text

    exported = run("export")
    assert exported.exit_code == 0
    back = apply_json(run, json.loads(exported.stdout))
    assert back.stdout.splitlines() == ["unchanged winter-drive", "unchanged c2"]
    assert redis_client.get(KEYS.campaigns_version) == "1"
    assert [e["actor"] for e in audit.entries(redis_client, KEYS)] == ["olena", "olena"]


def test_apply_prints_every_problem_by_path_and_stores_nothing(run, redis_client):
    bad = json.loads(json.dumps(EXAMPLE))
    del bad["variants"][1]["copy"]["uk"]["headline"]
    del bad["variants"][0]["copy"]["en"]["cta"]
    result = apply_json(run, bad)
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0] == "error: 2 problems in the input; nothing was stored"
    assert "variants[1].copy.uk.headline: missing" in lines
    assert "variants[0].copy.en.cta: missing" in lines
    assert result.stdout == ""
    assert redis_client.exists(KEYS.campaigns, KEYS.campaigns_version, KEYS.audit) == 0


def test_apply_names_a_schema_error_by_path(run, redis_client):
    result = apply_json(run, doc(priority="high"))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: 1 problem in the input; nothing was stored",
        "priority: expected a whole number from -1000000 to 1000000",
    ]
    assert redis_client.exists(KEYS.campaigns) == 0


def test_apply_a_list_with_one_bad_campaign_stores_none(run, redis_client):
    bad = doc(id="c2", placement="gate")
    result = apply_json(run, [doc(id="c1"), bad])
    assert result.exit_code == 2
    assert "[1].gate: missing (required for placement gate)" in result.stderr.splitlines()
    assert redis_client.exists(KEYS.campaigns) == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "error: the input is not JSON ("),
        ("[]", "error: the list holds no campaign; nothing was stored"),
        ('"x"', "error: 1 problem in the input; nothing was stored"),
    ],
)
def test_apply_refuses_what_is_not_campaigns(run, redis_client, text, message):
    result = run("apply", "-", input=text)
    assert result.exit_code == 2
    assert result.stderr.startswith(message)
    assert redis_client.exists(KEYS.campaigns) == 0


def test_apply_refuses_control_characters(run, redis_client):
    result = apply_json(run, doc(name="Evil \x1b[2J"))
    assert result.exit_code == 2
    assert any(line.startswith("name: control characters") for line in result.stderr.splitlines())
    assert "\x1b" not in result.stderr
    assert redis_client.exists(KEYS.campaigns) == 0


def test_pause_resume_archive(run, redis_client):
    apply_json(run, doc(id="c1"))
    paused = run("pause", "c1", "--actor", "taras")
    assert (paused.exit_code, paused.stdout) == (0, "paused c1 (live -> paused)\n")
    again = run("pause", "c1")
    assert again.stdout == "campaign c1 is already paused; nothing changed\n"
    assert run("resume", "c1").stdout == "resumed c1 (paused -> live)\n"
    assert run("archive", "c1").stdout == "archived c1 (live -> archived)\n"
    refused = run("resume", "c1")
    assert refused.exit_code == 1
    assert "archived campaign changes only through `membership campaigns apply`" in (refused.stderr)
    assert json.loads(run("show", "c1", "--json").stdout)["status"] == "archived"
    entries = audit.entries(redis_client, KEYS)
    assert [e["action"] for e in entries] == [
        "campaign_archived",
        "campaign_resumed",
        "campaign_paused",
        "campaign_applied",
    ]
    assert entries[2]["actor"] == "taras"


def test_unknown_campaign(run):
    for args in (["pause", "nope"], ["show", "nope"]):
        result = run(*args)
        assert result.exit_code == 1
        assert "no campaign 'nope'" in result.stderr


def test_a_corrupt_stored_campaign_is_reported_not_a_crash(run, redis_client):
    apply_json(run, doc(id="c1"))
    redis_client.hset(KEYS.campaigns, "c2", "{broken")
    for args in (["list"], ["export"], ["show", "c2"], ["pause", "c2"]):
        result = run(*args)
        assert result.exit_code == 1, args
        assert "campaign 'c2': not JSON" in result.stderr, args
        assert "Traceback" not in result.output
    assert run("show", "c1").exit_code == 0
    mended = apply_json(run, doc(id="c2"))
    assert mended.stdout == "replaced c2\n"
    assert len(json.loads(run("export").stdout)) == 2


def test_empty_list(run):
    assert (
        run("list").stdout == "no campaigns yet: add one with `membership campaigns apply FILE`\n"
    )
    assert json.loads(run("list", "--json").stdout) == []
    assert json.loads(run("export").stdout) == []
