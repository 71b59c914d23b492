"""The one place banner tests set the member count directly.

The ledger writes these two keys (membership/ledger.py); banner tests need counts
like 25,012 that would take 25,012 real members to build, so they write the keys
as the ledger does. tests/system/test_end_to_end.py drives the real path, webhook to banner.
"""

from __future__ import annotations

import redis

from membership.goals import rules as goal_rules
from membership.goals import store as goals
from membership.store import Keys

CHANGED_AT = "2026-11-25T19:00:00Z"


def set_member_count(client: redis.Redis, keys: Keys, count: int, changed_at: str = CHANGED_AT):
    """Write the count and the time it changed together, and step the banner's version, as
    the ledger does (atomically)."""
    pipe = client.pipeline(transaction=True)
    pipe.set(keys.member_count, count)  # not MSET: a Cluster pipeline refuses it
    pipe.set(keys.count_changed_at, changed_at)
    pipe.incr(keys.banner_version)
    pipe.execute()


REACHED_AT = "2026-11-20T10:00:00Z"


def seed_banner(
    client: redis.Redis,
    keys: Keys,
    *next_goals: dict,
    count: int = 25012,
    reached: int | None = None,
) -> None:
    """`count` members and the goals a banner shows: the goal of `reached` members (if
    given), reached at REACHED_AT, then each of `next_goals` (as staff write a goal)."""
    set_member_count(client, keys, count)
    if reached is not None:
        goal = goal_rules.parse_goal({"target": reached})
        goals.add(client, keys, goal, now=REACHED_AT, actor="test")
    for fields in next_goals:
        goals.add(client, keys, goal_rules.parse_goal(fields), actor="test")
