"""Benchmark: the weight of what an article page loads from us, the widget scripts as served.

    .venv/bin/python bench/widget_weight.py

For each script an article embeds (`banner.js`, `prompt.js`, their CSS inside them) prints
the bytes as written, as built by scripts/build_widgets.py (what is served; and how much of
that is the CSS the script inserts) and as each
encoding the service keeps (membership/goals/widget.py's ENCODINGS: the very bytes a client
that accepts it gets), and the sums beside the aim. The browser's own measure (transfer sizes
of the demo article's requests, in Chromium) is tests/goals/test_reader_page_browser.py's
`light_on_the_wire` test; it prints its figures with `pytest -s`.
"""

from __future__ import annotations

from membership.goals.widget import ENCODINGS, PROMPT_SCRIPT, SCRIPT, built
from membership.http.security import widget_css

AIM = {"minified": 8 * 1024, "br": 4 * 1024, "gzip": 4 * 1024}


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


def main() -> None:
    rows = weights()
    columns = ["written", "minified", "of it CSS", *ENCODINGS]
    total = {c: sum(row[c] for row in rows.values()) for c in columns}
    print("| script | " + " | ".join(columns) + " |")
    print("| --- |" + " ---: |" * len(columns))
    for name, row in [*rows.items(), ("both", total)]:
        print(f"| `{name}` | " + " | ".join(f"{row[c]:,}" for c in columns) + " |")
    for column, aim in AIM.items():
        verdict = "within" if total[column] <= aim else "OVER"
        print(f"{column}: {total[column]:,} bytes, {verdict} the aim of {aim:,}")


if __name__ == "__main__":
    main()
