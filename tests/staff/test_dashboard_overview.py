"""The Overview's data: reads from a real ledger and goals, and the pure view model."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import date

import pytest

from membership.core.config import DEFAULT_MEMBER_STATUSES
from membership.goals import rules as goal_rules
from membership.goals import store as goals
from membership.ledger import Ledger
from membership.staff.overview import views as overview
from membership.stripe.apply import apply_event
from tests.support import stripe_payloads as sp
from tests.support.clock import Clock
from tests.support.ledger_helpers import ACTOR, add_offline

DAY1 = 1_795_500_000  # 2026-11-24, in the ledger's clock
TODAY = date(2026, 11, 26)


@pytest.fixture
def clock():
    return Clock(DAY1)


@pytest.fixture
def ledger(redis_conn, keys, clock):
    return Ledger.on(redis_conn, keys, DEFAULT_MEMBER_STATUSES, clock=clock)


def sub(sub_id, customer, status, created, **kw):
    return sp.subscription_event(sp.subscription(sub_id, customer, status, **kw), created=created)


def goal(redis_conn, keys, target, **kw):
    return goals.add(redis_conn, keys, goal_rules.parse_goal({"target": target, **kw}), actor=ACTOR)


def test_the_overview_of_a_ledger(ledger, redis_conn, keys, clock):
    yearly = sp.price(id="price_y", amount=6000, interval="year", nickname="Yearly")
    usd = sp.price(id="price_usd", amount=700, currency="usd", nickname="Monthly USD")
    apply_event(ledger.writer, sub("sub_1", "cus_1", "active", 10))  # 5 eur a month
    apply_event(ledger.writer, sub("sub_2", "cus_2", "active", 10, prices=[yearly]))  # 60 eur/y
    apply_event(ledger.writer, sub("sub_3", "cus_3", "trialing", 10, prices=[usd]))  # no MRR
    goal(redis_conn, keys, 2, name="First two")  # reached at once
    clock.at += 86400  # 2026-11-25
    apply_event(ledger.writer, sub("sub_1", "cus_1", "canceled", 20))
    apply_event(ledger.writer, sub("sub_4", "cus_4", "past_due", 20, prices=[usd]))
    add_offline(ledger, "friend@example.org", "comp")
    apply_event(ledger.writer, sp.checkout_payment("pi_1", 2500, created=20))
    apply_event(ledger.writer, sp.checkout_payment("pi_2", 1000, email="b@x.org", created=20))
    apply_event(ledger.writer, sp.checkout_payment("pi_3", 300, currency="jpy", created=20))
    goal(redis_conn, keys, 10, name="Ten", deadline="2099-01-01")
    goal(redis_conn, keys, 20)

    reads = overview.read(redis_conn, keys, 30, today=TODAY)
    model = overview.view(reads, locale="en", today=TODAY)

    assert model["count"] == 4 and model["count_display"] == "4"
    assert (model["stripe_members"], model["offline_members"]) == (3, 1)
    assert model["goal"]["target"] == 10 and model["goal"]["name"] == "Ten"
    assert model["goal"]["progress"] == 0.4 and model["goal"]["remaining"] == 6
    assert model["goal"]["days_left"] == (date(2099, 1, 1) - TODAY).days
    assert [(m["target"], m["name"]) for m in model["milestones"]] == [(2, "First two")]
    assert model["milestones"][0]["reached_at"].endswith("Z")
    assert model["mrr"] == [
        {"currency": "eur", "minor": 500, "display": "€5.00"},
        {"currency": "usd", "minor": 700, "display": "$7.00"},
    ]
    assert model["contributions"] == {
        "contributors": 2,  # pi_1 and pi_3 are one donor's (one email)
        "by_currency": [
            {"currency": "eur", "count": 2, "sum": 3500, "display": "€35.00"},
            {"currency": "jpy", "count": 1, "sum": 300, "display": "¥300"},
        ],
    }
    history = model["history"]
    assert history["days"] == 30 and len(history["rows"]) == 30
    assert history["rows"][-3:] == [
        {"day": "2026-11-24", "count": 3, "joins": 3, "leaves": 0},
        {"day": "2026-11-25", "count": 4, "joins": 2, "leaves": 1},
        {"day": "2026-11-26", "count": 4, "joins": 0, "leaves": 0},
    ]
    assert (history["joins"], history["leaves"], history["net"]) == (5, 1, 4)
    assert model["needs_rebuild"] is None
    json.dumps(model)  # a JSON route can answer it as it is

    drawn = overview.charts(model)
    line = ET.fromstring(drawn["members"].svg).find(
        ".//{http://www.w3.org/2000/svg}polyline[@class='members-line']"
    )
    assert line.get("data-points") == "30"
    assert drawn["goal"].summary == "4 of 10 members (40%) toward Ten, by 2099-01-01."


def test_ukrainian_numbers_and_money(ledger, redis_conn, keys):
    big = sp.price(id="price_big", amount=1_234_500)
    apply_event(ledger.writer, sub("sub_1", "cus_1", "active", 10, prices=[big]))
    goal(redis_conn, keys, 30_000)
    model = overview.view(
        overview.read(redis_conn, keys, 90, today=TODAY), locale="uk", today=TODAY
    )
    assert model["goal"]["target_display"] == "30\xa0000"
    assert model["mrr"][0]["display"] == "12\xa0345,00\xa0EUR"  # Babel's uk
    assert model["history"]["days"] == 90


@pytest.mark.parametrize("days", [30, 90, 365])
def test_each_period_has_a_row_per_day(redis_conn, keys, days):
    rows = overview.read(redis_conn, keys, days, today=TODAY).history
    assert len(rows) == days and rows[-1]["day"] == "2026-11-26"


def test_a_new_redis_has_an_unknown_count(redis_conn, keys):
    goal(redis_conn, keys, 100, deadline="2099-01-01")
    model = overview.view(overview.read(redis_conn, keys, today=TODAY), today=TODAY)
    assert model["count"] is None and model["count_display"] is None
    assert model["goal"]["target"] == 100
    assert model["goal"]["progress"] is None and model["goal"]["remaining"] is None
    assert model["milestones"] == [] and model["mrr"] == []
    assert model["contributions"] == {"contributors": 0, "by_currency": []}
    assert overview.charts(model)["goal"] is None
    assert overview.charts(model)["members"].summary.startswith("0 members")


def test_reads_write_nothing(ledger, redis_conn, keys):
    apply_event(ledger.writer, sub("sub_1", "cus_1", "active", 10))
    before = {k: redis_conn.dump(k) for k in redis_conn.keys("*")}
    overview.read(redis_conn, keys, 365, today=TODAY)
    assert {k: redis_conn.dump(k) for k in redis_conn.keys("*")} == before


def test_a_count_past_an_unmarked_goal_is_a_milestone():
    """The writer marks goals after its commit: a read in between sees the count first."""
    reads = overview.Reads(
        stats=_stats(members=12),
        goals=[goal_rules.Goal(id=1, target=10), goal_rules.Goal(id=2, target=5, reached_at="T")],
        history=[],
    )
    model = overview.view(reads, today=TODAY)
    assert model["goal"] is None
    assert [(m["target"], m["reached_at"]) for m in model["milestones"]] == [(10, None), (5, "T")]


def test_an_overdue_goal_and_a_rebuild_warning():
    reads = overview.Reads(
        stats=_stats(members=3, needs_rebuild={"reason": "why"}),
        goals=[goal_rules.Goal(id=1, target=10, deadline="2026-11-20")],
        history=[],
    )
    model = overview.view(reads, today=TODAY)
    assert model["goal"]["days_left"] == -6
    assert model["needs_rebuild"] == {"reason": "why"}


@pytest.mark.parametrize(("raw", "days"), [(None, 30), ("", 30), ("90", 90), ("365", 365)])
def test_parse_days(raw, days):
    assert overview.parse_days(raw) == days


@pytest.mark.parametrize("raw", ["7", "30.0", " 30", "-30", "٣٠", "x", "3650"])
def test_parse_days_refuses(raw):
    with pytest.raises(ValueError, match="days: expected one of 30, 90, 365"):
        overview.parse_days(raw)


def test_read_refuses_other_periods(redis_conn, keys):
    with pytest.raises(ValueError):
        overview.read(redis_conn, keys, 7)


def _stats(members, needs_rebuild=None):
    return {
        "members": members,
        "count_changed_at": None,
        "stripe_members": members,
        "offline_members": 0,
        "offline_also_in_stripe": 0,
        "subscriptions_by_status": {},
        "members_by_plan": {},
        "mrr": {},
        "contributions": {"contributors": 0, "sum": {}, "count": {}},
        "needs_rebuild": needs_rebuild,
    }
