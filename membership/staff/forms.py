"""Reading a staff form: every field is text of at most MAX_FIELD characters."""

from __future__ import annotations

from collections.abc import Mapping

from flask import request

MAX_FIELD = 1024


def field(name: str, inputs: Mapping[str, str] | None = None) -> str:
    """The field `name` of `inputs` (the posted form by default); "" when missing."""
    value = (request.form if inputs is None else inputs).get(name, "")
    return value[:MAX_FIELD] if isinstance(value, str) else ""


def form_fields() -> dict[str, str]:
    return {k: v[:MAX_FIELD] for k, v in request.form.items() if isinstance(v, str)}


def period(raw: str | None, periods: tuple[int, ...], default: int) -> int:
    """A page's `days` query parameter: one of `periods` (missing: `default`); ValueError
    naming the parameter else."""
    if raw is None or raw == "":
        return default
    if raw.isascii() and raw.isdigit() and len(raw) <= 3 and int(raw) in periods:
        return int(raw)
    raise ValueError(f"days: expected one of {', '.join(map(str, periods))}")
