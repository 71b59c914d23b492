"""The campaign form in the editor's language: errors named by their fields' labels, linked
to and focusing their fields; date-and-time pickers in the newsroom's time zone; a box per
CLDR plural form of each language's copy; the holdout as a percentage; the preview beside
the form on a wide screen, following what is typed."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

import pytest

from membership.core.runtime import runtime
from membership.prompts import campaigns, store
from membership.staff.campaigns import form as campaign_form
from tests.support.prompt_helpers import EXAMPLE
from tests.support.staff import signed_in


def put(app, *docs) -> None:
    rt = runtime(app)
    store.apply(rt.redis, rt.keys, campaigns.parse_list(list(docs)), actor="test@news.example")


def stored(app, campaign_id):
    rt = runtime(app)
    return store.get(rt.redis, rt.keys, campaign_id)


def test_times_are_shown_and_read_in_the_newsrooms_time_zone():
    kyiv = ZoneInfo("Europe/Kyiv")
    document = {**EXAMPLE, "starts_at": "2026-11-01T00:00:00Z", "ends_at": "2026-12-24T21:30:15Z"}
    values = campaign_form.to_form(document, kyiv)
    assert values["starts_at"] == "2026-11-01T02:00"  # winter time: UTC+2
    assert values["ends_at"] == "2026-12-24T23:30:15"  # seconds only when there are some
    again = campaign_form.from_form({**values, "locales_mode": "some"}, zone=kyiv)
    assert (again["starts_at"], again["ends_at"]) == (
        "2026-11-01T00:00:00Z",
        "2026-12-24T21:30:15Z",
    )
    summer = campaign_form.from_form({"starts_at": "2026-07-01T09:00"}, zone=kyiv)
    assert summer["starts_at"] == "2026-07-01T06:00:00Z"  # summer time: UTC+3
    # A time that says its zone is kept; nonsense goes to the schema, which names the field.
    kept = campaign_form.from_form({"starts_at": "2026-07-01T09:00+05:00", "ends_at": "soon"})
    assert (kept["starts_at"], kept["ends_at"]) == ("2026-07-01T09:00+05:00", "soon")
    assert campaign_form.to_form(EXAMPLE)["starts_at"] == "2026-11-01T00:00"  # UTC by default


def test_the_form_reads_and_writes_times_in_the_timezone_setting(newsroom_in):
    app = newsroom_in("Europe/Kyiv")
    put(app, EXAMPLE)
    client, token = signed_in(app, "editor")
    html = client.get("/staff/campaign/winter-drive/edit").get_data(as_text=True)
    assert 'name="starts_at" type="datetime-local" value="2026-11-01T02:00"' in html
    assert "Newsroom time zone: Europe/Kyiv." in html
    form = {k: v for k, v in campaign_form.to_form(EXAMPLE).items() if v not in ("", [])}
    form["based_on"] = re.search(r'name="based_on" value="([^"]*)"', html).group(1)
    form["starts_at"], form["ends_at"] = "2026-11-02T09:30", "2027-01-01T00:00"
    saved = client.post("/staff/campaign/winter-drive/edit", data={**form, "csrf_token": token})
    assert saved.status_code == 303
    document = campaigns.to_json(stored(app, "winter-drive"))
    assert (document["starts_at"], document["ends_at"]) == (
        "2026-11-02T07:30:00Z",
        "2026-12-31T22:00:00Z",
    )


def test_the_holdout_share_is_a_percentage():
    for share, shown in [(0.1, "10"), (0.0, "0"), (0.5, "50"), (0.123, "12.3"), (0.25, "25")]:
        values = campaign_form.to_form({**EXAMPLE, "control_share": share})
        assert values["control_share"] == shown
        assert campaign_form.from_form(values)["control_share"] == share
    assert campaign_form.from_form({"control_share": "ten"})["control_share"] == "ten"


def test_the_form_has_a_box_per_plural_form_of_each_language(app):
    put(app, EXAMPLE)
    client, _ = signed_in(app, "editor")
    html = client.get("/staff/campaign/winter-drive/edit").get_data(as_text=True)
    boxes = set(re.findall(r'name="(variants\[1\]\.copy\.\w+\.headline(?:\.\w+)?)"', html))
    assert boxes == {
        "variants[1].copy.en.headline",
        "variants[1].copy.en.headline.one",
        "variants[1].copy.uk.headline",
        "variants[1].copy.uk.headline.one",
        "variants[1].copy.uk.headline.few",
        "variants[1].copy.uk.headline.many",
    }
    # b's plural headline fills them (the field's own box is its "other" form), opened.
    assert 'name="variants[1].copy.uk.headline.few" type="text" value="{count} учасники"' in html
    assert 'name="variants[1].copy.uk.headline" type="text" value="{count} учасника"' in html
    assert re.search(
        r'<details class="plural" id="f-variants-1-copy-uk-headline-plural" open>', html
    )
    assert re.search(r'<details class="plural" id="f-variants-0-copy-uk-headline-plural">', html)
    # The times are pickers, in the newsroom's zone (UTC unless TIMEZONE says otherwise).
    assert re.search(
        r'id="f-starts-at" name="starts_at" type="datetime-local" value="2026-11-01T00:00"', html
    )
    zone = getattr(runtime(app).settings, "timezone", None) or "UTC"
    assert f"Newsroom time zone: {zone}." in html


def test_plural_forms_typed_in_their_boxes_are_saved_as_plural_forms(app):
    put(app, EXAMPLE)
    client, token = signed_in(app, "editor")
    page = client.get("/staff/campaign/winter-drive/edit").get_data(as_text=True)
    form = {k: v for k, v in campaign_form.to_form(EXAMPLE).items() if v not in ("", [])}
    form["based_on"] = re.search(r'name="based_on" value="([^"]*)"', page).group(1)
    form.update({
        "variants[0].copy.en.body": "{count} readers pay for it",
        "variants[0].copy.en.body.one": "{count} reader pays for it",
        "variants[1].copy.uk.headline.few": "{count} учасниці",
        "variants[1].copy.en.headline.one": "",  # emptied: the field is plain text again
    })  # fmt: skip
    saved = client.post("/staff/campaign/winter-drive/edit", data={**form, "csrf_token": token})
    assert saved.status_code == 303, saved.get_data(as_text=True)
    copy = campaigns.to_json(stored(app, "winter-drive"))["variants"]
    assert copy[0]["copy"]["en"]["body"] == {
        "one": "{count} reader pays for it",
        "other": "{count} readers pay for it",
    }
    assert copy[1]["copy"]["uk"]["headline"]["few"] == "{count} учасниці"
    assert copy[1]["copy"]["en"]["headline"] == "{count} members"
    # A form without its "other" box is refused, named by its label and marked.
    form["variants[0].copy.en.body"] = ""
    refused = client.post("/staff/campaign/winter-drive/edit", data={**form, "csrf_token": token})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert ">Variant A, English body: plural forms need an &#34;other&#34; form</a>" in html


def test_the_form_preview_answers_with_the_previews_or_what_to_fix(app):
    client, token = signed_in(app, "viewer")  # previewing stores nothing
    form = {k: v for k, v in campaign_form.to_form(EXAMPLE).items() if v not in ("", [])}
    shown = client.post("/staff/campaigns/preview", data={**form, "csrf_token": token})
    html = shown.get_data(as_text=True)
    assert shown.status_code == 200 and 'id="preview-b-uk"' in html
    form["control_share"] = "70"
    form["variants[0].copy.en.headline"] = ""
    refused = client.post("/staff/campaigns/preview", data={**form, "csrf_token": token})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert "<li>Holdout share: at most 50%</li>" in html
    assert "<li>Variant A, English headline: required</li>" in html
    assert stored(app, "winter-drive") is None


# --- in Chromium -----------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.parametrize("width", [1280, 375])
def test_errors_are_named_linked_marked_and_focused(app, browser, width):
    from playwright.sync_api import expect

    from tests.support.staff_browser import open_page, url

    put(app, EXAMPLE)
    page = open_page(app, browser, "editor", width=width)
    page.goto(url("/staff/campaign/winter-drive/edit"))
    page.fill("#f-control-share", "60")
    page.fill("#f-variants-0-copy-en-headline", "")
    page.click("#save")
    summary = page.locator("#form-errors")
    expect(summary.get_by_role("link", name="Holdout share: at most 50%")).to_be_visible()
    expect(summary).not_to_contain_text("control_share")
    expect(summary).not_to_contain_text("variants[0]")
    # The first field in error has the focus; it is marked, its message beside it.
    share = page.locator("#f-control-share")
    expect(share).to_be_focused(timeout=5000)
    expect(share).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-control-share-error-1")).to_have_text("at most 50%")
    # A summary line leads to its field and focuses it.
    summary.get_by_role("link", name="Variant A, English headline: required").click()
    headline = page.locator("#f-variants-0-copy-en-headline")
    expect(headline).to_be_focused()
    expect(headline).to_be_in_viewport()
    expect(headline).to_have_attribute("aria-invalid", "true")
    expect(headline).to_have_attribute("aria-describedby", re.compile("error-1"))
    expect(page.locator("#f-variants-0-copy-en-headline-error-1")).to_have_text("required")
    assert stored(app, "winter-drive").control_share == 0.1  # nothing saved


@pytest.mark.browser
def test_plural_boxes_round_trip_into_the_saved_campaign(app, browser):
    from tests.support.staff_browser import open_page, url

    put(app, EXAMPLE)
    page = open_page(app, browser, "editor")
    page.goto(url("/staff/campaign/winter-drive/edit"))
    page.locator("#f-variants-0-copy-uk-cta-plural > summary").click()
    page.fill("#f-variants-0-copy-uk-cta", "Долучіться разом з {count}")
    page.fill("#f-variants-0-copy-uk-cta-one", "Долучіться до {count} учасника")
    page.fill("#f-variants-0-copy-uk-cta-few", "Долучіться до {count} учасників")
    page.fill("#f-variants-1-copy-uk-headline-many", "{count} членів")
    page.click("#save")
    page.wait_for_url("**/staff/campaign/winter-drive?done=saved")
    saved = campaigns.to_json(stored(app, "winter-drive"))
    assert saved["variants"][0]["copy"]["uk"]["cta"] == {
        "one": "Долучіться до {count} учасника",
        "few": "Долучіться до {count} учасників",
        "other": "Долучіться разом з {count}",
    }
    assert saved["variants"][1]["copy"]["uk"]["headline"]["many"] == "{count} членів"
    # Opened again, the form shows each form in its box.
    page.goto(url("/staff/campaign/winter-drive/edit"))
    assert (
        page.locator("#f-variants-0-copy-uk-cta-few").input_value()
        == "Долучіться до {count} учасників"
    )
    assert page.locator("#f-variants-0-copy-uk-cta-plural").get_attribute("open") is not None


@pytest.mark.browser
def test_the_preview_stands_beside_the_form_and_follows_the_typing(app, browser):
    from playwright.sync_api import expect

    from tests.support.staff_browser import open_page, url

    put(app, EXAMPLE)
    page = open_page(app, browser, "editor", width=1280)
    page.goto(url("/staff/campaign/winter-drive/edit"))
    card = page.locator("#preview-a-en .mp-h")
    expect(card).to_have_text("You've read 3 articles this month")  # asked once loaded
    form, aside = page.locator("form.campaign-form"), page.locator("#side-preview")
    f, a = form.bounding_box(), aside.bounding_box()
    assert a["x"] >= f["x"] + f["width"], (f, a)  # beside, not below
    field = page.locator("#f-variants-0-copy-en-headline")
    field.scroll_into_view_if_needed()
    field.fill("")
    field.press_sequentially("Winter needs you", delay=20)
    expect(card).to_have_text("Winter needs you")
    expect(page.locator("#preview-a-en")).to_be_in_viewport()  # it stays in view
    # What cannot be previewed yet says why, by label.
    field.fill("")
    expect(page.locator("#preview-panel")).to_contain_text("Variant A, English headline: required")
    assert stored(app, "winter-drive").variants[0].copy["en"]["headline"] != "Winter needs you"
    assert [e for e in page.console_errors if "status of 400" not in e] == []


@pytest.mark.browser
@pytest.mark.parametrize("width", [375, 1280])
def test_preview_without_saving_lands_on_the_preview(app, browser, width):
    from playwright.sync_api import expect

    from tests.support.staff_browser import open_page, url

    put(app, EXAMPLE)
    page = open_page(app, browser, "editor", width=width)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Emulation.setScriptExecutionDisabled", {"value": True})  # the server's preview
    page.goto(url("/staff/campaign/winter-drive/edit"))
    page.fill("#f-variants-0-copy-en-headline", "Not saved yet")
    page.click("#preview")
    page.wait_for_url("**/edit#form-preview")
    expect(page.locator("#preview-a-en .mp-h")).to_have_text("Not saved yet")
    expect(page.locator("#preview-a-en")).to_be_in_viewport()
