"""The member index: kept by the writer in the change's transaction, searched by prefix,
rebuilt by `ledger rebuild` to exactly what the writer keeps (property-tested)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from membership.core.config import DEFAULT_MEMBER_STATUSES
from membership.ledger import LedgerWriteFailed
from membership.ledger.index import SEP, customer_row, read_stored, tokens
from membership.ledger.members import BadCursor
from membership.ledger.model import Customer, SubRecord, Subscription
from membership.ledger.rebuild import rebuild
from membership.store import Keys
from membership.stripe.apply import apply_event
from tests.support import stripe_payloads as sp
from tests.support.ledger_helpers import (
    ACTOR,
    add_offline,
    emptied_ledger,
    fill,
    join,
    link,
    remove_offline,
)

pytestmark = pytest.mark.topologies("single", "cluster", "sentinel")


def emails(page):
    return [r.email for r in page.rows]


def index_dump(redis_conn, keys):
    """The stored index as the ledger's own reader (a rebuild's) reads it."""
    rows, sets = read_stored(redis_conn, keys)
    return {"rows": rows, **{which: sorted(members) for which, members in sets.items()}}


def current(queries) -> int:
    """How many rows the export lists: the current ones."""
    return sum(1 for _ in queries.member_export().current_rows())


def drop_index(redis_conn, keys):
    redis_conn.delete(
        keys.ledger_index_rows,
        keys.ledger_index_entries,
        keys.ledger_index_email,
        keys.ledger_index_name,
        keys.ledger_index_current,
        keys.ledger_index_joined,
        keys.ledger_index_contributions,
    )


# --- rows, pure --------------------------------------------------------------------------


def test_name_tokens_fold_case_and_accents_and_split_at_punctuation():
    assert tokens("  Zoë  O'Brien-Šimko ") == ["brien", "o", "simko", "zoe"]
    assert tokens("Олена Петренко") == ["олена", "петренко"]
    assert tokens(None) == [] and tokens("") == []


def test_a_members_row_shows_its_oldest_counted_subscription():
    def record(sid, status, started, live, plan):
        sub = Subscription(sid, "cus_1", status, created=started, started=started, plan=plan)
        return SubRecord(sub, status, live=live)

    customer = Customer("cus_1", email="a@x.org", name="A", live=2)
    subs = [
        record("sub_b", "active", 2_000_000_000, True, "Yearly"),
        record("sub_a", "past_due", 1_900_000_000, True, "Monthly"),
        record("sub_c", "canceled", 1_000_000_000, False, "Old"),
    ]
    row = customer_row(customer, subs)
    assert (row.status, row.plan, row.since, row.current) == (
        "past_due",
        "Monthly",
        "2030-03-17",
        True,
    )
    gone = customer_row(Customer("cus_1", live=0), [subs[2]])
    assert (gone.status, gone.plan, gone.current) == ("canceled", "Old", False)
    assert customer_row(Customer("cus_2"), []).status == ""


# --- search ----------------------------------------------------------------------------


def test_a_stripe_member_without_an_email_is_found_by_name_and_by_id(ledger):
    """Checkout (or a sync) knew a name and no email: the member is found by a word of the
    name, by the id and a prefix of it, and listed without an email."""
    join(ledger, "cus_olena", None, "Olena Koval")
    join(ledger, "cus_nomail", None, None)
    q = ledger.queries
    assert [r.customer for r in q.search("koval").rows] == ["cus_olena"]
    assert [r.customer for r in q.search("cus_ole").rows] == ["cus_olena"]
    assert [r.customer for r in q.search("cus_nomail").rows] == ["cus_nomail"]
    (olena,) = q.search("olena").rows
    assert (olena.email, olena.name, olena.source, olena.current) == (
        "",  # a row without an email
        "Olena Koval",
        "stripe",
        True,
    )


def test_search_by_email_prefix_name_word_and_customer_id(ledger):
    join(ledger, "cus_ann", "Anna.K@Example.org", "Anna Kovalenko")
    join(ledger, "cus_bob", "bob@example.org", "Bob Annett")
    join(ledger, "cus_zoe", "zoe@example.org", "Zoë Ünal", status="canceled")
    add_offline(ledger, "annika@bank.example", "bank transfer", name="Annika Berg")
    q = ledger.queries

    assert emails(q.search("ANNA.k")) == ["anna.k@example.org"]
    assert emails(q.search("ann")) == [
        "anna.k@example.org",  # email matches first, by email
        "annika@bank.example",
        "bob@example.org",  # then name words: "annett"
    ]
    assert emails(q.search("kov ann")) == ["anna.k@example.org"]  # every word must match
    assert emails(q.search("unal")) == ["zoe@example.org"]  # accents folded
    assert emails(q.search("cus_bob")) == ["bob@example.org"]  # the whole id
    assert emails(q.search("cus_")) == ["anna.k@example.org", "bob@example.org", "zoe@example.org"]
    assert emails(q.search("cus_bo")) == ["bob@example.org"]  # a prefix of an id
    assert q.search("cus_bob2").rows == () and q.search("cus_Bob").rows == ()  # ids are exact
    assert q.search("   ").rows == () and q.search("nobody").rows == ()

    zoe = q.search("zoe").rows[0]
    assert (zoe.source, zoe.status, zoe.current, zoe.customer) == (
        "stripe",
        "canceled",
        False,
        "cus_zoe",
    )
    annika = q.search("annika").rows[0]
    assert (annika.source, annika.status, annika.name, annika.current) == (
        "offline",
        "offline",
        "Annika Berg",
        True,
    )
    ann = q.search("anna.k").rows[0]
    assert (ann.plan, ann.amount, ann.currency, ann.since) == ("Monthly", 500, "eur", "2026-05-28")


def test_pages_follow_the_cursor_to_the_end_without_repeats(ledger):
    for i in range(23):
        add_offline(ledger, f"reader{i:02d}@example.org", "gift", name=f"Reader Number{i}")
    for i in range(7):
        add_offline(ledger, f"x{i}@example.org", "gift", name=f"Reader Other{i}")
    seen, cursor, pages = [], None, 0
    while True:
        page = ledger.queries.search("reader", limit=5, cursor=cursor)
        assert len(page.rows) <= 5
        seen += emails(page)
        pages += 1
        cursor = page.cursor
        if cursor is None:
            break
    assert seen[:23] == sorted(f"reader{i:02d}@example.org" for i in range(23))
    assert sorted(seen[23:]) == sorted(f"x{i}@example.org" for i in range(7))
    assert len(seen) == len(set(seen)) == 30 and pages >= 6
    with pytest.raises(BadCursor):
        ledger.queries.search("reader", cursor="not-a-cursor!")


def test_the_index_follows_email_changes_cancellations_and_offline_removals(
    ledger, redis_conn, keys
):
    join(ledger, "cus_1", "old@example.org", "Pat Doe")
    link(ledger, "cus_1", "new@example.org", observed_at=sp.T0 + 10, name="Pat Roe")
    q = ledger.queries
    assert q.search("old@").rows == () and emails(q.search("new@")) == ["new@example.org"]
    assert q.search("doe").rows == () and emails(q.search("roe")) == ["new@example.org"]

    add_offline(ledger, "new@example.org", "comp", name="Pat Offline")
    offline = next(r for r in q.search("new@").rows if r.source == "offline")
    assert offline.status == "offline_in_stripe" and not offline.current  # counted as Stripe

    ended = sp.subscription("sub_1", "cus_1", "canceled", start=sp.T0)
    apply_event(ledger.writer, sp.subscription_event(ended, created=sp.T0 + 20))
    rows = {r.source: r for r in q.search("new@").rows}
    assert rows["stripe"].status == "canceled" and not rows["stripe"].current
    assert rows["offline"].status == "offline" and rows["offline"].current  # counts again
    assert current(q) == q.count() == 1

    remove_offline(ledger, "new@example.org", "left")
    assert [r.source for r in q.search("new@").rows] == ["stripe"]
    assert q.search("offline").rows == ()
    assert current(q) == q.count() == 0


def test_a_failed_index_write_is_reported_and_a_rebuild_mends_it(ledger, redis_conn, keys):
    redis_conn.set(keys.ledger_index_entries, "planted by hand")  # the wrong type: ZADD fails
    with pytest.raises(LedgerWriteFailed):
        join(ledger, "cus_1", "a@example.org", "A Reader")
    assert ledger.queries.needs_rebuild() is not None
    redis_conn.delete(keys.ledger_index_entries)
    report = rebuild(redis_conn, keys, DEFAULT_MEMBER_STATUSES, actor=ACTOR)
    assert report.differed.get("member index", 0) >= 1
    assert emails(ledger.queries.search("a@")) == ["a@example.org"]
    assert ledger.queries.needs_rebuild() is None


def test_a_rebuild_applies_new_member_statuses_to_the_index(ledger, redis_conn, keys):
    join(ledger, "cus_1", "t@example.org", "Tia", status="trialing")
    assert ledger.queries.search("t@").rows[0].current
    report = rebuild(redis_conn, keys, ("active",), actor=ACTOR)
    assert report.differed["member index"] >= 1  # the row
    assert not ledger.queries.search("t@").rows[0].current
    assert current(ledger.queries) == 0


# --- the index a rebuild derives is the one the writer keeps ----------------------------------


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(rng=st.randoms(use_true_random=False), customers=st.integers(1, 12))
def test_a_rebuilt_index_equals_the_one_kept_change_by_change(redis_server, rng, customers):
    keys = Keys("prop")
    with emptied_ledger(redis_server.url, keys.prefix) as (redis_conn, ledger):
        events, offline = sp.random_world(rng, customers)
        deliveries = sp.shuffled_with_duplicates(rng, events, dup_rate=0.3)
        for e in deliveries:
            if offline and rng.random() < 0.2:
                add_offline(ledger, offline.pop(), "comp", name=rng.choice((None, "Ola Nowak")))
            if rng.random() < 0.05:
                members = ledger.queries.offline_members()
                if members:
                    remove_offline(ledger, members[0]["email"], "left")
            assert apply_event(ledger.writer, e).outcome != "failed"
        for email in offline:
            add_offline(ledger, email, "gift")

        kept = index_dump(redis_conn, keys)
        assert current(ledger.queries) == ledger.queries.count()
        report = rebuild(redis_conn, keys, DEFAULT_MEMBER_STATUSES, actor=ACTOR)
        assert "member index" not in report.differed  # nothing to mend
        drop_index(redis_conn, keys)
        rebuild(redis_conn, keys, DEFAULT_MEMBER_STATUSES, actor=ACTOR)
        assert index_dump(redis_conn, keys) == kept


def test_a_rebuild_moves_the_index_kept_in_a_set_a_family_into_one(ledger, redis_conn, keys):
    """Versions before kept the email, name and joined entries in three sorted sets: a
    rebuild writes them into the one set, deletes the three, and the searches find all."""
    fill(ledger, 3, 12)
    kept = index_dump(redis_conn, keys)
    redis_conn.delete(keys.ledger_index_entries)
    redis_conn.zadd(keys.ledger_index_email, {f"a@example.org{SEP}stripe:cus_1": 0})
    redis_conn.zadd(keys.ledger_index_name, {f"ann{SEP}ann{SEP}stripe:cus_1": 0})
    redis_conn.zadd(keys.ledger_index_joined, {"stripe:cus_1": 1_780_000_000})
    assert ledger.queries.members().rows == ()  # until the rebuild
    report = rebuild(redis_conn, keys, DEFAULT_MEMBER_STATUSES, actor=ACTOR)
    assert report.differed["member index"] > 0
    assert index_dump(redis_conn, keys) == kept
    assert redis_conn.exists(*(keys.ledger_index_email, keys.ledger_index_name)) == 0
    assert not redis_conn.exists(keys.ledger_index_joined)
    assert len(ledger.queries.members(limit=100).rows) == len(kept["rows"])


def test_the_index_is_built_for_a_ledger_written_before_it(ledger, redis_conn, keys):
    fill(ledger, 7, 30)
    kept = index_dump(redis_conn, keys)
    drop_index(redis_conn, keys)  # as an upgraded ledger has it
    # An earlier version's set of current members, which the export no longer reads
    redis_conn.zadd(keys.ledger_index_current, {f"a@example.org{SEP}stripe:cus_1": 0})
    report = rebuild(redis_conn, keys, DEFAULT_MEMBER_STATUSES, actor=ACTOR)
    assert report.differed["member index"] > 0 and not report.unchanged
    assert index_dump(redis_conn, keys) == kept
    assert not redis_conn.exists(keys.ledger_index_current)
    assert rebuild(redis_conn, keys, DEFAULT_MEMBER_STATUSES, actor=ACTOR).unchanged
