"""Every Redis key name the service uses, built in one place.

All keys share one hash tag (`{prefix}`), so every multi-key script or
transaction stays on one slot and the same code runs on Redis Cluster.
Modules ask this class for names; none formats a key by hand.
"""

from __future__ import annotations


class Keys:
    def __init__(self, prefix: str = "membership") -> None:
        self.prefix = prefix
        self._base = "{" + prefix + "}"

    def _key(self, *parts: str) -> str:
        return ":".join((self._base, *parts))

    # --- Ledger: the member count and what it is made of -------------------
    @property
    def member_count(self) -> str:
        """Integer: the number of members, maintained by the ledger; O(1) to read."""
        return self._key("count")

    @property
    def count_changed_at(self) -> str:
        """ISO-8601 UTC time the member count last changed (written with the count)."""
        return self._key("count", "changed_at")

    # --- Goals and banner ---------------------------------------------------
    @property
    def goals(self) -> str:
        """Hash: goal id -> the goal as JSON (target, deadline, name, copy, created_at)."""
        return self._key("goals")

    @property
    def goals_reached(self) -> str:
        """Hash: goal id -> ISO-8601 UTC time it was reached; only ever added to."""
        return self._key("goals", "reached")

    @property
    def goals_pending(self) -> str:
        """Sorted set: ids of goals not reached yet, scored by target (cheap mark_reached)."""
        return self._key("goals", "pending")

    @property
    def goals_next_id(self) -> str:
        """Integer: the last goal id handed out."""
        return self._key("goals", "next_id")
