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


# A Redis stream entry id, as the logs' cursors are: its shape (the API document's pattern);
# stream_id() also holds each part to the 64 bits Redis takes.
STREAM_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")


def stream_id(text: str) -> bool:
    """Whether `text` is an entry id Redis takes as a cursor (`ms-seq`, each below 2**64)."""
    return bool(STREAM_ID.fullmatch(text)) and all(int(p) < 2**64 for p in text.split("-"))
