"""The ledger's commit script, on what a change that changes nothing writes: nothing, so a
Redis that refuses writes (no memory, read-only, no disk) does not fail it."""

from __future__ import annotations

from tests.support.ledger_helpers import ACTOR


def test_a_change_of_nothing_on_a_new_ledger_writes_nothing(ledger, redis_client):
    outcome = ledger.writer.remove_offline_member("nobody@example.com", "a typo", actor=ACTOR)
    assert outcome.outcome == "unchanged" and outcome.count_after is None
    assert redis_client.keys("*") == []  # not even the counters


def test_a_change_of_nothing_on_a_new_ledger_needs_no_memory(ledger, redis_client):
    """Out of memory, a change that writes nothing is answered as ever, with no write that
    failed (which would flag a rebuild and answer a 500)."""
    redis_client.config_set("maxmemory-policy", "noeviction")
    redis_client.config_set("maxmemory", 1)
    try:
        outcome = ledger.writer.remove_offline_member("nobody@example.com", "typo", actor=ACTOR)
    finally:
        redis_client.config_set("maxmemory", 0)
    assert outcome.outcome == "unchanged"
    assert redis_client.keys("*") == []
