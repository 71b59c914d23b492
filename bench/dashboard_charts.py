"""Benchmark: rendering the dashboard's charts (pure; no Redis, no server).

    .venv/bin/python bench/dashboard_charts.py [--runs 200]

Times `members_chart` over 30, 90 and 365 days of a made-up history, a campaign's results
chart with four variants and a holdout, and the goal's bar, each in English and Ukrainian,
and prints the median and p99 in milliseconds and the SVG's and table's sizes. The first
call of each (Babel loading its locale data) is left out.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from membership.staff.overview import charts


def history(days: int, seed: int = 11) -> list[dict]:
    rng, count, rows = random.Random(seed), 25_000, []
    for i in range(days):
        joins, leaves = rng.randint(0, 60), rng.randint(0, 50)
        count += joins - leaves
        day = (date(2026, 11, 26) - timedelta(days=days - 1 - i)).isoformat()
        rows.append({"day": day, "count": count, "joins": joins, "leaves": leaves})
    return rows


RESULTS = {
    "campaign": "year-end",
    "variants": [
        {
            "id": f"variant-{i}",
            "readers": 20_000,
            "conversions": 200 + 40 * i,
            "conversion_rate": (200 + 40 * i) / 20_000,
            "interval": [(180 + 40 * i) / 20_000, (222 + 40 * i) / 20_000],
            "lift": 0.1 * i,
            "verdict": "inconclusive",
            "retired": False,
        }
        for i in range(4)
    ],
    "holdout": {
        "readers": 5000,
        "conversions": 40,
        "conversion_rate": 0.008,
        "interval": [0.0059, 0.0109],
    },
}


def timed(render, runs: int) -> tuple[float, float, charts.Chart]:
    chart = render()  # warm: Babel's locale data
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        render()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))], chart


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    runs = parser.parse_args().runs
    cases = []
    for locale in ("en", "uk"):
        for days in (30, 90, 365):
            rows = history(days)
            cases.append(
                (
                    f"members {days} d",
                    locale,
                    lambda r=rows, lo=locale: charts.members_chart(r, locale=lo),
                )
            )
        cases.append(
            (
                "results 4+holdout",
                locale,
                lambda lo=locale: charts.results_chart(RESULTS, locale=lo),
            )
        )
        cases.append(
            ("goal bar", locale, lambda lo=locale: charts.goal_chart(25_012, 30_000, locale=lo))
        )
    print(f"{'chart':<18} {'locale':<6} {'p50 ms':>8} {'p99 ms':>8} {'svg KB':>7} {'table KB':>9}")
    for name, locale, render in cases:
        p50, p99, chart = timed(render, runs)
        print(
            f"{name:<18} {locale:<6} {p50:>8.3f} {p99:>8.3f} "
            f"{len(chart.svg.encode()) / 1024:>7.1f} {len(chart.table.encode()) / 1024:>9.1f}"
        )


if __name__ == "__main__":
    main()
