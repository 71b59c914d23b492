import functools
import json
import os
import pwd
import socket
import subprocess
import sys

import pytest
import redis as redis_lib

from membership.core import audit
from membership.store import Keys
from tests.support.processes import REPO

pytestmark = pytest.mark.topologies  # each test on a single server, a Cluster and Sentinel

KEYS = Keys()
AT = 1795687200.0  # 2026-11-26T10:00:00Z
LOGIN_NAME = pwd.getpwuid(os.getuid()).pw_name
BAD_ACTORS = ["", "   ", "x" * 321, "\x1b[31m", "a\nb", "olena\u202e", "a\u2028b", "\x00"]


def entry(**overrides):
    return {"actor": "olena", "action": "goal_added", "target": "goal 1", **overrides}


# --- Writing -------------------------------------------------------------------


@pytest.mark.topologies("single", "sentinel")  # keys outside the hash tag, one transaction
def test_queue_commits_with_the_callers_writes(r):
    with r.pipeline(transaction=True) as pipe:
        pipe.multi()
        pipe.set("caller:write", "1")
        audit.queue(pipe, KEYS, **entry(after={"target": 100}), at=AT)
        assert r.exists(KEYS.audit) == 0  # queued only: nothing ran yet
        replies = pipe.execute()
    assert replies[0] is True
    assert r.get("caller:write") == "1"
    (only,) = audit.entries(r, KEYS)
    assert only["at"] == "2026-11-26T10:00:00Z"
    assert (only["actor"], only["action"], only["target"]) == ("olena", "goal_added", "goal 1")
    assert (only["before"], only["after"]) == (None, {"target": 100})
    assert only["id"] == replies[1]


@pytest.mark.topologies("single", "sentinel")  # keys outside the hash tag, one transaction
def test_nothing_is_written_when_the_callers_transaction_is_discarded(r):
    r.set("watched", "0")
    with r.pipeline(transaction=True) as pipe:
        pipe.watch("watched")
        r.set("watched", "changed")  # someone else (another connection) writes in between
        pipe.multi()
        pipe.set("caller:write", "1")
        audit.queue(pipe, KEYS, **entry())
        with pytest.raises(redis_lib.WatchError):
            pipe.execute()
    assert r.exists("caller:write", KEYS.audit) == 0

    with r.pipeline(transaction=True) as pipe:  # or dropped before EXEC
        pipe.multi()
        pipe.set("caller:write", "1")
        audit.queue(pipe, KEYS, **entry())
        pipe.reset()
    assert r.exists("caller:write", KEYS.audit) == 0


@pytest.mark.topologies("single", "sentinel")  # reads the single-server Pipeline
def test_the_stream_is_capped(r):
    with r.pipeline(transaction=True) as pipe:
        pipe.multi()
        audit.queue(pipe, KEYS, **entry())
        (args, _options) = pipe.command_stack[0]
    as_text = [a.decode() if isinstance(a, bytes) else str(a) for a in args[:5]]
    assert as_text == ["XADD", KEYS.audit, "MAXLEN", "~", "100000"]


def test_fields_are_stored_as_specified(r):
    audit.record(r, KEYS, **entry(before={"b": "Стати учасником", "a": 1}, after=None), at=AT)
    ((_, fields),) = r.xrange(KEYS.audit)
    assert fields == {
        "at": "2026-11-26T10:00:00Z",
        "actor": "olena",
        "action": "goal_added",
        "target": "goal 1",
        "before": '{"a": 1, "b": "Стати учасником"}',  # sorted keys, not \u-escaped
        "after": "null",
    }


def test_entries_are_newest_first_and_round_trip(r):
    audit.record(r, KEYS, **entry(target="goal 1", after={"name": "Стати учасником"}), at=AT)
    audit.record(r, KEYS, **entry(target="goal 2", before=[1, "два"], after="три"), at=AT + 60)
    audit.record(r, KEYS, **entry(target="goal 3", actor="  Тарас  "), at=AT + 120)  # noqa: RUF001
    found = audit.entries(r, KEYS)
    assert [e["target"] for e in found] == ["goal 3", "goal 2", "goal 1"]
    assert [e["at"] for e in found] == [
        "2026-11-26T10:02:00Z",
        "2026-11-26T10:01:00Z",
        "2026-11-26T10:00:00Z",
    ]
    assert found[0]["actor"] == "Тарас"  # noqa: RUF001 (stripped)
    assert (found[1]["before"], found[1]["after"]) == ([1, "два"], "три")
    assert (found[2]["before"], found[2]["after"]) == (None, {"name": "Стати учасником"})
    assert [e["target"] for e in audit.entries(r, KEYS, limit=2)] == ["goal 3", "goal 2"]
    with pytest.raises(audit.AuditInputError, match=r"^limit: "):
        audit.entries(r, KEYS, limit=0)


def test_entries_when_there_are_none(r):
    assert audit.entries(r, KEYS) == []


def test_record_checks_the_reply(r):
    r.set(KEYS.audit, "not a stream")
    with pytest.raises(redis_lib.ResponseError):
        audit.record(r, KEYS, **entry())


# --- Refusing bad input before anything is queued ------------------------------


@pytest.mark.parametrize("actor", BAD_ACTORS)
def test_a_bad_actor_is_refused_and_nothing_is_written(r, actor):
    with pytest.raises(audit.AuditInputError, match=r"^actor: "):
        audit.check_actor(actor)
    with pytest.raises(audit.AuditInputError, match=r"^actor: "):
        audit.record(r, KEYS, **entry(actor=actor))
    with r.pipeline(transaction=True) as pipe:
        pipe.multi()
        with pytest.raises(audit.AuditInputError, match=r"^actor: "):
            audit.queue(pipe, KEYS, **entry(actor=actor))
        assert pipe.command_stack == []
    assert r.exists(KEYS.audit) == 0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"action": ""}, "action"),
        ({"action": "Goal-Added"}, "action"),
        ({"action": "a" * 51}, "action"),
        ({"target": ""}, "target"),
        ({"target": "t" * 301}, "target"),
        ({"target": "goal\n1"}, "target"),
        ({"target": "goal \x1b[2J"}, "target"),
        ({"before": {"when": object()}}, "before"),
        ({"after": float("nan")}, "after"),
        ({"at": "yesterday"}, "at"),
    ],
)
def test_other_bad_fields_are_named_and_nothing_is_queued(r, overrides, field):
    with r.pipeline(transaction=True) as pipe:
        pipe.multi()
        with pytest.raises(audit.AuditInputError, match=f"^{field}: "):
            audit.queue(pipe, KEYS, **entry(**overrides))
        assert pipe.command_stack == []
    assert r.exists(KEYS.audit) == 0


def test_check_actor_accepts_and_strips():
    assert audit.check_actor("  olena\n") == "olena"
    assert audit.check_actor("x" * 100) == "x" * 100
    assert audit.check_actor("Олена Петренко") == "Олена Петренко"


def test_default_actor(monkeypatch):
    monkeypatch.setenv("USER", "olena")
    monkeypatch.setenv("LOGNAME", "taras")
    assert audit.default_actor() == "olena"
    monkeypatch.delenv("USER")
    assert audit.default_actor() == "taras"
    monkeypatch.delenv("LOGNAME")
    assert audit.default_actor() == LOGIN_NAME
    monkeypatch.setenv("USER", "\x1b[31mroot")
    assert audit.default_actor() == LOGIN_NAME

    def no_passwd_entry(uid):  # a container's arbitrary uid
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.setattr(audit.pwd, "getpwuid", no_passwd_entry)
    assert audit.default_actor() == f"cli@{socket.gethostname()}"


# --- CLI ------------------------------------------------------------------------


@pytest.fixture
def run(membership_cli):
    """`membership ARGS` as the operator maria ($USER)."""
    return functools.partial(membership_cli, env={"USER": "maria"})


def test_cli_goal_changes_show_in_the_audit_log(run, r):
    added = run("goals", "add", "100", "--actor", "olena", "--name", "Стати учасником")
    assert added.exit_code == 0, added.output
    removed = run("goals", "remove", "1", "--actor", "taras")
    assert removed.exit_code == 0, removed.output
    assert run("goals", "add", "200").exit_code == 0  # --actor defaults to $USER

    listing = run("audit", "list")
    assert listing.exit_code == 0, listing.output
    lines = listing.output.splitlines()
    assert lines[0].split() == ["AT", "ACTOR", "ACTION", "TARGET", "CHANGE"]
    assert len(lines) == 4
    assert lines[1].split()[1:5] == ["maria", "goal_added", "goal", "2"]
    assert lines[2].split()[1:5] == ["taras", "goal_removed", "goal", "1"]
    assert lines[3].split()[1:5] == ["olena", "goal_added", "goal", "1"]
    assert "goal 1  → id=1 target=100 name=Стати учасником created_at=" in lines[3]
    assert "goal 1  id=1 target=100 name=Стати учасником created_at=" in lines[2]
    assert lines[2].endswith(" → (none)")

    as_json = json.loads(run("audit", "list", "--json").output)
    assert [(e["actor"], e["action"], e["target"]) for e in as_json] == [
        ("maria", "goal_added", "goal 2"),
        ("taras", "goal_removed", "goal 1"),
        ("olena", "goal_added", "goal 1"),
    ]
    added_entry, removed_entry = as_json[2], as_json[1]
    assert added_entry["before"] is None
    assert added_entry["after"]["id"] == 1
    assert added_entry["after"]["target"] == 100
    assert added_entry["after"]["name"] == "Стати учасником"
    assert added_entry["after"]["reached_at"] is None
    assert removed_entry["before"] == added_entry["after"]
    assert removed_entry["after"] is None
    for e in as_json:
        assert len(e["at"]) == 20 and e["at"][10] == "T" and e["at"].endswith("Z")

    limited = json.loads(run("audit", "list", "--json", "--limit", "1").output)
    assert [e["target"] for e in limited] == ["goal 2"]
    assert len(run("audit", "list", "--limit", "2").output.splitlines()) == 3


def test_cli_shows_what_changed_on_one_safe_line(run, r):
    before = {"email": "a@example.org", "status": "active", "note": "x"}
    after = {"email": "a@example.org", "status": "canceled", "note": "\x1b[2J\nnew"}
    audit.record(r, KEYS, **entry(action="member_changed", before=before, after=after))
    audit.record(r, KEYS, **entry(action="note_set", before="a" * 200, after="b" * 200))
    lines = run("audit", "list").output.splitlines()
    assert len(lines) == 3
    assert "\x1b" not in lines[2]
    assert lines[2].endswith("status: active → canceled, note: x → \\u001b[2J\\u000anew")
    long_change = lines[1].split("  ")[-1]
    assert 70 < len(long_change) <= 80
    assert long_change.startswith("aaa") and " → bbb" in long_change
    assert long_change.endswith("…")


def test_cli_removing_an_unknown_goal_records_nothing(run, r):
    missing = run("goals", "remove", "7", "--actor", "olena")
    assert missing.exit_code == 1
    assert "no goal with id 7" in missing.output
    assert r.exists(KEYS.audit) == 0
    assert run("audit", "list").output.strip() == "(none)"
    assert json.loads(run("audit", "list", "--json").output) == []


@pytest.mark.parametrize("actor", ["", "x" * 321, "\x1b[31m", "a\nb"])
def test_cli_refuses_a_bad_actor_and_changes_nothing(run, r, actor):
    result = run("goals", "add", "100", "--actor", actor)
    assert result.exit_code == 2
    assert "Invalid value for '--actor'" in result.output
    assert "actor: " in result.output
    assert r.exists(KEYS.goals, KEYS.audit) == 0


@pytest.mark.topologies("single")  # the environment is what varies, not Redis
def test_a_cli_change_without_user_or_logname_is_audited_as_the_login_name(redis_url, r, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "MEMBERSHIP_"))}
    env = {k: v for k, v in env.items() if k not in ("USER", "LOGNAME")}
    env |= {"REDIS_URL": redis_url, "MEMBERSHIP_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "membership.cli", "goals", "add", "100"],
        capture_output=True,
        env=env,
        cwd=REPO,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    (only,) = audit.entries(r, KEYS)
    assert (only["action"], only["target"]) == ("goal_added", "goal 1")
    assert only["actor"] == LOGIN_NAME != "unknown"


def test_cli_limit_must_be_positive(run):
    result = run("audit", "list", "--limit", "0")
    assert result.exit_code == 2
    assert "--limit" in result.output
