"""Hostile requests to the staff features added last: the list of members (its filters,
sort and cursor, HTML and JSON), the viewer's own time zone, the campaign form's live
preview and its times in the newsroom's zone (DST gaps, the year 9999), the holdout as a
percentage, and the goal editor's preview. Each is a clear 4xx naming the field by its
label (JSON under /staff/api/), never a 500, and nothing is stored."""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import quote

import pytest

from membership.core.runtime import runtime
from membership.goals import store as goals
from membership.ledger import ledger_for
from membership.prompts import campaigns, store
from membership.staff import accounts_for
from membership.staff.campaigns import form as campaign_form
from tests.support.ledger_helpers import add_offline, join
from tests.support.prompt_helpers import EXAMPLE
from tests.support.staff import add_members, signed_in


def _cursor(state) -> str:
    return base64.urlsafe_b64encode(json.dumps(state).encode()).decode()


def _stored_campaigns(app) -> list:
    rt = runtime(app)
    return store.load_all(rt.redis, rt.keys)


# --- the list of members ------------------------------------------------------------------

BAD_LIST_QUERIES = [
    ("limit=-1", "limit", "Per page"),
    ("limit=1e309", "limit", "Per page"),
    ("limit=NaN", "limit", "Per page"),
    ("limit=inf", "limit", "Per page"),
    ("limit=99999999999999999999999", "limit", "Per page"),
    ("limit=", "limit", "Per page"),
    ("limit=%C2%B2", "limit", "Per page"),  # a superscript two: a digit to str.isdigit
    ("q=" + "a" * 10_000, "q", "Search"),
    ("plan=" + "p" * 10_000, "plan", "Plan"),
    ("plan=monthly%00", "plan", "Plan"),
    ("status=active%00", "status", "Status"),
    ("status=%ED%A0%80", "status", "Status"),  # a lone surrogate, UTF-8 encoded
    ("source=%FF%FE", "source", "Source"),
    ("current=yes", "current", "Counted"),
    ("sort=joined%00", "sort", "Sort by"),
    ("order=up", "order", "Order"),
    ("joined_from=2026-02-30", "joined_from", "Joined from"),
    ("joined_from=2026-13-01", "joined_from", "Joined from"),
    ("joined_to=20261207", "joined_to", "Joined to"),
    ("joined_to=%EF%BC%92026-12-07", "joined_to", "Joined to"),  # a fullwidth digit
    ("joined_from=2026-12-07&joined_to=2026-12-06", "joined_to", "Joined to"),
    ("cursor=%00%00", "cursor", "Page"),
    ("cursor=" + "A" * 10_000, "cursor", "Page"),
    ("cursor=" + _cursor(["name", False, "x"]), "cursor", "Page"),  # another sort's
    ("sort=name&cursor=" + _cursor(["name", True, "x"]), "cursor", "Page"),  # another order's
    ("cursor=" + _cursor(["joined", True, 1.5, "", 0]), "cursor", "Page"),
    ("cursor=" + _cursor(["joined", True, 0, "", True]), "cursor", "Page"),
    ("cursor=" + _cursor(["joined", True, 0, "", -1]), "cursor", "Page"),
    ("cursor=" + _cursor(["joined", True, 0, "", 10**30]), "cursor", "Page"),
    ("cursor=" + _cursor(["joined", True, 10**400, "stripe:cus_1", 1]), "cursor", "Page"),
    ("cursor=" + _cursor(["joined", True, -(10**30), "stripe:cus_1", 1]), "cursor", "Page"),
    ("sort=name&order=asc&cursor=" + _cursor(["name", False, "\ud800"]), "cursor", "Page"),
    ("q=cus_1&cursor=" + _cursor(["joined", True, 0, "", 0]), "cursor", "Page"),  # the list's
    ("q=cus_1&cursor=" + _cursor(["id", False, "\ud800"]), "cursor", "Page"),
    ("q=anna&cursor=" + _cursor(["joined", True, 0, "", 0]), "cursor", "Page"),
]


@pytest.fixture
def people(app):
    ledger = ledger_for(runtime(app))
    join(ledger, "cus_1anna", "anna@example.org", "Anna Kovalenko", at=1_780_000_000)
    join(ledger, "cus_2bohd", "bohdan@example.org", "Bohdan Ivanenko", at=1_780_086_400)
    add_offline(ledger, "friend@example.org", "comp")
    return app


def test_a_hostile_list_query_is_a_400_naming_its_field(people, subtests):
    """Each query a subtest: reads only, so they share one app, its people and a session."""
    client, _ = signed_in(people, "viewer")
    for query, field, label in BAD_LIST_QUERIES:
        with subtests.test(query=query[:80]):
            answer = client.get(f"/staff/api/members?{query}")
            assert answer.status_code == 400, (query[:80], answer.status_code)
            error = answer.get_json()["error"]
            assert (error["code"], error["field"]) == ("bad_request", field)
            assert error["message"].startswith(f"{label}: ")
            page = client.get(f"/staff/members?{query}")
            assert page.status_code == 400, (query[:80], page.status_code)
            assert f"{label}: " in page.get_data(as_text=True)


GOOD_LIST_QUERIES = [
    "sort=name&sort=email",  # repeated: the first one counts
    "limit=1&limit=-1",
    "sort=email&order=asc&cursor=" + _cursor(["email", False, "a" * 10_000]),  # well formed
    "joined_from=0001-01-01&joined_to=9999-12-31",
    "joined_from=9999-12-31",
    "q=cus_",
    "q=%00",
    "q=%ED%A0%80",
    "q=cus_%00",
    "q=" + quote("анна"),
    "plan=" + quote("\u202e<script>"),
]


def test_odd_but_valid_list_queries_answer_a_list(people, subtests):
    client, _ = signed_in(people, "viewer")
    for query in GOOD_LIST_QUERIES:
        with subtests.test(query=query[:80]):
            answer = client.get(f"/staff/api/members?{query}")
            assert answer.status_code == 200, (query, answer.get_data(as_text=True)[:300])
            assert isinstance(answer.get_json()["members"], list)
            assert client.get(f"/staff/members?{query}").status_code == 200


def test_the_list_follows_its_own_cursors_and_refuses_them_elsewhere(people):
    client, _ = signed_in(people, "viewer")
    first = client.get("/staff/api/members?limit=1").get_json()
    assert len(first["members"]) == 1 and first["cursor"]
    second = client.get(f"/staff/api/members?limit=1&cursor={first['cursor']}").get_json()
    assert second["members"] != first["members"]
    # The list's cursor on the same list in the other order, by name, or in a search: refused.
    for other in ("order=asc", "sort=name", "q=anna", "q=cus_"):
        answer = client.get(f"/staff/api/members?limit=1&{other}&cursor={first['cursor']}")
        assert answer.status_code == 400, other
        assert answer.get_json()["error"]["field"] == "cursor"
    by_id = client.get("/staff/api/members?limit=1&q=cus_").get_json()
    assert by_id["cursor"]
    answer = client.get(f"/staff/api/members?limit=1&cursor={by_id['cursor']}")
    assert answer.status_code == 400


def test_the_list_is_for_signed_in_staff_only(people):
    client, _ = signed_in(people, None)
    assert client.get("/staff/api/members").status_code == 401
    assert client.get("/staff/members").status_code in (302, 303)
    viewer, token = signed_in(people, "viewer")
    for method in ("post", "put", "delete"):
        answer = getattr(viewer, method)("/staff/api/members", data={"csrf_token": token})
        assert answer.status_code in (403, 405), method


# --- the viewer's own time zone -----------------------------------------------------------

BAD_ZONES = [
    "Etc/../../etc/passwd",
    "../../../../etc/passwd",
    "/etc/localtime",
    "Europe/Kyiv\x00",
    "Europe/Kyiv ",
    "europe/kyiv",
    "Mars/Olympus",
    "\udcff",  # a lone surrogate: what an invalid UTF-8 byte becomes
    "z" * 10_000,
    "posixrules",
]


def test_an_unknown_or_crafted_time_zone_is_refused_by_its_label(app, subtests):
    """Each zone a subtest, on one app: a refused one changes nothing for the next."""
    client, token = signed_in(app, "viewer")
    for zone in BAD_ZONES:
        with subtests.test(zone=zone[:40]):
            body = f"timezone={quote(zone, errors='surrogateescape')}&csrf_token={quote(token)}"
            form = "application/x-www-form-urlencoded"
            answer = client.post("/staff/me/timezone", data=body, content_type=form)
            assert answer.status_code == 400
            assert "Time zone: expected a zone from the list" in answer.get_data(as_text=True)
            assert accounts_for(runtime(app)).get("viewer@news.example").timezone == ""


def test_the_time_zone_form_needs_its_token_a_session_and_post(app):
    client, token = signed_in(app, "viewer")
    data = {"timezone": "Europe/Kyiv"}
    assert client.post("/staff/me/timezone", data=data).status_code == 400  # no CSRF token
    forged = {**data, "csrf_token": token[:-2] + "xx"}
    assert client.post("/staff/me/timezone", data=forged).status_code == 400
    assert client.get("/staff/me/timezone").status_code == 405
    out, out_token = signed_in(app, None)
    answer = out.post("/staff/me/timezone", data={**data, "csrf_token": out_token})
    assert answer.status_code in (302, 303, 401, 403)
    assert accounts_for(runtime(app)).get("viewer@news.example").timezone == ""
    # Repeated: the first value counts; the form is then saved.
    body = f"timezone=Europe%2FKyiv&timezone=Etc%2F..%2F..&csrf_token={quote(token)}"
    form = "application/x-www-form-urlencoded"
    saved = client.post("/staff/me/timezone", data=body, content_type=form)
    assert saved.status_code == 200
    assert accounts_for(runtime(app)).get("viewer@news.example").timezone == "Europe/Kyiv"


def test_two_admins_change_their_own_zones_at_once(app):
    first, first_token = signed_in(app, "admin")
    second, second_token = signed_in(app, "editor")
    a = first.post("/staff/me/timezone", data={"timezone": "Asia/Tokyo", "csrf_token": first_token})
    b = second.post("/staff/me/timezone", data={"timezone": "", "csrf_token": second_token})
    assert (a.status_code, b.status_code) == (200, 200)
    accounts = accounts_for(runtime(app))
    assert accounts.get("admin@news.example").timezone == "Asia/Tokyo"
    assert accounts.get("editor@news.example").timezone == ""


# --- the campaign form's preview and times ------------------------------------------------


def _form(**changes) -> dict:
    values = {k: v for k, v in campaign_form.to_form(EXAMPLE).items() if v not in ("", [])}
    values["id"] = "hostile-preview"
    return {**values, **changes}


def test_the_live_preview_needs_a_session_its_token_and_post_and_stores_nothing(app):
    viewer, token = signed_in(app, "viewer")
    assert viewer.post("/staff/campaigns/preview", data=_form()).status_code == 400  # no token
    assert viewer.get("/staff/campaigns/preview").status_code == 405
    out, out_token = signed_in(app, None)
    answer = out.post("/staff/campaigns/preview", data={**_form(), "csrf_token": out_token})
    assert answer.status_code in (302, 303, 401, 403)
    shown = viewer.post("/staff/campaigns/preview", data={**_form(), "csrf_token": token})
    assert shown.status_code == 200 and 'id="preview-' in shown.get_data(as_text=True)
    # A viewer may not save through the form's own door, whatever its action says.
    saving = viewer.post("/staff/campaigns/new", data={**_form(), "csrf_token": token})
    assert saving.status_code == 403
    assert _stored_campaigns(app) == []


BAD_FORM_VALUES = [
    ({"control_share": "NaN"}, "Holdout share: expected a number from 0 to 50 (%)"),
    ({"control_share": "inf"}, "Holdout share: expected a number from 0 to 50 (%)"),
    ({"control_share": "1e309"}, "Holdout share: at most 50%"),
    ({"control_share": "-1"}, "Holdout share: at least 0%"),
    ({"control_share": "50.0000001"}, "Holdout share: at most 50%"),
    ({"control_share": "9" * 10_000}, "Holdout share: at most 50%"),
    ({"control_share": "0x10"}, "Holdout share: expected a number from 0 to 50 (%)"),
    ({"control_share": "1" + "0" * 5000}, "Holdout share: at most 50%"),
    ({"control_share": "10%"}, "Holdout share: expected a number from 0 to 50 (%)"),
    ({"priority": "1e999"}, "Priority: "),
    ({"priority": "9" * 30}, "Priority: "),
    ({"priority": "-" + "9" * 18}, "Priority: "),
    ({"starts_at": "2026-02-30T10:00"}, "Starts at: expected a date and time"),
    ({"starts_at": "2026-12-07T24:00"}, "Starts at: expected a date and time"),
    ({"starts_at": "10000-01-01T00:00"}, "Starts at: expected a date and time"),
    ({"starts_at": "\x00"}, "Starts at: expected a date and time"),
    ({"ends_at": "x" * 10_000}, "Ends at (exclusive): expected a date and time"),
    ({"ends_at": "2026-10-31T23:59"}, "Ends at (exclusive): must be after Starts at"),
    ({"name": "n" * 10_000}, "Name: "),
    ({"name": ""}, "Name: required"),
    ({"placement": "popup\x00"}, "Placement: "),
    ({"variants[0].weight": "-1"}, "Variant A, weight: "),
    ({"variants[0].weight": "NaN"}, "Variant A, weight: "),
    ({"variants[0].copy.en.headline": "{count"}, "Variant A, English headline: "),
]


def test_hostile_form_values_are_named_by_their_label(app, subtests):
    """Each value a subtest, on one app: a refused one stores nothing for the next."""
    client, token = signed_in(app, "editor")
    for changes, message in BAD_FORM_VALUES:
        with subtests.test(changes=repr(changes)[:60]):
            form = {**_form(starts_at="2026-11-01T00:00"), **changes, "csrf_token": token}
            preview = client.post("/staff/campaigns/preview", data=form)
            assert preview.status_code == 400, preview.get_data(as_text=True)[:500]
            assert message in preview.get_data(as_text=True).replace("&#34;", '"')
            saving = client.post("/staff/campaigns/new", data=form)
            assert saving.status_code == 400
            assert message in saving.get_data(as_text=True).replace("&#34;", '"')
            assert _stored_campaigns(app) == []


def test_scalars_sent_as_arrays_and_rows_out_of_range_are_no_server_error(app):
    client, token = signed_in(app, "editor")
    form = "application/x-www-form-urlencoded"
    body = (
        "id=a-b&id=c&name=N&name=M&status=draft&status=live&placement=inline&placement=gate"
        "&control_share=10&control_share=60&variants%5B0%5D.id=a&variants%5B0%5D.weight=1"
        "&variants%5B0%5D.copy.en.headline=Hi&variants%5B0%5D.copy.en.cta=Go"
        "&variants%5B0%5D.copy.en.headline.few=x"  # English has no "few" form: not read
        "&variants%5B999%5D.id=z&variants%5B99999%5D.id=y&variants%5B-1%5D.id=w"
        "&locales_mode=some&locales=en&locales=en&locales=xx%00&remove=&action=preview"
        f"&csrf_token={quote(token)}"
    )
    for path in ("/staff/campaigns/preview", "/staff/campaigns/new"):
        answer = client.post(path, data=body, content_type=form)
        assert answer.status_code in (200, 400), (path, answer.status_code)
    huge_row = client.post("/staff/campaigns/new", data={**_form(), "remove": "99999",
                                                         "csrf_token": token})  # fmt: skip
    assert huge_row.status_code == 400
    assert "expected a variant&#39;s row number" in huge_row.get_data(as_text=True)
    assert _stored_campaigns(app) == []


@pytest.fixture
def kyiv(newsroom_in):
    return newsroom_in("Europe/Kyiv")


@pytest.fixture
def new_york(newsroom_in):
    return newsroom_in("America/New_York")


def test_a_time_the_clocks_skip_is_refused_by_its_label(kyiv):
    client, token = signed_in(kyiv, "editor")
    # Kyiv's clocks go from 03:00 to 04:00 on 29 March 2026: 03:30 never happens.
    form = {**_form(starts_at="2026-03-29T03:30"), "csrf_token": token}
    for path in ("/staff/campaigns/preview", "/staff/campaigns/new"):
        answer = client.post(path, data=form)
        html = answer.get_data(as_text=True)
        assert answer.status_code == 400, path
        assert "Starts at: 2026-03-29T03:30 does not exist in Europe/Kyiv" in html
    assert _stored_campaigns(kyiv) == []
    # The hour before and after it are times like any other.
    ok = {**form, "starts_at": "2026-03-29T02:59", "ends_at": "2026-03-29T04:00"}
    assert client.post("/staff/campaigns/new", data=ok).status_code == 303
    saved = campaigns.to_json(_stored_campaigns(kyiv)[0])
    assert (saved["starts_at"], saved["ends_at"]) == (
        "2026-03-29T00:59:00Z",
        "2026-03-29T01:00:00Z",
    )


def test_a_time_the_clocks_repeat_is_its_first_occurrence(kyiv):
    client, token = signed_in(kyiv, "editor")
    # Kyiv's clocks go from 04:00 back to 03:00 on 25 October 2026: 03:30 happens twice.
    form = {**_form(starts_at="2026-10-25T03:30", ends_at=""), "csrf_token": token}
    assert client.post("/staff/campaigns/new", data=form).status_code == 303
    saved = campaigns.to_json(_stored_campaigns(kyiv)[0])
    assert saved["starts_at"] == "2026-10-25T00:30:00Z"  # summer time, UTC+3
    html = client.get("/staff/campaign/hostile-preview/edit").get_data(as_text=True)
    assert 'name="starts_at" type="datetime-local" value="2026-10-25T03:30"' in html


def _edit_form(client, campaign_id: str) -> dict:
    """The edit form's fields as the page fills them (text inputs and hidden ones)."""
    html = client.get(f"/staff/campaign/{campaign_id}/edit").get_data(as_text=True)
    fields = dict(re.findall(r'<input[^>]* name="([^"]+)"[^>]* value="([^"]*)"', html))
    fields |= dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))
    return {k: v.replace("&#34;", '"').replace("&#39;", "'") for k, v in fields.items()}


def test_the_second_of_a_repeated_hour_is_kept_when_the_form_is_saved_unchanged(kyiv):
    # 01:30Z on 25 October 2026 is the second 03:30 in Kyiv (winter time, UTC+2).
    rt = runtime(kyiv)
    document = {**EXAMPLE, "starts_at": "2026-10-25T01:30:00Z", "ends_at": None}
    store.apply(rt.redis, rt.keys, [campaigns.parse(document)], actor="test")
    client, token = signed_in(kyiv, "editor")
    form = _edit_form(client, "winter-drive")
    assert form["starts_at"] == "2026-10-25T03:30"
    form = {**_form(), **form, "csrf_token": token}
    form.pop("id")
    saved = client.post("/staff/campaign/winter-drive/edit", data=form)
    assert saved.status_code == 303, saved.get_data(as_text=True)[-2000:]
    after = campaigns.to_json(store.get(rt.redis, rt.keys, "winter-drive"))
    assert after["starts_at"] == "2026-10-25T01:30:00Z"


def test_two_admins_saving_one_campaign_at_once(app):
    rt = runtime(app)
    store.apply(rt.redis, rt.keys, [campaigns.parse(EXAMPLE)], actor="test")
    first, first_token = signed_in(app, "admin")
    second, second_token = signed_in(app, "editor")
    mine, theirs = _edit_form(first, "winter-drive"), _edit_form(second, "winter-drive")
    base = {k: v for k, v in _form().items() if k != "id"}
    # One previews (which stores nothing, so the other's save is not refused for it) ...
    preview = {**base, **mine, "name": "Previewed", "csrf_token": first_token}
    assert first.post("/staff/campaigns/preview", data=preview).status_code == 200
    saved = {**base, **theirs, "name": "Theirs", "csrf_token": second_token}
    assert second.post("/staff/campaign/winter-drive/edit", data=saved).status_code == 303
    # ... then saves over the version it opened: refused, what was typed kept on the page.
    late = first.post("/staff/campaign/winter-drive/edit", data={**preview, "name": "Mine"})
    assert late.status_code == 409
    assert 'value="Mine"' in late.get_data(as_text=True)
    assert store.get(rt.redis, rt.keys, "winter-drive").name == "Theirs"


@pytest.mark.parametrize(
    ("zone_app", "typed"),
    [("kyiv", "9999-12-31T23:59"), ("new_york", "9999-12-31T23:59"), ("kyiv", "0001-01-01T00:00")],
)
def test_times_at_the_ends_of_the_calendar_are_no_server_error(request, zone_app, typed):
    app = request.getfixturevalue(zone_app)
    client, token = signed_in(app, "editor")
    form = {**_form(starts_at="2026-11-01T00:00", ends_at=typed), "csrf_token": token}
    preview = client.post("/staff/campaigns/preview", data=form)
    saved = client.post("/staff/campaigns/new", data=form)
    assert preview.status_code in (200, 400)
    assert saved.status_code in (303, 400)
    if saved.status_code == 400:
        assert "Ends at (exclusive): " in saved.get_data(as_text=True)
        assert _stored_campaigns(app) == []
    else:
        edit = client.get("/staff/campaign/hostile-preview/edit")
        assert edit.status_code == 200
        assert client.get("/staff/campaigns").status_code == 200


# --- the goal editor's preview ------------------------------------------------------------

BAD_PREVIEW_COUNTS = ["-1", "1e309", "NaN", "inf", "9" * 10_000, "\u00b2", "1.5", "1\x00"]


def test_a_hostile_preview_count_is_named_and_nothing_is_stored(app, subtests):
    add_members(app)
    client, token = signed_in(app, "editor")
    viewer, viewer_token = signed_in(app, "viewer")
    rt = runtime(app)
    for count in BAD_PREVIEW_COUNTS:
        with subtests.test(count=count[:20]):
            form = {"target": "100", "name": "Hundred", "preview_count": count, "csrf_token": token}
            answer = client.post("/staff/goals/preview", data=form)
            html = answer.get_data(as_text=True)
            assert answer.status_code == 400, (count[:20], answer.status_code)
            found = re.search(r'id="preview_count-error">([^<]*)<', html)
            assert found and "expected a whole number of members" in found.group(1)
            # A viewer may preview too (it stores nothing): the same refusal.
            refused = viewer.post("/staff/goals/preview", data={**form, "csrf_token": viewer_token})
            assert refused.status_code == 400
            assert goals.load(rt.redis, rt.keys) == []


HOSTILE_GOAL_CHANGES = [
    {"target": "NaN"},
    {"target": "1e309"},
    {"target": "-5"},
    {"target": "9" * 10_000},
    {"deadline": "2026-02-30"},
    {"deadline": "9999-12-31T23:59"},
    {"name": "\x00" * 10},
    {"copy.en.headline": "{count"},
]


def test_hostile_goal_previews_are_4xx(app, subtests):
    client, token = signed_in(app, "viewer")
    for changes in HOSTILE_GOAL_CHANGES:
        with subtests.test(changes=repr(changes)[:60]):
            form = {"target": "100", "name": "Hundred", **changes, "csrf_token": token}
            answer = client.post("/staff/goals/preview", data=form)
            assert 200 <= answer.status_code < 500
            no_token = {**form, "csrf_token": ""}
            assert client.post("/staff/goals/preview", data=no_token).status_code == 400


PAGES_WITH_TIMES = [
    "/staff/campaigns",
    "/staff/campaign/winter-drive",
    "/staff/campaign/winter-drive/edit",
    "/staff/campaign/winter-drive/preview",
    "/staff/campaign/winter-drive/results",
    "/staff/audit",
    "/staff/",
]


@pytest.mark.parametrize("at", ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"])
def test_times_at_the_calendars_ends_show_in_any_zone(kyiv, at):
    rt = runtime(kyiv)
    document = {**EXAMPLE, "starts_at": "0001-01-01T00:00:00Z", "ends_at": at}
    if at.startswith("0001"):
        document["ends_at"] = "0001-01-02T00:00:00Z"
    store.apply(rt.redis, rt.keys, [campaigns.parse(document)], actor="test")
    client, token = signed_in(kyiv, "editor")
    for zone in ("", "Pacific/Kiritimati", "Etc/GMT+12"):  # the newsroom's, UTC+14, UTC-12
        chosen = client.post("/staff/me/timezone", data={"timezone": zone, "csrf_token": token})
        assert chosen.status_code == 200
        for path in PAGES_WITH_TIMES:
            assert client.get(path).status_code == 200, (zone, path)


HOSTILE_DRAFTS = [
    b'{"control_share": NaN}',
    b'{"control_share": Infinity}',
    b'{"priority": 1e400}',
    b'{"priority": -1e400}',
    b'{"priority": 100000000000000000000000000000000}',
    b'{"starts_at": "2026-02-30T10:00:00Z"}',
    b'{"ends_at": "9999-12-31T23:59:59-14:00"}',  # after the calendar's end in UTC
    b'{"starts_at": ["2026-11-01T00:00:00Z"]}',
    b'{"name": {"a": 1}}',
    b'{"variants": "a"}',
    b'{"locales": [null]}',
    b'{"audience": {"articles_read": {"min": NaN}}}',
]


def _hostile_draft(body: bytes) -> bytes:
    """The example campaign as a JSON draft, with `body`'s fields in place of its own."""
    draft = json.dumps({**EXAMPLE, "id": "hostile-preview"})
    merged = json.loads(draft) | json.loads(body)
    raw = body if b"NaN" in body or b"Infinity" in body else json.dumps(merged).encode()
    if raw is body:  # Python's json reads NaN: put it in the draft as text
        key = body.decode().split('"')[1]
        raw = draft[:-1].encode() + b", " + body[1:-1] + b"}"
        assert key in raw.decode()
    return raw


def test_a_hostile_draft_for_the_json_preview_is_a_400_naming_its_field(app, subtests):
    client, token = signed_in(app, "viewer")
    headers = {"X-CSRFToken": token}
    for body in HOSTILE_DRAFTS:
        with subtests.test(body=body):
            answer = client.post("/staff/api/campaigns/preview", data=_hostile_draft(body),
                                 headers=headers, content_type="application/json")  # fmt: skip
            assert answer.status_code == 400, (body, answer.get_data(as_text=True)[:300])
            assert answer.get_json()["error"]["message"]
            assert _stored_campaigns(app) == []


def test_a_year_before_1000_is_stored_in_four_digits_and_read_back(app):
    """strftime's %Y wrote year 999 as '999', which no reader takes: one such save made
    every stored campaign unreadable."""
    client, token = signed_in(app, "editor")
    form = {**_form(starts_at="0999-01-01T00:00", ends_at=""), "csrf_token": token}
    assert client.post("/staff/campaigns/new", data=form).status_code == 303
    draft = {**EXAMPLE, "id": "second", "starts_at": "0001-01-01T00:00:00Z"}
    headers = {"X-CSRFToken": token}
    assert client.post("/staff/api/campaigns", json=draft, headers=headers).status_code == 201
    starts = {c.id: campaigns.to_json(c)["starts_at"] for c in _stored_campaigns(app)}
    assert starts == {"hostile-preview": "0999-01-01T00:00:00Z", "second": "0001-01-01T00:00:00Z"}
    listed = client.get("/staff/campaigns").get_data(as_text=True)
    assert '<time datetime="0999-01-01T00:00:00Z"' in listed
    edit = client.get("/staff/campaign/hostile-preview/edit").get_data(as_text=True)
    assert 'name="starts_at" type="datetime-local" value="0999-01-01T00:00"' in edit


def test_paging_while_another_admin_adds_members_neither_repeats_nor_skips(people):
    reader, _ = signed_in(people, "admin")
    adder, token = signed_in(people, "admin")
    seen, cursor = [], None
    for step in range(10):
        query = "limit=1" + (f"&cursor={cursor}" if cursor else "")
        page = reader.get(f"/staff/api/members?{query}").get_json()
        seen += [row["email"] for row in page["members"]]
        data = {"email": f"new{step}@example.org", "reason": "comp", "csrf_token": token}
        assert adder.post("/staff/api/members/offline", data=data).status_code == 201
        cursor = page["cursor"]
        if cursor is None:
            break
    # Those added while paging joined after the first page: newer than every cursor.
    assert seen == ["friend@example.org", "bohdan@example.org", "anna@example.org"]


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Etc/GMT+12"])
def test_a_goal_due_on_the_calendars_last_day_shows_in_any_zone(app, zone):
    client, token = signed_in(app, "editor")
    data = {"target": "100", "name": "Far", "deadline": "9999-12-31", "csrf_token": token}
    assert client.post("/staff/goals", data=data).status_code == 303
    chosen = client.post("/staff/me/timezone", data={"timezone": zone, "csrf_token": token})
    assert chosen.status_code == 200
    for path in ("/staff/goals", "/staff/goals/1", "/staff/", "/staff/audit"):
        assert client.get(path).status_code == 200, path
    preview = client.post("/staff/goals/1/preview", data={**data, "preview_count": "99"})
    assert preview.status_code in (200, 400)


def test_offline_members_sent_as_arrays_objects_or_without_a_role_are_refused(people):
    editor, token = signed_in(people, "editor")
    headers = {"X-CSRFToken": token}
    for body, field in [
        ({"email": ["x@example.org"], "reason": "comp"}, "email"),
        ({"email": "x@example.org", "reason": {"why": "comp"}}, "reason"),
        ({"email": "x@example.org\u0000", "reason": "comp"}, "email"),
        ({"email": "x@example.org", "reason": "r" * 10_000}, "reason"),
    ]:
        answer = editor.post("/staff/api/members/offline", json=body, headers=headers)
        assert answer.status_code == 400, body
        assert answer.get_json()["error"]["field"] == field, body
    listed = editor.post("/staff/api/members/offline", json=["x@example.org"], headers=headers)
    assert listed.status_code == 400
    good = {"email": "x@example.org", "reason": "comp"}
    assert editor.post("/staff/api/members/offline", json=good).status_code == 400  # no token
    viewer, viewer_token = signed_in(people, "viewer")
    refused = viewer.post("/staff/api/members/offline", json=good,
                          headers={"X-CSRFToken": viewer_token})  # fmt: skip
    assert refused.status_code == 403
    found = editor.get("/staff/api/members?q=x%40example.org").get_json()["members"]
    assert found == []


@pytest.mark.parametrize("stored", ["Etc/../../etc/passwd", "Gone/Zone", "\x00", "z" * 300])
def test_a_stored_zone_this_host_does_not_know_shows_the_newsroom_zone(app, stored):
    """A zone saved by an older version, or on a host with other zone data, or written by
    hand: the pages fall back to UTC and the form offers a valid choice again."""
    rt = runtime(app)
    rt.redis.hset(rt.keys.staff_account("viewer@news.example"), "timezone", stored)
    seed = {**EXAMPLE, "starts_at": "2026-11-01T00:00:00Z"}
    store.apply(rt.redis, rt.keys, [campaigns.parse(seed)], actor="test")
    client, token = signed_in(app, "viewer")
    for path in ("/staff/", "/staff/me", "/staff/campaigns", "/staff/members", "/staff/audit"):
        assert client.get(path).status_code == 200, path
    assert 'title="1 Nov 2026, 00:00:00 UTC"' in client.get("/staff/campaigns").get_data(
        as_text=True
    )
    data = {"timezone": "Europe/Kyiv", "csrf_token": token}
    assert client.post("/staff/me/timezone", data=data).status_code == 200


def _everything(app) -> dict:
    """Every key of the test Redis and its value as DUMP gives it, staff sessions aside."""
    client = runtime(app).redis
    return {k: client.dump(k) for k in client.scan_iter(count=1000) if "session" not in str(k)}


def test_previews_write_nothing_to_redis(app):
    rt = runtime(app)
    store.apply(rt.redis, rt.keys, [campaigns.parse(EXAMPLE)], actor="test")
    client, token = signed_in(app, "viewer")
    client.get("/staff/")  # anything a first page writes, before the snapshot
    before = _everything(app)
    assert any(b"winter-drive" in (value or b"") for value in before.values())
    form = {**_form(), "csrf_token": token}
    assert client.post("/staff/campaigns/preview", data=form).status_code == 200
    assert (
        client.post("/staff/campaigns/preview", data={**form, "control_share": "x"}).status_code
        == 400
    )
    goal = {"target": "100", "name": "Hundred", "preview_count": "5", "csrf_token": token}
    assert client.post("/staff/goals/preview", data=goal).status_code == 200
    draft = {**EXAMPLE, "id": "draft"}
    api = client.post("/staff/api/campaigns/preview", json=draft, headers={"X-CSRFToken": token})
    assert api.status_code == 200
    assert _everything(app) == before


@pytest.mark.parametrize(
    ("count", "note"),
    [
        ("0", "At 0 members the banner shows"),
        ("1", "At 1 member the banner shows"),
        ("1,001", "At 1,001 members the banner shows"),
        (" 2 ", "At 2 members the banner shows"),
    ],
)
def test_the_goal_preview_note_at_edge_counts(app, count, note):
    client, token = signed_in(app, "editor")
    data = {"target": "100", "name": "Hundred", "preview_count": count, "csrf_token": token}
    answer = client.post("/staff/api/goals/preview", data=data)  # the form, as goals.js sends
    assert answer.status_code == 200
    assert answer.get_json()["note"].startswith(note)
    page = client.post("/staff/goals/preview", data=data)
    assert page.status_code == 200 and note in page.get_data(as_text=True)
    body = {"target": 100, "count": count.strip().replace(",", "")}
    api = client.post("/staff/api/goals/preview", json=body, headers={"X-CSRFToken": token})
    assert api.status_code == 200 and api.get_json()["note"].startswith(note)


def test_a_hostile_json_preview_count_is_a_400_naming_it(app, subtests):
    client, token = signed_in(app, "viewer")
    for count in [b"-1", b"1e400", b"NaN", b"true", b"[1]", b'{"n": 1}', b'"\\u00b2"']:
        with subtests.test(count=count):
            body = b'{"target": 100, "count": ' + count + b"}"
            answer = client.post("/staff/api/goals/preview", data=body,
                                 content_type="application/json",
                                 headers={"X-CSRFToken": token})  # fmt: skip
            assert answer.status_code == 400, (count, answer.get_data(as_text=True)[:300])
            assert "expected a whole number of members" in answer.get_data(as_text=True)


@pytest.mark.parametrize("zone", ["Etc/../../etc/passwd", "Mars/Olympus", "Europe/Kyiv\x00"])
def test_a_crafted_newsroom_timezone_setting_is_refused_at_start(zone):
    from membership.core.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="TIMEZONE: expected an IANA time zone"):
        load_settings({"TIMEZONE": zone})
