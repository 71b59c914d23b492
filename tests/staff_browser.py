"""Staff pages in headless Chromium, served by the Flask test client of a signed-in role.

    page = open_page(app, browser, "editor", width=375)
    page.goto(url("/staff/goals"))
    shoot(page, "goals")          # test-artifacts/staff-goals-375.png; fails on sideways scroll

The browser's requests to http://staff.test go through the same test client, so the
session cookie and CSRF token are the signed-in role's and no server needs starting.
"""

from __future__ import annotations

from pathlib import Path

from tests.test_staff_roles import signed_in

ORIGIN = "http://staff.test"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
WIDTHS = (1280, 375)


def url(path: str) -> str:
    return ORIGIN + path


def open_page(app, browser, role: str | None, *, width: int = 1280, client=None):
    """A new Chromium page whose requests to ORIGIN are answered by `role`'s test client
    (signed out for None). Console errors (a CSP refusal among them) collect in
    page.console_errors."""
    if client is None:
        client, _ = signed_in(app, role)

    def serve(route):
        req = route.request
        answer = client.open(
            req.url.removeprefix(ORIGIN),
            method=req.method,
            data=req.post_data_buffer,
            headers={k: v for k, v in req.headers.items() if k.lower() != "cookie"},
        )
        route.fulfill(status=answer.status_code, headers=dict(answer.headers), body=answer.data)

    page = browser.new_page(viewport={"width": width, "height": 900})
    page.route(ORIGIN + "/**", serve)
    page.console_errors = []
    page.on("console", lambda m: page.console_errors.append(m.text) if m.type == "error" else None)
    page.client = client
    return page


def shoot(page, name: str) -> Path:
    """Save a full-page screenshot as staff-NAME-WIDTH.png and check nothing scrolls
    sideways (wide tables scroll inside their own box)."""
    width = page.viewport_size["width"]
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{page.url} scrolls sideways at {width} px ({scroll} px wide)"
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"staff-{name}-{width}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
