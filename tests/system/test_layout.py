"""The package's layout rules that an AST can check: no private name (`_x`) is imported
from another module of membership/, nor a private module (`membership.x._y`)."""

from __future__ import annotations

import ast
from pathlib import Path

import membership

PACKAGE = Path(membership.__file__).parent


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_imports(source: str) -> list[str]:
    """Each import in `source` of a private module or name of membership, as written."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if not (node.level or module == "membership" or module.startswith("membership.")):
                continue
            names = [alias.name for alias in node.names]
            if any(map(_private, module.split("."))) or any(map(_private, names)):
                found.append(f"from {'.' * node.level}{module} import {', '.join(names)}")
        elif isinstance(node, ast.Import):
            found += [
                f"import {alias.name}"
                for alias in node.names
                if alias.name.split(".")[0] == "membership"
                and any(map(_private, alias.name.split(".")))
            ]
    return found


def test_the_scan_finds_each_kind_of_private_import():
    source = """
from __future__ import annotations
from membership.cli import _errors
from membership.cli._output import echo_json
from membership.cli.stats import money, _money
from .sibling import _helper
import membership.store._hidden
import membership.core.__about__
from membership import __version__
from os import _exit
import _thread
from membership.cli.stats import money
"""
    assert private_imports(source) == [
        "from membership.cli import _errors",
        "from membership.cli._output import echo_json",
        "from membership.cli.stats import money, _money",
        "from .sibling import _helper",
        "import membership.store._hidden",
    ]


def test_no_module_imports_a_private_name_from_another():
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{line}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line in private_imports(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
