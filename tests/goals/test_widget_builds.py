"""The widget scripts as served: the committed minified builds, up to date with their
readable sources, gzipped for a client that accepts it."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import pytest

from membership.goals.widget import PROMPT_SCRIPT, SCRIPT, built

BUILD = Path(__file__).resolve().parents[2] / "scripts" / "build_widgets.py"
SCRIPTS = {"/static/banner.js": SCRIPT, "/static/prompt.js": PROMPT_SCRIPT}


def _build_module():
    spec = importlib.util.spec_from_file_location("build_widgets", BUILD)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_builds_are_up_to_date():
    build = _build_module()
    assert build.stale() == [], "run: .venv/bin/python scripts/build_widgets.py"
    for source in SCRIPTS.values():
        text = built(source).read_text(encoding="utf-8")
        assert text == build.minify(source)
        assert len(text) < 0.75 * len(source.read_text(encoding="utf-8"))  # really minified


def test_a_stale_build_is_found(tmp_path, monkeypatch):
    """The control: a source edited after its build makes --check fail."""
    build = _build_module()
    for name in build.SOURCES:
        (tmp_path / name).write_text((build.STATIC / name).read_text(encoding="utf-8"))
        built(tmp_path / name).write_text(build.minify(tmp_path / name), encoding="utf-8")
    monkeypatch.setattr(build, "STATIC", tmp_path)
    assert build.main(["--check"]) == 0
    source = tmp_path / "prompt.js"
    source.write_text(source.read_text(encoding="utf-8") + "\n;(function () { var late = 1; })();")
    assert build.stale() == [built(source)]
    assert build.main(["--check"]) == 1


@pytest.mark.parametrize("url", SCRIPTS)
def test_a_script_is_gzipped_for_a_client_that_accepts_it(client, url):
    plain = client.get(url)
    assert plain.status_code == 200
    assert "Content-Encoding" not in plain.headers
    assert plain.headers["Vary"] == "Accept-Encoding"
    assert plain.get_data() == built(SCRIPTS[url]).read_bytes()

    zipped = client.get(url, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert zipped.status_code == 200
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert zipped.headers["Vary"] == "Accept-Encoding"
    assert zipped.headers["Cache-Control"].startswith("public, max-age=3600")
    assert zipped.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert gzip.decompress(zipped.get_data()) == plain.get_data()
    assert len(zipped.get_data()) < len(plain.get_data()) / 2
    # one ETag per representation, each revalidated on its own
    assert zipped.headers["ETag"] != plain.headers["ETag"]
    again = client.get(
        url, headers={"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["ETag"]}
    )
    assert again.status_code == 304

    refused = client.get(url, headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "Content-Encoding" not in refused.headers
    assert refused.get_data() == plain.get_data()
