"""The goal editor in the editor's language: the preview's note in the plural form Babel's
rules pick ("At 1 member"), a bad placeholder named by its language and field on its own
box, and a preview that never covers the box being typed in."""

from __future__ import annotations

import re

import pytest

from membership.core.runtime import runtime
from membership.goals import rules as goal_rules
from membership.goals import store as goals
from membership.staff.goals import form as goal_form
from tests.support.member_count import set_member_count
from tests.support.staff import signed_in


def _add(app, target=100, **fields):
    rt = runtime(app)
    return goals.add(
        rt.redis, rt.keys, goal_rules.parse_goal({"target": target, **fields}), actor="t"
    )


def _version(app) -> str:
    rt = runtime(app)
    return goal_rules.version_of(goals.load(rt.redis, rt.keys)[0])


@pytest.mark.parametrize(
    ("count", "said"),
    [(1, "At 1 member the banner"), (0, "At 0 members the banner"),
     (2, "At 2 members the banner"), (1001, "At 1,001 members the banner")],
)  # fmt: skip
def test_the_preview_note_takes_the_plural_form_of_its_number(app, count, said):
    _add(app, 10)
    client, token = signed_in(app, "editor")
    data = {"csrf_token": token, "target": "10", "preview_count": str(count)}
    html = client.post("/staff/goals/1/preview", data=data).get_data(as_text=True)
    note = re.search(r'<p id="preview-note" role="status">([^<]*)</p>', html).group(1)
    assert note.startswith(said), note
    answer = client.post("/staff/api/goals/preview", data={**data, "id": "1"})
    assert answer.get_json()["note"].startswith(said)


@pytest.mark.parametrize("path", ["/staff/goals/preview", "/staff/goals", "/staff/goals/1"])
def test_a_bad_placeholder_is_named_by_language_and_field_on_its_box(app, path):
    _add(app, 10)
    client, token = signed_in(app, "editor")
    data = {"csrf_token": token, "target": "10", "copy.en.headline.other": "{members} with us"}
    if path == "/staff/goals/1":
        data["version"] = _version(app)
    answer = client.post(path, data=data)
    html = answer.get_data(as_text=True)
    assert answer.status_code == 400
    box = re.search(r'<input id="copy-en-headline-other"[^>]*>', html).group(0)
    assert 'aria-invalid="true"' in box and "copy-en-headline-other-error" in box
    message = re.search(r'id="copy-en-headline-other-error">([^<]*)<', html).group(1)
    assert message.startswith("English headline (other): the headline template may use only")
    assert "{members}" in message


def test_form_errors_name_each_box():
    shown = goal_form.form_errors(
        {
            "copy": "the message template may use only {goal}",
            "copy.uk.message.few": "the message template may use only {goal}",
            "copy.en.cta": "the cta template is empty",
            "copy.en.headline": "the headline template has unbalanced braces",
            "target": "expected a whole number of members",
        }
    )
    assert shown == {
        "copy.uk.message.few": "Ukrainian message (few): the message template may use only {goal}",
        "copy.en.cta": "English cta: the cta template is empty",
        "copy.en.headline.other": (
            "English headline (other): the headline template has unbalanced braces"
        ),
        "target": "expected a whole number of members",
    }


# --- in Chromium -----------------------------------------------------------------------------


@pytest.mark.browser
def test_typing_a_bad_placeholder_marks_its_box_and_the_note_counts_in_english(app, browser):
    from playwright.sync_api import expect

    from tests.support.staff_browser import open_page, url

    set_member_count(runtime(app).redis, runtime(app).keys, 1)
    _add(app, 10)
    page = open_page(app, browser, "editor")
    page.goto(url("/staff/goals/1"))
    note = page.locator("#preview-note")
    expect(note).to_have_text(re.compile(r"^At 1 member the banner shows this goal\."))
    box = page.locator("#copy-uk-message-few")
    box.fill("Ще {remaining} до {members}")
    expect(box).to_have_attribute("aria-invalid", "true")
    error = page.locator("#copy-uk-message-few-error")
    expect(error).to_have_text(re.compile(r"^Ukrainian message \(few\): .*\{members\}"))
    expect(box).to_have_attribute("aria-describedby", re.compile("copy-uk-message-few-error"))
    expect(note).to_contain_text("Not previewed: Ukrainian message (few)")
    box.fill("Ще {remaining} до {goal}")
    expect(box).not_to_have_attribute("aria-invalid", "true")
    expect(error).to_have_count(0)
    page.fill("#preview_count", "2")
    expect(note).to_have_text(re.compile(r"^At 2 members the banner"))
    assert [e for e in page.console_errors if "status of 400" not in e] == []


@pytest.mark.browser
@pytest.mark.parametrize("width", [375, 1280])
@pytest.mark.parametrize("path", ["/staff/goals/1", "/staff/goals"])
def test_the_preview_never_covers_the_box_being_typed_in(app, browser, width, path):
    from playwright.sync_api import expect

    from tests.support.staff_browser import open_page, url

    set_member_count(runtime(app).redis, runtime(app).keys, 40)
    _add(app, 100)
    page = open_page(app, browser, "editor", width=width)
    page.goto(url(path))
    page.locator("details.copy-details").evaluate("d => d.open = true")
    preview = page.locator("#preview")
    boxes = page.locator("form.goal-form input:not([type])")  # the text boxes
    assert boxes.count() > 10
    for i in range(boxes.count()):
        box = boxes.nth(i)
        # At the top of the window, where Shift+Tab or scrolling back up leaves it.
        box.evaluate("b => b.scrollIntoView({block: 'start'})")
        box.focus()
        box.press_sequentially("x")
        expect(box).to_be_in_viewport()
        b, p = box.bounding_box(), preview.bounding_box()
        apart = (
            b["x"] >= p["x"] + p["width"] or p["x"] >= b["x"] + b["width"]
            or b["y"] >= p["y"] + p["height"] or p["y"] >= b["y"] + b["height"]
        )  # fmt: skip
        assert apart, (box.get_attribute("name"), b, p)
