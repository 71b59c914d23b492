"""Small helpers for printing command results: JSON for machines, aligned text for people."""

from __future__ import annotations

import json

import click


def echo_json(value) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def echo_table(rows: list[dict], columns: list[str]) -> None:
    """Rows as left-aligned columns with a header; '-' for empty cells."""
    if not rows:
        click.echo("(none)")
        return
    cells = [
        [str(row.get(c) if row.get(c) not in (None, "") else "-") for c in columns] for row in rows
    ]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = "  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))
    click.echo(line.rstrip())
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
