"""Staff accounts and `membership staff ...` against a real redis-server: roles, passwords
(argon2, length, common list), one-time password links, the audit log."""

from __future__ import annotations

import threading
import time

import pytest
import redis
from argon2 import PasswordHasher

from membership.core import audit
from membership.staff.access import rules
from membership.staff.access.accounts import Accounts, StaffConflict
from membership.staff.access.rules import StaffInputError
from membership.staff.access.sessions import StaffSessions
from membership.store import Keys
from tests.support.staff import FAST, GOOD

KEYS = Keys()


@pytest.fixture
def accounts(redis_url, redis_client, clock):
    return Accounts(redis_client, KEYS, clock=clock, hasher=FAST)


LAST_ID = f"{2**64 - 1}-{2**64 - 1}"  # a stream's last id: no XADD after it


def test_a_change_whose_audit_entry_fails_inside_exec_is_an_error(accounts, redis_client):
    accounts.add("a@x.org", "admin", actor="setup")
    redis_client.xadd(KEYS.audit, {"x": "y"}, id=LAST_ID)
    with pytest.raises(StaffConflict, match=r"Redis refused part of the change: .*exhausted"):
        accounts.add("b@x.org", "viewer", actor="a@x.org")
    assert accounts.get("b@x.org").role == "viewer"  # the rest stayed, as the error says


def test_a_sign_in_whose_audit_entry_fails_inside_exec_raises_redis_error(
    accounts, redis_client, clock
):
    accounts.add("a@x.org", "admin", actor="setup")
    redis_client.xadd(KEYS.audit, {"x": "y"}, id=LAST_ID)
    with pytest.raises(redis.ResponseError, match="exhausted the last possible ID"):
        StaffSessions(redis_client, KEYS, clock).create("a@x.org")


# --- pure rules -------------------------------------------------------------
@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short pass1", "at least 12"),
        ("x" * 257, "at most 256"),
        ("qwerty123456", "most common"),
        ("QWERTY123456", "most common"),
        ("1q2w3e4r5t6y", "most common"),
        ("aaaaaaaaaaaaaaa", "repetitive"),
        ("121212121212", "repetitive"),
        (None, "expected text"),
        ("", "expected text"),
    ],
)
def test_passwords_refused_say_why(password, problem):
    assert problem in rules.password_problem(password)


def test_a_long_uncommon_password_is_fine():
    assert rules.password_problem(GOOD) is None
    assert len(rules.common_passwords()) > 150


def test_roles_are_ordered_and_unknown_roles_may_nothing():
    assert rules.allows("admin", "editor") and rules.allows("editor", "viewer")
    assert not rules.allows("viewer", "editor") and not rules.allows("editor", "admin")
    assert not rules.allows(None, "viewer") and not rules.allows("root", "viewer")


# --- accounts in Redis --------------------------------------------------------
def test_add_hashes_with_argon2_and_audits_without_the_hash(accounts, redis_client):
    account = accounts.add(" Ed@News.Example ", "editor", actor="ops", password=GOOD)
    assert (account.email, account.role, account.disabled) == ("ed@news.example", "editor", False)
    stored = redis_client.hget(KEYS.staff_account("ed@news.example"), "password")
    assert stored.startswith("$argon2id$") and GOOD not in stored
    assert accounts.verify("ED@news.example", GOOD).email == "ed@news.example"
    assert accounts.verify("ed@news.example", GOOD + "x") is None
    (entry,) = audit.entries(redis_client, KEYS)
    assert (entry["actor"], entry["action"], entry["target"]) == (
        "ops",
        "staff_added",
        "staff ed@news.example",
    )
    assert entry["after"] == {"email": "ed@news.example", "role": "editor", "disabled": False}
    assert "argon2" not in str(audit.entries(redis_client, KEYS))


def test_refused_input_changes_nothing(accounts, redis_client):
    for call in (
        lambda: accounts.add("not-an-email", "viewer", actor="ops", password=GOOD),
        lambda: accounts.add("a@b.example", "root", actor="ops", password=GOOD),
        lambda: accounts.add("a@b.example", "viewer", actor="ops", password="password1234"),
        lambda: accounts.add("a@b.example", "viewer", actor="bad\x1b[2J", password=GOOD),
    ):
        with pytest.raises((StaffInputError, audit.AuditInputError)):
            call()
    assert redis_client.keys("*") == []


@pytest.mark.parametrize("planted", ["staff_accounts", "audit"])
def test_a_key_of_the_wrong_type_refuses_a_change_before_anything_is_written(
    accounts, redis_client, planted
):
    accounts.add("a@b.example", "viewer", actor="ops", password=GOOD)
    redis_client.delete(KEYS.audit)
    redis_client.set(getattr(KEYS, planted), "not what it should be")
    before = {k: redis_client.dump(k) for k in redis_client.keys("*")}
    for call in (
        lambda: accounts.add("c@b.example", "viewer", actor="ops", password=GOOD),
        lambda: accounts.set_role("a@b.example", "editor", actor="ops"),
        lambda: accounts.disable("a@b.example", actor="ops"),
    ):
        with pytest.raises(StaffConflict, match="not a"):
            call()
    assert {k: redis_client.dump(k) for k in redis_client.keys("*")} == before


def test_add_twice_role_and_disable(accounts, redis_client):
    accounts.add("a@news.example", "admin", actor="ops", password=GOOD)  # not the last admin
    accounts.add("v@news.example", "viewer", actor="ops", password=GOOD)
    with pytest.raises(StaffConflict, match="already has"):
        accounts.add("v@news.example", "admin", actor="ops", password=GOOD)
    assert accounts.set_role("v@news.example", "admin", actor="ops").role == "admin"
    assert accounts.disable("v@news.example", actor="ops").disabled
    assert accounts.verify("v@news.example", GOOD) is None  # disabled: no sign-in
    with pytest.raises(StaffConflict, match="no staff account"):
        accounts.set_role("nobody@news.example", "viewer", actor="ops")
    actions = [e["action"] for e in audit.entries(redis_client, KEYS)]
    assert actions == ["staff_disabled", "staff_role_changed", "staff_added", "staff_added"]


def test_unknown_email_costs_a_verification_too(redis_url, redis_client, clock):
    calls = []

    class Counting(PasswordHasher):
        def verify(self, hash, password):
            calls.append(hash)
            return super().verify(hash, password)

    accounts = Accounts(
        redis_client, KEYS, clock=clock, hasher=Counting(time_cost=1, memory_cost=8, parallelism=1)
    )
    assert accounts.verify("nobody@news.example", GOOD) is None
    assert accounts.verify("not an email", GOOD) is None
    assert len(calls) == 2


def test_a_password_link_is_single_use_and_expires(accounts, clock, redis_client):
    accounts.add("new@news.example", "viewer", actor="ops")
    assert accounts.verify("new@news.example", GOOD) is None  # no password yet
    token = accounts.create_link("new@news.example")
    assert token not in "".join(redis_client.keys("*"))
    assert accounts.link_email(token) == "new@news.example"
    with pytest.raises(StaffInputError, match="at least 12"):
        accounts.use_link(token, "short")
    assert accounts.use_link(token, GOOD) == "new@news.example"  # still usable after that
    assert accounts.verify("new@news.example", GOOD) is not None
    with pytest.raises(StaffConflict, match="expired or already used"):
        accounts.use_link(token, GOOD + "!")
    late = accounts.create_link("new@news.example")
    clock.at += 24 * 3600
    assert accounts.link_email(late) is None
    with pytest.raises(StaffConflict):
        accounts.use_link(late, GOOD + "!")
    assert accounts.link_email("x" * 40) is None


# --- the CLI ---------------------------------------------------------------------
def test_cli_add_list_role_disable(run, redis_client):
    result = run("add", "a@news.example", "--role", "admin", "--password-stdin", "--actor", "me",
                 input=GOOD + "\n")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output == "added a@news.example (admin)\n"
    result = run("add", "b@news.example", "--role", "viewer")
    assert result.exit_code == 0
    link = result.output.splitlines()[-1]
    assert link.startswith("https://members.news.example/staff/set-password?token=")
    assert run("role", "b@news.example", "editor").output == "b@news.example is now editor\n"
    listing = run("list").output.splitlines()
    assert listing[0].split()[:5] == ["EMAIL", "ROLE", "DISABLED", "PASSWORD", "TWO_FACTOR"]
    assert listing[1].split()[:4] == ["a@news.example", "admin", "no", "yes"]
    assert listing[2].split()[:4] == ["b@news.example", "editor", "no", "no"]
    assert run("disable", "b@news.example").exit_code == 0
    assert '"disabled": true' in run("list", "--json").output
    assert run("enable", "b@news.example").output == "enabled b@news.example\n"
    assert '"disabled": true' not in run("list", "--json").output
    assert run("enable", "nobody@news.example").exit_code == 1
    reset = run("reset-2fa", "b@news.example")
    assert (reset.exit_code, reset.output) == (
        1, "Error: b@news.example has no two-factor sign-in to reset\n"
    )  # fmt: skip
    actors = {e["actor"] for e in audit.entries(redis_client, KEYS)}
    assert "me" in actors


def test_cli_errors_are_one_line(run):
    weak = run("add", "a@news.example", "--role", "viewer", "--password-stdin", input="short\n")
    assert (weak.exit_code, weak.output) == (1, "Error: password: use at least 12 characters\n")
    bad_role = run("add", "a@news.example", "--role", "root")
    assert bad_role.exit_code == 2
    missing = run("disable", "nobody@news.example")
    assert (missing.exit_code, missing.output) == (1, "Error: nobody@news.example has no staff "
                                                      "account\n")  # fmt: skip
    assert run("role", "nobody@news.example", "admin").exit_code == 1


def test_no_session_outlives_a_disable_that_races_sign_ins(accounts, redis_client, clock):
    """Sign-ins whose password was checked before an admin disabled the account, creating
    their sessions around the disable: afterwards the account has no session at all."""
    accounts.add("a@news.example", "admin", actor="ops", password=GOOD)
    accounts.add("v@news.example", "viewer", actor="ops", password=GOOD)
    sessions = StaffSessions(redis_client, KEYS, clock)
    made: list[str | None] = []
    disabled = threading.Event()

    def sign_ins():
        after = 0
        while after < 3 and len(made) < 20_000:  # and a few once the disable is done
            made.append(sessions.create("v@news.example"))
            after += disabled.is_set()

    def disable():
        while len(made) < 20:  # sign-ins under way
            time.sleep(0.001)
        for _ in range(50):  # an admin trying again while sign-ins keep the index changing
            try:
                accounts.disable(
                    "v@news.example", actor="a@news.example", end_sessions=sessions.queue_end_all
                )
                break
            except StaffConflict:
                continue
        disabled.set()

    threads = [threading.Thread(target=sign_ins) for _ in range(8)]
    threads.append(threading.Thread(target=disable))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert accounts.get("v@news.example").disabled
    left = [
        key
        for key in redis_client.scan_iter(KEYS.staff_session("*"))
        if redis_client.hget(key, "email") == "v@news.example"
    ]
    assert left == []
    assert redis_client.smembers(KEYS.staff_account_sessions("v@news.example")) == set()
    assert all(sessions.resume(token) is None for token in made if token)
    assert any(made) and None in made  # sessions made before the disable, refused after


def test_a_sign_in_is_refused_a_session_once_the_account_is_disabled(accounts, redis_client, clock):
    accounts.add("a@news.example", "admin", actor="ops", password=GOOD)
    accounts.add("v@news.example", "viewer", actor="ops", password=GOOD)
    sessions = StaffSessions(redis_client, KEYS, clock)
    assert sessions.create("v@news.example") is not None
    accounts.disable("v@news.example", actor="ops", end_sessions=sessions.queue_end_all)
    assert sessions.create("v@news.example") is None
    assert sessions.create("nobody@news.example") is None
    assert sessions.list("v@news.example") == []
