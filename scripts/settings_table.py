"""Print the configuration table the docs carry, generated from the settings' declaration
(membership.core.config.SettingsSchema), or put it in place of the table in a Markdown file.

    python scripts/settings_table.py             # print it
    python scripts/settings_table.py docs/configuration.md   # rewrite that page's table in place

tests/core/test_config.py fails while the page's table differs from the generated one.
"""

from __future__ import annotations

import sys
from pathlib import Path

from membership.core.config import settings_table


def replace_table(markdown: str, table: str) -> str:
    """`markdown` with its settings table (the header row and the rows after it) replaced."""
    lines = markdown.splitlines(keepends=True)
    header = table.splitlines(keepends=True)[0]
    try:
        start = lines.index(header)
    except ValueError:
        raise SystemExit(f"no line {header.strip()!r} to replace") from None
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "".join([*lines[:start], table, *lines[end:]])


def main(argv: list[str]) -> int:
    table = settings_table()
    if not argv:
        sys.stdout.write(table)
        return 0
    for name in argv:
        path = Path(name)
        path.write_text(replace_table(path.read_text(), table))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
