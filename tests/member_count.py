"""The one place tests set the member count, standing in for the ledger until it lands.

Switch this function to the real ledger (issue 3) when it is merged; every banner
test goes through it.
"""

from __future__ import annotations

import redis

from membership.store import Keys

CHANGED_AT = "2026-11-25T19:00:00Z"


def set_member_count(client: redis.Redis, keys: Keys, count: int, changed_at: str = CHANGED_AT):
    """Write the count and the time it changed together, as the ledger does (atomically)."""
    client.mset({keys.member_count: count, keys.count_changed_at: changed_at})
