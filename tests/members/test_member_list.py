"""The list of members (`queries.members`): newest first, by name or by email, filtered on
the rows as the walk reads them, paginated by cursor with bounded work per page."""

from __future__ import annotations

from datetime import date

import pytest

from membership.core.config import DEFAULT_MEMBER_STATUSES
from membership.ledger import queries as ledger_queries
from membership.ledger.index import read_stored
from membership.ledger.members import BadCursor
from membership.ledger.queries import Filters
from membership.ledger.rebuild import rebuild
from membership.stripe.apply import apply_event
from tests.support import stripe_payloads as sp
from tests.support.ledger_helpers import ACTOR, add_offline, join, link

pytestmark = pytest.mark.topologies("single", "cluster", "sentinel")

DAY = 86_400


def ids(page):
    return [r.id for r in page.rows]


def walk(queries, filters=None, **options):
    """Every row of the list, page by page; the number of pages."""
    seen, cursor, pages = [], None, 0
    while True:
        page = queries.members(filters, cursor=cursor, **options)
        seen += ids(page)
        pages += 1
        cursor = page.cursor
        if cursor is None:
            return seen, pages


@pytest.fixture
def world(ledger):
    """Five Stripe customers who joined on different days (one with neither email nor name,
    one cancelled, one on another plan), an offline member, and a customer who never
    subscribed (not on the list)."""
    join(ledger, "cus_a", "anna@example.org", "Anna Kovalenko", at=sp.T0)
    join(ledger, "cus_b", "bohdan@example.org", "Bohdan Ivanenko", at=sp.T0 + DAY, amount=900)
    join(ledger, "cus_c", "chris@example.org", None, at=sp.T0 + 2 * DAY, status="canceled")
    join(ledger, "cus_d", None, None, at=sp.T0 + 3 * DAY)
    join(ledger, "cus_e", "emma@example.org", "Émma Zabolotna", at=sp.T0 + 4 * DAY)
    add_offline(ledger, "olha@example.org", "bank transfer", name="Olha Melnyk")  # today
    never = sp.checkout_subscription("cus_never", "never@example.org", name="Nev", created=sp.T0)
    assert apply_event(ledger.writer, never).outcome == "applied"
    assert ledger.queries.search("never")  # searched, not listed
    return ledger.queries


def test_the_list_opens_on_the_newest_members(world):
    assert ids(world.members()) == [
        "offline:olha@example.org",
        "stripe:cus_e",
        "stripe:cus_d",
        "stripe:cus_c",
        "stripe:cus_b",
        "stripe:cus_a",
    ]
    oldest = world.members(descending=False)
    assert ids(oldest)[:2] == ["stripe:cus_a", "stripe:cus_b"] and oldest.cursor is None


def test_sorted_by_name_or_email_with_the_missing_ones_last(world):
    by_name = ids(world.members(sort="name"))
    # anna, bohdan, emma (folded: é sorts as e), olha; then the rows without a name
    assert by_name[:4] == [
        "stripe:cus_a",
        "stripe:cus_b",
        "stripe:cus_e",
        "offline:olha@example.org",
    ]
    assert sorted(by_name[4:]) == ["stripe:cus_c", "stripe:cus_d"]
    assert ids(world.members(sort="name", descending=True)) == by_name[::-1]
    by_email = ids(world.members(sort="email"))
    assert by_email == [
        "stripe:cus_a",
        "stripe:cus_b",
        "stripe:cus_c",
        "stripe:cus_e",
        "offline:olha@example.org",
        "stripe:cus_d",  # no email
    ]


def test_filters(world):
    def listed(**filters):
        return sorted(ids(world.members(Filters(**filters))))

    assert listed(current=False) == ["stripe:cus_c"]
    assert "stripe:cus_c" not in listed(current=True) and len(listed(current=True)) == 5
    assert listed(source="offline") == ["offline:olha@example.org"]
    assert listed(status="canceled") == ["stripe:cus_c"]
    assert listed(plan="offline") == ["offline:olha@example.org"]
    first, second = date(2026, 5, 29), date(2026, 5, 30)  # sp.T0 is 2026-05-28
    assert listed(joined_from=first, joined_to=second) == ["stripe:cus_b", "stripe:cus_c"]
    assert listed(joined_from=first, joined_to=first) == ["stripe:cus_b"]
    assert listed(joined_to=date(2026, 5, 27)) == []
    for sort in ("name", "email"):  # the same filters whatever the order
        page = world.members(Filters(joined_from=first, joined_to=second), sort=sort)
        assert sorted(ids(page)) == ["stripe:cus_b", "stripe:cus_c"], sort
    both = world.members(Filters(current=True, source="stripe", joined_from=second))
    assert ids(both) == ["stripe:cus_e", "stripe:cus_d"]


def test_pages_follow_the_cursor_in_every_sort_without_repeats(ledger):
    for i in range(17):
        join(ledger, f"cus_{i:02d}", f"r{i:02d}@example.org", f"Reader {i:02d}", at=sp.T0 + i)
    for i in range(9):  # the same second: ties ordered by row id
        add_offline(ledger, f"o{i}@example.org", "comp", name=None if i % 2 else f"Olha {i}")
    every = set(ids(ledger.queries.members(limit=100)))
    assert len(every) == 26
    for sort in ("joined", "name", "email"):
        for descending in (False, True):
            seen, pages = walk(ledger.queries, sort=sort, descending=descending, limit=4)
            assert len(seen) == len(set(seen)) == 26 and set(seen) == every, (sort, descending)
            assert pages >= 7
            whole = ids(ledger.queries.members(sort=sort, descending=descending, limit=100))
            assert seen == whole, (sort, descending)
    newest, _ = walk(ledger.queries, limit=3)
    assert newest[9:] == [f"stripe:cus_{i:02d}" for i in range(16, -1, -1)]


def test_a_rare_filter_reads_a_bounded_number_of_entries(ledger, monkeypatch):
    for i in range(30):
        join(ledger, f"cus_{i:02d}", f"r{i:02d}@example.org", "R", at=sp.T0 + i, amount=500)
    join(ledger, "cus_rare", "rare@example.org", "R", at=sp.T0 - 1, status="unpaid")
    monkeypatch.setattr(ledger_queries, "SCAN_MAX", 10)
    first = ledger.queries.members(Filters(status="unpaid"), limit=5)
    assert first.rows == () and first.cursor  # nothing in the 10 newest: say there is more
    seen, pages = walk(ledger.queries, Filters(status="unpaid"), limit=5)
    assert seen == ["stripe:cus_rare"] and pages >= 3


def test_a_cursor_from_elsewhere_is_refused(world):
    page = world.members(limit=2)
    with pytest.raises(BadCursor):
        world.members(sort="name", cursor=page.cursor)
    for bad in ("nope!", "W10=", "WyJqb2luZWQiLHRydWUsIngiLCIiLDBd"):
        with pytest.raises(BadCursor):
            world.members(cursor=bad)
    with pytest.raises(BadCursor):
        world.search("cus_", cursor=page.cursor)


def test_search_by_a_customer_id_prefix_pages_and_finds_who_has_no_email(world, ledger):
    assert ids(world.search("cus_d")) == ["stripe:cus_d"]  # neither email nor name
    link(ledger, "cus_c", "chris@example.org", observed_at=sp.T0 + 5 * DAY, name="Chris Named")
    assert ids(world.search("cus_c")) == ["stripe:cus_c"]  # named now: found all the same
    assert ids(world.search("chris named")) == ["stripe:cus_c"]
    first = world.search("cus_", limit=3)
    assert ids(first) == ["stripe:cus_a", "stripe:cus_b", "stripe:cus_c"] and first.cursor
    rest = world.search("cus_", limit=3, cursor=first.cursor)
    assert ids(rest) == ["stripe:cus_d", "stripe:cus_e", "stripe:cus_never"]
    assert rest.cursor is None


def joined(redis_conn, keys) -> list[tuple[str, int]]:
    """The list of members as the index keeps it: (row id, when it joined), by time, read
    by the ledger's own reader (a rebuild's)."""
    _, sets = read_stored(redis_conn, keys)
    found = (e[1:].split("\x00") for e in sets["entries"] if e.startswith("j"))
    return sorted(((row_id, int(at)) for at, row_id in found), key=lambda j: (j[1], j[0]))


def test_a_rebuild_derives_the_list_and_a_new_join_moves_to_the_top(
    world, ledger, redis_conn, keys
):
    kept = joined(redis_conn, keys)
    redis_conn.delete(keys.ledger_index_entries)
    report = rebuild(redis_conn, keys, DEFAULT_MEMBER_STATUSES, actor=ACTOR)
    assert report.differed["member index"] > 0
    assert joined(redis_conn, keys) == kept
    assert len(kept) == 6  # cus_never never subscribed: not on the list
    join(ledger, "cus_f", "f@example.org", "F", at=sp.T0 + 400 * DAY)
    assert ids(world.members())[0] == "stripe:cus_f"
