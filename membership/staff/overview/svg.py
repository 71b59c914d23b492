"""Small pieces every dashboard chart shares: safe text, numbers, ticks, the <svg> frame.

Pure functions. Text is escaped with markupsafe and stripped of what XML 1.0 cannot hold
(control characters), so any label gives a well-formed document. Coordinates are printed
with one decimal, so the same input always gives the same bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from markupsafe import Markup, escape

# XML 1.0 allows tab, newline, carriage return and everything from U+0020 but surrogates
# and U+FFFE/U+FFFF; markupsafe escapes <>&"' but leaves these, which a parser refuses.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,99}")  # room for "results-" + a campaign slug
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"


@dataclass(frozen=True)
class Chart:
    """A chart and its text alternative: `svg` to draw, `table` (HTML) and `summary` to read."""

    svg: Markup
    table: Markup
    summary: str


def text(value: object) -> Markup:
    """`value` as escaped text for an element or a double-quoted attribute."""
    return escape(_NOT_XML.sub("", str(value)))


def clip(value: str, limit: int) -> str:
    """A label cut to `limit` characters with an ellipsis (the table keeps the whole)."""
    return value if len(value) <= limit else value[: limit - 1] + "…"


def num(x: float) -> str:
    """A coordinate: one decimal, no "-0.0"."""
    s = f"{x:.1f}"
    return "0.0" if s == "-0.0" else s


def check_id(chart_id: str) -> str:
    """Ids go into attributes and `aria-labelledby`: letters, digits, - and _ only."""
    if not _ID.fullmatch(chart_id):
        raise ValueError(f"chart id {chart_id!r}: expected a letter, then letters, digits, - or _")
    return chart_id


def nice_ticks(lo: int, hi: int, count: int = 4) -> list[int]:
    """Round integer ticks (1, 2 or 5 x 10^k apart) covering [lo, hi], about `count` steps.

    Integer arithmetic throughout, so counts in the billions tick exactly."""
    lo, hi = min(lo, hi), max(lo, hi)
    if lo == hi:
        hi = lo + 1
    raw = -(-(hi - lo) // count)  # ceil
    magnitude = 10 ** (len(str(raw)) - 1)
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = (lo // step) * step
    last = -(-hi // step) * step
    return list(range(first, last + 1, step))


def frame(chart_id: str, width: int, height: int, title: str, desc: str, body: str) -> Markup:
    """The <svg> element: scales to its container (viewBox, width 100%, no fixed size),
    named by its <title> and described by its <desc> for assistive technology."""
    cid = check_id(chart_id)
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{cid}" '
        f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMidYMid meet" '
        f'role="img" aria-labelledby="{cid}-title {cid}-desc" '
        f'font-family="{text(FONT)}" font-size="12">'
        f'<title id="{cid}-title">{text(title)}</title>'
        f'<desc id="{cid}-desc">{text(desc)}</desc>'
        f"{body}</svg>"
    )


def table(caption: str, headers: list[str], rows: list[list[object]]) -> Markup:
    """A small HTML table (the chart's text alternative); every cell escaped."""
    head = "".join(f'<th scope="col">{text(h)}</th>' for h in headers)
    body = "".join(
        "<tr>"
        + f'<th scope="row">{text(row[0])}</th>'
        + "".join(f"<td>{text(cell)}</td>" for cell in row[1:])
        + "</tr>"
        for row in rows
    )
    return Markup(
        f'<table class="chart-data"><caption>{text(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )
