import gzip
import json
import re

import pytest

from membership.core.config import SUPPORTED_LOCALES
from membership.goals.widget import (
    CHECKOUT_MODULE,
    MEMBER_MODULE,
    MODULES,
    PROMPT_SCRIPT,
    SCRIPT,
    built,
)
from membership.http import security
from membership.staff.campaigns import preview as campaign_preview
from tests.support.widget_browser import MODULE_QUERY
from tests.support.widget_build import build_module

COMMON = SCRIPT.with_name("common.js")  # both scripts are built with it (scripts/build_widgets.py)


def test_script_is_small_cacheable_javascript(client):
    response = client.get("/static/banner.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["Cache-Control"].startswith("public, max-age=3600")
    assert response.get_data() == built(SCRIPT).read_bytes()
    # Under 5 KB as written (comments and all), so minified it is smaller still.
    assert len(response.get_data()) < 5 * 1024
    assert len(gzip.compress(response.get_data())) < 2 * 1024
    again = client.get("/static/banner.js", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


def test_script_has_no_dependencies_and_renders_text_safely():
    source = SCRIPT.read_text()
    assert "2000" in source  # the 2 s timeout
    for part in (COMMON, SCRIPT, PROMPT_SCRIPT, *MODULES.values(), MEMBER_MODULE, CHECKOUT_MODULE):
        text = part.read_text()
        assert "import " not in text and "require(" not in text
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text  # textContent


def test_demo_article_embeds_the_widget(client):
    response = client.get("/demo/article")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert '<html lang="en">' in html
    assert '<div data-membership-banner data-locale="en"></div>' in html
    # one script from us: prompt.js fills the count box too
    assert html.count("<script") == 1 and '<script src="/static/prompt.js" async>' in html
    assert "min-height" in html  # space reserved before the script runs


def test_demo_article_in_ukrainian_and_fallback(client):
    uk = client.get("/demo/article?locale=uk").get_data(as_text=True)
    assert 'data-locale="uk"' in uk and "Нічні трамваї" in uk
    assert 'data-locale="en"' in client.get("/demo/article?locale=pl").get_data(as_text=True)


def test_demo_article_refuses_a_bad_locale(client):
    response = client.get("/demo/article?locale=%3Cscript%3E")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_query"


def test_demo_article_is_a_checkout_success_url(client):
    """CHECKOUT_SUCCESS_URL may be the demo article: its session_id is for the widget."""
    response = client.get("/demo/article?n=2&session_id=cs_test_a1b2")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<h1>The depot that never sleeps" in html
    assert 'href="/demo/article?n=3"' in html  # the next story does not carry it on


def test_the_widget_serves_the_languages_the_service_speaks():
    """banner.js reduces a page's language to one of these; they must be the server's."""
    found = re.search(r"var SERVED = (\[[^\]]*\]);", SCRIPT.read_text())
    assert found, "banner.js no longer declares SERVED"
    served = json.loads(found.group(1))
    assert tuple(served) == SUPPORTED_LOCALES
    assert served[0] == "en"  # the fallback for a language we do not speak


# --- The prompt widget (static/prompt.js) ---------------------------------------------------

# What a page with no ask loads from us: prompt.js alone, within the aim of 8 KiB minified and
# 4 KiB gzipped (docs/benchmarks.md, "Reader page weight"; a page with an ask adds its
# placement's module: tests/goals/test_widget_builds.py).
MINIFIED_BUDGET = 8 * 1024
GZIPPED_BUDGET = 4 * 1024


def test_prompt_script_is_cacheable_javascript(client):
    response = client.get("/static/prompt.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["Cache-Control"].startswith("public, max-age=3600")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.get_data() == built(PROMPT_SCRIPT).read_bytes()
    assert response.headers["ETag"] != client.get("/static/banner.js").headers["ETag"]
    again = client.get("/static/prompt.js", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


def test_what_an_article_loads_from_us_stays_small():
    body = built(PROMPT_SCRIPT).read_bytes()  # as served
    assert len(body) <= MINIFIED_BUDGET
    assert len(gzip.compress(body, 9)) <= GZIPPED_BUDGET
    # The minifier really minified (a no-op would pass the budget by luck one day).
    parts = sum(len(part.read_bytes()) for part in (COMMON, SCRIPT, PROMPT_SCRIPT))
    assert len(body) < 0.7 * parts


OTHER_MODULES = {"member": MEMBER_MODULE, "checkout": CHECKOUT_MODULE}


@pytest.mark.parametrize("name", [*MODULES, *OTHER_MODULES])
def test_a_module_is_small_cacheable_javascript(client, name):
    response = client.get(f"/static/prompt-{name}.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["Cache-Control"].startswith("public, max-age=3600")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.get_data() == built({**MODULES, **OTHER_MODULES}[name]).read_bytes()
    assert len(response.get_data()) < 1.25 * 1024
    again = client.get(response.request.path, headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


@pytest.mark.parametrize("name", ["nope", "banner.min", "Banner", "inline.min", "common"])
def test_only_the_modules_are_served(client, name):
    """Nothing but a module's name matches the route (not a part, not a built file's name)."""
    assert client.get(f"/static/prompt-{name}.js").status_code == 404


def test_the_minifier_refuses_what_is_not_es5(tmp_path):
    """The control for the build's syntax check: scripts/build_widgets.py refuses what is
    not ES5, the syntax the parts keep to."""
    bad = tmp_path / "bad.js"
    bad.write_text("const f = (x) => x;")
    with pytest.raises(Exception):  # noqa: B017 - calmjs raises its own ECMASyntaxError
        build_module().minify(bad)


def test_prompt_script_keeps_to_local_storage_and_safe_text():
    for module in (*MODULES.values(), CHECKOUT_MODULE):  # each through prompt.js's helpers
        text = module.read_text()
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text
        assert "Storage" not in text and "fetch(" not in text and "cookie" not in text
    source = PROMPT_SCRIPT.read_text()
    assert "import " not in source and "require(" not in source
    assert "innerHTML" not in source and "insertAdjacentHTML" not in source
    assert "cookie" not in source  # localStorage only
    assert "sessionStorage" not in source
    assert re.findall(r"localStorage\b", source.split("*/", 1)[1]) == ["localStorage"]
    # the member module keeps the member token, and nothing else, in localStorage
    member = MEMBER_MODULE.read_text().split("*/", 1)[1]
    assert 'var TOKEN = "member_token";' in member
    assert set(re.findall(r"localStorage\.(\w+)\(TOKEN", member)) == {
        "getItem",
        "setItem",
        "removeItem",
    }
    assert len(re.findall(r"localStorage\b", member)) == 3
    for word in ("cookie", "sessionStorage", "innerHTML", "fetch("):
        assert word not in member
    assert 'var KEY = "membership";' in source and 'var TOKEN = "member_token";' in source
    assert "2000" in source  # the 2 s timeout
    assert "threshold: 0.5" in source  # a view is half on screen
    # an event is sent even as the page goes away (common.js's call(), with `keep`)
    assert "keepalive: keep" in COMMON.read_text()
    assert re.search(r'call\("/v1/prompt/events", .*, true\)', source)
    assert "prerenderingchange" in source


def test_the_prompt_css_is_allowed_on_the_demo_page(client):
    """prompt.js inserts banner.js's look alone (the asks share it); each placement's own style
    is its module's, allowed by its hash."""
    assert security.widget_css(PROMPT_SCRIPT.read_text(encoding="utf-8")) is None
    policy = client.get("/demo/article").headers["Content-Security-Policy"]
    for name, module in MODULES.items():  # each placement module's style, which it inserts
        module_css = security.widget_css(module.read_text(encoding="utf-8"))
        assert module_css is not None and security.source_hash(module_css) in policy, name
    banner_css = security.widget_css(SCRIPT.read_text(encoding="utf-8"))
    assert security.source_hash(banner_css) in policy
    assert "unsafe-inline" not in policy


def test_demo_article_has_what_the_prompt_needs(client):
    html = client.get("/demo/article").get_data(as_text=True)
    assert '<article data-section="kyiv" data-tags="transport,blackouts">' in html
    assert '<script src="/static/prompt.js" async></script>' in html
    # The empty slot is the article's last element.
    article = html[html.index("<article") : html.index("</article>")]
    assert article.rstrip().endswith("<div data-membership-prompt></div>")
    assert 'href="/demo/article?n=2"' in html


@pytest.mark.parametrize(
    ("query", "heading", "next_href"),
    [
        ("?n=2", "The depot that never sleeps", "/demo/article?n=3"),
        ("?n=3&locale=uk", "Пасажири нічних маршрутів", "/demo/article?n=4&amp;locale=uk"),
        ("?n=4", "Kyiv&#39;s night trams", "/demo/article?n=5"),
        ("?n=999", "Riders of the night routes", "/demo/article?n=1"),
    ],
)
def test_demo_articles_form_a_series(client, query, heading, next_href):
    response = client.get("/demo/article" + query)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert f"<h1>{heading}" in html
    assert f'href="{next_href}"' in html


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?n=0", "n: expected a whole number from 1 to 999"),
        ("?n=1000", "n: expected a whole number from 1 to 999"),
        ("?n=02", "n: expected a whole number from 1 to 999"),
        ("?n=two", "n: expected a whole number from 1 to 999"),
        ("?n=1&n=2", "each query parameter may be given once"),
        ("?page=2", "page: unknown query parameter; only locale, n and session_id are"),
        ("?n=2&locale=%3Cb%3E", "locale: expected a locale tag such as en or uk"),
        ("?n=%FF", "n: expected a whole number from 1 to 999"),
    ],
)
def test_demo_article_refuses_a_bad_n(client, query, message):
    response = client.get("/demo/article" + query)
    assert response.status_code == 400
    assert response.get_json()["error"] == {"code": "invalid_query", "message": message}


# What prompt.js gives a placement module (its `var kit`, and the module's <script> element's
# own properties) as first served. A module may be a cache's, a day older or newer than the
# core, so a name here is never taken away (a new one may be added: add it here too).
KIT_AS_SERVED = {
    *("el", "card", "button", "dismiss", "seen", "close", "lang", "SEL", "call", "str", "watch"),
    *("data", "going"),
}
ELEMENT_AS_SERVED = {"kit", "p", "t", "go"}
# What a module may give back on its <script> element, which the core reads (`s.NAME`).
ELEMENT_GIVEN_BACK = {"until"}


def test_what_the_core_gives_a_module_only_grows():
    core = PROMPT_SCRIPT.read_text(encoding="utf-8")
    found = re.search(r"^var kit = \{(.*?)\};$", core, re.MULTILINE | re.DOTALL)
    assert found, "prompt.js no longer declares its kit"
    kit = set(re.findall(r"([\w$]+):", found.group(1)))
    element = set(re.findall(r"^ +s\.([\w$]+) = ", core, re.MULTILINE)) - {"async"}  # module()'s
    draw = core[core.index("function draw(") :]
    draw = draw[: draw.index("\n}\n")]
    assert set(re.findall(r"\bs\.([\w$]+)\b(?! =)", draw)) == ELEMENT_GIVEN_BACK
    assert kit >= KIT_AS_SERVED and element >= ELEMENT_AS_SERVED, "a name taken away"
    assert kit == KIT_AS_SERVED and element == ELEMENT_AS_SERVED, "a new name: list it above"
    for name, module in {**MODULES, **OTHER_MODULES}.items():  # and no more is used
        text = module.read_text(encoding="utf-8")
        assert set(re.findall(r"\bkit\.([\w$]+)", text)) <= kit, name
        assert set(re.findall(r"\bme\.([\w$]+)", text)) <= element | ELEMENT_GIVEN_BACK, name


def test_the_core_asks_for_its_modules_with_the_kit_s_version():
    """The browser tests' MODULE_QUERY is the query prompt.js's module() asks with."""
    core = PROMPT_SCRIPT.read_text(encoding="utf-8")
    assert re.findall(r'"/static/prompt-" \+ name \+ "\.js(\?\d+)"', core) == [MODULE_QUERY]


def test_every_module_draws_only_until_t():
    """The core loads a holdout's module with `t` 0 (it reports the holdout once the module has
    run in time, drawing nothing): each module, as first served with `t` and ever after, draws
    only while the time is not past `t`, at its end (after its declarations), and nowhere else."""
    for name, module in MODULES.items():
        text = module.read_text(encoding="utf-8").rstrip()
        assert text.endswith("\nDate.now() > me.t || draw(me.p);"), name
        assert text.count("draw(me.p)") == 1, name  # that call only


def _words(script, name: str) -> dict[str, str]:
    """A script's `var NAME = { en: "...", uk: "..." };`, by language."""
    text = script.read_text(encoding="utf-8")
    found = re.search(rf"^var {name} = \{{(.*?)\}};$", text, re.MULTILINE)
    assert found, f"{script.name} no longer declares {name}"
    return dict(re.findall(r'(\w+): "([^"]*)"', found.group(1)))


def test_the_staff_preview_says_what_the_widget_says():
    """The staff preview writes the widget's words again (the close button's label, a gate's
    "Maybe later"): they are the widget's own, in each language the service speaks."""
    close, later = _words(PROMPT_SCRIPT, "CLOSE"), _words(MODULES["gate"], "LATER")
    assert set(close) == set(later) == set(SUPPORTED_LOCALES)
    assert {lang: (close[lang], later[lang]) for lang in close} == campaign_preview.WIDGET_WORDS
