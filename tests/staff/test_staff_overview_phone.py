"""The dashboard on a phone, in Chromium: every chart label is drawn at least 12 CSS px at
375 px (the SVG scales down, the labels do not), and a table that scrolls sideways shows it
with a shadow at the edge that has more beyond it (none on a table that fits)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.support.staff import seed_everything
from tests.support.staff_browser import open_page, url

pytestmark = pytest.mark.browser

# The smallest label of the page's charts as drawn: font size times the SVG's scale.
SMALLEST_LABEL = """() => Math.min(...[...document.querySelectorAll('svg.chart text')].map(
    t => parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a))"""
CHART_PAGES = ("/staff/", "/staff/campaign/winter-drive/results")


@pytest.mark.parametrize("width", [375, 1280])
def test_chart_labels_are_at_least_12_px(app, browser, width):
    seed_everything(app)  # a goal (the goal bar), members (the history), a campaign
    page = open_page(app, browser, "viewer", width=width)
    for path in CHART_PAGES:
        assert page.goto(url(path)).status == 200
        labels = page.locator("svg.chart text")
        assert labels.count() >= 5, path
        assert page.evaluate(SMALLEST_LABEL) >= 12 - 1e-3, path
        if width == 1280:  # wide: the labels keep their size, drawn larger than 12 px
            assert labels.first.evaluate("t => getComputedStyle(t).fontSize") == "12px"
    assert page.console_errors == []
    page.close()


def _png_rows(png: bytes) -> list[list[tuple[int, int, int]]]:
    """The RGB pixels of a screenshot, row by row."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    pixels, (width, height) = image.load(), image.size
    return [[pixels[x, y] for x in range(width)] for y in range(height)]


def _edges(box) -> tuple[int, int]:
    """The brightest pixel of the box's leftmost and rightmost columns: 255 where the page
    shows white somewhere down that edge, less where a shadow darkens the whole edge."""
    rows = _png_rows(box.screenshot())[2:-2]  # the clip is rounded out to whole pixels
    return max(min(r[1]) for r in rows), max(min(r[-2]) for r in rows)


@pytest.mark.parametrize("width", [375, 1280])
def test_a_table_that_scrolls_sideways_shows_it(app, browser, width):
    seed_everything(app)
    page = open_page(app, browser, "viewer", width=width)
    page.goto(url("/staff/?days=30"))
    page.locator("details:has(table) summary").last.click()  # the members chart's table
    box = page.locator("details[open] .scroll")
    overflows = box.evaluate("b => b.scrollWidth > b.clientWidth + 1")
    left, right = _edges(box)
    if width == 1280:  # the table fits: no shadow on either edge
        assert not overflows
        assert (left, right) == (255, 255)
    else:  # more on the right only, then, scrolled to the end, more on the left only
        assert overflows
        assert left == 255 and right < 240, (left, right)
        box.evaluate("b => { b.scrollLeft = b.scrollWidth; }")
        left, right = _edges(box)
        assert left < 240 and right == 255, (left, right)
    assert page.console_errors == []
    page.close()
