"""The widget scripts as served: the committed minified builds, up to date with the readable
parts they are built of, compressed (brotli or gzip) for a client that accepts it, and what an
article loads from us within its weight budget."""

from __future__ import annotations

import gzip
import re

import brotli
import pytest

from membership.goals.widget import ENCODINGS, PROMPT_SCRIPT, SCRIPT, built
from tests.support.widget_build import build_module

SCRIPTS = {"/static/banner.js": SCRIPT, "/static/prompt.js": PROMPT_SCRIPT}
# An article page loads prompt.js alone (it fills the count box too). The aim is 8 KB minified
# and 4 KB compressed: brotli, what browsers accept, is within it; minified and gzip are not
# (docs/benchmarks.md, "Reader page weight"), and these budgets stop them from growing.
BUDGET = {"minified": 11_264, "br": 4_096, "gzip": 4_864}


def test_the_committed_builds_are_up_to_date():
    build = build_module()
    assert build.stale() == [], "run: .venv/bin/python scripts/build_widgets.py"
    for source in SCRIPTS.values():
        text = built(source).read_text(encoding="utf-8")
        assert text == build.minify(source)
        assert len(text) < 0.75 * len(build.composed(source))  # really minified


def test_each_script_is_built_of_its_parts_written_once():
    """prompt.js is banner.js's build with the asks' part added (so an article page needs it
    alone), and no function or variable is defined twice across the parts."""
    build = build_module()
    assert build.PARTS == {
        "banner.js": ("common.js", "banner.js"),
        "prompt.js": ("common.js", "banner.js", "prompt.js"),
    }
    asks = (build.STATIC / "prompt.js").read_text(encoding="utf-8")
    composed = build.composed(PROMPT_SCRIPT)
    assert composed == build.composed(SCRIPT).replace("\n})();\n", f"\n{asks}\n}})();\n")
    names = re.findall(r"^(?:function|var) ([\w$]+)", composed, re.MULTILINE)
    assert "el" in names and "call" in names and "fill" in names and "card" in names
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


def test_a_stale_build_is_found(tmp_path, monkeypatch):
    """The control: a source edited after its build makes --check fail."""
    build = build_module()
    for name in {part for parts in build.PARTS.values() for part in parts}:
        (tmp_path / name).write_text((build.STATIC / name).read_text(encoding="utf-8"))
    for name in build.SOURCES:
        built(tmp_path / name).write_text(build.minify(tmp_path / name), encoding="utf-8")
    monkeypatch.setattr(build, "STATIC", tmp_path)
    assert build.main(["--check"]) == 0
    source = tmp_path / "prompt.js"
    source.write_text(source.read_text(encoding="utf-8") + "\nvar late = 1;\n")
    assert build.stale() == [built(source)]
    assert build.main(["--check"]) == 1
    # a shared part edited: every script built of it is stale
    common = tmp_path / "common.js"
    common.write_text(common.read_text(encoding="utf-8") + "\nvar early = 1;\n")
    assert build.stale() == [built(tmp_path / "banner.js"), built(source)]


def test_the_build_joins_literals_and_var_statements(tmp_path):
    build = build_module()
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
    """prompt.js as served: minified, and in each encoding the service keeps."""
    body = built(PROMPT_SCRIPT).read_bytes()
    sizes = {"minified": len(body)}
    sizes.update({name: len(encode(body)) for name, encode in ENCODINGS.items()})
    assert sizes.keys() == BUDGET.keys()
    assert all(sizes[name] <= BUDGET[name] for name in BUDGET), sizes
    assert sizes["br"] < sizes["gzip"] < sizes["minified"] / 2
