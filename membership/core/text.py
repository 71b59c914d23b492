"""What staff may type into the service's text: one rule for every name, reason, email,
copy template and audit field.

Refused: control characters (C0, DEL, C1: escape sequences start with ESC or CSI),
format characters (bidi overrides, zero-width marks), lone surrogates (not
encodable) and the Unicode line and paragraph separators. Such text could rewrite a
terminal that lists it, or make a name look like another.
"""

from __future__ import annotations

import re
import unicodedata

UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def unsafe_character(text: str) -> str | None:
    """The first character not allowed in staff-typed text, as `U+XXXX`; None when clean."""
    for c in text:
        if unicodedata.category(c) in UNSAFE_CATEGORIES:
            return f"U+{ord(c):04X}"
    return None


def has_control(text: str) -> bool:
    return unsafe_character(text) is not None


def _at_most(bound: str) -> str:
    """A regex of the decimal strings as long as `bound` and not above it."""
    below = [
        f"{bound[:i]}[0-{int(d) - 1}][0-9]{{{len(bound) - i - 1}}}"
        for i, d in enumerate(bound)
        if d != "0"
    ]
    return "|".join([bound, *below])


# A Redis stream entry id, as the logs' cursors are: `ms-seq`, each part below 2**64 (Redis
# refuses more); also the API document's pattern, so the two cannot differ.
_PART = f"(?:[0-9]{{1,19}}|{_at_most(str(2**64 - 1))})"
STREAM_ID = re.compile(f"{_PART}-{_PART}")


def stream_id(text: str) -> bool:
    """Whether `text` is an entry id Redis takes as a cursor."""
    return STREAM_ID.fullmatch(text) is not None
