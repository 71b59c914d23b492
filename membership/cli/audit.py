"""`membership audit list`: who changed what, newest first."""

from __future__ import annotations

import json
import unicodedata

import click

from membership.cli import with_app
from membership.cli.output import echo_json, echo_table
from membership.core import audit as audit_mod
from membership.core.runtime import runtime
from membership.core.text import UNSAFE_CATEGORIES

_CHANGE_WIDTH = 80
_FIRST = ("id", "target", "name", "email", "status")  # what names a record, shown first


def _safe(text: str) -> str:
    """One terminal-safe line: control/format characters and line breaks shown escaped."""
    return "".join(
        f"\\u{ord(c):04x}" if unicodedata.category(c) in UNSAFE_CATEGORIES else c for c in text
    )


def _short(text: str, width: int) -> str:
    text = _safe(text)
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _value(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _order(key: str) -> tuple:
    return (_FIRST.index(key), "") if key in _FIRST else (len(_FIRST), key)


def _summary(state) -> str:
    """A state in brief: a record's non-empty fields as key=value, anything else as JSON."""
    if isinstance(state, dict):
        return " ".join(
            f"{k}={_value(state[k])}"
            for k in sorted(state, key=_order)
            if state[k] not in (None, "", {}, [])
        )
    return _value(state)


def _change(before, after) -> str:
    """before → after on one line; for two records only the fields that changed."""
    if isinstance(before, dict) and isinstance(after, dict):
        changed = [
            f"{k}: {_value(before.get(k))} → {_value(after.get(k))}"
            for k in sorted(before.keys() | after.keys(), key=_order)
            if before.get(k) != after.get(k)
        ]
        return _short(", ".join(changed) or "(no change)", _CHANGE_WIDTH)
    if before is None and after is None:
        return ""
    if before is None:
        return "→ " + _short(_summary(after), _CHANGE_WIDTH - 2)
    if after is None:
        return _short(_summary(before), _CHANGE_WIDTH - 9) + " → (none)"
    side = (_CHANGE_WIDTH - 3) // 2
    return f"{_short(_summary(before), side)} → {_short(_summary(after), side)}"


@click.group()
def audit() -> None:
    """The audit log: every staff change, who made it and when."""


@audit.command("list")
@click.option(
    "--limit",
    type=click.IntRange(min=1, max=100_000),
    default=50,
    show_default=True,
    help="How many entries to show.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@with_app
def list_(limit: int, as_json: bool):
    """List audit entries, newest first."""
    rt = runtime()
    found = audit_mod.entries(rt.redis, rt.keys, limit=limit)
    if as_json:
        echo_json(found)
        return
    echo_table(
        [{**e, "change": _change(e["before"], e["after"])} for e in found],
        ["at", "actor", "action", "target", "change"],
    )
