"""The last enabled admin keeps the role, whatever the door: the dashboard, the CLI, the
Python API, and two admins demoting or disabling each other at the same moment (which once
left both as viewers: each transaction WATCHed only the account it changed)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from membership.core import audit
from membership.staff.access.accounts import Accounts, StaffConflict
from membership.store import Keys
from tests.support.staff import CSRF, FAST, GOOD

KEYS = Keys()
A, B = "a@news.example", "b@news.example"


def accounts_on(redis_server) -> Accounts:
    """Accounts on a client of its own (one connection each, as two requests would have)."""
    return Accounts(redis_server.client(), KEYS, hasher=FAST)


@pytest.fixture
def accounts(redis_url, redis_server):
    return accounts_on(redis_server)


def enabled_admins(accounts: Accounts) -> list[str]:
    return [a.email for a in accounts.list() if a.role == "admin" and not a.disabled]


def test_the_last_admin_is_neither_demoted_nor_disabled(accounts, redis_client):
    accounts.add(A, "admin", actor="ops", password=GOOD)
    accounts.add(B, "editor", actor="ops", password=GOOD)
    entries = len(audit.entries(redis_client, KEYS, limit=100))
    for change in (
        lambda: accounts.set_role(A, "editor", actor="ops"),
        lambda: accounts.set_role(A, "viewer", actor="ops"),
        lambda: accounts.disable(A, actor="ops"),
    ):
        with pytest.raises(StaffConflict, match="last enabled admin"):
            change()
    assert enabled_admins(accounts) == [A]
    assert len(audit.entries(redis_client, KEYS, limit=100)) == entries  # nothing written
    accounts.set_role(A, "admin", actor="ops")  # no loss: allowed
    accounts.set_role(B, "admin", actor="ops")
    accounts.disable(B, actor="ops")  # a disabled admin does not count
    with pytest.raises(StaffConflict, match="last enabled admin"):
        accounts.set_role(A, "viewer", actor="ops")
    accounts.enable(B, actor="ops")
    assert accounts.set_role(A, "viewer", actor="ops").role == "viewer"  # B remains
    assert enabled_admins(accounts) == [B]


@pytest.mark.parametrize(
    "moves",
    [("demote", "demote"), ("disable", "disable"), ("demote", "disable")],
    ids=lambda m: "-".join(m),
)
def test_two_admins_at_the_same_moment_leave_one(redis_url, redis_server, moves):
    """Each round: A changes B and B changes A, released together on two connections."""
    setup = accounts_on(redis_server)
    setup.add(A, "admin", actor="ops", password=GOOD)
    setup.add(B, "admin", actor="ops", password=GOOD)
    first, second = accounts_on(redis_server), accounts_on(redis_server)

    def move(store: Accounts, kind: str, target: str, actor: str, start: threading.Barrier):
        start.wait(10)
        try:
            if kind == "demote":
                store.set_role(target, "viewer", actor=actor)
            else:
                store.disable(target, actor=actor)
            return True
        except StaffConflict as exc:
            assert "last enabled admin" in str(exc)
            return False

    outcomes = []
    for _ in range(40):
        start = threading.Barrier(2)
        with ThreadPoolExecutor(2) as pool:
            done = [
                pool.submit(move, first, moves[0], B, A, start),
                pool.submit(move, second, moves[1], A, B, start),
            ]
            outcomes.append(sorted(d.result() for d in done))
        assert len(enabled_admins(setup)) == 1
        for email in (A, B):  # both admins and enabled again for the next round
            setup.enable(email, actor="ops")
            setup.set_role(email, "admin", actor="ops")
    assert outcomes == [[False, True]] * 40


def test_the_cli_cannot_take_the_last_admin_away(run, accounts):
    accounts.add(A, "admin", actor="ops", password=GOOD)
    for args in (("role", A, "editor"), ("disable", A)):
        result = run(*args)
        assert result.exit_code == 1 and "last enabled admin" in result.output, result.output
        assert result.output.count("\n") == 1
    assert enabled_admins(accounts) == [A]


def test_a_newsroom_without_an_admin_adds_one_from_the_cli(run, accounts, redis_client):
    """Data from before this rule may have no enabled admin: `staff add` makes one."""
    accounts.add(B, "editor", actor="ops", password=GOOD)
    redis_client.hset(KEYS.staff_account(A), mapping={"email": A, "role": "admin",
                                                     "disabled": "1"})  # fmt: skip
    redis_client.sadd(KEYS.staff_accounts, A)
    assert enabled_admins(accounts) == []
    added = run("add", "new@news.example", "--role", "admin", "--password-stdin",
                input=GOOD + "\n")  # fmt: skip
    assert added.exit_code == 0, added.output
    assert enabled_admins(accounts) == ["new@news.example"]


# --- The dashboard: two admins' sessions at once ----------------------------------------------


def test_two_admins_demoting_each_other_from_the_page_leave_one(make_app, redis_client):
    from membership.core.runtime import runtime
    from membership.staff import accounts_for

    app = make_app(staff_hasher=FAST, staff_insecure_cookies=True)
    store = accounts_for(runtime(app))
    for email in (A, B):
        store.add(email, "admin", actor="test", password=GOOD)

    def signed_in(email):
        client = app.test_client()
        token = CSRF.search(client.get("/staff/login").get_data(as_text=True)).group(1)
        data = {"email": email, "password": GOOD, "csrf_token": token}
        assert client.post("/staff/login", data=data).status_code == 303
        return client, CSRF.search(client.get("/staff/accounts").get_data(as_text=True)).group(1)

    for _ in range(10):
        (first, first_token), (second, second_token) = signed_in(A), signed_in(B)
        start = threading.Barrier(2)

        def demote(client, token, target, start=start):
            start.wait(10)
            data = {"csrf_token": token, "email": target, "role": "viewer"}
            return client.post("/staff/accounts/role", data=data).status_code

        with ThreadPoolExecutor(2) as pool:
            statuses = sorted(
                pool.map(demote, (first, second), (first_token, second_token), (B, A))
            )
        # One is refused: by the count in its transaction (400), or, when the other had
        # committed before it began, by the guard (403: no longer an admin).
        assert statuses[0] == 200 and statuses[1] in (400, 403)
        admins = [a.email for a in store.list() if a.role == "admin"]
        assert len(admins) == 1
        for email in (A, B):
            store.set_role(email, "admin", actor="test")
