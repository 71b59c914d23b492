"""Staff pages in headless Chromium, served by the Flask test client of a signed-in role.

    page = open_page(app, browser, "editor", width=375)
    page.goto(url("/staff/goals"))
    fits(page)                    # fails if anything scrolls sideways at 375 px

Chromium resolves staff.test to one local werkzeug server (started once a test session;
tests/conftest.py gives the browser the mapping) that hands every request to the app of the
latest open_page. Real HTTP, so redirects, cookies and downloads behave as in production;
the page starts with the cookies of `role`'s signed-in test client (page.client), so both
share one staff session.
"""

from __future__ import annotations

import threading

from tests.support.staff import signed_in

ORIGIN = "http://staff.test"
WIDTHS = (1280, 375)


def url(path: str) -> str:
    return ORIGIN + path


class _Dispatch:
    """The WSGI app of the shared server: whichever app the latest open_page named."""

    app = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


_DISPATCH = _Dispatch()
_server = None
_lock = threading.Lock()


def site_port() -> int:
    """The port of the shared server, started on first use (daemon thread)."""
    global _server
    with _lock:
        if _server is None:
            from werkzeug.serving import make_server

            _server = make_server("127.0.0.1", 0, _DISPATCH, threaded=True)
            threading.Thread(target=_server.serve_forever, daemon=True).start()
        return _server.server_port


CHROMIUM = "/usr/bin/chromium"  # Debian's; scripts/test.sh installs it (never `playwright install`)


def launch_chromium(playwright):
    """Headless Chromium with staff.test mapped to the shared server (the tests' `browser`
    fixture and scripts/screenshots.py)."""
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=[
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            f"--host-resolver-rules=MAP staff.test 127.0.0.1:{site_port()}",
        ],
    )


def stop_site() -> None:
    global _server
    with _lock:
        if _server is not None:
            _server.shutdown()
            _server.server_close()
            _server = None


def serve(app) -> int:
    """The shared server hands its requests to `app` from now on; its port."""
    port = site_port()
    _DISPATCH.app = app
    return port


def open_page(app, browser, role: str | None, *, width: int = 1280, client=None):
    """A new Chromium page (in its own context) signed in as `role` (None: signed out, or
    the state of `client`). Console errors (a CSP refusal among them) collect in
    page.console_errors."""
    if client is None:
        client, _ = signed_in(app, role)
    serve(app)
    page = browser.new_page(viewport={"width": width, "height": 900}, accept_downloads=True)
    cookies = [
        {"name": c.key, "value": c.value, "domain": "staff.test", "path": c.path or "/"}
        for c in client._cookies.values()  # werkzeug's test client jar
    ]
    if cookies:
        page.context.add_cookies(cookies)
    page.console_errors = []
    page.on("console", lambda m: page.console_errors.append(m.text) if m.type == "error" else None)
    page.client = client
    return page


def fits(page) -> int:
    """Check nothing on the page scrolls sideways (wide tables scroll inside their own box);
    the viewport's width. Measured once the page's stylesheets have loaded: after a form's
    submit the new page's rows can be there before its CSS is."""
    page.wait_for_load_state("load")
    width = page.viewport_size["width"]
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{page.url} scrolls sideways at {width} px ({scroll} px wide)"
    return width
