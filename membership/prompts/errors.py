"""Validation errors of the prompts' documents as `path: message` lines.

A path is written with attributes joined by dots, list items as `[i]`
(`variants[1].copy.uk.headline: missing`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def join(prefix: str, key: str | int) -> str:
    """`variants` + 1 -> `variants[1]`; `variants[1]` + `copy` -> `variants[1].copy`."""
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else key


def flatten(messages: object, prefix: str = "") -> list[str]:
    """Marshmallow's nested `messages` as `path: message` lines, in the order it reported them."""
    lines: list[str] = []
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            lines += flatten(value, prefix if key == "_schema" else join(prefix, key))
    elif isinstance(messages, Sequence) and not isinstance(messages, str):
        for value in messages:
            lines += flatten(value, prefix)
    else:
        lines.append(f"{prefix}: {messages}" if prefix else str(messages))
    return lines


class DocumentError(ValueError):
    """A document that does not validate. `errors` holds every `path: message` line found;
    the message (str) is the first of them."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        super().__init__(self.errors[0] if self.errors else "invalid")
