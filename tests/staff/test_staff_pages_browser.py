"""The shared staff pages in Chromium: the members-over-time chart (a point per day), a
viewer who sees no edit controls anywhere and whose forged POSTs are refused, and every
page at 1280 and 375 px (their screenshots: scripts/screenshots.sh, tests/system/
test_screenshots.py)."""

from __future__ import annotations

import re

import pytest

from membership.core import audit
from membership.core.runtime import runtime
from membership.staff.access import guard
from tests.support.staff import add_members, seed_everything, signed_in, staff_routes
from tests.support.staff_browser import WIDTHS, fits, open_page, url

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("days", [30, 90, 365])
def test_the_members_chart_has_a_point_per_day(app, browser, days):
    add_members(app)
    page = open_page(app, browser, "viewer")
    page.goto(url(f"/staff/?days={days}"))
    line = page.locator("svg .members-line")
    points = [p.split(",") for p in line.get_attribute("points").split()]
    assert len(points) == days
    xs = [float(x) for x, _ in points]
    assert xs == sorted(xs) and len(set(xs)) == days  # left to right, one per day
    page.locator("details:has(table) summary").first.click()
    rows = page.locator("details table tbody tr")
    assert rows.count() == days
    last = rows.nth(days - 1).locator("td").all_inner_texts()
    assert "4" in last  # today's count: 3 through Stripe and 1 offline
    ys = [float(y) for _, y in points]
    assert ys[-1] < ys[0]  # today higher on the chart than the empty first day
    fits(page)
    assert page.console_errors == []
    page.close()


# Form controls a screen reader could not name: no <label for>, no wrapping label, no aria.
UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
    .filter(el => !el.hidden && !['hidden', 'submit', 'button'].includes(el.type))
    .filter(el => !(el.id && document.querySelector(`label[for="${el.id}"]`))
        && !el.closest('label') && !el.getAttribute('aria-label')
        && !el.getAttribute('aria-labelledby'))
    .map(el => el.outerHTML.slice(0, 120))"""


def _tab_shows_focus(page, path: str) -> None:
    """Tab moves the focus (skip link first, then on) and the focused element shows it."""
    page.locator("body").click(position={"x": 1, "y": 1})
    seen = []
    for _ in range(3):
        page.keyboard.press("Tab")
        seen.append(page.evaluate(
            "() => { const el = document.activeElement, style = getComputedStyle(el);"
            " return [el.tagName, style.outlineStyle, parseFloat(style.outlineWidth)]; }"
        ))  # fmt: skip
    assert seen[0][0] == "A", (path, seen)  # the skip link
    for tag, style, outline in seen:
        assert tag != "BODY" and style != "none" and outline >= 2, (path, seen)


def test_every_page_at_both_widths(app, browser):
    """Every page an admin reaches by links (one a route), at 1280 and 375 px: one heading,
    every control labelled, the focus shown, none scrolls sideways, none logs an error. None
    is saved as a screenshot: scripts/screenshots.sh takes those of every page (its test
    runs it), and a full-page PNG of each page here was most of that work done twice."""
    seed_everything(app)
    rt = runtime(app)
    audit.record(rt.redis, rt.keys, actor="ann@news.example", action="goal_added",
                 target="goal 1", after={"target": 100})  # fmt: skip
    adapter = app.url_map.bind("staff.test")
    found: dict[str, str] = {}  # each endpoint's first path, as the crawl at WIDTHS[0] met it
    page = open_page(app, browser, "admin", width=WIDTHS[0])
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        # The links are the same at every width: the narrower one visits the pages found.
        start = ("/staff/", "/staff/members/cus_1")
        visits = _visit(page, list(found.values())) if found else _crawl(page, *start, by=adapter)
        shot = set()
        for path in visits:
            endpoint = adapter.match(path.split("?")[0])[0].rpartition(".")[2]
            if endpoint in shot:
                continue
            shot.add(endpoint)
            found.setdefault(endpoint, path)
            assert page.locator("h1").count() == 1, path
            assert page.evaluate(UNLABELLED) == [], path
            if width == WIDTHS[0]:
                _tab_shows_focus(page, path)
            fits(page)
        areas = {"home", "goals", "campaigns", "members", "webhooks", "audit_log", "accounts"}
        assert areas | {"member", "webhook_event", "account"} <= shot, shot
        assert page.console_errors == []
    page.close()
    page = open_page(app, browser, "viewer", width=375)
    page.goto(url("/staff/accounts"))
    assert page.locator("h1").inner_text() == "your role does not allow this"
    fits(page)
    page.close()


def _get_pages(app):
    return [path for path, method, endpoint in staff_routes(app)
            if method == "GET" and "/x" not in path and not path.startswith("/staff/api/")
            and not path.endswith(".csv")
            and endpoint not in {"staff.login", "staff.set_password", "staff.logout"}]  # fmt: skip


def _visit(page, paths: list[str]):
    """Each of `paths`, visited in turn; each must answer 200."""
    for path in paths:
        response = page.goto(url(path))
        assert response is not None and response.status == 200, path
        yield path


def _crawl(page, *starts: str, limit: int = 120, by=None):
    """Paths of the staff pages reachable by links from `starts` (breadth first, each path
    with its first query string only), visiting each; yields each page visited. With `by`
    (a bound URL map), only the first path of each endpoint is visited."""
    seen, endpoints, queue = set(), set(), list(starts)
    while queue and len(seen) < limit:
        path = queue.pop(0)
        bare = path.split("?")[0]
        if bare in seen:
            continue
        seen.add(bare)
        if by is not None:
            endpoint = by.match(bare)[0]
            if endpoint in endpoints:
                continue
            endpoints.add(endpoint)
        response = page.goto(url(path))
        if response is None or response.status != 200:
            continue
        yield path
        links = page.eval_on_selector_all(
            "a[href]",
            "as => as.map(a => new URL(a.href)).filter(u => u.host === 'staff.test')"
            ".map(u => u.pathname + u.search)",
        )
        skip = ("/staff/api/", "/staff/static/")
        for link in links:
            bare = link.split("?")[0]
            wanted = bare.startswith("/staff/") and not bare.startswith(skip)
            if wanted and not bare.endswith((".csv", "/qr")):
                queue.append(link)


def test_a_viewer_sees_no_edit_controls_and_forged_posts_are_refused(app, browser):
    """Every page a viewer reaches by links offers only forms the viewer may send (signing
    out, their own password, 2FA and tokens, previews). Then, from the viewer's page, every
    form an editor or admin may send is posted with the viewer's real CSRF token: each is
    403 and nothing is recorded."""
    seed_everything(app)
    allowed = {
        endpoint
        for _, method, endpoint in staff_routes(app)
        if method == "POST"
        if guard.rules.allows("viewer", guard.needed_role(app.view_functions[endpoint], method))
    }
    adapter = app.url_map.bind("staff.test")
    page = open_page(app, browser, "viewer")
    visited = []
    for path in _crawl(page, "/staff/", "/staff/members/cus_1"):
        visited.append(path)
        actions = page.eval_on_selector_all(
            "form[method=post i]", "forms => forms.map(f => new URL(f.action).pathname)"
        )
        for action in actions:
            endpoint, _ = adapter.match(action, method="POST")
            assert endpoint in allowed, (path, action)
    areas = {"/staff/goals", "/staff/campaigns", "/staff/members", "/staff/webhooks"}
    assert areas <= {p.split("?")[0] for p in visited}, visited
    assert len(visited) >= 10, visited
    page.goto(url("/staff/me"))
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    rt = runtime(app)
    before = audit.entries(rt.redis, rt.keys, limit=1000)
    forged = [path for path, method, endpoint in staff_routes(app)
              if method == "POST" and endpoint not in allowed
              and not getattr(app.view_functions[endpoint], "staff_public", False)]  # fmt: skip
    assert forged
    statuses = page.evaluate(
        """async ([paths, token]) => {
            const out = [];
            for (const p of paths) {
                const body = new URLSearchParams({csrf_token: token, email: 'viewer@news.example'});
                const r = await fetch(p, {method: 'POST', body, redirect: 'manual'});
                out.push(r.status);
            }
            return out;
        }""",
        [forged, token],
    )
    assert statuses == [403] * len(forged), dict(zip(forged, statuses, strict=True))
    assert audit.entries(rt.redis, rt.keys, limit=1000) == before
    page.close()


def test_every_page_has_the_strict_policy_and_no_inline_script(app):
    client, _ = signed_in(app, "admin")
    for path in _get_pages(app):
        response = client.get(path)
        if response.status_code != 200 or response.mimetype != "text/html":
            continue
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy, path
        html = response.get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert not re.search(r"\son[a-z]+=", html), path  # no inline handlers
        assert not re.search(r"\sstyle=", html), path
        assert not re.search(r"(src|href)=\"(https?:)?//", html), path  # nothing off-origin
