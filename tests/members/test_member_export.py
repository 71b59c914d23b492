"""The CSV export of current members and a member's page, on a real Redis."""

from __future__ import annotations

import csv
import io
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from membership.core import audit
from membership.ledger.index import Row
from membership.ledger.members import COLUMNS, amount_text, csv_line, export_cells, safe_cell
from membership.stripe.apply import apply_event
from tests.support import stripe_payloads as sp
from tests.support.ledger_helpers import add_offline, fill, join

pytestmark = pytest.mark.topologies("single", "cluster")


def parse(lines):
    return list(csv.reader(io.StringIO("".join(lines))))


def test_cells_that_a_spreadsheet_would_run_are_quoted_as_text():
    for dangerous in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert safe_cell(dangerous) == "'" + dangerous
    assert safe_cell("anna@example.org") == "anna@example.org" and safe_cell("") == ""
    assert amount_text(800, "eur") == "8.00 EUR" and amount_text(5, "usd") == "0.05 USD"
    assert amount_text(500, "jpy") == "500 JPY" and amount_text(0, "") == ""


# Where a spreadsheet's import may split a line into cells: the comma, what import dialogs
# offer besides (semicolon, tab, space), a pipe, and any other whitespace or line break.
SEPARATORS = ",;|\t \r\n\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u2028\u2029\u3000"
FORMULA = ("=", "+", "-", "@", "\0")


def cells_a_spreadsheet_could_see(line: str):
    """Each piece of a CSV line split on any one separator, as a spreadsheet would show it:
    leading spaces trimmed and quotes taken off."""
    for separator in SEPARATORS:
        for piece in line.split(separator):
            yield separator, re.sub(r'^[\s"]*', "", piece)


_piece = st.sampled_from([*SEPARATORS, *FORMULA, '"', "'", "Olena", "1"])
hostile_text = st.lists(st.one_of(_piece, _piece, st.characters()), max_size=12).map("".join)


def test_a_formula_after_a_separator_is_neutralised_and_every_cell_quoted(ledger):
    """Found in review: a name typed at Checkout, `Olena;=1+1`, was written unquoted, and a
    spreadsheet that splits on `;` started a cell with `=`."""
    join(ledger, "cus_o", "olena@example.org", "Olena;=1+1")
    header, line = ledger.queries.member_export().export_lines()
    assert header == ",".join(f'"{c}"' for c in COLUMNS) + "\r\n"
    assert line.startswith('"olena@example.org","Olena;\'=1+1","stripe","active",'), line
    assert parse([line]) == [["olena@example.org", "Olena;'=1+1", *parse([line])[0][2:]]]
    for separator, cell in cells_a_spreadsheet_could_see(line):
        assert not cell.startswith(FORMULA), (separator, cell)


@given(st.lists(hostile_text, min_size=7, max_size=7))
def test_no_cell_starts_a_formula_however_a_spreadsheet_splits_the_line(values):
    row = Row("x", *values[:6], amount=0, currency="", current=True, customer=values[6])
    line = csv_line(export_cells(row))
    for separator, cell in cells_a_spreadsheet_could_see(line):
        assert not cell.startswith(FORMULA), (separator, cell, line)
    assert parse([line])[0][:2] == [safe_cell(values[0]), safe_cell(values[1])]
    # Neutralising only adds quote marks: nothing of the value is lost.
    assert safe_cell(values[6]).replace("'", "") == values[6].replace("'", "")
    assert parse([line])[0][7] == safe_cell(values[6])


def test_the_export_holds_every_current_member_once_stripe_and_offline(ledger, redis_conn, keys):
    join(ledger, "cus_a", "a@example.org", '=HYPERLINK("http://evil")')
    join(ledger, "cus_b", "b@example.org", "Bo", status="canceled")  # not a member
    join(ledger, "cus_c", None, "No Email")  # a member all the same, named without an email
    add_offline(ledger, "+off@example.org", "gift", name="-Off")
    add_offline(ledger, "a@example.org", "comp")  # counted once, as the Stripe customer

    lines = list(ledger.queries.member_export().export_lines())
    assert all(line.endswith("\r\n") for line in lines)
    table = parse(lines)
    assert table[0] == list(COLUMNS)
    body = table[1:]
    assert len(body) == ledger.queries.count() == 3
    since = body[0][4]
    offline = ["'+off@example.org", "'-Off", "offline", "offline", since, "offline", "", ""]
    assert body[0] == offline
    assert body[1][:3] == ["a@example.org", '\'=HYPERLINK("http://evil")', "stripe"]
    assert body[1][7] == "cus_a"
    # A Stripe member without an email is a row with its name and customer id (after every
    # email), not an anonymous one
    assert body[2] == [
        "", "No Email", "stripe", "active", "2026-05-28", "Monthly", "5.00 EUR", "cus_c"
    ]  # fmt: skip


def test_the_export_reads_in_batches_and_matches_the_count(ledger, redis_conn, keys):
    fill(ledger, 11, 60)
    export = ledger.queries.member_export()
    whole = list(export.export_lines())
    assert list(export.export_lines(batch=7)) == whole  # same lines, 7 at a time
    assert len(whole) - 1 == ledger.queries.count() > 10
    emails = [row[0] for row in parse(whole)[1:]]
    given = [e for e in emails if e]
    assert emails == given + [""] * (len(emails) - len(given)) and given == sorted(given)


def test_each_export_is_recorded_in_the_audit_log_before_its_first_line(ledger, redis_conn, keys):
    join(ledger, "cus_a", "a@example.org", "A")
    lines = ledger.queries.member_export().audited_export(actor="editor@news.example", at=1.0)
    entries = audit.entries(redis_conn, keys)
    assert [(e["action"], e["actor"], e["after"]) for e in entries] == [
        ("members_exported", "editor@news.example", {"rows": 1})
    ]
    assert len(list(lines)) == 2
    with pytest.raises(ValueError):
        ledger.queries.member_export().audited_export(actor="", at=1.0)


# --- a member's page -----------------------------------------------------------------


def test_a_members_page_by_email_or_customer_id(ledger, redis_conn, keys):
    join(ledger, "cus_a", "a@example.org", "Ann")
    paid = sp.invoice("invoice.paid", "cus_a", "sub_a", created=sp.T0 + 5)
    apply_event(ledger.writer, paid)
    join(ledger, "cus_a2", "A@example.org", "Ann again", status="past_due")
    add_offline(ledger, "a@example.org", "comp", name="Ann Offline")

    page = ledger.queries.member("a@example.org ")
    assert page.email == "a@example.org"
    assert [c.customer.id for c in page.customers] == ["cus_a", "cus_a2"]
    first = page.customers[0]
    assert [s.status for s in first.subscriptions] == ["active"]
    assert [t["kind"] for t in first.timeline] == ["invoice.paid", "subscription.status"]
    events = {e["id"]: e for e in first.events}
    assert events[first.subscriptions[0].sub.source]["outcome"] == "applied"
    assert paid["id"] in events  # the invoice's event touched them too
    assert page.offline.name == "Ann Offline"
    assert sorted(r.source for r in page.rows) == ["offline", "stripe", "stripe"]

    by_id = ledger.queries.member("cus_a2")
    assert [c.customer.id for c in by_id.customers] == ["cus_a2"]
    assert by_id.offline is not None  # the customer's email is an offline member too
    assert ledger.queries.member("cus_nobody") is None
    assert ledger.queries.member("nobody@example.org") is None
    assert ledger.queries.member("") is None


def test_a_members_page_lists_contributions_with_their_refunds(ledger):
    join(ledger, "cus_a", "a@example.org", "Ann")
    refund_first = sp.charge_refunded("pi_2", 2500, 1000, created=sp.T0 + 1)
    for event in (
        sp.checkout_payment("pi_1", 1000, customer="cus_a", created=sp.T0),
        refund_first,  # before its payment: the page shows it once the payment names a person
        sp.checkout_payment("pi_2", 2500, customer="cus_a", email=None, created=sp.T0 + 2),
        sp.checkout_payment("pi_3", 700, email="A@example.org", created=sp.T0 + 3),
        sp.checkout_payment("pi_4", 900, email="someone@example.org", created=sp.T0 + 4),
    ):
        assert apply_event(ledger.writer, event).outcome == "applied"
    page = ledger.queries.member("a@example.org")
    mine = page.customers[0].contributions
    assert [(c.key, c.amount, c.refunded, c.net) for c in mine] == [
        ("pi_1", 1000, 0, 1000),
        ("pi_2", 2500, 1000, 1500),
    ]
    assert [c.key for c in page.contributions] == ["pi_3"]  # given under the email alone
