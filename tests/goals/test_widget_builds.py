"""The widget scripts as served: the committed minified builds, up to date with the readable
parts they are built of, compressed (brotli or gzip) for a client that accepts it, and what an
article loads from us within its weight budget."""

from __future__ import annotations

import gzip
import re

import brotli
import pytest

from membership.goals.widget import (
    CHECKOUT_MODULE,
    ENCODINGS,
    LOADED,
    MEMBER_MODULE,
    MODULES,
    PROMPT_SCRIPT,
    SCRIPT,
    built,
    loads,
)
from tests.support.widget_build import build_module

SCRIPTS = {
    "/static/banner.js": SCRIPT,
    "/static/prompt.js": PROMPT_SCRIPT,
    **{f"/static/prompt-{name}.js": path for name, path in LOADED.items()},
}
# What a page showing each placement (or none) loads from us, and a member's page where the
# token arrives (a sign-in link, Checkout's return) or is renewed.
PAGES = {
    **{placement: loads(placement) for placement in ("banner", "inline", "modal", "gate")},
    "no ask": loads(None),
    "a member's": loads(None, member=True),
}
# What a page loads from us, summed (docs/benchmarks.md, "Reader page weight"): at most 8 KiB
# minified and 4 KiB compressed, in either encoding, for every page.
AIM = {"minified": 8_192, "br": 4_096, "gzip": 4_096}


def test_the_committed_builds_are_up_to_date():
    build = build_module()
    assert build.stale() == [], "run: .venv/bin/python scripts/build_widgets.py"
    for source in SCRIPTS.values():
        text = built(source).read_text(encoding="utf-8")
        assert text == build.minify(source)
        assert len(text) < 0.75 * len(build.composed(source))  # really minified


def test_each_script_is_built_of_its_parts_written_once():
    """prompt.js is banner.js's build with the core of the asks added (so an article page
    embeds it alone), each other placement's module is built alone, and no function or
    variable is defined twice across the parts of one script."""
    build = build_module()
    assert build.PARTS == {
        "banner.js": ("common.js", "banner.js"),
        "prompt.js": ("common.js", "banner.js", "prompt.js"),
        "prompt-banner.js": ("prompt-banner.js",),
        "prompt-inline.js": ("prompt-inline.js",),
        "prompt-modal.js": ("prompt-modal.js",),
        "prompt-gate.js": ("prompt-gate.js",),
        "prompt-member.js": ("prompt-member.js",),
        "prompt-checkout.js": ("prompt-checkout.js",),
    }
    asks = (build.STATIC / "prompt.js").read_text(encoding="utf-8")
    composed = build.composed(PROMPT_SCRIPT)
    assert composed == build.composed(SCRIPT).replace("\n})();\n", f"\n{asks}\n}})();\n")
    for source, defined in [
        (
            PROMPT_SCRIPT,
            {"el", "call", "fill", "card", "draw", "me", "base", "ls", "due", "module"},
        ),
        *((path, {"draw", "me", "kit"}) for path in MODULES.values()),
        (MEMBER_MODULE, {"keep", "arrive", "renew", "me", "kit"}),
        (CHECKOUT_MODULE, {"checkout", "me", "kit", "p"}),
    ]:
        names = _declared(build.composed(source))
        assert defined <= set(names), source.name
        assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


def _declared(script: str) -> list[str]:
    """Every name a built script's one function declares (each `var`, also the second and
    later of one statement and one inside a block, and each function), in order."""
    from calmjs.parse import asttypes, es5

    def walk(node) -> list[str]:
        if isinstance(node, asttypes.FuncDecl):
            return [node.identifier.value]  # its own names are its own
        if isinstance(node, asttypes.FuncExpr):
            return []
        found = [node.identifier.value] if isinstance(node, asttypes.VarDecl) else []
        return found + [name for child in node for name in walk(child)]

    (statement,) = es5(script)  # (function () { ... })();
    body = statement.expr.identifier.expr  # the function called, inside its parentheses
    return [name for node in body.elements for name in walk(node)]


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
    # a module is small, so less of it is repetition (under 512 bytes, the encoding's own
    # header and tables are a good part of it)
    small = 0.85 if len(plain.get_data()) < 512 else 0.75
    assert len(packed.get_data()) < (small if "prompt-" in url else 0.6) * len(plain.get_data())
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


@pytest.mark.parametrize("url", sorted(SCRIPTS))
def test_a_script_carries_only_the_headers_a_cached_script_needs(client, url):
    """Every article page pays for a script's headers on the wire: the answer carries nosniff,
    its validators and caching, and no per-request id (the same file for every request, which
    logs nothing); a refusal under /static/ is JSON and keeps its request id."""
    served = client.get(url, headers={"Accept-Encoding": "br", "X-Request-ID": "page-view.7"})
    assert served.status_code == 200
    assert served.headers.getlist("X-Content-Type-Options") == ["nosniff"]
    assert "X-Request-ID" not in served.headers
    assert re.fullmatch(r'"[A-Za-z0-9_-]{12}"', served.headers["ETag"])
    assert set(served.headers.keys()) - {"Date"} == {
        "Cache-Control",
        "Content-Encoding",
        "Content-Length",
        "Content-Type",
        "ETag",
        "Vary",
        "X-Content-Type-Options",
    }
    missing = client.get("/static/prompt-nope.js", headers={"X-Request-ID": "page-view.8"})
    assert missing.status_code == 404 and missing.is_json
    assert missing.headers["X-Request-ID"] == "page-view.8"


@pytest.mark.parametrize("page", PAGES)
def test_what_an_article_loads_from_us_is_within_its_weight_budget(page):
    """prompt.js, the module of the placement shown (none for no ask) and the member module
    where a token arrives or is renewed, as served: minified, and in each encoding the service
    keeps, summed. (The checkout module is loaded as the reader leaves for Checkout.)"""
    assert PAGES[page][0] == PROMPT_SCRIPT
    bodies = [built(source).read_bytes() for source in PAGES[page]]
    sizes = {"minified": sum(map(len, bodies))}
    sizes.update({name: sum(len(encode(b)) for b in bodies) for name, encode in ENCODINGS.items()})
    assert sizes.keys() == AIM.keys()
    assert all(sizes[name] <= AIM[name] for name in AIM), sizes
    # really compressed (each script on its own: a small module is less repetition)
    assert sizes["br"] < sizes["gzip"] < sizes["minified"] * 0.55


def test_a_placement_is_loaded_as_its_own_module_only():
    """Each placement is drawn by its module, whose style (known by its first rule; the inline
    ask has the core's alone) is in no other script."""
    first_rule = {"banner": ".mp-banner{", "modal": ".mp-over{", "gate": ".mp-cover{"}
    assert loads(None) == (PROMPT_SCRIPT,)
    texts = {path: built(path).read_text(encoding="utf-8") for path in SCRIPTS.values()}
    assert (
        "slot" in texts[MODULES["inline"]] or "data-membership-prompt" in texts[MODULES["inline"]]
    )
    assert "data-membership-prompt" not in texts[PROMPT_SCRIPT]  # the slot is the module's
    for name, path in MODULES.items():
        assert loads(name) == (PROMPT_SCRIPT, path)
        if name in first_rule:
            found = [p.name for p, text in texts.items() if first_rule[name] in text]
            assert found == [path.name]
