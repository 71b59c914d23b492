"""The Members pages (/staff/members...) and their JSON (/staff/api/members...): search by
email, name and customer id with pages by cursor, a member's page built from real signed
webhooks, offline members added and removed with a reason (audited; viewers refused), and
the streamed, audited CSV export, in Chromium too (the download and screenshots)."""

from __future__ import annotations

import csv
import io
import re

import pytest

from membership.core import audit
from membership.core.runtime import runtime
from membership.ledger import ledger_for
from membership.ledger.members import status_history
from membership.ledger.model import SubRecord, Subscription
from membership.staff.access.api_tokens import api_tokens_for
from tests.support import stripe_payloads as sp
from tests.support.ledger_helpers import add_offline
from tests.support.staff import signed_in
from tests.support.staff_browser import WIDTHS, fits, open_page, url
from tests.support.webhooks import deliver

OLENA, PETRO, GONE = "cus_olena1", "cus_petro1", "cus_gone1"
HEADER = '"email","name","source","status","since","plan","amount","customer"'  # all quoted


def join(client, customer, email, name, *, status="active", at=sp.T0, sub=None):
    sub = sub or f"sub_{customer[4:]}"
    deliver(client, sp.checkout_subscription(customer, email, name=name, created=at))
    obj = sp.subscription(sub, customer, status, start=at)
    event = sp.subscription_event(obj, created=at + 1)
    deliver(client, event)
    return event["id"]


@pytest.fixture
def world(app):
    """Olena (active, then past_due: an invoice paid, one failed, a contribution partly
    refunded), Petro (active), a cancelled reader and an offline member."""
    hook = app.test_client()
    join(hook, OLENA, "Olena.K@example.org", "Olena Kovalenko")
    deliver(hook, sp.invoice("invoice.paid", OLENA, "sub_olena1", created=sp.T0 + 2))
    deliver(hook, sp.invoice("invoice.payment_failed", OLENA, "sub_olena1", created=sp.T0 + 86400))
    late = sp.subscription("sub_olena1", OLENA, "past_due", start=sp.T0)
    past_due = sp.subscription_event(late, created=sp.T0 + 86401)
    deliver(hook, past_due)
    deliver(hook, sp.checkout_payment("pi_gift1", 2500, customer=OLENA, email=None))
    deliver(hook, sp.charge_refunded("pi_gift1", 2500, 1000, created=sp.T0 + 5))
    join(hook, PETRO, "petro@example.org", "Petro Shevchenko")
    join(hook, GONE, "gone@example.org", "Gone Reader", status="canceled")
    add_offline(ledger_for(runtime(app)), "bank@example.org", "bank transfer", name="=SUM(A1)")
    return {"past_due_event": past_due["id"]}


def audit_entries(app):
    rt = runtime(app)
    return audit.entries(rt.redis, rt.keys, limit=1000)


def found(html: str) -> list[str]:
    """The emails a results page lists, in order."""
    table = re.search(r'<table id="results">(.*?)</table>', html, re.S)
    return re.findall(r'<td><a href="/staff/members/[^"]+">([^<]+)</a></td>', table.group(1))


# --- search -------------------------------------------------------------------------------


def test_search_by_email_name_and_customer_id(app, world):
    client, _ = signed_in(app, "viewer")
    for q in ("olena", "OLENA.K@", "kovalenko", "Olena Koval", OLENA):
        response = client.get("/staff/members", query_string={"q": q})
        assert response.status_code == 200, q
        assert found(response.get_data(as_text=True)) == ["olena.k@example.org"], q
    html = client.get("/staff/members", query_string={"q": "petro"}).get_data(as_text=True)
    assert found(html) == ["petro@example.org"]
    assert f'href="/staff/members/{PETRO}"' in html and "€5.00" in html  # Babel's money
    html = client.get("/staff/members", query_string={"q": "gone"}).get_data(as_text=True)
    assert found(html) == ["gone@example.org"] and "(not counted)" in html
    nobody = client.get("/staff/members", query_string={"q": "zzz"}).get_data(as_text=True)
    assert "No member matches" in nobody and 'id="results"' in nobody
    long = client.get("/staff/members", query_string={"q": "a" * 255})
    assert long.status_code == 400 and 'id="search-q-error"' in long.get_data(as_text=True)
    api = client.get("/staff/api/members", query_string={"q": "a" * 255})
    assert api.status_code == 400 and api.get_json()["error"]["field"] == "q"


def test_search_pages_by_cursor_on_the_page_and_in_json(app):
    ledger = ledger_for(runtime(app))
    emails = [f"page{i:02d}@example.org" for i in range(60)]
    for email in emails:
        add_offline(ledger, email, "comp")
    client, _ = signed_in(app, "viewer")
    html = client.get("/staff/members?q=page").get_data(as_text=True)
    assert found(html) == emails[:50]
    more = re.search(r'href="([^"]+)" rel="next"', html).group(1).replace("&amp;", "&")
    second = client.get(more).get_data(as_text=True)
    assert found(second) == emails[50:] and 'rel="next"' not in second
    assert "First page" in second

    first = client.get("/staff/api/members?q=page&limit=40").get_json()
    assert [m["email"] for m in first["members"]] == emails[:40] and first["cursor"]
    rest = client.get("/staff/api/members", query_string={"q": "page", "cursor": first["cursor"]})
    assert [m["email"] for m in rest.get_json()["members"]] == emails[40:]
    assert rest.get_json()["cursor"] is None
    bad = client.get("/staff/api/members?q=page&cursor=nope!")
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "cursor"
    bad = client.get("/staff/api/members?q=page&limit=0")
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "limit"
    page = client.get("/staff/members?q=page&cursor=nope!")
    assert page.status_code == 400 and "Page: not a page of this list" in page.get_data(
        as_text=True
    )


# --- a member's page ----------------------------------------------------------------------


def _section(html: str, heading_id: str) -> str:
    match = re.search(rf'<section aria-labelledby="{heading_id}"[^>]*>(.*?)</section>', html, re.S)
    assert match, heading_id
    return match.group(1)


def test_a_members_page_shows_what_the_ledger_keeps(app, world):
    client, _ = signed_in(app, "viewer")
    response = client.get(f"/staff/members/{OLENA}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "olena.k@example.org" in html and "Olena Kovalenko" in html
    customer = _section(html, "c-1-heading")
    history = re.search(r'<table class="history">(.*?)</table>', customer, re.S).group(1)
    steps = re.findall(r"<tr><td><time [^>]*>[^<]*</time></td><td>([^<]+)</td>", history)
    assert steps == [
        "started",
        "status new → active",
        "invoice paid",
        "payment failed",
        "status active → past_due",
        "now past_due",
    ]
    assert world["past_due_event"] in history  # the event that set the state
    invoices = re.search(r'<table class="invoices">.*?<tbody>(.*?)</tbody>', customer, re.S)
    rows = re.findall(
        r"<tr><td><time [^>]*>[^<]*</time></td><td>([^<]+)</td><td>([^<]*)</td><td><code>([^<]+)<",
        invoices.group(1),
    )
    # An invoice with its amount, newest first; status changes are in the history, not here
    assert [(what, amount, ref[:3]) for what, amount, ref in rows] == [
        ("payment failed", "€5.00", "in_"),
        ("invoice paid", "€5.00", "in_"),
    ]
    assert "sub_olena1" not in invoices.group(1) and "subscription.status" not in customer
    facts = re.search(r'<dl class="facts">(.*?)</dl>', customer, re.S).group(1)
    assert "<dt>Counted</dt><dd>yes, a member</dd>" in facts and "· a member" not in html
    events = _section(html, "c-1-heading").split("Events that")[1]
    assert f'href="/staff/webhooks/events/{world["past_due_event"]}"' in events
    assert "pi_gift1" in customer and "€25.00" in customer
    # Times in the viewer's zone (the newsroom's TIMEZONE here: UTC), ISO on the element
    assert '<time datetime="2026-05-28T20:26:42Z" title="28 May 2026, 20:26:42 UTC">' in customer
    refunds = _section(html, "refunds-heading")
    assert "pi_gift1" in refunds and "€10.00" in refunds and "€15.00" in refunds
    assert "None." in _section(html, "offline-heading")
    assert "<script" not in html and "style=" not in html and "<style" not in html  # CSP

    by_email = client.get("/staff/members/OLENA.K@example.org").get_data(as_text=True)
    assert OLENA in by_email and "now past_due" in by_email

    offline = client.get("/staff/members/bank@example.org").get_data(as_text=True)
    record = _section(offline, "offline-heading")
    assert "bank transfer" in record and "=SUM(A1)" in record
    assert 'id="offline-remove"' not in offline  # a viewer sees no edit controls

    data = client.get(f"/staff/api/members/{OLENA}").get_json()
    sub = data["customers"][0]["subscriptions"][0]
    assert sub["sub"]["status"] == "past_due" and sub["sub"]["source"] == world["past_due_event"]
    assert [s["what"] for s in sub["status_history"]][-1] == "now past_due"
    assert [t["kind"] for t in data["customers"][0]["timeline"]] == [
        "subscription.status",
        "invoice.payment_failed",
        "invoice.paid",
        "subscription.status",
    ]
    assert data["customers"][0]["contributions"][0]["refunded"] == 1000
    assert data["rows"][0]["amount_text"] == "5.00 EUR"


def test_status_history_orders_what_the_ledger_keeps():
    day = 86400
    ended = SubRecord(
        Subscription(
            "sub_1", "cus_1", "canceled", created=sp.T0 + 9 * day, started=sp.T0,
            canceled_at=sp.T0 + 5 * day, ended_at=sp.T0 + 8 * day, source="evt_9",
        ),
        status="canceled",
        live=False,
    )  # fmt: skip
    timeline = (
        {"kind": "invoice.paid", "created": sp.T0 + day, "subscription": "sub_1",
         "amount": 500, "currency": "eur"},
        {"kind": "invoice.paid", "created": sp.T0 + 2 * day, "subscription": "sub_2",
         "amount": 900, "currency": "eur"},
    )  # fmt: skip
    steps = status_history(ended, timeline)
    assert [s["what"] for s in steps] == ["started", "invoice paid", "ended", "now canceled"]
    change = {"kind": "subscription.status", "created": sp.T0 + 8 * day, "subscription": "sub_1",
              "from": "active", "to": "canceled", "event": "evt_9"}  # fmt: skip
    steps = status_history(ended, (*timeline, change))
    assert [s["what"] for s in steps][2:4] == ["status active → canceled", "ended"]
    assert steps[2]["detail"] == "evt_9"
    assert steps[1]["detail"] == "5.00 EUR" and steps[0]["at"] == "2026-05-28 20:26"
    assert steps[-1]["detail"] == "does not count; set by evt_9"
    asked = SubRecord(
        Subscription("sub_2", "cus_1", "active", created=sp.T0 + 3 * day, started=sp.T0,
                     canceled_at=sp.T0 + 2 * day, source="evt_3"),
        status="active",
        live=True,
    )  # fmt: skip
    steps = status_history(asked, timeline)
    assert [s["what"] for s in steps] == [
        "started", "cancellation asked", "invoice paid", "now active"
    ]  # fmt: skip
    assert steps[-1]["detail"] == "counts; set by evt_3"


def test_an_unknown_member_is_404(app, world):
    client, _ = signed_in(app, "viewer")
    for who in ("cus_nobody", "nobody@example.org", "x", "a/b"):
        assert client.get(f"/staff/members/{who}").status_code == 404, who
        api = client.get(f"/staff/api/members/{who}")
        assert api.status_code == 404 and api.get_json()["error"]["code"] == "not_found", who


# --- offline members ----------------------------------------------------------------------


def test_an_editor_adds_and_removes_an_offline_member_with_a_reason(app):
    client, token = signed_in(app, "editor")
    queries = ledger_for(runtime(app)).queries
    page = client.get("/staff/members").get_data(as_text=True)
    assert 'id="offline-add"' in page and 'for="add-reason"' in page
    form = {"csrf_token": token, "email": " Friend@Example.org ", "name": "A Friend"}
    added = client.post("/staff/members/offline", data={**form, "reason": "gift, 2026"})
    assert added.status_code == 303
    assert added.location == "/staff/members/friend@example.org?done=added"
    assert queries.email_bucket("friend@example.org").offline.reason == "gift, 2026"
    assert queries.count() == 1
    entry = audit_entries(app)[0]
    assert (entry["actor"], entry["action"]) == ("editor@news.example", "offline_member_added")
    assert entry["before"] is None and entry["after"]["reason"] == "gift, 2026"

    html = client.get(added.location).get_data(as_text=True)
    assert "Added as an offline member." in html and 'id="offline-remove"' in html
    again = client.post("/staff/members/offline", data={**form, "reason": "twice"})
    assert again.status_code == 409 and "already an offline member" in again.get_data(as_text=True)

    no_reason = client.post(
        "/staff/members/offline/remove",
        data={"csrf_token": token, "email": "friend@example.org", "reason": " "},
    )
    html = no_reason.get_data(as_text=True)
    assert no_reason.status_code == 400 and 'id="remove-reason-error"' in html
    assert queries.email_bucket("friend@example.org").offline is not None
    removed = client.post(
        "/staff/members/offline/remove",
        data={"csrf_token": token, "email": "friend@example.org", "reason": "ended"},
    )
    assert removed.status_code == 303 and removed.location == "/staff/members?q=friend@example.org"
    assert queries.email_bucket("friend@example.org").offline is None and queries.count() == 0
    entry = audit_entries(app)[0]
    assert (entry["actor"], entry["action"]) == ("editor@news.example", "offline_member_removed")
    assert entry["before"]["reason"] == "gift, 2026" and entry["after"] == {"reason": "ended"}


def test_removing_someone_who_is_not_an_offline_member_says_so(app, world):
    client, token = signed_in(app, "editor")
    before = audit_entries(app)
    for email in ("petro@example.org", "nobody@example.org"):
        form = {"csrf_token": token, "email": email, "reason": "ended"}
        response = client.post("/staff/members/offline/remove", data=form)
        html = response.get_data(as_text=True)
        assert response.status_code == 404, email
        assert '<p class="error" role="alert">email: not an offline member</p>' in html, email
    assert audit_entries(app) == before


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"email": "not-an-email", "reason": "comp"}, "email"),
        ({"email": "", "reason": "comp"}, "email"),
        ({"email": "a@example.org", "reason": ""}, "reason"),
        ({"email": "a@example.org", "reason": "comp", "name": "x" * 201}, "name"),
        ({"email": "a@example.org", "reason": "bad\x1b[31m"}, "reason"),
    ],
)
def test_bad_offline_input_is_400_next_to_the_field(app, form, field):
    client, token = signed_in(app, "editor")
    before = audit_entries(app)
    response = client.post("/staff/members/offline", data={"csrf_token": token, **form})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    error = re.search(rf'<p class="error" id="add-{field}-error" role="alert">([^<]+)</p>', html)
    assert error and error.group(1).startswith(f"{field}:")
    assert f'aria-describedby="add-{field}-error"' in html
    assert audit_entries(app) == before and ledger_for(runtime(app)).queries.count() is None


def test_a_viewer_may_not_change_offline_members(app):
    ledger = ledger_for(runtime(app))
    add_offline(ledger, "kept@example.org", "comp")
    client, token = signed_in(app, "viewer")
    assert 'id="offline-add"' not in client.get("/staff/members").get_data(as_text=True)
    before = audit_entries(app)
    forms = {
        "/staff/members/offline": {"email": "new@example.org", "reason": "forged"},
        "/staff/members/offline/remove": {"email": "kept@example.org", "reason": "forged"},
        "/staff/api/members/offline": {"email": "new@example.org", "reason": "forged"},
        "/staff/api/members/offline/remove": {"email": "kept@example.org", "reason": "forged"},
    }
    for path, form in forms.items():
        assert client.post(path, data={"csrf_token": token, **form}).status_code == 403, path
    assert audit_entries(app) == before
    assert [m["email"] for m in ledger.queries.offline_members()] == ["kept@example.org"]


def test_offline_members_through_the_api_with_a_token(app):
    rt = runtime(app)
    editor = {"Authorization": "Bearer " + api_tokens_for(rt).create("editor@news.example", "s")}
    viewer = {"Authorization": "Bearer " + api_tokens_for(rt).create("viewer@news.example", "s")}
    client = app.test_client()
    body = {"email": "Script@example.org", "reason": "bank transfer", "name": "S"}
    assert client.post("/staff/api/members/offline", json=body, headers=viewer).status_code == 403
    added = client.post("/staff/api/members/offline", json=body, headers=editor)
    assert added.status_code == 201
    assert added.get_json() == {
        "email": "script@example.org",
        "outcome": "applied",
        "count_before": 0,
        "count_after": 1,
    }
    again = client.post("/staff/api/members/offline", json=body, headers=editor)
    assert again.status_code == 409 and again.get_json()["error"]["field"] == "email"
    bad = client.post("/staff/api/members/offline", json={"email": "x"}, headers=editor)
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "email"
    bad = client.post("/staff/api/members/offline", json=["x"], headers=editor)
    assert bad.status_code == 400
    member = client.get("/staff/api/members/script@example.org", headers=viewer).get_json()
    assert member["offline"]["reason"] == "bank transfer"
    gone = {"email": "script@example.org", "reason": "stopped"}
    removed = client.post("/staff/api/members/offline/remove", json=gone, headers=editor)
    assert removed.status_code == 200 and removed.get_json()["count_after"] == 0
    none = client.post("/staff/api/members/offline/remove", json=gone, headers=editor)
    assert none.status_code == 404 and none.get_json()["error"]["code"] == "not_found"
    actions = [e["action"] for e in audit_entries(app) if e["actor"] == "editor@news.example"]
    assert actions[:2] == ["offline_member_removed", "offline_member_added"]


# --- the CSV export -----------------------------------------------------------------------


def _csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def _check_export(text: str) -> None:
    rows = _csv_rows(text)
    assert text.startswith(HEADER + "\r\n")
    by_email = {r[0]: r for r in rows[1:]}
    assert sorted(by_email) == ["bank@example.org", "olena.k@example.org", "petro@example.org"]
    assert by_email["bank@example.org"] == [
        "bank@example.org",
        "'=SUM(A1)",  # a spreadsheet shows it as text
        "offline",
        "offline",
        by_email["bank@example.org"][4],
        "offline",
        "",
        "",  # no Stripe customer
    ]
    assert by_email["petro@example.org"][1:4] == ["Petro Shevchenko", "stripe", "active"]
    assert by_email["petro@example.org"][6:] == ["5.00 EUR", PETRO]
    assert by_email["olena.k@example.org"][3] == "past_due"


def test_the_export_is_streamed_with_the_current_members_and_audited(app, world):
    client, _ = signed_in(app, "viewer")
    before = len(audit_entries(app))
    for path in ("/staff/members/export.csv", "/staff/api/members/export.csv"):
        response = client.get(path, buffered=False)
        assert response.status_code == 200 and response.is_streamed
        assert not isinstance(response.response, list | tuple | str | bytes)  # a generator
        assert response.mimetype == "text/csv"
        assert response.headers["Content-Disposition"].startswith("attachment; filename=")
        _check_export(response.get_data(as_text=True))
    exports = audit_entries(app)[: len(audit_entries(app)) - before]
    assert [(e["action"], e["actor"], e["after"]) for e in exports] == [
        ("members_exported", "viewer@news.example", {"rows": 3}),
    ] * 2


# --- in the browser -----------------------------------------------------------------------


@pytest.mark.browser
def test_the_export_downloads_in_chromium_with_the_right_rows(app, world, browser):
    page = open_page(app, browser, "viewer")
    page.goto(url("/staff/members"))
    with page.expect_download() as info:
        page.click("#export")
    download = info.value
    assert re.fullmatch(r"members-\d{4}-\d{2}-\d{2}\.csv", download.suggested_filename)
    with open(download.path(), encoding="utf-8", newline="") as saved:
        _check_export(saved.read())
    exported = [e for e in audit_entries(app) if e["action"] == "members_exported"]
    assert len(exported) == 1 and exported[0]["actor"] == "viewer@news.example"
    assert page.console_errors == []
    page.close()


@pytest.mark.browser
@pytest.mark.parametrize("width", WIDTHS)
def test_the_members_pages_fit_both_widths(app, world, browser, width):
    page = open_page(app, browser, "editor", width=width)
    page.goto(url("/staff/members"))
    fits(page)
    page.fill("#q", "olena")
    page.keyboard.press("Enter")
    page.wait_for_url("**/staff/members?q=olena")
    assert page.locator("#results tbody tr").count() == 1
    fits(page)
    page.click("#results a")
    page.wait_for_url(f"**/staff/members/{OLENA}")
    assert page.locator("table.history").count() == 1
    fits(page)
    page.goto(url("/staff/members/bank@example.org"))
    fits(page)
    page.goto(url("/staff/members"))
    page.fill("#add-email", "new@example.org")
    page.fill("#add-reason", "bank transfer")
    page.click("#offline-add button")
    page.wait_for_url("**/staff/members/new@example.org?done=added")
    assert "Added as an offline member." in page.content()
    assert page.console_errors == []
    page.close()


def test_a_dispute_row_shows_the_dispute_with_its_amount(app, world):
    """A dispute of a customer's payment is a row of their invoices and disputes: what it is,
    its amount as money and the dispute's id, never a subscription's."""
    deliver(app.test_client(), sp.dispute("pi_gift1", 2500, created=sp.T0 + 7))
    client, _ = signed_in(app, "viewer")
    html = client.get(f"/staff/members/{OLENA}").get_data(as_text=True)
    customer = _section(html, "c-1-heading")
    invoices = re.search(r'<table class="invoices">.*?<tbody>(.*?)</tbody>', customer, re.S)
    rows = re.findall(
        r"<tr><td><time [^>]*>[^<]*</time></td><td>([^<]+)</td><td>([^<]*)</td><td><code>([^<]+)<",
        invoices.group(1),
    )
    disputes = [(what, amount, ref[:3]) for what, amount, ref in rows if "dispute" in what]
    assert disputes == [("dispute opened", "€25.00", "dp_")], rows
    assert "sub_" not in invoices.group(1)
