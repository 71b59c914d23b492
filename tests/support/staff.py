"""Staff accounts for tests: a fast hasher, one account per role, and a signed-in client.

app = with_role_accounts(make_app(staff_hasher=FAST, staff_insecure_cookies=True))
client, csrf = signed_in(app, "editor")   # editor@news.example, password GOOD
"""

from __future__ import annotations

import contextlib
import re

from argon2 import PasswordHasher

from membership.core.runtime import runtime
from membership.goals import rules as goal_rules
from membership.goals import store as goals
from membership.ledger import LedgerWriteFailed, ledger_for
from membership.prompts import campaigns, store
from membership.staff import accounts_for
from membership.stripe.apply import apply_event
from tests.support import stripe_payloads as sp
from tests.support.ledger_helpers import add_offline
from tests.support.prompt_helpers import EXAMPLE

GOOD = "correct horse battery"
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
ROLES = ("viewer", "editor", "admin")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(page: str) -> str:
    """The CSRF token of the first form on `page` (HTML)."""
    return CSRF.search(page).group(1)


def with_role_accounts(app):
    """`app` with viewer@, editor@ and admin@news.example, each with the password GOOD."""
    accounts = accounts_for(runtime(app))
    for role in ROLES:
        accounts.add(f"{role}@news.example", role, actor="test", password=GOOD)
    return app


def signed_in(app, role):
    """(a test client signed in as `role`@news.example, its CSRF token); `role=None`: signed out."""
    client = app.test_client()
    token = csrf_token(client.get("/staff/login").get_data(as_text=True))
    if role is None:
        return client, token
    data = {"email": f"{role}@news.example", "password": GOOD, "csrf_token": token}
    assert client.post("/staff/login", data=data).status_code == 303
    return client, csrf_token(client.get("/staff/").get_data(as_text=True))


def staff_routes(app):
    """(path, method, endpoint) of every /staff route but the static files."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/staff") or rule.endpoint == "staff.static":
            continue
        path = re.sub(r"<[^>]+>", "x", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((path, method, rule.endpoint))
    return found


def add_members(app) -> None:
    """Three members through Stripe (sub_0..2 of cus_0..2) and one offline."""
    ledger = ledger_for(runtime(app))
    for i in range(3):
        event = sp.subscription_event(sp.subscription(f"sub_{i}", f"cus_{i}", "active"))
        apply_event(ledger.writer, event)
    add_offline(ledger, "friend@example.org", "comp")


def seed_everything(app) -> None:
    """Something on every page: members, a failed event, a goal and a campaign."""
    add_members(app)
    rt = runtime(app)
    orphan = sp.subscription_event(sp.subscription("sub_orphan", "cus_x", "active"))
    orphan["data"]["object"].pop("customer")
    with contextlib.suppress(LedgerWriteFailed):  # recorded as failed: that is the point
        apply_event(ledger_for(rt).writer, orphan)
    goals.add(rt.redis, rt.keys, goal_rules.parse_goal({"target": 100, "name": "Hundred"}),
              actor="test")  # fmt: skip
    store.apply(rt.redis, rt.keys, [campaigns.parse(EXAMPLE)], actor="test")
