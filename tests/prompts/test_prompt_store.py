"""Campaigns in Redis (membership/prompts/store.py), against a real redis-server."""

from __future__ import annotations

import json

import pytest

from membership.core import audit
from membership.prompts import campaigns, store
from membership.store import Keys
from tests.support.prompt_helpers import EXAMPLE, doc

KEYS = Keys()


LAST_STREAM_ID = f"{2**64 - 1}-{2**64 - 1}"


def version(r) -> int:
    return int(r.get(KEYS.campaigns_version) or 0)


def audits(r) -> list[dict]:
    return list(reversed(audit.entries(r, KEYS, limit=100)))


def test_apply_creates_then_replaces_then_changes_nothing(r):
    first = campaigns.parse_list([EXAMPLE, doc(id="c2")])
    assert store.apply(r, KEYS, first, actor="olena") == [
        ("winter-drive", "created"),
        ("c2", "created"),
    ]
    assert version(r) == 1
    assert [c.id for c in store.load_all(r, KEYS)] == ["c2", "winter-drive"]  # by priority
    assert store.load_all(r, KEYS)[1] == first[0]

    renamed = campaigns.parse(dict(EXAMPLE, name="Winter drive 2"))
    assert store.apply(r, KEYS, [renamed, first[1]], actor="taras") == [
        ("winter-drive", "replaced"),
        ("c2", "unchanged"),
    ]
    assert version(r) == 2
    entries = audits(r)
    assert [(e["action"], e["target"], e["actor"]) for e in entries] == [
        ("campaign_applied", "campaign winter-drive", "olena"),
        ("campaign_applied", "campaign c2", "olena"),
        ("campaign_applied", "campaign winter-drive", "taras"),
    ]
    assert entries[0]["before"] is None
    assert entries[0]["after"] == campaigns.to_json(first[0])
    assert entries[2]["before"]["name"] == "Winter drive"
    assert entries[2]["after"]["name"] == "Winter drive 2"

    # The same documents again: nothing written at all.
    stored_before = r.hgetall(KEYS.campaigns)
    assert store.apply(r, KEYS, [renamed, first[1]], actor="taras") == [
        ("winter-drive", "unchanged"),
        ("c2", "unchanged"),
    ]
    assert version(r) == 2
    assert len(audits(r)) == 3
    assert r.hgetall(KEYS.campaigns) == stored_before


def test_apply_is_all_or_nothing(r):
    """A list with one invalid campaign is refused by the core, and nothing is stored."""
    bad = doc(id="c3")
    del bad["variants"][0]["copy"]["uk"]["headline"]
    with pytest.raises(campaigns.CampaignError) as caught:
        campaigns.parse_list([doc(id="c1"), bad])
    assert "[1].variants[0].copy.uk.headline: missing" in caught.value.errors
    assert r.hgetall(KEYS.campaigns) == {}


def test_apply_writes_every_change_in_one_transaction(r, monkeypatch):
    """An audit entry that cannot be queued (checked before anything is queued) leaves
    every campaign of the list unwritten."""
    store.apply(r, KEYS, [campaigns.parse(doc(id="c1"))], actor="olena")
    real_queue = audit.queue
    calls = []

    def failing_queue(pipe, keys, **kw):
        calls.append(kw["target"])
        if len(calls) == 2:
            raise audit.AuditInputError("target: boom")
        return real_queue(pipe, keys, **kw)

    monkeypatch.setattr(audit, "queue", failing_queue)
    changed = [campaigns.parse(doc(id="c1", name="New")), campaigns.parse(doc(id="c2"))]
    with pytest.raises(audit.AuditInputError):
        store.apply(r, KEYS, changed, actor="olena")
    assert calls == ["campaign c1", "campaign c2"]
    assert sorted(r.hkeys(KEYS.campaigns)) == ["c1"]
    assert store.load_all(r, KEYS)[0].name == "C1"
    assert version(r) == 1
    assert len(audits(r)) == 1


def test_export_then_apply_changes_nothing(r):
    gate = doc(id="gate", placement="gate", gate={"dismissible": False, "free_articles": 5})
    store.apply(r, KEYS, campaigns.parse_list([EXAMPLE, doc(id="c2"), gate]), actor="olena")
    exported = store.export(r, KEYS)
    assert [c["id"] for c in exported] == ["c2", "gate", "winter-drive"]
    again = campaigns.parse_list(json.loads(json.dumps(exported)))
    before = (version(r), len(audits(r)), r.hgetall(KEYS.campaigns))
    assert {status for _, status in store.apply(r, KEYS, again, actor="x")} == {"unchanged"}
    assert (version(r), len(audits(r)), r.hgetall(KEYS.campaigns)) == before


@pytest.mark.parametrize(
    ("start", "action", "after"),
    [
        ("live", "pause", "paused"),
        ("paused", "resume", "live"),
        ("draft", "resume", "live"),
        ("live", "archive", "archived"),
        ("paused", "archive", "archived"),
        ("draft", "archive", "archived"),
    ],
)
def test_status_changes(r, start, action, after):
    store.apply(r, KEYS, [campaigns.parse(doc(status=start))], actor="olena")
    assert store.set_status(r, KEYS, "c1", action, actor="taras") == (start, after)
    assert store.load_all(r, KEYS)[0].status == after
    assert version(r) == 2
    last = audits(r)[-1]
    assert last["action"] == {"pause": "campaign_paused", "resume": "campaign_resumed"}.get(
        action, "campaign_archived"
    )
    assert (last["actor"], last["target"]) == ("taras", "campaign c1")
    assert (last["before"]["status"], last["after"]["status"]) == (start, after)
    assert {k: v for k, v in last["after"].items() if k != "status"} == {
        k: v for k, v in last["before"].items() if k != "status"
    }


@pytest.mark.parametrize(("status", "action"), [("live", "resume"), ("paused", "pause")])
def test_status_already_there_changes_nothing(r, status, action):
    store.apply(r, KEYS, [campaigns.parse(doc(status=status))], actor="olena")
    assert store.set_status(r, KEYS, "c1", action, actor="taras") == (status, status)
    assert version(r) == 1
    assert len(audits(r)) == 1


@pytest.mark.parametrize("action", ["pause", "resume"])
def test_an_archived_campaign_changes_only_through_apply(r, action):
    store.apply(r, KEYS, [campaigns.parse(doc(status="archived"))], actor="olena")
    with pytest.raises(store.CampaignStoreError, match=r"archived.*only through"):
        store.set_status(r, KEYS, "c1", action, actor="taras")
    assert store.load_all(r, KEYS)[0].status == "archived"
    assert (version(r), len(audits(r))) == (1, 1)
    assert store.apply(r, KEYS, [campaigns.parse(doc(status="live"))], actor="taras") == [
        ("c1", "replaced")
    ]
    assert store.load_all(r, KEYS)[0].status == "live"


def test_pausing_a_draft_is_refused(r):
    store.apply(r, KEYS, [campaigns.parse(doc(status="draft"))], actor="olena")
    with pytest.raises(store.CampaignStoreError, match="is draft; pause needs"):
        store.set_status(r, KEYS, "c1", "pause", actor="taras")
    assert (version(r), len(audits(r))) == (1, 1)


def test_status_of_an_unknown_campaign(r):
    with pytest.raises(store.CampaignNotFound, match="no campaign 'nope'"):
        store.set_status(r, KEYS, "nope", "pause", actor="taras")
    assert r.exists(KEYS.campaigns_version, KEYS.audit) == 0


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("{not json", "not JSON"),
        (json.dumps(doc(id="c1", status="gone")), "status: expected one of"),
        (json.dumps(doc(id="other")), "stored under another id"),
        ("[1]", "expected a campaign object"),
    ],
)
def test_a_corrupt_stored_campaign_is_reported_by_id(r, raw, problem):
    store.apply(r, KEYS, [campaigns.parse(doc(id="c2"))], actor="olena")
    r.hset(KEYS.campaigns, "c1", raw)
    with pytest.raises(store.CorruptCampaigns) as caught:
        store.load_all(r, KEYS)
    assert list(caught.value.problems) == ["c1"]
    assert problem in caught.value.problems["c1"]
    assert "campaign 'c1'" in str(caught.value)
    with pytest.raises(store.CorruptCampaigns):
        store.export(r, KEYS)
    with pytest.raises(store.CorruptCampaigns):
        store.set_status(r, KEYS, "c1", "pause", actor="taras")
    stored = store.read(r, KEYS)  # the good ones still read back
    assert [c.id for c in stored.campaigns] == ["c2"]
    assert list(stored.corrupt) == ["c1"]
    # apply mends it, and the audit keeps what was there
    assert store.apply(r, KEYS, [campaigns.parse(doc(id="c1"))], actor="taras") == [
        ("c1", "replaced")
    ]
    assert [c.id for c in store.load_all(r, KEYS)] == ["c1", "c2"]
    assert audits(r)[-1]["before"] == raw


def test_a_corrupt_version_refuses_changes_before_writing(r):
    r.set(KEYS.campaigns_version, "x")
    with pytest.raises(store.CampaignStoreError, match="version is corrupt"):
        store.apply(r, KEYS, [campaigns.parse(doc())], actor="olena")
    assert r.hgetall(KEYS.campaigns) == {}
    assert r.exists(KEYS.audit) == 0


def test_an_audit_log_that_is_not_a_stream_refuses_changes_before_writing(r):
    store.apply(r, KEYS, [campaigns.parse(doc(status="live"))], actor="olena")
    r.delete(KEYS.audit)
    r.set(KEYS.audit, "not a stream")
    with pytest.raises(store.CampaignStoreError, match="is a string, not a stream"):
        store.apply(r, KEYS, [campaigns.parse(doc(name="New"))], actor="olena")
    with pytest.raises(store.CampaignStoreError, match="is a string, not a stream"):
        store.set_status(r, KEYS, "c1", "pause", actor="olena")
    assert store.load_all(r, KEYS)[0].name == "C1"
    assert store.load_all(r, KEYS)[0].status == "live"
    assert version(r) == 1


def test_a_failed_command_inside_exec_is_an_error(r):
    store.apply(r, KEYS, [campaigns.parse(doc())], actor="olena")
    # The audit stream holds the last id there is: the next XADD fails inside EXEC.
    r.xadd(KEYS.audit, {"x": "y"}, id=LAST_STREAM_ID)
    with pytest.raises(store.CampaignStoreError, match=r"Redis refused part of the change \("):
        store.apply(r, KEYS, [campaigns.parse(doc(name="New"))], actor="olena")
    assert store.load_all(r, KEYS)[0].name == "New"  # Redis kept the rest, as the error says
    assert version(r) == 2


def test_reads_do_not_write(r):
    store.apply(r, KEYS, [campaigns.parse(doc())], actor="olena")
    before = (r.dbsize(), version(r), r.hgetall(KEYS.campaigns), len(audits(r)))
    store.load_all(r, KEYS)
    store.read(r, KEYS)
    store.export(r, KEYS)
    store.get(r, KEYS, "c1")
    assert (r.dbsize(), version(r), r.hgetall(KEYS.campaigns), len(audits(r))) == before


def test_apply_refuses_a_bad_actor_before_writing(r):
    with pytest.raises(audit.AuditInputError):
        store.apply(r, KEYS, [campaigns.parse(doc())], actor="\x1b[31m")
    assert r.dbsize() == 0


def test_a_move_decides_again_from_a_change_made_while_it_decided(r, monkeypatch):
    """A move reads under its transaction's WATCH: a change to any campaign between its read
    and its EXEC makes it decide again from what is stored then."""
    order = [campaigns.parse(doc(id=cid, priority=p)) for cid, p in (("a", 1), ("b", 2), ("c", 3))]
    store.apply(r, KEYS, order, actor="olena")
    real_moved, seen = store.moved, []

    def moved(ordered, campaign_id, offset):
        seen.append([c.id for c in ordered])
        if len(seen) == 1:  # someone moves b to the top meanwhile
            store.apply(r, KEYS, [campaigns.parse(doc(id="b", priority=0))], actor="taras")
        return real_moved(ordered, campaign_id, offset)

    monkeypatch.setattr(store, "moved", moved)
    assert store.move(r, KEYS, "c", -1, actor="olena") == ["c"]
    assert seen == [["a", "b", "c"], ["b", "a", "c"]]
    assert [c.id for c in store.load_all(r, KEYS)] == ["b", "c", "a"]


def test_a_copy_takes_the_next_free_id_when_its_own_was_taken_while_it_decided(r, monkeypatch):
    store.apply(r, KEYS, [campaigns.parse(doc(id="a"))], actor="olena")
    real_duplicate_of, taken = store.duplicate_of, []

    def duplicate_of(campaign, ids):
        taken.append(sorted(ids))
        if len(taken) == 1:
            store.apply(r, KEYS, [campaigns.parse(doc(id="a-copy"))], actor="taras")
        return real_duplicate_of(campaign, ids)

    monkeypatch.setattr(store, "duplicate_of", duplicate_of)
    copy = store.duplicate(r, KEYS, "a", actor="olena")
    assert copy.id == "a-copy-2" and copy.status == "draft"
    assert taken == [["a"], ["a", "a-copy"]]
    assert sorted(r.hkeys(KEYS.campaigns)) == ["a", "a-copy", "a-copy-2"]
