"""Goals and copy in the staff dashboard (/staff/goals, /staff/api/goals): add, edit and
remove goals with per-locale copy, a preview of the banner by /v1/banner's own view model
before saving (without JavaScript through the Preview button, with it as one types), the
roles, the version check between two editors, and the audit entries."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time

import pytest

from membership.core import audit
from membership.core.runtime import runtime
from membership.goals import rules as goal_rules
from membership.goals import store as goals
from membership.goals.rules import Goal
from membership.staff.goals import form as page
from membership.staff.goals.openapi import OPENAPI
from tests.support.member_count import set_member_count
from tests.support.staff import signed_in
from tests.support.staff_browser import WIDTHS, fits, open_page, url

AT = "2026-11-25T19:00:00Z"
LATER = "2026-11-26T10:00:00Z"
EDITOR = "editor@news.example"


def _keys(app):
    return runtime(app).keys


def _add(app, target=100, **fields):
    rt = runtime(app)
    return goals.add(
        rt.redis, rt.keys, goal_rules.parse_goal({"target": target, **fields}), actor="t"
    )


def _entries(app):
    rt = runtime(app)
    return audit.entries(rt.redis, rt.keys, limit=1000)


def _stored(app):
    rt = runtime(app)
    return goals.load(rt.redis, rt.keys)


def _snapshot(app, redis_client):
    """Everything a refused or read-only request must leave as it was."""
    keys = _keys(app)
    return (
        _stored(app),
        _entries(app),
        redis_client.get(keys.banner_version),
        redis_client.zrange(keys.goals_pending, 0, -1, withscores=True),
    )


def _form(goal: Goal | None = None, **fields) -> dict:
    values = page.form_values(goal) if goal else {}
    if goal is not None:
        values["version"] = goal_rules.version_of(goal)
    return {**values, **fields}


def _post(client, token, path, data):
    return client.post(path, data={"csrf_token": token, **data})


def _api(client, token, method, path, body=None):
    return client.open(path, method=method, json=body, headers={"X-CSRFToken": token})


# --- The rules (pure) -------------------------------------------------------------------
def test_plan_update_keeps_id_and_reached_state_sensibly():
    old = Goal(id=3, target=100, created_at=AT, reached_at=AT)
    others = [old, Goal(id=4, target=200)]
    same = goal_rules.plan_update(others, 50, old, Goal(id=0, target=100, name="n"), LATER)
    assert (same.id, same.created_at, same.reached_at, same.name) == (3, AT, AT, "n")
    # A new target the count is below: not reached (a milestone never reached is no milestone).
    assert goal_rules.plan_update(others, 50, old, Goal(id=0, target=150), LATER).reached_at is None
    # A new target the count is at: reached, keeping the first time it was.
    assert goal_rules.plan_update(others, 150, old, Goal(id=0, target=150), LATER).reached_at == AT
    fresh = Goal(id=5, target=300, created_at=AT)
    assert goal_rules.plan_update(
        [fresh], 400, fresh, Goal(id=0, target=350), LATER
    ).reached_at == (LATER)
    with pytest.raises(goal_rules.GoalError, match="target: goal 4 already has the target 200"):
        goal_rules.plan_update(others, 0, old, Goal(id=0, target=200), LATER)


def test_the_version_follows_what_the_form_edits_not_the_reached_time():
    goal = Goal(id=1, target=100, copy={"en": {"cta": "Join"}}, created_at=AT)
    assert goal_rules.version_of(goal) == goal_rules.version_of(
        Goal(**{**goal.__dict__, "reached_at": AT})
    )
    assert goal_rules.version_of(goal) != goal_rules.version_of(
        Goal(**{**goal.__dict__, "name": "x"})
    )
    assert goal_rules.version_of(goal) != goal_rules.version_of(
        Goal(**{**goal.__dict__, "copy": {"en": {"cta": "Join us"}}})
    )


def test_the_form_and_a_goal_round_trip():
    goal = Goal(
        id=2,
        target=30000,
        deadline="2099-01-01",
        name="Winter",
        copy={
            "en": {"message": "Only {remaining} to go", "cta": "Join"},
            "uk": {"headline": {"one": "{count} читач", "few": "{count} читачі"}},
        },
    )
    values = page.form_values(goal)
    assert values["copy.en.message.other"] == "Only {remaining} to go"
    assert values["copy.en.cta"] == "Join"
    assert values["copy.uk.headline.few"] == "{count} читачі"
    data = page.goal_data({**values, "copy.uk.message.many": "  "})  # blank: not set
    assert data == {
        "target": "30000",
        "deadline": "2099-01-01",
        "name": "Winter",
        "copy": goal.copy,
    }
    assert goal_rules.parse_goal(data).copy == goal.copy
    assert page.goal_data({"target": "30,000"})["target"] == "30000"
    # A plural override of the button (the CLI allows it) shows as its "other" form, the
    # one the banner uses, in the one box the button has.
    plural_cta = Goal(id=1, target=5, copy={"en": {"cta": {"one": "a", "other": "Join"}}})
    assert page.form_values(plural_cta)["copy.en.cta"] == "Join"


def test_every_plural_form_of_each_locale_has_a_box():
    forms = {loc: [b.form for b in page.copy_inputs(loc, "headline")] for loc in ("en", "uk")}
    assert forms == {"en": ["one", "other"], "uk": ["one", "few", "many", "other"]}
    assert [b.name for b in page.copy_inputs("uk", "cta")] == ["copy.uk.cta"]
    assert "invite" not in page.copy_fields()  # a goal cannot set it
    assert page.plural_examples("uk")["few"].startswith("2, 3, 4")


def test_parse_goal_names_each_bad_template_by_its_path():
    bad = {
        "target": 10,
        "copy": {"uk": {"message": {"few": "{oops}", "other": "ok"}}, "en": {"cta": "  "}},
    }
    with pytest.raises(goal_rules.GoalInvalid) as info:
        goal_rules.parse_goal(bad)
    errors = info.value.errors
    assert "the message template may use only" in errors["copy.uk.message.few"]
    assert "the cta template is empty" in errors["copy.en.cta"]
    assert str(info.value).startswith("copy: ")  # the CLI's one-line message is as before
    for odd in ({"en": "x"}, {"en": {"message": {"one": 5}}}, {"en": {"cta": 5}}, []):
        with pytest.raises(goal_rules.GoalError):  # typed, never an AttributeError
            goal_rules.parse_goal({"target": 10, "copy": odd})


def test_a_goal_keeps_its_own_past_deadline_when_edited():
    past = "2020-01-01"
    with pytest.raises(goal_rules.GoalError, match="deadline: 2020-01-01 is in the past"):
        goal_rules.parse_goal({"target": 10, "deadline": past})
    assert (
        goal_rules.parse_goal({"target": 10, "deadline": past}, keep_deadline=past).deadline == past
    )
    with pytest.raises(goal_rules.GoalError, match="in the past"):
        goal_rules.parse_goal({"target": 10, "deadline": "2020-01-02"}, keep_deadline=past)


# --- The service (Redis) ----------------------------------------------------------------
def test_update_is_atomic_audited_and_moves_the_reached_state(app, redis_client):
    rt = runtime(app)
    set_member_count(redis_client, rt.keys, 120)
    goal = _add(app, 100, name="First")  # reached at once
    assert goal.reached_at is not None
    version_before = int(redis_client.get(rt.keys.banner_version))
    raised = goals.update(
        rt.redis, rt.keys, goal.id, goal_rules.parse_goal({"target": 150, "name": "Raised"}),
        expected=goal_rules.version_of(goal), actor=EDITOR,
    )  # fmt: skip
    assert (raised.id, raised.target, raised.reached_at) == (goal.id, 150, None)
    assert goals.get(rt.redis, rt.keys, goal.id) == raised
    assert redis_client.zscore(rt.keys.goals_pending, str(goal.id)) == 150
    assert int(redis_client.get(rt.keys.banner_version)) == version_before + 1
    entry = _entries(app)[0]
    assert (entry["action"], entry["actor"], entry["target"]) == (
        "goal_changed", EDITOR, f"goal {goal.id}",
    )  # fmt: skip
    assert entry["before"]["target"] == 100 and entry["before"]["name"] == "First"
    assert entry["after"]["target"] == 150 and entry["after"]["reached_at"] is None
    # The count reaching the new target marks it, as for any goal.
    assert goals.mark_reached(rt.redis, rt.keys, 150, LATER) == [goal.id]
    # An edit that changes nothing writes nothing.
    again = goals.get(rt.redis, rt.keys, goal.id)
    same = goal_rules.parse_goal({"target": 150, "name": "Raised"})
    before = _snapshot(app, redis_client)
    goals.update(
        rt.redis, rt.keys, goal.id, same, expected=goal_rules.version_of(again), actor=EDITOR
    )
    assert _snapshot(app, redis_client) == before


def test_update_refuses_another_version_and_an_unknown_goal(app, redis_client):
    rt = runtime(app)
    goal = _add(app, 100)
    before = _snapshot(app, redis_client)
    with pytest.raises(goal_rules.GoalConflict) as info:
        goals.update(rt.redis, rt.keys, goal.id, Goal(id=0, target=5), expected="0" * 16,
                     actor=EDITOR)  # fmt: skip
    assert info.value.current == goal
    assert goals.update(rt.redis, rt.keys, 99, Goal(id=0, target=5), expected="x", actor="t") is (
        None
    )
    with pytest.raises(goal_rules.GoalConflict):
        goals.remove(rt.redis, rt.keys, goal.id, actor=EDITOR, expected="0" * 16)
    assert _snapshot(app, redis_client) == before


def test_two_editors_saving_one_version_at_once_one_wins(app, redis_client):
    rt = runtime(app)
    goal = _add(app, 100)
    version = goal_rules.version_of(goal)
    outcomes = []
    barrier = threading.Barrier(8)

    def save(i):
        barrier.wait()
        try:
            goals.update(rt.redis, rt.keys, goal.id, Goal(id=0, target=100, name=f"n{i}"),
                         expected=version, actor=f"editor{i}")  # fmt: skip
            outcomes.append(("saved", i))
        except goal_rules.GoalConflict:
            outcomes.append(("conflict", i))

    threads = [threading.Thread(target=save, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    winners = [i for what, i in outcomes if what == "saved"]
    assert len(outcomes) == 8 and len(winners) == 1
    assert goals.get(rt.redis, rt.keys, goal.id).name == f"n{winners[0]}"
    changed = [e for e in _entries(app) if e["action"] == "goal_changed"]
    assert [e["actor"] for e in changed] == [f"editor{winners[0]}"]


# --- Pages and roles --------------------------------------------------------------------
def _forms(html: str) -> list[str]:
    return re.findall(r'<form[^>]*action="([^"]+)"', html)


@pytest.mark.parametrize("role", ["viewer", "editor", "admin"])
def test_the_list_for_every_role(app, redis_client, role):
    set_member_count(redis_client, _keys(app), 150)
    _add(app, 100, name="Reached <one>", copy={"uk": {"cta": "Долучитися"}})
    _add(app, 200, name="Next")
    _add(app, 500)
    client, _ = signed_in(app, role)
    response = client.get("/staff/goals")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="live-count">150<' in html
    assert "Reached &lt;one&gt;" in html and "<one>" not in html
    states = re.findall(r'class="state state-(\w+)"', html)
    assert states == ["milestone", "current", "upcoming"]
    assert "<script" not in html.replace('<script src="/staff/static/goals.js" defer></script>', "")
    assert "style=" not in html and "<style" not in html
    editing = role != "viewer"
    assert ("/staff/goals" in _forms(html)) == editing
    assert _forms(html) == (["/staff/logout", "/staff/goals"] if editing else ["/staff/logout"])
    goal_page = client.get("/staff/goals/1").get_data(as_text=True)
    assert ("/staff/goals/1" in _forms(goal_page)) == editing
    assert ("/staff/goals/1/remove" in goal_page) == editing
    assert "Preview of the banner" in goal_page  # every role sees the banner it would show
    assert "Долучитися" in goal_page  # the copy, readable (a box's value or the table)
    assert ('<table class="copy-table">' in goal_page) == (not editing)


def test_unknown_goals_are_404(app):
    client, token = signed_in(app, "editor")
    for path in ("/staff/goals/9", "/staff/goals/x", "/staff/goals/0", "/staff/goals/9/remove"):
        assert client.get(path).status_code == 404, path
    assert _post(client, token, "/staff/goals/9", _form(target="5", version="v")).status_code == (
        404
    )
    assert client.get("/staff/api/goals/9").get_json()["error"]["code"] == "not_found"
    assert client.get("/staff/api/goals/" + "9" * 40).status_code == 404


def test_adding_from_the_form(app, redis_client):
    client, token = signed_in(app, "editor")
    data = {
        "target": "30,000",
        "name": "Winter",
        "copy.uk.cta": "Долучитися",
        "copy.en.headline.one": "{count} reader",
        "copy.en.headline.other": "{count} readers",
    }
    response = _post(client, token, "/staff/goals", data)
    assert response.status_code == 303
    assert response.location.endswith("/staff/goals/1?saved=added")
    [goal] = _stored(app)
    assert (goal.target, goal.name) == (30000, "Winter")
    assert goal.copy == {
        "en": {"headline": {"one": "{count} reader", "other": "{count} readers"}},
        "uk": {"cta": "Долучитися"},
    }
    entry = _entries(app)[0]
    assert (entry["action"], entry["actor"], entry["after"]["target"]) == (
        "goal_added", EDITOR, 30000,
    )  # fmt: skip
    assert "Goal added." in client.get(response.location).get_data(as_text=True)


BAD_INPUT = [
    ({"target": ""}, "target", "expected a whole number of members"),
    ({"target": "0"}, "target", "expected 1 to"),
    ({"target": "10", "deadline": "2001-01-01"}, "deadline", "2001-01-01 is in the past"),
    ({"target": "10", "name": "a\u202eb"}, "name", "control characters"),
    ({"target": "10", "copy.uk.message.few": "{members}"}, "copy-uk-message-few",
     "the message template may use only"),
    ({"target": "10", "copy.en.cta": "{count}"}, "copy-en-cta", "the cta template may use"),
    ({"target": "10", "preview_count": "lots"}, "preview_count", "expected a whole number"),
]  # fmt: skip


def test_bad_input_is_named_next_to_its_field_and_nothing_is_stored(app, redis_client, subtests):
    """Each input a subtest, on one app: Redis is checked unchanged after each."""
    _add(app, 5)
    client, token = signed_in(app, "editor")
    before = _snapshot(app, redis_client)
    for data, field, message in BAD_INPUT:
        with subtests.test(field=field, data=repr(data)[:60]):
            paths = ["/staff/goals/preview"]  # a bad count only stops a preview
            if field != "preview_count":
                paths += ["/staff/goals", "/staff/goals/1"]
            for path in paths:
                extra = (
                    {"version": goal_rules.version_of(_stored(app)[0])}
                    if path == "/staff/goals/1"
                    else {}
                )
                response = _post(client, token, path, {**data, **extra})
                html = response.get_data(as_text=True)
                assert response.status_code == 400, path
                found = re.search(rf'id="{field}-error">([^<]*)<', html)
                assert found and message in found.group(1), (path, html[-3000:])
                assert f'aria-describedby="{field}-error"' in html or f' {field}-error"' in html
                assert html.count(found.group(1)) == 1  # once, where it belongs
                ids = re.findall(r' id="([^"]+)"', html)
                assert len(ids) == len(set(ids)), "duplicate ids"
            assert _snapshot(app, redis_client) == before


def test_a_taken_target_is_named(app):
    _add(app, 100)
    client, token = signed_in(app, "editor")
    response = _post(client, token, "/staff/goals", {"target": "100"})
    assert response.status_code == 400
    assert "goal 1 already has the target 100" in response.get_data(as_text=True)


def _banner_text(client, locale="en") -> dict:
    return client.get(f"/v1/banner?locale={locale}").get_json()


def _previews(html: str) -> dict[str, dict[str, str]]:
    found = {}
    for locale, body in re.findall(r'data-locale="(\w+)">(.*?)</figure>', html, re.S):
        parts = dict(re.findall(r'data-part="(\w+)">([^<]*)<', body))
        found[locale] = {k: v for k, v in parts.items() if k != "bar"}
    return found


def test_the_preview_without_javascript_stores_nothing(app, redis_client):
    set_member_count(redis_client, _keys(app), 22)
    goal = _add(app, 100)
    client, token = signed_in(app, "viewer")  # every role may preview
    before = _snapshot(app, redis_client)
    data = _form(goal, **{
        "copy.en.message.other": "Only {remaining} to go",
        "copy.uk.headline.few": "{count} читачі (few)",
        "copy.uk.headline.many": "{count} читачів (many)",
    })  # fmt: skip
    response = _post(client, token, "/staff/goals/1/preview", data)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    previews = _previews(html)
    assert previews["en"]["message"] == "Only 78 to go"
    assert previews["uk"]["headline"] == "22 читачі (few)"  # 22: the few form
    assert 'width="220"' in html  # the bar: 22 of 100
    assert "the banner shows this goal" in html
    # The plural form follows the preview's count: 25 takes "many" in Ukrainian.
    html = _post(client, token, "/staff/goals/1/preview", {**data, "preview_count": "25"})
    assert _previews(html.get_data(as_text=True))["uk"]["headline"] == "25 читачів (many)"
    assert _snapshot(app, redis_client) == before


def test_a_viewer_s_refused_preview_says_why(app, redis_client):
    """A viewer's page has no form to mark, so the preview box itself names what was wrong,
    on a goal's page and on the goals list (a new goal)."""
    goal = _add(app, 100)
    client, token = signed_in(app, "viewer")
    before = _snapshot(app, redis_client)
    for path in ("/staff/goals/1/preview", "/staff/goals/preview"):
        response = _post(client, token, path, {**_form(goal), "target": "many"})
        note = re.search(r'<p id="preview-note"[^>]*>([^<]*)<', response.get_data(as_text=True))
        assert response.status_code == 400
        assert note and note[1].startswith("Not previewed: Target: "), path
    assert _snapshot(app, redis_client) == before


def test_the_preview_is_what_v1_banner_answers_once_saved(app, redis_client):
    set_member_count(redis_client, _keys(app), 1234)
    goal = _add(app, 2000)
    _add(app, 5000)
    client, token = signed_in(app, "editor")
    copy = {"copy.en.message.other": "{remaining} more for {publication}",
            "copy.uk.cta": "Підтримати", "copy.uk.message.few": "мета {goal} (few)"}  # fmt: skip
    answer = _api(client, token, "POST", "/staff/api/goals/preview", None)
    assert answer.status_code == 400  # no body at all
    preview = client.post(
        "/staff/api/goals/preview",
        data={**_form(goal, **copy), "id": "1", "csrf_token": token},
    ).get_json()
    assert preview["shows_this_goal"] is True and preview["count"] == 1234
    saved = _post(client, token, "/staff/goals/1", _form(goal, **copy))
    assert saved.status_code == 303
    for locale in ("en", "uk"):
        served = _banner_text(client, locale)
        shown = preview["banner"][locale]
        for key in ("headline", "message", "cta", "goal", "count_display", "milestone"):
            assert shown[key] == served[key], (locale, key)
    assert _banner_text(client, "en")["message"] == "766 more for our newsroom"


def test_a_preview_of_a_goal_that_is_not_shown_says_so(app, redis_client):
    set_member_count(redis_client, _keys(app), 10)
    _add(app, 100)
    far = _add(app, 500)
    client, token = signed_in(app, "editor")
    html = _post(client, token, "/staff/goals/2/preview", _form(far)).get_data(as_text=True)
    assert "shows goal 1 (target 100), not this one" in html
    html = _post(client, token, "/staff/goals/2/preview", _form(far, preview_count="200"))
    assert "the banner shows this goal" in html.get_data(as_text=True)


def test_saving_an_edit_is_audited_and_reaches_the_banner(app, redis_client):
    set_member_count(redis_client, _keys(app), 40)
    goal = _add(app, 100, name="Spring")
    client, token = signed_in(app, "editor")
    edit = _form(goal, name="Summer", **{"copy.en.cta": "Join {publication}"})
    response = _post(client, token, "/staff/goals/1", edit)
    assert response.status_code == 303 and response.location.endswith("/staff/goals/1?saved=saved")
    assert "Saved: the banner shows it" in client.get(response.location).get_data(as_text=True)
    entry = _entries(app)[0]
    assert entry["action"] == "goal_changed" and entry["actor"] == EDITOR
    assert entry["before"]["name"] == "Spring" and entry["before"]["copy"] == {}
    assert entry["after"]["name"] == "Summer"
    assert entry["after"]["copy"] == {"en": {"cta": "Join {publication}"}}
    assert _banner_text(client)["cta"]["label"] == "Join our newsroom"


def test_the_second_of_two_editors_gets_409_and_overwrites_nothing(app, redis_client):
    goal = _add(app, 100, name="Base")
    first, first_token = signed_in(app, "editor")
    second, second_token = signed_in(app, "admin")
    # Both open the page (the version rides in a hidden field), the admin saves first.
    opened = first.get("/staff/goals/1").get_data(as_text=True)
    version = re.search(r'name="version" value="(\w+)"', opened).group(1)
    assert version == goal_rules.version_of(goal)
    assert _post(
        second, second_token, "/staff/goals/1", _form(goal, name="Theirs")
    ).status_code == (303)
    before = _snapshot(app, redis_client)
    mine = _form(goal, name="Mine")
    response = _post(first, first_token, "/staff/goals/1", mine)
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "changed by someone else since you opened it" in html
    assert "Theirs" in html and 'value="Mine"' in html  # their save shown, my values kept
    assert _snapshot(app, redis_client) == before  # nothing overwritten, nothing audited
    # The form now carries their version: saving again is a choice made knowing it.
    newer = re.search(r'name="version" value="(\w+)"', html).group(1)
    again = _post(first, first_token, "/staff/goals/1", {**mine, "version": newer})
    assert again.status_code == 303 and _stored(app)[0].name == "Mine"


def test_removing_asks_first_and_checks_the_version(app, redis_client):
    goal = _add(app, 100)
    client, token = signed_in(app, "editor")
    confirm = client.get("/staff/goals/1/remove").get_data(as_text=True)
    assert "Remove goal 1" in confirm and "/staff/goals/1/remove" in _forms(confirm)
    assert _post(client, token, "/staff/goals/1/remove", {}).status_code == 400
    assert _post(client, token, "/staff/goals/1/remove", {"version": "stale"}).status_code == 409
    assert _stored(app) == [goal]
    response = _post(
        client, token, "/staff/goals/1/remove", {"version": goal_rules.version_of(goal)}
    )
    assert response.status_code == 303 and response.location.endswith("/staff/goals?removed=1")
    assert _stored(app) == []
    assert "Goal 1 removed." in client.get(response.location).get_data(as_text=True)
    entry = _entries(app)[0]
    assert (entry["action"], entry["actor"], entry["before"]["id"]) == ("goal_removed", EDITOR, 1)
    assert _post(client, token, "/staff/goals/1/remove", {"version": "x"}).status_code == 404


def test_a_viewer_changes_nothing_by_any_door(app, redis_client):
    goal = _add(app, 100)
    client, token = signed_in(app, "viewer")
    before = _snapshot(app, redis_client)
    version = goal_rules.version_of(goal)
    refused = [
        _post(client, token, "/staff/goals", {"target": "5"}),
        _post(client, token, "/staff/goals/1", _form(goal, target="7")),
        _post(client, token, "/staff/goals/1/remove", {"version": version}),
        client.get("/staff/goals/1/remove"),
        _api(client, token, "POST", "/staff/api/goals", {"target": 5}),
        _api(client, token, "PUT", "/staff/api/goals/1", {"target": 7, "version": version}),
        _api(client, token, "DELETE", f"/staff/api/goals/1?version={version}"),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert _snapshot(app, redis_client) == before


# --- JSON -------------------------------------------------------------------------------
def test_the_json_api(app, redis_client):
    set_member_count(redis_client, _keys(app), 7)
    client, token = signed_in(app, "editor")
    made = _api(client, token, "POST", "/staff/api/goals", {"target": 10, "name": "Ten"})
    assert made.status_code == 201
    goal = made.get_json()
    assert (goal["id"], goal["target"], goal["version"]) == (
        1,
        10,
        goal_rules.version_of(_stored(app)[0]),
    )
    listed = client.get("/staff/api/goals").get_json()
    assert listed["count"] == 7 and listed["goals"][0]["state"] == "current"
    assert client.get("/staff/api/goals/1").get_json()["name"] == "Ten"

    bad = _api(
        client, token, "POST", "/staff/api/goals", {"target": 10, "copy": {"uk": {"cta": ""}}}
    )
    assert bad.status_code == 400
    assert bad.get_json()["error"]["field"] == "copy"
    assert "copy.uk.cta" in bad.get_json()["error"]["fields"]
    for body in ([1], "x", {"target": "many"}, {"target": 5, "colour": "red"}):
        assert _api(client, token, "POST", "/staff/api/goals", body).status_code == 400, body

    put = {"target": 12, "name": "Twelve", "version": goal["version"]}
    saved = _api(client, token, "PUT", "/staff/api/goals/1", put)
    assert saved.status_code == 200 and saved.get_json()["target"] == 12
    stale = _api(client, token, "PUT", "/staff/api/goals/1", put)
    assert stale.status_code == 409 and stale.get_json()["error"]["current"]["name"] == "Twelve"
    missing = _api(client, token, "PUT", "/staff/api/goals/1", {"target": 12})
    assert missing.status_code == 400 and missing.get_json()["error"]["field"] == "version"
    assert _api(client, token, "PUT", "/staff/api/goals/5", put).status_code == 404

    assert _api(client, token, "DELETE", "/staff/api/goals/1?version=stale").status_code == 409
    assert _api(client, token, "DELETE", "/staff/api/goals/1").status_code == 204
    assert _api(client, token, "DELETE", "/staff/api/goals/1").status_code == 404
    actions = [e["action"] for e in _entries(app)[:3]]
    assert actions == ["goal_removed", "goal_changed", "goal_added"]


def test_the_json_preview_for_scripts(app, redis_client):
    set_member_count(redis_client, _keys(app), 3)
    client, token = signed_in(app, "viewer")
    before = _snapshot(app, redis_client)
    thanks = {"one": "{goal} (one)", "other": "{goal} (other)"}
    body = {"target": 21, "count": 21, "copy": {"uk": {"thanks": thanks}}}
    answer = _api(client, token, "POST", "/staff/api/goals/preview", body)
    assert answer.status_code == 200, answer.get_json()
    uk = answer.get_json()["banner"]["uk"]
    assert uk["message"] == "21 (one)"  # reached at 21: the thanks, in the form for 21
    assert uk["goal"] is None and uk["milestone"]["target"] == 21
    bad = _api(client, token, "POST", "/staff/api/goals/preview", {"target": 5, "count": -1})
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "count"
    unknown = _api(client, token, "POST", "/staff/api/goals/preview", {"target": 5, "id": 9})
    assert unknown.status_code == 404
    assert _snapshot(app, redis_client) == before


def test_the_openapi_document_describes_the_routes(app):
    paths = OPENAPI
    assert set(paths) == {
        "/staff/api/goals", "/staff/api/goals/preview", "/staff/api/goals/{goal_id}",
    }  # fmt: skip
    assert set(paths["/staff/api/goals/{goal_id}"]) == {"get", "put", "delete"}
    assert json.dumps(paths)  # plain data


# --- In Chromium ------------------------------------------------------------------------
def _wait_for_banner(client, locale: str, text: str, deadline: float) -> None:
    """Poll /v1/banner until its message is `text`; fail once time.monotonic() > deadline."""
    while True:
        body = _banner_text(client, locale)
        if body["message"] == text:
            return
        assert time.monotonic() < deadline, f"/v1/banner still says {body['message']!r}"
        time.sleep(0.05)


@pytest.mark.browser
def test_an_editor_changes_copy_sees_the_preview_saves_and_the_banner_follows(
    app, redis_client, browser
):
    set_member_count(redis_client, _keys(app), 1234)
    _add(app, 2000, name="Winter")
    public = app.test_client()
    assert _banner_text(public)["message"] == "Help us reach 2,000 members"  # cached now
    page_ = open_page(app, browser, "editor")
    page_.goto(url("/staff/goals/1"))
    page_.fill("#copy-en-message-other", "Only {remaining} to go, {publication}")
    page_.fill("#copy-uk-message-few", "Ще {remaining} — мета {goal}")
    en = page_.locator('figure[data-locale="en"] [data-part="message"]')
    uk = page_.locator('figure[data-locale="uk"] [data-part="message"]')
    en.filter(has_text="Only 766 to go, our newsroom").wait_for(timeout=5000)
    # 2,000 takes "other" in Ukrainian: the few form is not used, the default is.
    uk.filter(has_text="Допоможіть нам досягти мети").wait_for(timeout=5000)
    page_.fill("#target", "2002")  # 2,002 takes "few"
    uk.filter(has_text="Ще 768 — мета 2 002").wait_for(timeout=5000)
    assert page_.get_attribute('figure[data-locale="en"] rect', "width") == "616"
    note = page_.text_content("#preview-note")
    assert note.startswith("At 1,234 members the banner shows this goal."), note
    page_.fill("#preview_count", "2500")  # past the target: the thanks, no bar
    en.filter(has_text="2,002 people chose to be part of the community").wait_for(timeout=5000)
    assert page_.is_hidden('figure[data-locale="en"] [data-part="bar"]')
    page_.fill("#preview_count", "")  # blank: the live count again
    en.filter(has_text="Only 768 to go").wait_for(timeout=5000)
    assert _stored(app)[0].target == 2000  # typing stored nothing
    for width in WIDTHS:
        page_.set_viewport_size({"width": width, "height": 900})
        fits(page_)
    saved_at = time.monotonic()
    saving = lambda r: r.request.method == "POST" and "/api/" not in r.url  # noqa: E731
    with page_.expect_response(saving) as saved:  # the save's answer, not a live preview's
        page_.get_by_role("button", name="Save").click()
    assert saved.value.status == 303  # (the page after the redirect: the HTTP tests)
    # Within a second of the click (the public client had the old banner cached).
    _wait_for_banner(public, "en", "Only 768 to go, our newsroom", saved_at + 1.0)
    _wait_for_banner(public, "uk", "Ще 768 — мета 2\u00a0002", saved_at + 1.0)
    assert page_.console_errors == []
    page_.close()


@pytest.mark.browser
def test_the_goal_pages_at_both_widths_and_without_javascript(app, redis_client, browser):
    set_member_count(redis_client, _keys(app), 1234)
    _add(app, 1000, name="A long goal name " * 5)
    _add(app, 2000, name="Winter", deadline="2099-12-31",
         copy={"uk": {"headline": {"few": "{count} читачі"}}})  # fmt: skip
    page_, viewer = open_page(app, browser, "editor"), open_page(app, browser, "viewer")
    for width in WIDTHS:  # the same two pages resized: a new page costs more than a visit
        for p in (page_, viewer):
            p.set_viewport_size({"width": width, "height": 900})
        page_.goto(url("/staff/goals"))
        fits(page_)
        page_.goto(url("/staff/goals/2/remove"))
        fits(page_)
        viewer.goto(url("/staff/goals/2"))
        assert viewer.locator("main form").count() == 0
        fits(viewer)
        # Someone else saves goal 2 while this page is open: saving here is refused.
        page_.goto(url("/staff/goals/2"))
        page_.fill("#name", "Mine")
        rt = runtime(app)
        current = goals.get(rt.redis, rt.keys, 2)
        other = goal_rules.parse_goal(
            {**page.goal_data(page.form_values(current)), "name": f"W{width}"}
        )
        goals.update(
            rt.redis, rt.keys, 2, other, expected=goal_rules.version_of(current), actor="ann"
        )
        # (the save's answer, not a live preview's that the typing may still have on its way)
        saving = lambda r: r.request.method == "POST" and "/api/" not in r.url  # noqa: E731
        with page_.expect_response(saving) as refused:
            page_.get_by_role("button", name="Save").click()
        assert refused.value.status == 409
        page_.get_by_text("Saved by someone else").wait_for()
        fits(page_)
        for p in (page_, viewer):  # Chromium logs the 409 itself; nothing else (no CSP refusal)
            assert [e for e in p.console_errors if "status of 409" not in e] == []
    page_.close()
    viewer.close()
    # JavaScript off: the Preview button asks the server, which re-renders the form.
    client, _ = signed_in(app, "editor")

    def serve(route):  # as tests/staff_browser.open_page: the test client keeps the cookies
        req = route.request
        headers = {k: v for k, v in req.headers.items() if k.lower() != "cookie"}
        path = req.url.removeprefix("http://staff.test")
        answer = client.open(path, method=req.method, data=req.post_data_buffer, headers=headers)
        route.fulfill(status=answer.status_code, headers=dict(answer.headers), body=answer.data)

    plain = browser.new_page(java_script_enabled=False, viewport={"width": 375, "height": 900})
    plain.route("http://staff.test/**", serve)
    plain.goto(url("/staff/goals"))
    plain.fill("#target", "1500")  # below goal 2: the one shown
    plain.get_by_text("Copy while this goal is shown (optional)").click()  # opens the details
    plain.fill("#copy-en-headline-other", "{count} readers strong")
    # By keyboard: Enter in a box submits with the form's first button, Preview, so Enter
    # never saves by accident.
    with plain.expect_navigation():
        plain.press("#copy-en-headline-other", "Enter")
    assert plain.text_content('figure[data-locale="en"] [data-part="headline"]') == (
        "1,234 readers strong"
    )
    assert plain.input_value("#copy-en-headline-other") == "{count} readers strong"
    fits(plain)
    assert [g.target for g in _stored(app)] == [1000, 2000]
    plain.get_by_role("button", name="Add goal").focus()
    with plain.expect_response(lambda r: r.request.method == "POST") as added:
        plain.keyboard.press("Enter")
    assert added.value.status == 303
    assert added.value.headers["location"] == "/staff/goals/3?saved=added"
    assert [g.target for g in _stored(app)] == [1000, 1500, 2000]
    plain.close()


def test_deadline_and_dates_in_the_form_are_iso(app):
    tomorrow = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)).isoformat()
    client, token = signed_in(app, "editor")
    assert _post(
        client, token, "/staff/goals", {"target": "9", "deadline": tomorrow}
    ).status_code == (303)
    html = client.get("/staff/goals/1").get_data(as_text=True)
    assert f'name="deadline" type="date" value="{tomorrow}"' in html
