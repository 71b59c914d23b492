"""The counting rules as plain functions: no Redis."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from membership.ledger.commands import (
    ApplySubscription,
    DeleteCustomer,
    LinkCustomer,
    RecordContribution,
    RecordRefund,
)
from membership.ledger.model import (
    Contribution,
    Contributor,
    Customer,
    EmailBucket,
    LedgerInputError,
    Offline,
    SubRecord,
    Subscription,
    normalize_email,
    valid_email,
)
from membership.ledger.rules import (
    Loaded,
    bucket_count,
    contributor_of,
    count_members,
    decide,
    deltas,
    effective_status,
    link_stands,
    monthly_amount,
    record_payment,
    record_refund,
    stands_over,
)
from tests.support.memory_ledger import MemoryLedger

MEMBER = ("active", "trialing", "past_due")
STATUSES = frozenset(MEMBER)


def decided(command, **loaded):
    """(decision, count delta, counter deltas) for `command` over the given records."""
    decision = decide(command, Loaded(**loaded), STATUSES)
    return (decision, *deltas(decision.changes, STATUSES))


def stored(decision, kind):
    return [new for _, new in decision.changes if isinstance(new, kind)]


def sub(status, created, **kw):
    kw.setdefault("id", "sub_1")
    kw.setdefault("customer", "cus_1")
    return Subscription(status=status, created=created, **kw)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (None, sub("active", 5), True),
        (sub("active", 5), sub("past_due", 6), True),  # newer wins
        (sub("past_due", 6), sub("active", 5), False),  # older loses
        (sub("past_due", 5), sub("active", 5), False),  # same second: later stage wins
        (sub("active", 5), sub("past_due", 5), True),
        (sub("incomplete", 5), sub("trialing", 5), True),
        (sub("unpaid", 5), sub("paused", 5), True),
        (sub("paused", 5), sub("unpaid", 5), False),
        (sub("active", 5, amount=1), sub("active", 5, amount=2), True),  # same stage: last wins
        (sub("canceled", 5), sub("active", 9), False),  # final sticks against newer
        (sub("incomplete_expired", 5), sub("active", 9), False),
        (sub("active", 9), sub("canceled", 5), True),  # final wins against newer too
        (sub("canceled", 5), sub("incomplete_expired", 5), False),
        (sub("incomplete_expired", 5), sub("canceled", 5), True),
        (sub("canceled", 5), sub("incomplete_expired", 6), True),
    ],
)
def test_which_state_stands(old, new, expected):
    assert stands_over(new, old) is expected


def test_a_deleted_customers_subscriptions_are_canceled_unless_already_final():
    assert effective_status("active", True) == "canceled"
    assert effective_status("trialing", True) == "canceled"
    assert effective_status("incomplete_expired", True) == "incomplete_expired"
    assert effective_status("active", False) == "active"


@pytest.mark.parametrize(
    ("amount", "interval", "count", "monthly"),
    [
        (500, "month", 1, 500),
        (6000, "year", 1, 500),
        (1500, "month", 3, 500),
        (100, "week", 1, 433),
        (10, "day", 1, 304),
        (0, "month", 1, 0),
        (500, "", 1, 0),
    ],
)
def test_monthly_normalization(amount, interval, count, monthly):
    assert monthly_amount(amount, interval, count) == monthly


def test_mrr_counts_active_and_past_due_only():
    cus = Customer("cus_1")
    s_ = sub("active", 1, amount=6000, currency="eur", interval="year")
    live, _, counters = decided(ApplySubscription(s_), customer=cus)
    assert counters["mrr:eur"] == 500
    (record,) = stored(live, SubRecord)
    trial = sub("trialing", 1, amount=500, currency="eur", interval="month")
    assert "mrr:eur" not in decided(ApplySubscription(trial), customer=cus)[2]
    ended = sub("canceled", 2, amount=6000, currency="eur", interval="year")
    customer = Customer("cus_1", live=1)
    assert decided(ApplySubscription(ended), sub=record, customer=customer)[2]["mrr:eur"] == -500


def test_a_subscription_decision_reports_liveness_and_staleness():
    first, delta, counters = decided(
        ApplySubscription(sub("active", 5)), customer=Customer("cus_1")
    )
    (record,) = stored(first, SubRecord)
    assert record.live and delta == 1 and counters["stripe_members"] == 1
    member = Customer("cus_1", live=1)
    stale = decided(ApplySubscription(sub("trialing", 4)), sub=record, customer=member)
    assert stale[0].outcome == "stale" and stale[0].changes == () and stale[1] == 0
    unpaid, delta, _ = decided(ApplySubscription(sub("unpaid", 6)), sub=record, customer=member)
    assert not stored(unpaid, SubRecord)[0].live and delta == -1
    # a later event naming another customer does not move the subscription
    moved, _, _ = decided(
        ApplySubscription(sub("active", 7, customer="cus_2")), sub=record, customer=member
    )
    assert stored(moved, SubRecord)[0].sub.customer == "cus_1"
    gone = Customer("cus_1", deleted_at=3)
    deleted, delta, _ = decided(ApplySubscription(sub("active", 5)), customer=gone)
    (record,) = stored(deleted, SubRecord)
    assert record.status == "canceled" and not record.live and delta == 0
    assert record.sub.status == "active"  # Stripe's own status is kept


def test_emails_match_trimmed_and_case_insensitively_only():
    assert normalize_email("  Reader@Example.ORG ") == "reader@example.org"
    assert normalize_email("r.eader+x@example.org") == "r.eader+x@example.org"
    assert normalize_email("") is None
    assert valid_email("A@B.org") == "a@b.org"
    for bad in ("", "no-at-sign", "two@@example.org", "sp ace@example.org", None):
        with pytest.raises(LedgerInputError):
            valid_email(bad)


def test_an_email_counts_its_member_customers_or_one_offline_member():
    assert bucket_count(0, False) == 0
    assert bucket_count(0, True) == 1
    assert bucket_count(1, True) == 1  # the person counts once
    assert bucket_count(2, True) == 2  # two Stripe customers are two members
    # a customer with this email becomes a member: the email's count moves only
    # when no offline member already stood for the person
    comp = Offline(reason="comp")
    for live, offline, expected in ((0, None, 1), (0, comp, 0), (1, comp, 1), (2, None, 1)):
        bucket = EmailBucket("a@x.org", live, offline)
        customer = Customer("cus_1", email="a@x.org")
        decision, delta, _ = decided(
            ApplySubscription(sub("active", 5)), customer=customer, buckets={"a@x.org": bucket}
        )
        assert delta == expected
        assert stored(decision, EmailBucket) == [EmailBucket("a@x.org", live + 1, offline)]


def test_count_from_scratch():
    customers = [
        ("a@x.org", True),
        ("A@x.org ", True),  # another customer, same email: two members
        ("b@x.org", False),
        (None, True),
        (None, False),
    ]
    assert count_members(customers, []) == 3
    assert count_members(customers, ["a@x.org", "b@x.org", "c@x.org"]) == 5


def test_a_newer_checkout_email_wins_and_ties_do_not_depend_on_order():
    c = Customer("cus_1", email="old@x.org", email_created=10)
    assert link_stands(c, "new@x.org", 11)
    assert not link_stands(c, "new@x.org", 9)
    assert link_stands(c, "OLD@x.org", 20)  # the same address, later: moves the link's clock
    assert not link_stands(c, "old@x.org", 9)
    assert link_stands(c, "z@x.org", 10) and not link_stands(c, "a@x.org", 10)
    assert link_stands(Customer("cus_2"), "first@x.org", 0)
    assert not link_stands(c, None, 99)


def test_a_link_without_an_email_names_only_a_customer_without_one():
    assert link_stands(Customer("cus_1"), None, 5, "Olena Koval")
    assert not link_stands(Customer("cus_1"), None, 5, None)  # nothing to link
    named = Customer("cus_1", email_created=5, name="Olena Koval")
    assert link_stands(named, None, 6, "Olena Shevchenko") and not link_stands(named, None, 4, "Z")
    assert link_stands(named, None, 5, "Z") and not link_stands(named, None, 5, "A")  # same second
    assert link_stands(named, "o@x.org", 1)  # an email always replaces a name alone
    assert not link_stands(Customer("cus_1", email="o@x.org", email_created=1), None, 9, "Other")


LINKS = st.lists(
    st.tuples(st.sampled_from([None, "a@x.org", "B@x.org"]), st.sampled_from([None, "Ann", "Bo"])),
    max_size=6,
)


@given(links=LINKS, order=st.randoms(use_true_random=False))
def test_links_with_and_without_emails_end_the_same_in_any_order(links, order):
    """Each link at its own second: the newest link with an email decides the email and the
    name; with none, the newest name. The oracle is written here, not the rules'."""
    commands = [LinkCustomer("cus_1", e, n, {}, t) for t, (e, n) in enumerate(links, 1)]
    with_email = [c for c in commands if c.email]
    named = [c for c in commands if c.name]
    if with_email:
        last = max(with_email, key=lambda c: c.created)
        expected = (normalize_email(last.email), last.name)
    elif named:
        expected = (None, max(named, key=lambda c: c.created).name)
    else:
        expected = (None, None)
    shuffled = list(commands)
    order.shuffle(shuffled)
    ledger = MemoryLedger(MEMBER)
    for command in shuffled:
        ledger.apply(command)
    customer = ledger.customer("cus_1")
    assert (customer.email, customer.name) == expected


def test_contributions_pay_then_refund_in_either_order():
    pay = RecordContribution("pi_1", 1000, "eur", "cus_1", "d@x.org", {}, 5)
    refund = RecordRefund("pi_1", 300, "eur", 9)
    a = record_refund(record_payment(None, pay), refund)
    b = record_payment(record_refund(None, refund), pay)
    assert a == b
    assert a.net == 700 and a.active
    full = record_refund(a, RecordRefund("pi_1", 1000, "eur", 10))
    assert full.net == 0 and not full.active
    # refunds are cumulative: an older, smaller refund event changes nothing
    assert record_refund(full, refund) == full
    # the second checkout event of one payment changes nothing
    assert record_payment(a, pay) == a


def test_contribution_changes_and_contributors():
    pay = RecordContribution("pi_1", 1000, "eur", None, "D@x.org", {}, 5)
    person = Contributor("email:d@x.org")
    paid, _, counters = decided(pay, contributor=person)
    assert counters == {"contrib_count:eur": 1, "contrib_sum:eur": 1000, "contributors": 1}
    (new,) = stored(paid, Contribution)
    assert new.person == "email:d@x.org"
    assert stored(paid, Contributor) == [Contributor("email:d@x.org", 1)]
    refund = RecordRefund("pi_1", 1000, "eur", 6)
    _, _, counters = decided(refund, contribution=new, contributor=Contributor(new.person, 1))
    assert counters == {"contrib_count:eur": -1, "contrib_sum:eur": -1000, "contributors": -1}
    # the same person's second active contribution is not a second contributor
    other = RecordContribution("pi_2", 300, "eur", None, "d@x.org", {}, 7)
    assert "contributors" not in decided(other, contributor=Contributor(new.person, 1))[2]
    assert decided(pay, contribution=new, contributor=person)[0].outcome == "stale"
    early, _, counters = decided(RecordRefund("pi_2", 500, "eur", 1))
    assert stored(early, Contribution)[0].net == 0 and "contributors" not in counters
    assert contributor_of(None, None, "pi_9") == "payment:pi_9"
    assert Contribution("k", paid=False, amount=5).net == 0


def test_memory_ledger_counts_a_person_once():
    model = MemoryLedger(MEMBER)
    model.add_offline("reader@x.org")
    assert model.count == 1
    model.apply(ApplySubscription(sub("active", 5)))
    assert model.count == 2  # no email known yet: a different person as far as we know
    model.apply(LinkCustomer("cus_1", "READER@x.org", "R", {}, 6))
    assert model.count == 1
    model.apply(ApplySubscription(sub("canceled", 7)))
    assert model.count == 1  # still an offline member
    assert model.remove_offline("reader@x.org")
    assert model.count == 0
    assert model.recount() == 0


def test_memory_ledger_customer_deletion_is_final():
    model = MemoryLedger(MEMBER)
    model.apply(ApplySubscription(sub("active", 5)))
    model.apply(ApplySubscription(sub("active", 5, id="sub_2")))
    assert model.count == 1
    assert model.apply(DeleteCustomer("cus_1", 9)) == "applied"
    assert model.count == 0
    assert model.apply(ApplySubscription(sub("active", 20))) == "applied"
    assert model.statuses() == {"sub_1": "canceled", "sub_2": "canceled"}
    assert model.apply(DeleteCustomer("cus_1", 12)) == "stale"
    assert model.count == model.recount() == 0


def test_subrecord_keeps_both_statuses():
    record = SubRecord(sub("active", 1), "canceled")
    assert record.id == "sub_1" and record.sub.status == "active"
