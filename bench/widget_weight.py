"""Benchmark: the weight of what an article page loads from us, the widget scripts as served.

    .venv/bin/python bench/widget_weight.py

For each served script (`banner.js`: the count boxes alone; `prompt.js`: the core an article
page embeds, which fills the count boxes; `prompt-inline.js`, `prompt-banner.js`,
`prompt-modal.js`, `prompt-gate.js`: each placement's module, loaded once an answer names it;
`prompt-member.js`: the member token's arrival and renewal, loaded only when a page needs it;
`prompt-checkout.js`: Stripe Checkout, loaded once the reader clicks a call to action)
prints the readable parts it is built of (scripts/build_widgets.py's PARTS) and their bytes
as written, the bytes as built (what is served; and how much of that is the CSS the parts
insert) and as each encoding the service keeps (membership/goals/widget.py's ENCODINGS: the
very bytes a client that accepts it gets); then, for a page showing each placement (and one
showing none, and a member's page where the token arrives or is renewed), the sum of what it
loads (membership.goals.widget.loads) beside the aim. The
browser's own measure (transfer sizes of the demo article's requests, in Chromium, for each
placement) is tests/goals/test_reader_page_browser.py's `light_on_the_wire` test; it prints its
figures with `pytest -s`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from membership.goals.widget import ENCODINGS, LOADED, PROMPT_SCRIPT, SCRIPT, built, loads
from membership.http.security import widget_css

BUILD = Path(__file__).resolve().parents[1] / "scripts" / "build_widgets.py"
AIM = {"minified": 8 * 1024, "br": 4 * 1024, "gzip": 4 * 1024}
# A page showing each placement, or no ask, or a member's; a page with only the count
# box loads banner.js alone.
PAGES = {
    **{placement: loads(placement) for placement in ("banner", "inline", "modal", "gate")},
    "no ask": loads(None),
    "a member's (a token arriving or renewed)": loads(None, member=True),
}


def _parts() -> dict[str, tuple[str, ...]]:
    spec = importlib.util.spec_from_file_location("build_widgets", BUILD)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.PARTS


def weights() -> dict[str, dict]:
    """Per served script: its parts, their bytes as written, minified, and in each encoding."""
    out, parts = {}, _parts()
    for source in (SCRIPT, PROMPT_SCRIPT, *LOADED.values()):
        texts = [source.with_name(name).read_text(encoding="utf-8") for name in parts[source.name]]
        body = built(source).read_bytes()
        css = sum(len((widget_css(text) or "").encode("utf-8")) for text in texts)
        row = {
            "parts": " + ".join(parts[source.name]),
            "written": sum(len(text.encode("utf-8")) for text in texts),
            "minified": len(body),
            "of it CSS": css,
        }
        row.update({name: len(encode(body)) for name, encode in ENCODINGS.items()})
        out[source.name] = row
    return out


def _table(rows: dict[str, dict], columns: list[str], head: str) -> None:
    print(f"| {head} | " + " | ".join(columns) + " |")
    text = ("parts", "scripts")  # left-aligned; the numbers right
    print("| --- |" + "".join(" --- |" if c in text else " ---: |" for c in columns))
    for name, row in rows.items():
        cells = (row[c] if isinstance(row[c], str) else f"{row[c]:,}" for c in columns)
        print(f"| {name} | " + " | ".join(cells) + " |")


def main() -> None:
    rows = weights()
    columns = ["parts", "written", "minified", "of it CSS", *ENCODINGS]
    _table({f"`{name}`": row for name, row in rows.items()}, columns, "script")
    print()
    pages = {}
    for placement, sources in {**PAGES, "the count alone": (SCRIPT,)}.items():
        names = [source.name for source in sources]
        page = {c: sum(rows[name][c] for name in names) for c in AIM}
        page["scripts"] = " + ".join(f"`{name}`" for name in names)
        pages[placement] = page
    _table(pages, ["scripts", *AIM], "page showing")
    for page, row in pages.items():
        over = [f"{c} {row[c]:,} > {AIM[c]:,}" for c in AIM if row[c] > AIM[c]]
        print(f"{page}: " + ("over the aim: " + ", ".join(over) if over else "within the aim"))


if __name__ == "__main__":
    main()
