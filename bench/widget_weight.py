"""Benchmark: the weight of what an article page loads from us, the widget scripts as served.

    .venv/bin/python bench/widget_weight.py

For each script an article embeds (`banner.js`, `prompt.js`, their CSS inside them) prints
the bytes as written, as built by scripts/build_widgets.py (what is served; and how much of
that is the CSS the script inserts) and as each encoding the service keeps
(membership/goals/widget.py's ENCODINGS: the very bytes a client that accepts it gets); then,
for a page showing each placement, the sum of the scripts it loads beside the aim. The
browser's own measure (transfer sizes of the demo article's requests, in Chromium, for each
placement) is tests/goals/test_reader_page_browser.py's `light_on_the_wire` test; it prints
its figures with `pytest -s`.
"""

from __future__ import annotations

from membership.goals.widget import ENCODINGS, PROMPT_SCRIPT, SCRIPT, built
from membership.http.security import widget_css

AIM = {"minified": 8 * 1024, "br": 4 * 1024, "gzip": 4 * 1024}
# What a page showing each placement loads from us: the demo article's count box (banner.js)
# and the prompt client, which draws all four placements itself.
PLACEMENTS = {
    placement: (SCRIPT.name, PROMPT_SCRIPT.name)
    for placement in ("banner", "inline", "modal", "gate")
}


def weights() -> dict[str, dict[str, int]]:
    """Bytes per script: as written, minified, and in each served encoding."""
    out = {}
    for source in (SCRIPT, PROMPT_SCRIPT):
        body = built(source).read_bytes()
        css = (widget_css(source.read_text(encoding="utf-8")) or "").encode("utf-8")
        row = {"written": source.stat().st_size, "minified": len(body), "of it CSS": len(css)}
        row.update({name: len(encode(body)) for name, encode in ENCODINGS.items()})
        out[source.name] = row
    return out


def _table(rows: dict[str, dict[str, int]], columns: list[str], head: str) -> None:
    print(f"| {head} | " + " | ".join(columns) + " |")
    print("| --- |" + " ---: |" * len(columns))
    for name, row in rows.items():
        print(f"| {name} | " + " | ".join(f"{row[c]:,}" for c in columns) + " |")


def main() -> None:
    rows = weights()
    columns = ["written", "minified", "of it CSS", *ENCODINGS]
    _table({f"`{name}`": row for name, row in rows.items()}, columns, "script")
    print()
    pages = {
        placement: {c: sum(rows[name][c] for name in names) for c in AIM}
        for placement, names in PLACEMENTS.items()
    }
    _table(
        {
            f"{placement} ({' + '.join(PLACEMENTS[placement])})": row
            for placement, row in pages.items()
        },
        list(AIM),
        "page showing",
    )
    for placement, row in pages.items():
        over = [f"{c} {row[c]:,} > {AIM[c]:,}" for c in AIM if row[c] > AIM[c]]
        print(f"{placement}: " + ("OVER the aim: " + ", ".join(over) if over else "within the aim"))


if __name__ == "__main__":
    main()
