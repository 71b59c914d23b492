"""The ledger writer's transaction hooks: what a hook queues commits with the event, once."""

from __future__ import annotations

import pytest

from membership.core.config import DEFAULT_MEMBER_STATUSES
from membership.ledger import Ledger, LedgerCorrupt
from membership.ledger.codec import CorruptRecord
from membership.store import Keys, connect
from membership.stripe.apply import apply_event
from tests.support import stripe_payloads as sp

KEYS = Keys()


class Tally:
    """Counts each new event in the event's own transaction; can be told to refuse."""

    def __init__(self) -> None:
        self.prepared: list[str] = []
        self.refuse = False

    def prepare(self, event, reader, at):
        [seen] = reader.read([("get", "hooked")])  # WATCHed, as the writer's own reads
        self.prepared.append(event["id"])
        if self.refuse:
            raise CorruptRecord("hooked", "told to refuse")
        return lambda pipe: pipe.set("hooked", int(seen or 0) + 1)


@pytest.fixture
def redis(redis_url):
    client = connect(redis_url)
    yield client
    client.close()


def test_a_hook_joins_each_new_event_once(redis):
    hook = Tally()
    ledger = Ledger.on(redis, KEYS, DEFAULT_MEMBER_STATUSES, hooks=[hook])
    event = sp.subscription_event(sp.subscription("sub_1", "cus_1", "active"))
    assert apply_event(ledger.writer, event).outcome == "applied"
    assert apply_event(ledger.writer, event).outcome == "duplicate"
    ignored = sp.event("invoice_payment.paid", {"id": "inpay_1", "object": "invoice_payment"})
    assert apply_event(ledger.writer, ignored).outcome == "ignored"
    assert redis.get("hooked") == "2"  # the applied event and the ignored one
    assert hook.prepared == [event["id"], ignored["id"]]
    # not for commands that are not Stripe events
    ledger.writer.add_offline_member("a@b.org", "gift", actor="test")
    assert redis.get("hooked") == "2"


def test_a_hook_that_refuses_leaves_nothing_written(redis):
    hook = Tally()
    hook.refuse = True
    ledger = Ledger.on(redis, KEYS, DEFAULT_MEMBER_STATUSES, hooks=[hook])
    event = sp.subscription_event(sp.subscription("sub_1", "cus_1", "active"))
    with pytest.raises(LedgerCorrupt):
        apply_event(ledger.writer, event)
    assert redis.get("hooked") is None
    assert not redis.exists(KEYS.ledger_event(event["id"]))
    assert ledger.queries.count() is None
    hook.refuse = False
    assert apply_event(ledger.writer, event).outcome == "applied"
    assert redis.get("hooked") == "1" and ledger.queries.count() == 1
