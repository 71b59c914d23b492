"""Security headers: nosniff on every answer; a strict CSP, no framing and a referrer policy on
HTML. The policy is checked in a real Chromium too: the demo article and its widget render
with no violation, and inline script or a foreign style is refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from membership.http import security
from membership.store import Keys
from tests.support.member_count import seed_banner, set_member_count
from tests.support.processes import service_on_own_redis


def _directives(policy: str) -> dict[str, list[str]]:
    out = {}
    for part in policy.split(";"):
        name, *values = part.split()
        out[name] = values
    return out


def test_the_demo_article_gets_a_strict_policy(client):
    response = client.get("/demo/article")
    assert response.status_code == 200
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    policy = response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy and "*" not in policy
    d = _directives(policy)
    assert d["default-src"] == ["'none'"]
    assert d["script-src"] == ["'self'"]
    assert d["connect-src"] == ["'self'"]
    assert d["frame-ancestors"] == ["'none'"]
    assert d["base-uri"] == ["'none'"]
    assert d["style-src"][0] == "'self'"
    assert all(s.startswith("'sha256-") for s in d["style-src"][1:])


def test_the_pages_own_style_block_is_allowed_by_its_hash(client):
    response = client.get("/demo/article?locale=uk")
    html = response.get_data(as_text=True)
    blocks = re.findall(r"<style>(.*?)</style>", html, re.DOTALL)
    assert blocks, "the demo page has an inline <style>"
    for block in blocks:
        assert security.source_hash(block) in response.headers["Content-Security-Policy"]


def test_the_widgets_css_is_read_from_the_script_and_allowed():
    css = security.widget_css(security.WIDGET_SCRIPT.read_text(encoding="utf-8"))
    assert css is not None
    assert css.startswith("[data-membership-banner]{") and ".mb-cta" in css
    assert security.source_hash(css) in security.html_headers()["Content-Security-Policy"]


def test_widget_css_evaluates_literals_and_names_and_gives_up_on_anything_else():
    script = 'var SEL = "[x]";\nvar CSS =\n  SEL + "{a:b}" +\n  ".c{content:\\"q\\"}";\n'
    assert security.widget_css(script) == '[x]{a:b}.c{content:"q"}'
    assert security.widget_css('var CSS = SEL + "{a:b}";') is None  # SEL unknown
    assert security.widget_css("var CSS = `x`;") is None


def test_template_styles_skip_blocks_with_jinja(tmp_path: Path):
    (tmp_path / "a.html").write_text("<style>p{color:red}</style><style>{{ x }}</style>")
    assert security.template_styles(tmp_path) == ["p{color:red}"]


JSON_ANSWERS = [
    ("GET", "/healthz", 200),
    ("GET", "/readyz", 200),
    ("GET", "/openapi.json", 200),
    ("GET", "/no/such/page", 404),
    ("DELETE", "/healthz", 405),
    ("GET", "/v1/banner?nope=1", 400),
    ("POST", "/webhooks/stripe", 400),
]


def test_json_answers_and_errors_are_nosniff(client, subtests):
    """Each request a subtest, on one app: none of them changes anything."""
    for method, path, status in JSON_ANSWERS:
        with subtests.test(method=method, path=path):
            response = client.open(path, method=method)
            assert response.status_code == status
            assert response.is_json
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert "Content-Security-Policy" not in response.headers  # not a document


def test_the_banner_keeps_its_caching_and_cors(site_client, redis_client):
    set_member_count(redis_client, Keys(), 1200)
    response = site_client.get("/v1/banner", headers={"Origin": "https://news.example"})
    assert response.status_code == 200
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers.getlist("X-Content-Type-Options") == ["nosniff"]  # not twice
    assert response.headers["Access-Control-Allow-Origin"] == "https://news.example"
    assert response.headers["Cache-Control"].startswith("public, max-age=")
    assert "Content-Security-Policy" not in response.headers
    again = site_client.get("/v1/banner", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
    assert again.headers["X-Content-Type-Options"] == "nosniff"


def test_the_widget_script_stays_embeddable_and_cacheable(client):
    response = client.get("/static/banner.js")
    assert response.status_code == 200
    assert response.headers["Cache-Control"].startswith("public, max-age=")
    assert response.headers.getlist("X-Content-Type-Options") == ["nosniff"]
    # No framing or resource-policy header that would stop another site from loading it.
    for name in ("Content-Security-Policy", "X-Frame-Options", "Cross-Origin-Resource-Policy"):
        assert name not in response.headers


def test_a_view_may_set_its_own_policy(app):
    @app.get("/_test/page")
    def page():
        return "<p>hi</p>", 200, {"Content-Security-Policy": "default-src 'self'"}

    response = app.test_client().get("/_test/page")
    assert response.headers["Content-Security-Policy"] == "default-src 'self'"
    assert response.headers["X-Frame-Options"] == "DENY"


# --- In a real browser ---------------------------------------------------------------------

VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(e.violatedDirective + " " + (e.blockedURI || "inline"));
});
"""


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    def seed(client):
        seed_banner(client, Keys(), {"target": 30000})

    with service_on_own_redis(tmp_path_factory.mktemp("var"), seed=seed) as service:
        yield service


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("locale", ["en", "uk"])
def test_the_article_and_its_widget_render_under_the_policy(browser, service, locale):
    page = browser.new_page()
    page.add_init_script(VIOLATIONS)
    console = []
    page.on("console", lambda m: console.append(m.text) if "Refused" in m.text else None)
    response = page.goto(service.url + f"/demo/article?locale={locale}")
    assert "Content-Security-Policy" in {k.title(): v for k, v in response.headers.items()}
    page.wait_for_selector("[data-membership-banner][data-state=ready]", timeout=10_000)
    page.wait_for_timeout(200)
    assert page.evaluate("window.__violations") == []
    assert console == []
    # The widget's own <style> applied (allowed by hash), and the page's.
    background = page.locator(".mb").evaluate("e => getComputedStyle(e).backgroundColor")
    assert background == "rgb(255, 246, 209)"
    h1 = page.locator("h1").evaluate("e => getComputedStyle(e).fontSize")
    assert h1 == "33.6px"  # 2.1rem from the page's <style>
    page.close()


@pytest.mark.browser
@pytest.mark.slow
def test_the_policy_refuses_inline_script_and_foreign_styles(browser, service):
    """The control: the same page refuses what the policy does not name."""
    page = browser.new_page()
    page.add_init_script(VIOLATIONS)
    page.goto(service.url + "/demo/article")
    page.wait_for_selector("[data-membership-banner][data-state=ready]", timeout=10_000)
    page.evaluate(
        """() => {
        const s = document.createElement("script");
        s.textContent = "window.__ran = true";
        document.body.appendChild(s);
        const st = document.createElement("style");
        st.textContent = "body { background: rgb(1, 2, 3) }";
        document.head.appendChild(st);
    }"""
    )
    page.wait_for_timeout(200)
    assert page.evaluate("window.__ran") is None
    assert page.locator("body").evaluate("e => getComputedStyle(e).backgroundColor") != (
        "rgb(1, 2, 3)"
    )
    violations = page.evaluate("window.__violations")
    assert any(v.startswith("script-src") for v in violations), violations
    assert any(v.startswith("style-src") for v in violations), violations
    page.close()
