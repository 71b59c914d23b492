"""Small helpers for printing command results: JSON for machines, aligned text for people,
one line for a refusal."""

from __future__ import annotations

import contextlib
import json

import click


def echo_json(value) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def cell(value) -> str:
    """A value as a person reads it: yes/no for booleans, '-' for nothing."""
    if value is True or value is False:
        return "yes" if value else "no"
    if value is None or value == "":
        return "-"
    return str(value)


def echo_table(rows: list[dict], columns: list[str]) -> None:
    """Rows as left-aligned columns with a header; yes/no for booleans, '-' for empty cells."""
    if not rows:
        click.echo("(none)")
        return
    cells = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = "  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))
    click.echo(line.rstrip())
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


@contextlib.contextmanager
def refusals(*kinds: type[Exception], error: type[click.ClickException] = click.ClickException):
    """A refusal (an exception of `kinds`, its message the reason) as the command's one
    error line (`error`: click.UsageError for bad input, which exits 2)."""
    try:
        yield
    except kinds as exc:
        raise error(str(exc)) from None
