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
