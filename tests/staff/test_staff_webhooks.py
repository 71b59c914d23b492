"""Staff Webhooks pages (/staff/webhooks, an event's page, replays) and the admin's operations
(/staff/operations: ledger rebuild and sync in the background), with their JSON twins, on a
real Redis; one browser test replays a failed event from its page."""

from __future__ import annotations

import re
import threading
import time

import pytest

from membership.core import audit
from membership.core.runtime import runtime
from membership.ledger import Ledger, ledger_for
from membership.staff import accounts_for
from membership.staff.operations import runner as operations
from membership.stripe import events as stripe_events
from membership.stripe.apply import apply_event
from tests.support import stripe_payloads as sp
from tests.support.staff import FAST, GOOD, signed_in
from tests.support.staff_browser import WIDTHS, fits, open_page, url

HOUR = 3600


def _ledger(app, clock=None) -> Ledger:
    rt = runtime(app)
    if clock is None:
        return ledger_for(rt)
    return Ledger.on(rt.redis, rt.keys, rt.settings.member_statuses, clock=clock)


def _active(n: int, **kwargs) -> dict:
    return sp.subscription_event(sp.subscription(f"sub_{n}", f"cus_{n}", "active"), **kwargs)


class Handler:
    """Subscription updates fail, as a handler bug would, between `break_()` and `fix()`."""

    name = "customer.subscription.updated"

    def __init__(self, monkeypatch) -> None:
        self.monkeypatch = monkeypatch
        self.original = stripe_events.HANDLERS[self.name]

    def break_(self) -> None:
        self.monkeypatch.setitem(stripe_events.HANDLERS, self.name, self._broken)

    def fix(self) -> None:
        self.monkeypatch.setitem(stripe_events.HANDLERS, self.name, self.original)

    @staticmethod
    def _broken(obj, event):
        raise RuntimeError("handler bug")


@pytest.fixture
def handler(monkeypatch):
    return Handler(monkeypatch)


def _audit(app, action="event_replayed") -> list[dict]:
    entries = audit.entries(runtime(app).redis, runtime(app).keys, limit=1000)
    return [e for e in entries if e["action"] == action]


def _html(response) -> str:
    return response.get_data(as_text=True)


def _event_links(html: str) -> list[str]:
    return re.findall(r'href="/staff/webhooks/events/([A-Za-z0-9_]+)"', html)


# --- the log and its filters --------------------------------------------------------------


def test_the_log_filters_by_outcome_and_type_and_pages_by_cursor(app, handler):
    ledger = _ledger(app)
    subscriptions = [_active(n) for n in range(55)]
    for event in subscriptions[:52]:
        assert apply_event(ledger.writer, event).outcome == "applied"
    ignored = [sp.event("customer.updated", {"id": f"cus_{n}"}) for n in range(3)]
    for event in ignored:
        assert apply_event(ledger.writer, event).outcome == "ignored"
    handler.break_()
    for event in subscriptions[52:]:
        assert apply_event(ledger.writer, event).outcome == "failed"
    client, _ = signed_in(app, "viewer")

    first = client.get("/staff/webhooks")
    assert first.status_code == 200
    ids = _event_links(_html(first))
    assert len(ids) == 50
    older = re.search(r'href="([^"]+)" rel="next"', _html(first)).group(1).replace("&amp;", "&")
    rest = _event_links(_html(client.get(older)))
    assert len(rest) == 8 and not set(ids) & set(rest)
    everything = {e["id"] for e in subscriptions + ignored}
    assert set(ids) | set(rest) == everything

    failed = _event_links(_html(client.get("/staff/webhooks?outcome=failed")))
    assert set(failed) == {e["id"] for e in subscriptions[52:]}
    exact = _event_links(_html(client.get("/staff/webhooks?type=customer.updated")))
    assert set(exact) == {e["id"] for e in ignored}
    both = client.get("/staff/webhooks?outcome=applied&type=customer.subscription.*")
    assert len(_event_links(_html(both))) == 50
    assert 'rel="next"' in _html(both)

    # The JSON twin pages the same way: 52 applied subscription events in two pages.
    api = client.get("/staff/api/webhooks/events?outcome=applied&type=customer.subscription.*")
    body = api.get_json()
    assert len(body["events"]) == 50 and body["next_cursor"] and body["failed"] == 3
    again = client.get(
        "/staff/api/webhooks/events?outcome=applied&type=customer.subscription.*"
        f"&cursor={body['next_cursor']}"
    ).get_json()
    assert len(again["events"]) == 2 and again["next_cursor"] is None
    assert {e["id"] for e in body["events"] + again["events"]} == {
        e["id"] for e in subscriptions[:52]
    }


def test_bad_filters_are_400_next_to_the_field_they_name(app):
    client, _ = signed_in(app, "viewer")
    bad_type = client.get("/staff/webhooks?type=%3Cscript%3E")
    assert bad_type.status_code == 400
    assert re.search(r'id="e-type">type: expected a Stripe event type', _html(bad_type))
    assert "<script>" not in _html(bad_type)
    bad_outcome = client.get("/staff/webhooks?outcome=weird")
    assert bad_outcome.status_code == 400 and 'id="e-outcome">outcome:' in _html(bad_outcome)
    assert client.get("/staff/webhooks?cursor=nope").status_code == 400
    api = client.get("/staff/api/webhooks/events?type=Bad Type")
    assert api.status_code == 400 and api.get_json()["error"]["field"] == "type"
    api = client.get("/staff/api/webhooks/events?outcome=weird")
    assert api.status_code == 400 and api.get_json()["error"]["field"] == "outcome"
    # an entry id's shape, but a part past the 64 bits Redis takes: named, not a Redis error
    too_big = f"5-{2**64}"
    assert client.get(f"/staff/webhooks?cursor={too_big}").status_code == 400
    api = client.get(f"/staff/api/webhooks/events?cursor={too_big}")
    assert api.status_code == 400 and api.get_json()["error"]["field"] == "cursor"


def test_a_rare_type_reads_a_bounded_number_of_entries_a_page(app):
    """A type that matches nothing nearby gives a short page with a cursor, not a scan of
    the whole log; following the cursors finds it."""
    ledger = _ledger(app)
    rare = sp.event("customer.deleted", {"id": "cus_gone", "object": "customer"})
    apply_event(ledger.writer, rare)
    for n in range(30):
        apply_event(ledger.writer, sp.event("customer.updated", {"id": f"cus_{n}"}))
    found, cursor = ledger.events.page(type_="customer.deleted", scan=10)
    assert found == [] and cursor
    pages = 1
    while not found and cursor:
        found, cursor = ledger.events.page(type_="customer.deleted", cursor=cursor, scan=10)
        pages += 1
    assert [e["id"] for e in found] == [rare["id"]] and pages == 4


# --- an event's page ------------------------------------------------------------------------


def test_an_event_page_shows_its_payload_escaped_outcome_and_error(app):
    ledger = _ledger(app)
    hostile = sp.subscription("sub_x", "cus_x", "mystery")
    hostile["metadata"] = {"note": "<script>alert('owned')</script>"}
    event = sp.subscription_event(hostile)
    assert apply_event(ledger.writer, event).outcome == "failed"
    client, _ = signed_in(app, "viewer")
    page = client.get(f"/staff/webhooks/events/{event['id']}")
    html = _html(page)
    assert page.status_code == 200
    assert "&lt;script&gt;alert(" in html and "<script>alert" not in html
    assert 'id="event-outcome">failed<' in html
    assert "unknown status" in html  # the error, whole
    assert 'id="replay"' not in html  # a viewer sees no replay button
    api = client.get(f"/staff/api/webhooks/events/{event['id']}").get_json()
    assert api["outcome"] == "failed" and api["payload"]["data"]["object"]["metadata"] == {
        "note": "<script>alert('owned')</script>"
    }


def test_an_unknown_event_is_404(app):
    client, token = signed_in(app, "editor")
    for event_id in ("evt_unknown", "x", "a.b", "%3Cscript%3E"):
        assert client.get(f"/staff/webhooks/events/{event_id}").status_code == 404
        api = client.get(f"/staff/api/webhooks/events/{event_id}")
        assert api.status_code == 404 and api.get_json()["error"]["code"] == "not_found"
        replay = client.post(
            f"/staff/webhooks/events/{event_id}/replay", data={"csrf_token": token}
        )
        assert replay.status_code == 404
        api = client.post(
            f"/staff/api/webhooks/events/{event_id}/replay", headers={"X-CSRFToken": token}
        )
        assert api.status_code == 404
    assert _audit(app) == []


# --- replays --------------------------------------------------------------------------------


def test_replays_that_apply_and_that_fail_again_are_both_audited(app, handler):
    ledger = _ledger(app)
    handler.break_()
    bug = _active(1)
    bad_data = sp.subscription_event(sp.subscription("sub_2", "cus_2", "mystery"))
    assert apply_event(ledger.writer, bug).outcome == "failed"
    assert apply_event(ledger.writer, bad_data).outcome == "failed"
    handler.fix()  # the bug is fixed; the bad data stays bad
    client, token = signed_in(app, "editor")

    fixed = client.post(f"/staff/webhooks/events/{bug['id']}/replay", data={"csrf_token": token})
    assert fixed.status_code == 200
    assert 'id="replayed">Replayed: applied' in _html(fixed)
    assert 'id="event-outcome">applied<' in _html(fixed)
    still = client.post(
        f"/staff/api/webhooks/events/{bad_data['id']}/replay", headers={"X-CSRFToken": token}
    )
    assert still.status_code == 200
    assert still.get_json()["outcome"] == "failed" and "unknown status" in still.get_json()["error"]

    assert ledger.queries.count() == 1
    assert ledger.events.failed_ids() == [bad_data["id"]]
    entries = {e["target"]: e for e in _audit(app)}
    assert set(entries) == {bug["id"], bad_data["id"]}
    assert {e["actor"] for e in entries.values()} == {"editor@news.example"}
    assert entries[bug["id"]]["after"]["outcome"] == "applied"
    assert entries[bad_data["id"]]["before"] == {"outcome": "failed"}
    assert entries[bad_data["id"]]["after"]["outcome"] == "failed"

    # An event already applied answers duplicate, and that replay is audited too.
    again = client.post(f"/staff/webhooks/events/{bug['id']}/replay", data={"csrf_token": token})
    assert "Replayed: duplicate" in _html(again) and len(_audit(app)) == 3


def test_replay_every_failed_event(app, handler):
    ledger = _ledger(app)
    events = [_active(n) for n in range(3)]
    handler.break_()
    for event in events:
        assert apply_event(ledger.writer, event).outcome == "failed"
    client, token = signed_in(app, "admin")
    assert 'id="failed-count">3 events failed' in _html(client.get("/staff/webhooks"))
    handler.fix()
    page = client.post("/staff/webhooks/replay-failed", data={"csrf_token": token})
    assert page.status_code == 200
    assert "Replayed 3: 3 dealt with, 0 not." in _html(page)
    assert ledger.events.failed_ids() == [] and ledger.queries.count() == 3
    assert {e["target"] for e in _audit(app)} == {e["id"] for e in events}
    nothing = client.post("/staff/api/webhooks/replay-failed", headers={"X-CSRFToken": token})
    assert nothing.get_json() == {"results": [], "remaining": 0}


def test_a_viewer_cannot_replay_and_nothing_changes(app, handler):
    ledger = _ledger(app)
    event = _active(1)
    handler.break_()
    assert apply_event(ledger.writer, event).outcome == "failed"
    handler.fix()
    client, token = signed_in(app, "viewer")
    page = _html(client.get("/staff/webhooks"))
    assert 'id="replay-all"' not in page
    before = audit.entries(runtime(app).redis, runtime(app).keys, limit=1000)
    for path in (f"/staff/webhooks/events/{event['id']}/replay", "/staff/webhooks/replay-failed"):
        assert client.post(path, data={"csrf_token": token}).status_code == 403
        api = client.post(
            "/staff/api" + path.removeprefix("/staff"), headers={"X-CSRFToken": token}
        )
        assert api.status_code == 403
    assert ledger.events.failed_ids() == [event["id"]] and ledger.queries.count() is None
    assert audit.entries(runtime(app).redis, runtime(app).keys, limit=1000) == before


def test_a_signed_subscription_event_with_no_customer_is_failed_and_answered_5xx(app):
    obj = sp.subscription("sub_1", "cus_1", "active")
    del obj["customer"]
    payload = sp.body(sp.subscription_event(obj))
    response = app.test_client().post(
        "/webhooks/stripe",
        data=payload,
        headers={"Stripe-Signature": sp.sign(payload)},
        content_type="application/json",
    )
    assert response.status_code >= 500
    client, _ = signed_in(app, "viewer")
    html = _html(client.get("/staff/webhooks?outcome=failed"))
    (event_id,) = _event_links(html)
    assert "has no customer" in _html(client.get(f"/staff/webhooks/events/{event_id}"))


# --- when Stripe last sent an event ------------------------------------------------------


def test_the_last_event_time_and_a_warning_after_24_hours(app, handler):
    client, editor_token = signed_in(app, "editor")
    empty = _html(client.get("/staff/webhooks"))
    assert 'id="quiet"' in empty and "No event from Stripe in the event log" in empty

    old = time.time() - 25 * HOUR
    stale = _ledger(app, clock=lambda: old)
    event = _active(1)
    handler.break_()
    assert apply_event(stale.writer, event).outcome == "failed"
    quiet = _html(client.get("/staff/webhooks"))
    assert 'id="quiet"' in quiet and "No event from Stripe for 25 hours" in quiet
    body = client.get("/staff/api/webhooks/events").get_json()
    assert body["quiet"] is True and 24.9 < body["hours_since"] < 25.1

    # A replay now is not a delivery from Stripe: still quiet.
    handler.fix()
    client.post(f"/staff/webhooks/events/{event['id']}/replay", data={"csrf_token": editor_token})
    assert 'id="quiet"' in _html(client.get("/staff/webhooks"))

    recent = time.time() - 2 * HOUR
    apply_event(_ledger(app, clock=lambda: recent).writer, _active(2))
    fresh = _html(client.get("/staff/webhooks"))
    assert 'id="quiet"' not in fresh and re.search(
        r'id="last-received">Last event from Stripe: <time datetime="[-0-9T:]+Z" title="[^"]+">'
        r"2 hours ago</time>",
        fresh,
    )
    assert client.get("/staff/api/webhooks/events").get_json()["quiet"] is False


# --- the admin's operations ---------------------------------------------------------------


def _wait_for_end(app, seconds: float = 20) -> dict:
    ops = operations.Operations(runtime(app))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = ops.status()
        if status and status["state"] != "running":
            return status
        time.sleep(0.05)
    raise AssertionError("the operation did not finish")


def test_an_admin_runs_a_rebuild_and_sees_its_result(app):
    ledger = _ledger(app)
    for n in range(3):
        apply_event(ledger.writer, _active(n))
    rt = runtime(app)
    rt.redis.set(rt.keys.member_count, 99)  # wrong: the rebuild puts it right
    client, token = signed_in(app, "admin")
    started = client.post("/staff/operations", data={"csrf_token": token, "operation": "rebuild"})
    assert started.status_code == 303
    status = _wait_for_end(app)
    assert status["state"] == "done", status
    assert status["result"]["members_before"] == 99 and status["result"]["members_after"] == 3
    page = _html(client.get("/staff/operations"))
    assert 'id="state">done<' in page and "Members: 99 → 3." in page
    assert ledger.queries.count() == 3
    (started_entry,) = _audit(app, "operation_started")
    (rebuilt,) = _audit(app, "ledger_rebuilt")
    assert started_entry["actor"] == rebuilt["actor"] == "admin@news.example"
    assert not rt.redis.exists(rt.keys.operations_lock)


def test_a_second_start_while_one_runs_is_refused(app, monkeypatch):
    release, entered = threading.Event(), threading.Event()

    def slow(rt, actor, progress):
        assert runtime() is rt  # in the app's context, as a request would be
        entered.set()
        release.wait(10)
        return {"records": 0, "unchanged": True, "rewritten": {}, "counters": {},
                "members_before": None, "members_after": 0}  # fmt: skip

    monkeypatch.setitem(operations.RUNNERS, "rebuild", slow)
    client, token = signed_in(app, "admin")
    try:
        first = client.post("/staff/operations", data={"csrf_token": token, "operation": "rebuild"})
        assert first.status_code == 303 and entered.wait(5)
        page = _html(client.get("/staff/operations"))
        assert 'id="state">running<' in page and 'id="start" disabled' in page
        second = client.post(
            "/staff/operations", data={"csrf_token": token, "operation": "rebuild"}
        )
        assert second.status_code == 409 and "another operation is running" in _html(second)
        api = client.post(
            "/staff/api/operations", json={"operation": "rebuild"}, headers={"X-CSRFToken": token}
        )
        assert api.status_code == 409
        lock = runtime(app).keys.operations_lock
        assert (
            0 < runtime(app).redis.ttl(lock) <= operations.LOCK_SECONDS
        )  # a dead process frees it
    finally:
        release.set()
    assert _wait_for_end(app)["state"] == "done"
    assert len(_audit(app, "operation_started")) == 1


def test_an_operation_whose_process_ended_shows_as_interrupted(app):
    """The status says running but no lock holds its id (the lock expired with its process):
    the page says so, and a new start is allowed."""
    ops = operations.Operations(runtime(app))
    ops.start("rebuild", actor="admin@news.example", wait=True)
    runtime(app).redis.hset(ops.status_key, mapping={"state": "running", "finished": ""})
    assert ops.status()["state"] == "interrupted"
    client, token = signed_in(app, "admin")
    assert "Its process ended before it finished" in _html(client.get("/staff/operations"))
    again = client.post("/staff/operations", data={"csrf_token": token, "operation": "rebuild"})
    assert again.status_code == 303 and _wait_for_end(app)["state"] == "done"


def _changes(app) -> list[dict]:
    """The audit log but sign-ins (each signed_in below adds one)."""
    entries = audit.entries(runtime(app).redis, runtime(app).keys)
    return [e for e in entries if e["action"] != "staff_signed_in"]


def test_operations_are_for_admins_only(app):
    before = _changes(app)
    for role in ("viewer", "editor"):
        client, token = signed_in(app, role)
        assert client.get("/staff/operations").status_code == 403
        data = {"csrf_token": token, "operation": "rebuild"}
        assert client.post("/staff/operations", data=data).status_code == 403
        assert client.get("/staff/api/operations").status_code == 403
        assert "/staff/operations" not in _html(client.get("/staff/webhooks"))
    assert _changes(app) == before
    assert operations.Operations(runtime(app)).status() is None
    admin, token = signed_in(app, "admin")
    bad = admin.post("/staff/operations", data={"csrf_token": token, "operation": "drop"})
    assert bad.status_code == 400 and 'id="e-operation">operation: expected one of' in _html(bad)
    assert admin.post("/staff/operations", data={"csrf_token": token}).status_code == 400
    api = admin.post("/staff/api/operations", json={}, headers={"X-CSRFToken": token})
    assert api.status_code == 400 and api.get_json()["error"]["field"] == "operation"


def test_sync_without_a_stripe_key_says_so(app):
    client, token = signed_in(app, "admin")
    page = _html(client.get("/staff/operations"))
    assert 'id="no-stripe"' in page and "STRIPE_API_KEY" in page
    refused = client.post(
        "/staff/operations", data={"csrf_token": token, "operation": "sync_check"}
    )
    assert refused.status_code == 400 and "sync needs STRIPE_API_KEY" in _html(refused)
    assert client.get("/staff/api/operations").get_json()["sync_available"] is False


def test_sync_checks_against_stripe_and_applies(make_app, fake_stripe):
    app = make_app(staff_hasher=FAST, staff_insecure_cookies=True,
                   stripe_api_key="sk_test_fake", stripe_api_base=fake_stripe.url)  # fmt: skip
    accounts_for(runtime(app)).add("admin@news.example", "admin", actor="test", password=GOOD)
    fake_stripe.add(sp.subscription("sub_new", "cus_new", "active"))
    client, token = signed_in(app, "admin")
    check = client.post("/staff/operations", data={"csrf_token": token, "operation": "sync_check"})
    assert check.status_code == 303
    status = _wait_for_end(app)
    assert status["state"] == "done", status
    assert status["result"]["listed"] == 1 and status["result"]["shown"]["missing"] == ["sub_new"]
    assert _ledger(app).queries.count() is None  # a check changes nothing
    assert "1 missing from the ledger" in _html(client.get("/staff/operations"))

    apply = client.post("/staff/api/operations", json={"operation": "sync_apply"},
                        headers={"X-CSRFToken": token})  # fmt: skip
    assert apply.status_code == 202
    assert _wait_for_end(app)["state"] == "done"
    assert _ledger(app).queries.count() == 1
    (synced,) = _audit(app, "sync_applied")
    assert synced["actor"] == "admin@news.example"


# --- in the browser ---------------------------------------------------------------------


@pytest.mark.browser
def test_a_failed_event_is_replayed_from_its_page(app, browser, handler):
    ledger = _ledger(app)
    handler.break_()
    payload = sp.body(_active(1))
    answer = app.test_client().post(
        "/webhooks/stripe",
        data=payload,
        headers={"Stripe-Signature": sp.sign(payload)},
        content_type="application/json",
    )
    assert answer.status_code == 500  # the handler's bug: logged failed, for replay
    (event_id,) = ledger.events.failed_ids()
    handler.fix()  # the bug is fixed

    page = open_page(app, browser, "editor")
    page.goto(url("/staff/webhooks?outcome=failed"))
    page.click(f"text={event_id}")
    assert page.text_content("#event-outcome") == "failed"
    page.click("#replay")
    page.wait_for_selector("#replayed")
    assert page.text_content("#event-outcome") == "applied"
    assert "Replayed: applied" in page.text_content("#replayed")
    assert ledger.queries.count() == 1 and ledger.events.failed_ids() == []
    assert page.console_errors == []
    page.close()


@pytest.mark.browser
@pytest.mark.parametrize("width", WIDTHS)
def test_the_webhook_pages_fit_at_both_widths(app, browser, width):
    ledger = _ledger(app)
    long_type = sp.subscription("sub_9", "cus_9", "mystery")
    long_type["metadata"] = {"note": "a long note " * 20}
    failing = sp.subscription_event(long_type)
    apply_event(ledger.writer, failing)
    for n in range(4):
        apply_event(ledger.writer, _active(n))
    apply_event(ledger.writer, sp.event("customer.updated", {"id": "cus_1"}))
    operations.Operations(runtime(app)).start("rebuild", actor="admin@news.example", wait=True)

    page = open_page(app, browser, "admin", width=width)
    page.goto(url("/staff/webhooks"))
    page.wait_for_selector("#events")
    fits(page)
    page.goto(url(f"/staff/webhooks/events/{failing['id']}"))
    fits(page)
    page.goto(url("/staff/operations"))
    page.wait_for_selector("#result")
    fits(page)
    assert page.console_errors == []
    page.close()


@pytest.mark.browser
def test_the_operations_page_shows_the_result_when_the_operation_ends(app, browser, monkeypatch):
    """With JavaScript, the page polls /staff/api/operations while one runs and reloads when
    it ends (without it, the Refresh link does the same)."""
    release = threading.Event()

    def slow(rt, actor, progress):
        progress("read 5 of about 10 records")
        release.wait(10)
        return operations.run_rebuild(rt, actor, progress)

    monkeypatch.setitem(operations.RUNNERS, "rebuild", slow)
    operations.Operations(runtime(app)).start("rebuild", actor="admin@news.example")
    page = open_page(app, browser, "admin")
    try:
        page.goto(url("/staff/operations"))
        assert page.text_content("#state") == "running"
        assert "read 5 of about 10 records" in page.text_content("#progress")
        release.set()
        page.wait_for_selector("#result", timeout=10_000)
        assert page.text_content("#state") == "done"
        assert page.console_errors == []
    finally:
        release.set()
        _wait_for_end(app)
        page.close()
