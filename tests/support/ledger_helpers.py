"""Short ways for tests to drive the ledger's doors (the writer, the queries, the log)."""

from __future__ import annotations

import contextlib
import random
from collections import Counter
from collections.abc import Iterator

from membership.core.config import DEFAULT_MEMBER_STATUSES
from membership.ledger import Ledger, codec
from membership.ledger.commands import ApplySubscription, LinkCustomer
from membership.ledger.rules import count_members
from membership.store import Keys, connect
from membership.stripe.apply import apply_event
from membership.stripe.events import subscription_from_object
from tests.support import stripe_payloads as sp

ACTOR = "test-staff"


@contextlib.contextmanager
def emptied_ledger(url: str, prefix: str) -> Iterator[tuple]:
    """(client, ledger) on the Redis at `url`, emptied first, under Keys(`prefix`): a
    hypothesis example's own (a test's fixtures are set up once for all its examples)."""
    client = connect(url)
    client.flushall()
    try:
        yield client, Ledger.on(client, Keys(prefix), DEFAULT_MEMBER_STATUSES)
    finally:
        client.close()


def join(ledger: Ledger, customer, email, name, *, status="active", sub=None, at=sp.T0, amount=500):
    """A Checkout by `customer`, then their subscription (`sub`, else sub_ and the customer's
    id after cus_) in `status` at `amount`, applied to the ledger."""
    checkout = sp.checkout_subscription(customer, email, name=name, created=at)
    outcome = apply_event(ledger.writer, checkout).outcome
    assert outcome == ("stale" if email is None and not name else "applied")  # nothing to link
    obj = sp.subscription(
        sub or f"sub_{customer[4:]}", customer, status, prices=[sp.price(amount=amount)], start=at
    )
    assert apply_event(ledger.writer, sp.subscription_event(obj, created=at)).outcome == "applied"


def fill(ledger: Ledger, seed: int = 1, customers: int = 40):
    """A random world delivered in order; returns (events, offline emails)."""
    events, offline = sp.random_world(random.Random(seed), customers)
    for e in events:
        assert apply_event(ledger.writer, e).outcome != "failed"
    for email in offline:
        add_offline(ledger, email, "comp")
    return events, offline


def add_offline(ledger: Ledger, email: str, reason: str, **kwargs):
    return ledger.writer.add_offline_member(email, reason, actor=ACTOR, **kwargs)


def remove_offline(ledger: Ledger, email: str, reason: str):
    return ledger.writer.remove_offline_member(email, reason, actor=ACTOR)


def snapshot(ledger: Ledger, subscription: dict, observed_at: int):
    """Apply a subscription as an API listing showed it (what `sync` does)."""
    sub = subscription_from_object(subscription, created=observed_at, source=f"sync@{observed_at}")
    return ledger.writer.apply(ApplySubscription(sub))


def link(ledger: Ledger, customer: str, email: str, *, observed_at: int, name=None):
    return ledger.writer.apply(LinkCustomer(customer, email, name, {}, observed_at))


def recount(ledger: Ledger) -> int:
    """The count from scratch, from every stored customer and offline member (O(n))."""
    customers = [(c.email, c.member) for c in ledger.queries.customers()]
    return count_members(customers, [m["email"] for m in ledger.queries.offline_members()])


def assert_exact(ledger: Ledger, events: list[dict], truth) -> None:
    """The ledger after `events` is `truth` (sp.ground_truth), each event processed once."""
    assert ledger.queries.count() == truth.count
    assert recount(ledger) == truth.count
    assert {r.id: r.status for r in ledger.queries.subscriptions()} == truth.statuses()
    # exactly once: one processed record per event id, however many deliveries
    done = Counter(
        e["id"] for e in ledger.events.recent(limit=1_000_000) if e["outcome"] != "duplicate"
    )
    assert set(done) == {e["id"] for e in events}
    failed_then_done = [i for i, n in done.items() if n > 1]
    assert failed_then_done == []


def day_moves(redis, keys: Keys, day: str) -> dict[str, str]:
    """The members a UTC day gained and lost as the writer keeps them (`codec.history_day`),
    in the shape versions before kept them: {"+<day>": joins, "-<day>": leaves}."""
    kept = codec.history_day_from(
        keys.ledger_history_day(day), redis.get(keys.ledger_history_day(day))
    )
    if kept is None:
        return {}
    return {f"{sign}{day}": str(n) for sign, n in (("+", kept[1]), ("-", kept[2])) if n}


def set_day_move(redis, keys: Keys, move: str, value: str) -> None:
    """Write `value` as the day's joins (`+<day>`) or leaves (`-<day>`), as `day_moves` names
    them: a test's way to garble one."""
    key = keys.ledger_history_day(move[1:])
    count, joins, leaves, opening = (redis.get(key) or "0 0 0 0").split(" ")
    joins, leaves = (value, leaves) if move[0] == "+" else (joins, value)
    redis.set(key, f"{count} {joins} {leaves} {opening}")
