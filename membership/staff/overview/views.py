"""The Overview page's data: `read()` (three reads of the models the banner, the CLI and
`stats` use; nothing scans members), `view()` (the pure, JSON-ready view model) and
`charts()`. docs/staff-dashboard.md#overview-data-and-charts says what is shown and why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

import redis as redis_lib

from membership.core import i18n
from membership.goals import rules as goal_rules
from membership.goals import store as goals_
from membership.goals.banner import progress
from membership.ledger.queries import Queries
from membership.staff import format as staff_format
from membership.staff.forms import period
from membership.staff.overview import charts as charts_
from membership.store import Keys

PERIODS = (30, 90, 365)  # the chart's choices of days
DEFAULT_PERIOD = 30


def parse_days(raw: str | None) -> int:
    return period(raw, PERIODS, DEFAULT_PERIOD)


@dataclass(frozen=True)
class Reads:
    """What the Overview reads, as the read models return it."""

    stats: Mapping  # ledger queries.stats(): the count, counters, needs_rebuild
    goals: Sequence[goal_rules.Goal]
    history: Sequence[Mapping]  # ledger queries.history(days)


def read(
    client: redis_lib.Redis, keys: Keys, days: int = DEFAULT_PERIOD, *, today: date | None = None
) -> Reads:
    """Three round trips, none of them O(members); `days` must be one of PERIODS."""
    if days not in PERIODS:
        raise ValueError(f"days: expected one of {', '.join(map(str, PERIODS))}")
    queries = Queries(client, keys)
    return Reads(
        stats=queries.stats(),
        goals=goals_.load(client, keys),
        history=queries.history(days, today=today),
    )


# --- View model (pure) -------------------------------------------------------


def view(reads: Reads, *, locale: str = "en", today: date | None = None) -> dict:
    """The Overview as plain data. `today` (UTC) gives the goal's days left."""
    today = today or datetime.now(UTC).date()
    stats = reads.stats
    count = stats["members"]
    fmt = i18n.format_number
    # An unknown count (a new Redis) reaches nothing, as for goals.add; it is shown as unknown.
    selection = goal_rules.select(reads.goals, count or 0)
    return {
        "locale": locale,
        "count": count,
        "count_display": fmt(locale, count) if count is not None else None,
        "count_changed_at": stats["count_changed_at"],
        "stripe_members": stats["stripe_members"],
        "offline_members": stats["offline_members"],
        "goal": _goal(selection.current, count, locale, today),
        "milestones": _milestones(reads.goals, count, locale),
        "history": _history(reads.history),
        "mrr": [
            {"currency": c, "minor": m, "display": staff_format.money(m, c, locale)}
            for c, m in sorted(stats["mrr"].items())
        ],
        "contributions": _contributions(stats["contributions"], locale),
        "subscriptions_by_status": dict(stats["subscriptions_by_status"]),
        "members_by_plan": dict(stats["members_by_plan"]),
        # Set when the counters may be wrong (MRR and contributions come from them).
        "needs_rebuild": stats["needs_rebuild"],
    }


def _goal(goal: goal_rules.Goal | None, count: int | None, locale: str, today: date) -> dict | None:
    if goal is None:
        return None
    fmt = i18n.format_number
    days_left = None
    if goal.deadline:
        days_left = (date.fromisoformat(goal.deadline) - today).days  # < 0: overdue
    remaining = goal.target - count if count is not None else None
    return {
        "id": goal.id,
        "name": goal.name,
        "target": goal.target,
        "target_display": fmt(locale, goal.target),
        "progress": progress(count, goal.target) if count is not None else None,
        "remaining": remaining,
        "remaining_display": fmt(locale, remaining) if remaining is not None else None,
        "deadline": goal.deadline,
        "days_left": days_left,
    }


def _milestones(goals: Sequence[goal_rules.Goal], count: int | None, locale: str) -> list[dict]:
    """Reached goals, the largest first. A goal the count passed but not marked yet (the mark
    follows the count's commit) is reached too, with no time."""
    reached = [g for g in goals if goal_rules.is_reached(g, count if count is not None else -1)]
    return [
        {
            "id": g.id,
            "name": g.name,
            "target": g.target,
            "target_display": i18n.format_number(locale, g.target),
            "reached_at": g.reached_at,
        }
        for g in sorted(reached, key=lambda g: (-g.target, g.id))
    ]


def _history(rows: Sequence[Mapping]) -> dict:
    rows = [dict(r) for r in rows]
    start = charts_.count_before(rows) if rows else 0
    end = rows[-1]["count"] if rows else 0
    return {
        "days": len(rows),
        "rows": rows,
        "joins": sum(r["joins"] for r in rows),
        "leaves": sum(r["leaves"] for r in rows),
        "net": end - start,
    }


def _contributions(raw: Mapping, locale: str) -> dict:
    sums, counts = raw["sum"], raw["count"]
    return {
        "contributors": raw["contributors"],
        "by_currency": [
            {
                "currency": c,
                "count": counts.get(c, 0),
                "sum": sums.get(c, 0),
                "display": staff_format.money(sums.get(c, 0), c, locale),
            }
            for c in sorted(set(sums) | set(counts))
        ],
    }


def charts(model: Mapping) -> dict[str, charts_.Chart | None]:
    """The Overview's pictures from its view model: `members` (the history) and `goal`
    (the bar; None without a current goal or a known count)."""
    locale = model["locale"]
    goal = model["goal"]
    bar = None
    if goal is not None and model["count"] is not None:
        bar = charts_.goal_chart(
            model["count"],
            goal["target"],
            locale=locale,
            name=goal["name"],
            deadline=goal["deadline"],
        )
    return {"members": charts_.members_chart(model["history"]["rows"], locale=locale), "goal": bar}
