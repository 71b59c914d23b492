"""The widget scripts as served: the committed minified builds, up to date with their
readable sources, compressed (brotli or gzip) for a client that accepts it, and what an
article loads from us within its weight budget."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import brotli
import pytest

from membership.goals.widget import ENCODINGS, PROMPT_SCRIPT, SCRIPT, built

BUILD = Path(__file__).resolve().parents[2] / "scripts" / "build_widgets.py"
SCRIPTS = {"/static/banner.js": SCRIPT, "/static/prompt.js": PROMPT_SCRIPT}
# The aim is 8 KB minified and 4 KB compressed (docs/benchmarks.md, "Reader page weight", says
# what stands between); these budgets stop the scripts from growing further unnoticed.
BUDGET = {"minified": 12_032, "br": 4_736, "gzip": 5_632}


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


def test_the_build_joins_literals_and_var_statements(tmp_path):
    build = _build_module()
    source = tmp_path / "s.js"
    source.write_text(
        '(function () {\n  var SEL = "[x]";\n  var CSS = SEL + "{a:b}" +\n    "c{d:e}";\n'
        '  var n = 1 + 2 + "x" + "y";\n  window.f = [CSS, n];\n})();\n'
    )
    built_text = build.minify(source)
    assert built_text.count("var ") == 1  # one statement declares the three
    assert '"{a:b}c{d:e}"' in built_text and '"xy"' in built_text and "1+2" in built_text


def _decode(coding: str, body: bytes) -> bytes:
    return brotli.decompress(body) if coding == "br" else gzip.decompress(body)


@pytest.mark.parametrize("url", SCRIPTS)
@pytest.mark.parametrize(
    ("accepts", "coding"),
    [
        ("gzip, deflate, br, zstd", "br"),  # Chromium's, also over plain HTTP
        ("gzip, deflate", "gzip"),
        ("br;q=0.5, gzip", "gzip"),  # the client's preference wins
        ("br, gzip;q=0", "br"),
    ],
)
def test_a_script_is_compressed_for_a_client_that_accepts_it(client, url, accepts, coding):
    plain = client.get(url)
    assert plain.status_code == 200
    assert "Content-Encoding" not in plain.headers
    assert plain.headers["Vary"] == "Accept-Encoding"
    assert plain.get_data() == built(SCRIPTS[url]).read_bytes()

    packed = client.get(url, headers={"Accept-Encoding": accepts})
    assert packed.status_code == 200
    assert packed.headers["Content-Encoding"] == coding
    assert packed.headers["Vary"] == "Accept-Encoding"
    assert packed.headers["Cache-Control"].startswith("public, max-age=3600")
    assert packed.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert _decode(coding, packed.get_data()) == plain.get_data()
    assert len(packed.get_data()) < 0.6 * len(plain.get_data())
    # one ETag per representation, each revalidated on its own
    assert packed.headers["ETag"] not in (plain.headers["ETag"], "")
    again = client.get(
        url, headers={"Accept-Encoding": accepts, "If-None-Match": packed.headers["ETag"]}
    )
    assert again.status_code == 304
    other = "gzip" if coding == "br" else "br"
    elsewhere = client.get(
        url, headers={"Accept-Encoding": other, "If-None-Match": packed.headers["ETag"]}
    )
    assert elsewhere.status_code == 200 and elsewhere.headers["Content-Encoding"] == other

    refused = client.get(url, headers={"Accept-Encoding": "gzip;q=0, br;q=0, identity"})
    assert "Content-Encoding" not in refused.headers
    assert refused.get_data() == plain.get_data()


def test_what_an_article_loads_from_us_is_within_its_weight_budget():
    """The sums over both scripts, as served: minified, and in each encoding the service keeps."""
    bodies = [built(source).read_bytes() for source in SCRIPTS.values()]
    sums = {"minified": sum(len(body) for body in bodies)}
    for name, encode in ENCODINGS.items():
        sums[name] = sum(len(encode(body)) for body in bodies)
    assert sums.keys() == BUDGET.keys()
    assert all(sums[name] <= BUDGET[name] for name in BUDGET), sums
    assert sums["br"] < sums["gzip"] < sums["minified"] / 2
