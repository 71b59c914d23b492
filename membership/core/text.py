"""What staff may type into the service's text: one rule for every name, reason, email,
copy template and audit field.

Refused: control characters (C0, DEL, C1: escape sequences start with ESC or CSI),
format characters (bidi overrides, zero-width marks), lone surrogates (not
encodable) and the Unicode line and paragraph separators. Such text could rewrite a
terminal that lists it, or make a name look like another.
"""

from __future__ import annotations

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
