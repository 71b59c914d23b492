"""Build the minified widget scripts the service serves from their readable sources.

    .venv/bin/python scripts/build_widgets.py          # writes membership/static/*.min.js
    .venv/bin/python scripts/build_widgets.py --check  # exit 1 if a built file is stale

calmjs.parse (a test extra) minifies ES5 and mangles local names; it refuses anything that is
not ES5, the syntax both scripts keep to. The built files are committed, so nothing is built
at run time; tests/goals/test_widget_builds.py fails when one is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

STATIC = Path(__file__).resolve().parent.parent / "membership" / "static"
SOURCES = ("banner.js", "prompt.js")


def built_path(source: Path) -> Path:
    return source.with_suffix(".min.js")


def minify(source: Path) -> str:
    """The minified text of one readable script."""
    from calmjs.parse import es5
    from calmjs.parse.unparsers.es5 import minify_print

    tree = es5(source.read_text(encoding="utf-8"))
    body = minify_print(tree, obfuscate=True, obfuscate_globals=False)
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
