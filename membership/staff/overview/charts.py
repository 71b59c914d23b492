"""The dashboard's charts as server-rendered SVG (members over time, a campaign's conversion
rates, the bar toward the current goal): pure functions of plain data, each a `Chart` of the
`<svg>`, a table of the same figures and a one-line summary, drawn for the pages' strict CSP
(docs/staff-dashboard.md#overview-data-and-charts).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from babel.numbers import format_percent
from markupsafe import Markup

from membership.core import i18n
from membership.goals.banner import progress as goal_progress
from membership.staff import format as staff_format
from membership.staff.overview.svg import Chart, clip, frame, nice_ticks, num, table, text

MEMBERS_COLOUR = "#1f5fa8"
JOINS_COLOUR = "#2e7d32"
LEAVES_COLOUR = "#c62828"
MUTED = "#6b7280"
GRID = "#d1d5db"
MINUS, EN_DASH = "\u2212", "\u2013"  # typographic minus and range dash


def percent(locale: str, value: float) -> str:
    """0.01234 -> "1.23%" (en), "1,23%" (uk)."""
    return format_percent(value, "#,##0.##%", locale=locale)


# --- Members over time -------------------------------------------------------


_W, _H = 400, 240
_LEFT, _RIGHT, _TOP = 52, 392, 12
_COUNT_BOTTOM = 150  # the count's plot: _TOP.._COUNT_BOTTOM
_BAR_MID, _BAR_HALF = 190, 18  # joins above the mid line, leaves below


def members_chart(
    history: Sequence[Mapping], *, locale: str = "en", chart_id: str = "members-chart"
) -> Chart:
    """`history`: `ledger.queries.history(days)` rows ({day, count, joins, leaves}), oldest
    first. The count as a line over an area, one point per row; joins and leaves as bars."""
    n = len(history)
    counts = [int(r["count"]) for r in history]
    joins = [int(r["joins"]) for r in history]
    leaves = [int(r["leaves"]) for r in history]
    fmt = i18n.format_number
    # The scale spans the data, not zero to the top: at 25,000 members a month's change of
    # a few hundred would be a flat line. The lowest tick's label says where it starts.
    ticks = nice_ticks(min(counts, default=0), max(counts, default=0))
    lo, hi = ticks[0], ticks[-1]
    step = (_RIGHT - _LEFT) / max(n, 1)

    def x(i: int) -> float:
        return _LEFT + (i + 0.5) * step

    def y(value: int) -> float:
        return _COUNT_BOTTOM - (value - lo) * (_COUNT_BOTTOM - _TOP) / (hi - lo)

    parts = []
    for t in ticks:
        parts.append(
            f'<line x1="{_LEFT}" x2="{_RIGHT}" y1="{num(y(t))}" y2="{num(y(t))}" '
            f'stroke="{GRID}" stroke-width="1"/>'
            f'<text x="{_LEFT - 6}" y="{num(y(t) + 4)}" text-anchor="end" '
            f'fill="currentColor">{text(fmt(locale, t))}</text>'
        )
    if n:
        points = " ".join(f"{num(x(i))},{num(y(c))}" for i, c in enumerate(counts))
        base = num(y(lo))
        parts.append(
            f'<polygon class="members-area" fill="{MEMBERS_COLOUR}" fill-opacity="0.15" '
            f'points="{num(x(0))},{base} {points} {num(x(n - 1))},{base}"/>'
            f'<polyline class="members-line" data-points="{n}" fill="none" '
            f'stroke="{MEMBERS_COLOUR}" stroke-width="2" stroke-linejoin="round" '
            f'points="{points}"/>'
        )
    parts.append(_bars(joins, leaves, x, step, locale))
    for i in sorted({0, (n - 1) // 2, n - 1} if n else set()):
        # The first and last labels hang inwards, so neither is cut at the edges.
        anchor = "middle" if n == 1 or 0 < i < n - 1 else ("start" if i == 0 else "end")
        xl = _LEFT if anchor == "start" else _RIGHT if anchor == "end" else x(i)
        parts.append(
            f'<text x="{num(xl)}" y="{_H - 6}" text-anchor="{anchor}" fill="currentColor">'
            f"{text(staff_format.date(history[i]['day'], locale, 'd MMM'))}</text>"
        )
    summary = members_summary(history, locale)
    title = f"Members over the last {n} days" if n != 1 else "Members today"
    desc = summary + " Bars below the line: members who joined (up) and left (down) each day."
    rows = [
        [staff_format.date(r["day"], locale), fmt(locale, c), fmt(locale, j), fmt(locale, v)]
        for r, c, j, v in zip(history, counts, joins, leaves, strict=True)
    ]
    return Chart(
        svg=frame(chart_id, _W, _H, title, desc, "".join(parts)),
        table=table(title, ["Day", "Members", "Joined", "Left"], rows),
        summary=summary,
    )


def _bars(joins: list[int], leaves: list[int], x, step: float, locale: str) -> str:
    top = max([1, *joins, *leaves])
    width = max(step * 0.7, 0.5)
    scale = _BAR_HALF / top
    parts = [
        f'<line x1="{_LEFT}" x2="{_RIGHT}" y1="{_BAR_MID}" y2="{_BAR_MID}" '
        f'stroke="{GRID}" stroke-width="1"/>',
        f'<text x="{_LEFT - 6}" y="{_BAR_MID - _BAR_HALF + 8}" text-anchor="end" '
        f'fill="{JOINS_COLOUR}">+{text(i18n.format_number(locale, top))}</text>',
        f'<text x="{_LEFT - 6}" y="{_BAR_MID + _BAR_HALF}" text-anchor="end" '
        f'fill="{LEAVES_COLOUR}">{MINUS}{text(i18n.format_number(locale, top))}</text>',
    ]
    joined = [
        f'<rect x="{num(x(i) - width / 2)}" y="{num(_BAR_MID - j * scale)}" '
        f'width="{num(width)}" height="{num(j * scale)}"/>'
        for i, j in enumerate(joins)
        if j > 0
    ]
    left = [
        f'<rect x="{num(x(i) - width / 2)}" y="{_BAR_MID}" '
        f'width="{num(width)}" height="{num(v * scale)}"/>'
        for i, v in enumerate(leaves)
        if v > 0
    ]
    parts.append(f'<g class="joins" fill="{JOINS_COLOUR}">{"".join(joined)}</g>')
    parts.append(f'<g class="leaves" fill="{LEAVES_COLOUR}">{"".join(left)}</g>')
    return "".join(parts)


def count_before(history: Sequence[Mapping]) -> int:
    """The count before the first day of `history` (not empty): that day's count less its
    changes (a day's joins and leaves are what changed its count), so that the change over
    the days is what they joined less what they left."""
    first = history[0]
    return int(first["count"]) - int(first["joins"]) + int(first["leaves"])


def members_summary(history: Sequence[Mapping], locale: str = "en") -> str:
    """One sentence with the figures a reader of the chart would take from it."""
    if not history:
        return "No days to show."
    fmt = i18n.format_number
    first, last = history[0], history[-1]
    start, end = count_before(history), int(last["count"])
    net = end - start
    peak = max(history, key=lambda r: int(r["count"]))  # the first day of the highest count
    joined = sum(int(r["joins"]) for r in history)
    left = sum(int(r["leaves"]) for r in history)
    sign = "+" if net >= 0 else MINUS
    first_day, last_day, peak_day = (
        staff_format.date(r["day"], locale) for r in (first, last, peak)
    )
    return (
        f"{fmt(locale, start)} members before {first_day}, {fmt(locale, end)} on {last_day} "
        f"({sign}{fmt(locale, abs(net))}); {fmt(locale, joined)} joined and "
        f"{fmt(locale, left)} left; highest {fmt(locale, int(peak['count']))} on {peak_day}."
    )


# --- A campaign's conversion rates ------------------------------------------

_RW = 400
_LABEL_END, _PLOT_START, _PLOT_END = 128, 136, 388
_ROW, _RTOP = 30, 26


def results_chart(
    results: Mapping, *, locale: str = "en", chart_id: str = "results-chart"
) -> Chart:
    """`results`: `membership.prompts.results.build(...)` (what `campaigns results --json`
    prints). A dot per variant at its conversion rate, its 95% interval as an error bar, the
    holdout's rate as a dashed reference line over its interval's band."""
    variants = list(results.get("variants") or [])
    holdout = results.get("holdout")
    # Rates too, not only the intervals' tops: figures from elsewhere must stay on the scale.
    shown = [*variants, holdout] if holdout else variants
    highs = [max(float(f["interval"][1]), float(f["conversion_rate"])) for f in shown]
    # In hundredths of a percent, so the ticks are round percentages.
    ticks = nice_ticks(0, max([1, *(math.ceil(h * 10000) for h in highs)]))
    top = ticks[-1] / 10000
    height = _RTOP + _ROW * max(len(variants), 1) + 28
    bottom = height - 28

    def x(rate: float) -> float:
        return _PLOT_START + rate / top * (_PLOT_END - _PLOT_START)

    parts = []
    for t in ticks:
        xt = num(x(t / 10000))
        parts.append(
            f'<line x1="{xt}" x2="{xt}" y1="{_RTOP - 6}" y2="{bottom}" stroke="{GRID}" '
            f'stroke-width="1"/><text x="{xt}" y="{bottom + 16}" text-anchor="middle" '
            f'fill="currentColor">{text(percent(locale, t / 10000))}</text>'
        )
    if holdout:
        low, high = (float(b) for b in holdout["interval"])
        xr = num(x(float(holdout["conversion_rate"])))
        parts.append(
            f'<rect class="holdout-interval" x="{num(x(low))}" y="{_RTOP - 6}" '
            f'width="{num(x(high) - x(low))}" height="{bottom - _RTOP + 6}" '
            f'fill="{MUTED}" fill-opacity="0.12"/>'
            f'<line class="holdout" x1="{xr}" x2="{xr}" y1="{_RTOP - 6}" y2="{bottom}" '
            f'stroke="{MUTED}" stroke-width="1.5" stroke-dasharray="4 3"/>'
            f'<text x="{xr}" y="{_RTOP - 10}" text-anchor="middle" fill="{MUTED}">holdout</text>'
        )
    for i, v in enumerate(variants):
        parts.append(_variant_row(v, _RTOP + _ROW * i + _ROW / 2, x))
    if not variants:
        parts.append(
            f'<text x="{_PLOT_START}" y="{_RTOP + _ROW / 2 + 4}" fill="{MUTED}">no variants</text>'
        )
    summary = results_summary(results, locale)
    title = f"Conversion rate per variant: {results.get('campaign', '')}"
    return Chart(
        svg=frame(chart_id, _RW, height, title, summary, "".join(parts)),
        table=_results_table(title, variants, holdout, locale),
        summary=summary,
    )


def _variant_row(v: Mapping, cy: float, x) -> str:
    low, high = (float(b) for b in v["interval"])
    rate = float(v["conversion_rate"])
    suffix = " (retired)" if v.get("retired") else ""
    label = clip(str(v["id"]), 19 - len(suffix)) + suffix
    colour = JOINS_COLOUR if v.get("verdict") == "leading" else MEMBERS_COLOUR
    y, cap = num(cy), 5
    return (
        f'<g class="variant">'
        f'<text x="{_LABEL_END}" y="{num(cy + 4)}" text-anchor="end" fill="currentColor">'
        f"{text(label)}</text>"
        f'<line x1="{num(x(low))}" x2="{num(x(high))}" y1="{y}" y2="{y}" stroke="{colour}" '
        f'stroke-width="2"/>'
        f'<line x1="{num(x(low))}" x2="{num(x(low))}" y1="{num(cy - cap)}" y2="{num(cy + cap)}" '
        f'stroke="{colour}" stroke-width="2"/>'
        f'<line x1="{num(x(high))}" x2="{num(x(high))}" y1="{num(cy - cap)}" '
        f'y2="{num(cy + cap)}" stroke="{colour}" stroke-width="2"/>'
        f'<circle cx="{num(x(rate))}" cy="{y}" r="4" fill="{colour}"/></g>'
    )


def _interval(locale: str, interval: Sequence) -> str:
    return f"{percent(locale, float(interval[0]))} {EN_DASH} {percent(locale, float(interval[1]))}"


def _figures(f: Mapping, locale: str) -> list[str]:
    """Readers, conversions, the rate and its interval: a variant's or the holdout's."""
    fmt, rate = i18n.format_number, percent(locale, float(f["conversion_rate"]))
    readers, conversions = fmt(locale, int(f["readers"])), fmt(locale, int(f["conversions"]))
    return [readers, conversions, rate, _interval(locale, f["interval"])]


def _results_table(title: str, variants, holdout, locale: str) -> Markup:
    rows = [
        [
            str(v["id"]) + (" (retired)" if v.get("retired") else ""),
            *_figures(v, locale),
            "" if v.get("lift") is None else percent(locale, float(v["lift"])),
            v["verdict"],
        ]
        for v in variants
    ]
    if holdout:
        rows.append(["holdout", *_figures(holdout, locale), "", ""])
    headers = ["Variant", "Readers", "Conversions", "Rate", "95% interval", "Lift", "Verdict"]
    return table(title, headers, rows)


def results_summary(results: Mapping, locale: str = "en") -> str:
    variants = list(results.get("variants") or [])
    if not variants:
        return "No variant has figures yet."
    said = [
        f"{v['id']}: {percent(locale, float(v['conversion_rate']))} "
        f"(95% interval {_interval(locale, v['interval'])}, {v['verdict']})"
        for v in variants
    ]
    holdout = results.get("holdout")
    if holdout:
        said.append(f"holdout: {percent(locale, float(holdout['conversion_rate']))}")
    else:
        said.append("no holdout")
    return "; ".join(said) + "."


# --- The bar toward the current goal ----------------------------------------

_PW, _PH = 400, 44


def goal_chart(
    count: int,
    target: int,
    *,
    locale: str = "en",
    name: str | None = None,
    deadline: str | None = None,
    chart_id: str = "goal-chart",
) -> Chart:
    """The bar toward a goal of `target` members (rounded down like the banner's, so it
    is never full before the goal is reached)."""
    share = goal_progress(max(count, 0), target) if target > 0 else 1.0
    fmt = i18n.format_number
    summary = (
        f"{fmt(locale, count)} of {fmt(locale, target)} members "
        f"({percent(locale, share)})"
        + (f" toward {name}" if name else "")
        + (f", by {deadline}" if deadline else "")
        + "."
    )
    filled = num(math.floor(share * _PW * 10) / 10)  # rounded down too: full only at the goal
    body = (
        f'<text x="0" y="14" fill="currentColor">{text(fmt(locale, count))} / '
        f"{text(fmt(locale, target))}</text>"
        f'<text x="{_PW}" y="14" text-anchor="end" fill="currentColor">'
        f"{text(percent(locale, share))}</text>"
        f'<rect x="0" y="22" width="{_PW}" height="16" rx="4" fill="{GRID}"/>'
        f'<rect class="goal-progress" x="0" y="22" width="{filled}" height="16" '
        f'rx="4" fill="{MEMBERS_COLOUR}"/>'
    )
    title = f"Goal: {name}" if name else f"Goal: {fmt(locale, target)} members"
    rows = [
        [
            name or "",
            fmt(locale, count),
            fmt(locale, target),
            percent(locale, share),
            fmt(locale, max(target - count, 0)),
            deadline or "",
        ]
    ]
    headers = ["Goal", "Members", "Target", "Progress", "Remaining", "Deadline"]
    return Chart(
        svg=frame(chart_id, _PW, _PH, title, summary, body),
        table=table(title, headers, rows),
        summary=summary,
    )
