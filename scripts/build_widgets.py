"""Build the minified widget scripts the service serves from their readable sources.

    .venv/bin/python scripts/build_widgets.py          # writes membership/static/*.min.js
    .venv/bin/python scripts/build_widgets.py --check  # exit 1 if a built file is stale

Each served script is one function of readable parts, so what two need is written once
(`PARTS`): banner.js is common.js + banner.js (the member-count boxes), prompt.js is common.js +
banner.js + prompt.js (the asks' core and the boxes: an article page embeds it alone), and each
placement's module (prompt-banner.js, prompt-modal.js, prompt-gate.js, which prompt.js loads
once an answer names the placement) and the member module (prompt-member.js: a token's arrival
and renewal) is built of itself. calmjs.parse
(a test extra) minifies ES5 and mangles local names, after this script has joined what the
readable source writes apart for its readers: string literals split over lines ("a" + "b" is
built as "ab") and one `var` statement after another (`var a = 1, b = 2`). It refuses anything
that is not ES5, the syntax the parts keep to. The built files are committed, so nothing is
built at run time; tests/goals/test_widget_builds.py fails when one is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

from membership.goals.widget import LOADED, STATIC
from membership.goals.widget import built as built_path

# Each served script (by its readable source's name) and the parts it is built of, in order.
PARTS = {
    "banner.js": ("common.js", "banner.js"),
    "prompt.js": ("common.js", "banner.js", "prompt.js"),
    # each module prompt.js loads when a page needs it: a placement's (but the inline ask's),
    # the member's
    **{module.name: (module.name,) for module in LOADED.values()},
}
SOURCES = tuple(PARTS)


def _literal(node) -> bool:
    from calmjs.parse import asttypes

    return isinstance(node, asttypes.String) and node.value.startswith('"')


def _join(left, right):
    left.value = left.value[:-1] + right.value[1:]
    return left


def _merge_vars(nodes: list) -> list:
    """Statements with each run of `var` statements made one (declared in the same order)."""
    from calmjs.parse import asttypes

    out: list = []
    for node in nodes:
        if isinstance(node, asttypes.VarStatement) and out and type(out[-1]) is type(node):
            out[-1]._children_list.extend(node._children_list)
        else:
            out.append(node)
    return out


def fold(node):
    """`node` with each `"a" + "b"` joined into one literal, also at the end of a longer sum
    (`x + "a" + "b"` is `x + "ab"`: once a string is added, + only concatenates), and each run
    of `var` statements joined into one; `true` and `false` are written `!0` and `!1`."""
    from calmjs.parse import asttypes

    if isinstance(node, asttypes.Boolean):
        return asttypes.UnaryExpr("!", asttypes.Number("0" if node.value == "true" else "1"))
    for name, value in vars(node).items():
        if isinstance(value, asttypes.Node):
            setattr(node, name, fold(value))
        elif isinstance(value, list):
            value[:] = _merge_vars([fold(v) if isinstance(v, asttypes.Node) else v for v in value])
    if not (isinstance(node, asttypes.BinOp) and node.op == "+" and _literal(node.right)):
        return node
    if _literal(node.left):
        return _join(node.left, node.right)
    left = node.left
    if isinstance(left, asttypes.BinOp) and left.op == "+" and _literal(left.right):
        left.right = _join(left.right, node.right)
        return left
    return node


def composed(source: Path) -> str:
    """The readable script served for `source`: its parts (`PARTS`, beside it) as the body of
    one function called at once, so their names are local (mangled) and shared; a file not in
    `PARTS` is taken as it is."""
    names = PARTS.get(source.name)
    if names is None:
        return source.read_text(encoding="utf-8")
    parts = [(source.parent / name).read_text(encoding="utf-8") for name in names]
    return "(function () {\n" + "\n".join(parts) + "\n})();\n"


def minify(source: Path) -> str:
    """The minified text of one served script."""
    from calmjs.parse import es5
    from calmjs.parse.unparsers.es5 import minify_print

    tree = fold(es5(composed(source)))
    body = minify_print(tree, obfuscate=True, obfuscate_globals=False, drop_semi=True)
    return body + "\n"


def stale() -> list[Path]:
    """The built files that differ from what their sources build now."""
    out = []
    for name in SOURCES:
        source = STATIC / name
        target = built_path(source)
        if not target.exists() or target.read_text(encoding="utf-8") != minify(source):
            out.append(target)
    return out


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        paths = stale()
        for path in paths:
            print(f"{path} is out of date: run scripts/build_widgets.py", file=sys.stderr)
        return 1 if paths else 0
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    for name in SOURCES:
        source = STATIC / name
        built_path(source).write_text(minify(source), encoding="utf-8")
        print(built_path(source))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
