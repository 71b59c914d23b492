import gzip
import json
import re

from membership.config import SUPPORTED_LOCALES
from membership.widget import SCRIPT


def test_script_is_small_cacheable_javascript(client):
    response = client.get("/static/banner.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["Cache-Control"].startswith("public, max-age=3600")
    assert response.get_data() == SCRIPT.read_bytes()
    # Under 5 KB as written (comments and all), so minified it is smaller still.
    assert len(response.get_data()) < 5 * 1024
    assert len(gzip.compress(response.get_data())) < 2 * 1024
    again = client.get("/static/banner.js", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


def test_script_has_no_dependencies_and_renders_text_safely():
    source = SCRIPT.read_text()
    assert "import " not in source and "require(" not in source
    assert "innerHTML" not in source  # copy is set with textContent
    assert "2000" in source  # the 2 s timeout


def test_demo_article_embeds_the_widget(client):
    response = client.get("/demo/article")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert '<html lang="en">' in html
    assert '<div data-membership-banner data-locale="en"></div>' in html
    assert '<script src="/static/banner.js" async></script>' in html
    assert "min-height" in html  # space reserved before the script runs


def test_demo_article_in_ukrainian_and_fallback(client):
    uk = client.get("/demo/article?locale=uk").get_data(as_text=True)
    assert 'data-locale="uk"' in uk and "Нічні трамваї" in uk
    assert 'data-locale="en"' in client.get("/demo/article?locale=pl").get_data(as_text=True)


def test_demo_article_refuses_a_bad_locale(client):
    response = client.get("/demo/article?locale=%3Cscript%3E")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_query"


def test_the_widget_serves_the_languages_the_service_speaks():
    """banner.js reduces a page's language to one of these; they must be the server's."""
    found = re.search(r"var SERVED = (\[[^\]]*\]);", SCRIPT.read_text())
    assert found, "banner.js no longer declares SERVED"
    served = json.loads(found.group(1))
    assert tuple(served) == SUPPORTED_LOCALES
    assert served[0] == "en"  # the fallback for a language we do not speak
