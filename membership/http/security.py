"""Security headers: decided once at start-up, set on every answer by the outer WSGI layer.

Every answer gets `X-Content-Type-Options: nosniff`; HTML pages also a strict
`Content-Security-Policy` (unless the view set its own), `X-Frame-Options: DENY` and a
`Referrer-Policy`. The policy allows this origin only, no inline script, no framing; inline
styles only by hash: our templates' `<style>` blocks (hashed from the template sources, so
injected markup never matches) and the one `<style>` the widget adds (from static/banner.js).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from pathlib import Path

log = logging.getLogger(__name__)

PACKAGE = Path(__file__).resolve().parent.parent
TEMPLATES = PACKAGE / "templates"
WIDGET_SCRIPT = PACKAGE / "static" / "banner.js"

REFERRER_POLICY = "strict-origin-when-cross-origin"
NOSNIFF = ("X-Content-Type-Options", "nosniff")  # on every answer
_DIRECTIVES = {
    "default-src": "'none'",
    "script-src": "'self'",
    "connect-src": "'self'",
    "img-src": "'self'",
    "font-src": "'self'",
    "style-src": "'self'",
    "form-action": "'self'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
}

_STYLE_BLOCK = re.compile(r"<style(?:\s[^>]*)?>(.*?)</style>", re.DOTALL | re.IGNORECASE)
_JS_STRING = r'"(?:[^"\\\n]|\\.)*"'
_JS_VAR = re.compile(rf"var\s+([A-Za-z_$][\w$]*)\s*=\s*({_JS_STRING})\s*;")
# `var CSS = ...;`, or a part's `var BOX_CSS = ...;` (each part of a built script names its own)
_JS_CSS = re.compile(
    rf"var\s+(?:[A-Z]+_)?CSS\s*=\s*((?:\s*(?:{_JS_STRING}|[A-Za-z_$][\w$]*)\s*\+?)+)\s*;"
)
_JS_TOKEN = re.compile(rf"({_JS_STRING})|([A-Za-z_$][\w$]*)")


def source_hash(text: str) -> str:
    """A CSP hash source for an inline element whose text is exactly `text`."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def template_styles(directory: Path = TEMPLATES) -> list[str]:
    """The text of every <style> block in our templates (no Jinja inside: rendered verbatim)."""
    found = []
    for path in sorted(directory.glob("*.html")):
        for block in _STYLE_BLOCK.findall(path.read_text(encoding="utf-8")):
            if "{{" in block or "{%" in block:
                log.warning("%s: a <style> block with Jinja in it cannot be allowed by hash", path)
                continue
            found.append(block)
    return found


def widget_css(script: str) -> str | None:
    """The CSS text the widget inserts as a <style>: `var CSS = "..." + SEL + ...;` (or
    `var BOX_CSS = ...`) evaluated (string literals and `var X = "...";` names joined by +).
    None if it cannot be read."""
    names = {name: json.loads(literal) for name, literal in _JS_VAR.findall(script)}
    match = _JS_CSS.search(script)
    if match is None:
        return None
    parts = []
    for literal, name in _JS_TOKEN.findall(match.group(1)):
        if literal:
            parts.append(json.loads(literal))
        elif name in names:
            parts.append(names[name])
        else:
            return None
    return "".join(parts)


def html_policy(styles: list[str]) -> str:
    directives = dict(_DIRECTIVES)
    hashes = sorted({source_hash(text) for text in styles})
    directives["style-src"] = " ".join([directives["style-src"], *hashes])
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def html_headers() -> dict[str, str]:
    styles = template_styles()
    css = widget_css(WIDGET_SCRIPT.read_text(encoding="utf-8"))
    if css is None:  # tests/http/test_security_headers.py fails first
        log.warning(
            "cannot read the widget's CSS from %s: its style is not allowed by the CSP",
            WIDGET_SCRIPT,
        )
    else:
        styles.append(css)
    return {
        "Content-Security-Policy": html_policy(styles),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": REFERRER_POLICY,
    }
