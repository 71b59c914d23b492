"""The reference ledger, in memory: the service's own rules (`rules.load`, `rules.decide`,
`rules.deltas`) applied to dicts, as the Redis writer applies them to Redis. The property tests
feed both the same events in any order and compare them, and each with a specification written
in the tests themselves.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from membership.ledger import rules
from membership.ledger.commands import AddOffline, Command, RemoveOffline
from membership.ledger.model import (
    Contribution,
    Contributor,
    Customer,
    EmailBucket,
    SubRecord,
    valid_email,
)


@dataclass
class MemoryLedger:
    member_statuses: tuple[str, ...]
    subs: dict[str, SubRecord] = field(default_factory=dict)
    customers: dict[str, Customer] = field(default_factory=dict)
    buckets: dict[str, EmailBucket] = field(default_factory=dict)
    contributions: dict[str, Contribution] = field(default_factory=dict)
    contributors: dict[str, Contributor] = field(default_factory=dict)
    timelines: dict[str | None, list[dict]] = field(default_factory=dict)
    count: int = 0
    counters: Counter = field(default_factory=Counter)
    seen: set[str] = field(default_factory=set)

    # --- rules.Reader ----------------------------------------------------------

    def subscription(self, sub_id: str) -> SubRecord | None:
        return self.subs.get(sub_id)

    def customer(self, customer_id: str) -> Customer:
        return self.customers.get(customer_id) or Customer(customer_id)

    def customer_subscriptions(self, customer_id: str) -> list[SubRecord]:
        return sorted(
            (r for r in self.subs.values() if r.sub.customer == customer_id), key=lambda r: r.id
        )

    def bucket(self, email: str) -> EmailBucket:
        return self.buckets.get(email) or EmailBucket(email)

    def contribution(self, key: str) -> Contribution | None:
        return self.contributions.get(key)

    def contributor(self, person: str) -> Contributor:
        return self.contributors.get(person) or Contributor(person)

    # --- writes ------------------------------------------------------------------

    def apply_event(self, event_id: str, command: Command) -> str:
        """applied | stale | ignored | duplicate, as the Redis writer answers."""
        if event_id in self.seen:
            return "duplicate"
        self.seen.add(event_id)
        return self.apply(command)

    def apply(self, command: Command) -> str:
        statuses = frozenset(self.member_statuses)
        decision = rules.decide(command, rules.load(command, self), statuses)
        count_delta, counter_deltas = rules.deltas(decision.changes, statuses)
        for _, new in decision.changes:
            self._store(new)
        if decision.timeline is not None:
            customer, entry = decision.timeline
            self.timelines.setdefault(customer, []).insert(0, entry)
        self.count += count_delta
        self.counters.update(counter_deltas)
        return decision.outcome

    def _store(self, record) -> None:
        if isinstance(record, SubRecord):
            self.subs[record.id] = record
        elif isinstance(record, Customer):
            self.customers[record.id] = record
        elif isinstance(record, EmailBucket):
            self.buckets[record.email] = record
        elif isinstance(record, Contribution):
            self.contributions[record.key] = record
        elif isinstance(record, Contributor):
            self.contributors[record.person] = record

    def add_offline(self, email: str, reason: str = "comp") -> bool:
        return self.apply(AddOffline(valid_email(email), reason, None, "")) == "applied"

    def remove_offline(self, email: str, reason: str = "ended") -> bool:
        return self.apply(RemoveOffline(valid_email(email), reason)) == "applied"

    # --- reads -------------------------------------------------------------------

    @property
    def offline(self) -> set[str]:
        return {e for e, b in self.buckets.items() if b.is_offline}

    def statuses(self) -> dict[str, str]:
        return {sub_id: rec.status for sub_id, rec in self.subs.items()}

    def per_currency(self, prefix: str) -> dict[str, int]:
        """Counters named `prefix<currency>`, zeros left out: e.g. per_currency("mrr:")."""
        return {
            name[len(prefix) :]: value
            for name, value in sorted(self.counters.items())
            if name.startswith(prefix) and value
        }

    def recount(self) -> int:
        """The count from scratch (`count_members`), to check the incremental one."""
        return rules.count_members(
            ((c.email, c.member) for c in self.customers.values()), self.offline
        )
