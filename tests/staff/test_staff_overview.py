"""The Overview page (/staff/): the count, the goal, members over time, money and milestones,
drawn from a real ledger, for every role; the days switch; no inline script or style."""

from __future__ import annotations

import re

import pytest

from membership.core.runtime import runtime
from membership.goals import rules as goal_rules
from membership.goals import store as goals
from membership.ledger import ledger_for
from membership.stripe.apply import apply_event
from tests.support import stripe_payloads as sp
from tests.support.ledger_helpers import ACTOR, add_offline
from tests.support.staff import signed_in


def _svg_points(html: str) -> list[str]:
    return re.findall(r'class="members-line"[^>]*data-points="(\d+)"', html) or re.findall(
        r'data-points="(\d+)"[^>]*class="members-line"', html
    )


@pytest.mark.parametrize("role", ["viewer", "editor", "admin"])
def test_the_overview_renders_for_every_role(app, role):
    client, _ = signed_in(app, role)
    response = client.get("/staff/")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Sign out" in html and 'id="live-count"' in html
    assert "No current goal." in html and "<svg" in html
    assert "<script" not in html and "style=" not in html and "<style" not in html
    assert ('href="/staff/accounts"' in html) == (role == "admin")


def test_the_figures_follow_the_ledger(app):
    rt = runtime(app)
    ledger = ledger_for(rt)
    client, _ = signed_in(app, "viewer")
    first = client.get("/staff/").get_data(as_text=True)
    assert 'id="live-count">unknown<' in first  # a new Redis: no count yet

    goals.add(rt.redis, rt.keys, goal_rules.parse_goal({"target": 1, "name": "First"}), actor=ACTOR)
    goal = {"target": 10, "name": "Ten & <more>", "deadline": "2099-01-01"}
    goals.add(rt.redis, rt.keys, goal_rules.parse_goal(goal), actor=ACTOR)
    event = sp.subscription_event(sp.subscription("sub_1", "cus_1", "active"), created=10)
    apply_event(ledger.writer, event)
    add_offline(ledger, "friend@example.org", "comp")
    apply_event(ledger.writer, sp.checkout_payment("pi_1", 2500, created=20))

    html = client.get("/staff/").get_data(as_text=True)
    assert re.search(r'id="live-count">2<', html)
    assert "Ten &amp; &lt;more&gt;" in html and "<more>" not in html
    assert "2 of 10" in html and "8 to go" in html and "Deadline 2099-01-01" in html
    assert 'role="img"' in html and "The goal as a table" in html
    assert "Last 30 days: 2 joined, 0 left (net +2)." in html
    assert "€5.00" in html  # MRR of the default monthly price
    assert re.search(r"<td>EUR</td><td>1</td><td>€25.00</td>", html)
    milestones = re.search(r'<ul id="milestones">(.*?)</ul>', html, re.S).group(1)
    assert "First: 1 members" in milestones and "Ten" not in milestones
    assert "needs-rebuild" not in html


def test_the_days_switch_and_a_bad_value(app):
    client, _ = signed_in(app, "viewer")
    for days in (30, 90, 365):
        html = client.get(f"/staff/?days={days}").get_data(as_text=True)
        assert f'<a href="?days={days}" aria-current="page">' in html
        assert f"Last {days} days:" in html
        assert _svg_points(html) == [str(days)]
        assert "The chart as a table" in html
    for bad in ("7", "abc", "30.0", "-30"):
        response = client.get(f"/staff/?days={bad}")
        assert response.status_code == 400, bad
        assert "days: expected one of 30, 90, 365" in response.get_data(as_text=True)


def test_the_rebuild_warning(app):
    rt = runtime(app)
    client, _ = signed_in(app, "viewer")
    assert "needs-rebuild" not in client.get("/staff/").get_data(as_text=True)
    rt.redis.hset(rt.keys.ledger_needs_rebuild, mapping={"reason": "counters drifted"})
    assert 'id="needs-rebuild"' in client.get("/staff/").get_data(as_text=True)


@pytest.mark.browser
def test_nothing_scrolls_sideways_at_375_px(app, browser):
    """Both pages in Chromium at 375 px, served by the test client (with its session)."""
    from membership.core.audit import record

    rt = runtime(app)
    long = "x" * 300
    record(rt.redis, rt.keys, actor="ann", action="goal_added", target=long, after={long: long})
    client, _ = signed_in(app, "viewer")

    def serve(route):
        url = route.request.url.removeprefix("http://staff.test")
        answer = client.get(url)
        route.fulfill(status=answer.status_code, headers=dict(answer.headers), body=answer.data)

    page = browser.new_page(viewport={"width": 375, "height": 800})
    page.route("http://staff.test/**", serve)
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    for path in ("/staff/?days=365", "/staff/audit"):
        page.goto(f"http://staff.test{path}")
        page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        main = page.evaluate("getComputedStyle(document.querySelector('main')).maxWidth")
        assert main == "960px"  # the stylesheet was served and applied
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, (path, width)
    page.close()
    assert errors == []  # no CSP refusals
