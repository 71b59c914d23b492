"""The dashboard's SVG charts: structure, extremes, escaping, accessibility, text alternatives."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from membership.staff.overview import charts
from membership.staff.overview.svg import check_id, nice_ticks

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '</svg><script>alert("x")</script>&\x00\x1b'


def history(counts, joins=None, leaves=None, start=date(2026, 10, 28)):
    joins = joins or [0] * len(counts)
    leaves = leaves or [0] * len(counts)
    return [
        {"day": (start + timedelta(days=i)).isoformat(), "count": c, "joins": j, "leaves": v}
        for i, (c, j, v) in enumerate(zip(counts, joins, leaves, strict=True))
    ]


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def points(root: ET.Element) -> list[tuple[float, float]]:
    line = root.find(f".//{SVG}polyline[@class='members-line']")
    pairs = [p.split(",") for p in line.get("points").split()]
    assert int(line.get("data-points")) == len(pairs)
    return [(float(x), float(y)) for x, y in pairs]


def assert_accessible(root: ET.Element, chart_id: str) -> None:
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == f"{chart_id}-title {chart_id}-desc"
    title, desc = root[0], root[1]
    assert (title.tag, title.get("id"), desc.tag, desc.get("id")) == (
        f"{SVG}title",
        f"{chart_id}-title",
        f"{SVG}desc",
        f"{chart_id}-desc",
    )
    assert title.text and desc.text
    # Scales to its container: a viewBox, width 100%, no fixed pixel size, no style attribute.
    assert re.fullmatch(r"0 0 \d+ \d+", root.get("viewBox"))
    assert root.get("width") == "100%" and root.get("height") is None
    assert all(el.get("style") is None for el in root.iter())


def table_rows(table: str) -> list[list[str]]:
    root = ET.fromstring(table)
    return [[cell.text or "" for cell in tr] for tr in root.find("tbody")]


# --- members over time -------------------------------------------------------


@pytest.mark.parametrize("days", [30, 90, 365])
def test_one_point_per_day(days):
    chart = charts.members_chart(history([1000 + i for i in range(days)]))
    root = parse(chart.svg)
    xs = [x for x, _ in points(root)]
    assert len(xs) == days and xs == sorted(xs) and len(set(xs)) == days
    assert len(table_rows(chart.table)) == days
    assert_accessible(root, "members-chart")


def test_members_golden_fragment():
    chart = charts.members_chart(history([0, 2, 1], joins=[0, 2, 0], leaves=[0, 0, 1]))
    assert (
        '<polyline class="members-line" data-points="3" fill="none" stroke="#1f5fa8" '
        'stroke-width="2" stroke-linejoin="round" points="108.7,150.0 222.0,12.0 335.3,81.0"/>'
    ) in chart.svg
    assert chart.summary == (
        "0 members before 28 Oct 2026, 1 on 30 Oct 2026 (+1); 2 joined and 1 left; "
        "highest 2 on 29 Oct 2026."
    )
    assert chart.svg == charts.members_chart(history([0, 2, 1], [0, 2, 0], [0, 0, 1])).svg


def test_the_change_said_is_what_the_days_joined_less_what_they_left():
    """A window whose first day already changed the count: the sentence's change counts that
    day's changes too, as its joined and left do (it once said +1 beside 5 joined, 1 left)."""
    days = history([103, 104], joins=[3, 2], leaves=[0, 1])
    assert charts.members_chart(days).summary.startswith(
        "100 members before 28 Oct 2026, 104 on 29 Oct 2026 (+4); 5 joined and 1 left;"
    )


def test_all_zeros():
    chart = charts.members_chart(history([0] * 30))
    root = parse(chart.svg)
    assert {y for _, y in points(root)} == {150.0}  # on the baseline, no division by zero
    assert root.findall(f".//{SVG}g[@class='joins']/{SVG}rect") == []
    assert "0 members before 28 Oct 2026, 0 on 26 Nov 2026 (+0)" in chart.summary


def test_a_single_day_sits_in_the_middle():
    chart = charts.members_chart(history([7], joins=[7]))
    root = parse(chart.svg)
    assert points(root) == [(222.0, 150.0)]  # 7 on a 7..8 scale
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert labels.count("28 Oct") == 1
    # the change over the day is what it joined less what it left
    assert chart.summary.startswith("0 members before 28 Oct 2026, 7 on 28 Oct 2026 (+7); 7 joined")


def test_no_days():
    chart = charts.members_chart([])
    root = parse(chart.svg)
    assert root.find(f".//{SVG}polyline") is None
    assert chart.summary == "No days to show."
    assert table_rows(chart.table) == []


def test_huge_counts_are_formatted_and_stay_inside():
    big = 9_876_543_210_987
    chart = charts.members_chart(history([big, big + 5_000_000], joins=[10**9, 0]))
    root = parse(chart.svg)
    assert all(12.0 <= y <= 150.0 for _, y in points(root))
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert any(re.fullmatch(r"\d{1,3}(,\d{3}){4}", label or "") for label in labels)
    assert table_rows(chart.table)[0][1] == "9,876,543,210,987"
    assert "+1,000,000,000" in labels


def test_days_with_more_leaves_than_joins():
    chart = charts.members_chart(history([50, 40, 45], joins=[0, 0, 5], leaves=[0, 10, 0]))
    root = parse(chart.svg)
    ys = [y for _, y in points(root)]
    assert ys[1] > ys[0] and ys[2] < ys[1]  # down, then up (SVG's y grows downwards)
    (bar,) = root.findall(f".//{SVG}g[@class='leaves']/{SVG}rect")
    assert float(bar.get("y")) == 190.0 and float(bar.get("height")) == 18.0
    assert "(\u22125)" in chart.summary and "5 joined and 10 left" in chart.summary


def test_negative_counts_do_not_break_the_scale():
    root = parse(charts.members_chart(history([-5, 0, 5])).svg)
    assert all(12.0 <= y <= 150.0 for _, y in points(root))


def test_locale_formats_numbers_and_dates():
    chart = charts.members_chart(history([25_000, 25_012]), locale="uk")
    labels = [t.text for t in parse(chart.svg).iter(f"{SVG}text")]
    assert "25\xa0012" in chart.summary and "25\xa0005" in labels  # 25,000..25,015
    assert any(label and "жовт" in label for label in labels)


def test_the_table_matches_the_data():
    rows = history([10, 12, 11], joins=[1, 2, 0], leaves=[0, 0, 1])
    assert table_rows(charts.members_chart(rows).table) == [
        ["28 Oct 2026", "10", "1", "0"],  # days as the dashboard shows dates
        ["29 Oct 2026", "12", "2", "0"],
        ["30 Oct 2026", "11", "0", "1"],
    ]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 10**12), st.integers(0, 10**6), st.integers(0, 10**6)),
        min_size=0,
        max_size=400,
    )
)
def test_random_series_give_well_formed_svg(series):
    rows = history([c for c, _, _ in series], [j for _, j, _ in series], [v for *_, v in series])
    chart = charts.members_chart(rows)
    root = parse(chart.svg)
    if series:
        assert len(points(root)) == len(series)
        assert all(52 <= x <= 392 and 12.0 <= y <= 150.0 for x, y in points(root))
    assert len(table_rows(chart.table)) == len(series)


# --- a campaign's results ----------------------------------------------------


def results(*variants, holdout=True, campaign="winter-appeal"):
    return {
        "campaign": campaign,
        "variants": [
            {
                "id": vid,
                "views": 5000,
                "readers": readers,
                "conversions": conversions,
                "conversion_rate": rate,
                "interval": list(interval),
                "lift": lift,
                "verdict": verdict,
                "retired": retired,
            }
            for vid, readers, conversions, rate, interval, lift, verdict, retired in variants
        ],
        "holdout": (
            {
                "readers": 1000,
                "conversions": 10,
                "conversion_rate": 0.01,
                "interval": [0.005439, 0.018277],
            }
            if holdout
            else None
        ),
        "days": [],
    }


A = ("a", 4000, 120, 0.03, (0.025147, 0.035727), 2.0, "leading", False)
B = ("b", 4000, 60, 0.015, (0.011677, 0.019262), 0.5, "inconclusive", False)


def test_results_chart_draws_each_interval_and_the_holdout():
    chart = charts.results_chart(results(A, B))
    root = parse(chart.svg)
    assert_accessible(root, "results-chart")
    rows = root.findall(f".//{SVG}g[@class='variant']")
    assert [r.find(f"{SVG}text").text for r in rows] == ["a", "b"]
    # The dot sits inside its error bar; the bar spans the interval.
    for row in rows:
        bar, *_caps = row.findall(f"{SVG}line")
        dot = row.find(f"{SVG}circle")
        assert float(bar.get("x1")) <= float(dot.get("cx")) <= float(bar.get("x2"))
        assert float(bar.get("x1")) < float(bar.get("x2"))
    holdout = root.find(f".//{SVG}line[@class='holdout']")
    assert holdout.get("stroke-dasharray") == "4 3"
    assert table_rows(chart.table) == [
        ["a", "4,000", "120", "3%", "2.51% \u2013 3.57%", "200%", "leading"],
        ["b", "4,000", "60", "1.5%", "1.17% \u2013 1.93%", "50%", "inconclusive"],
        ["holdout", "1,000", "10", "1%", "0.54% \u2013 1.83%", "", ""],
    ]
    assert chart.summary == (
        "a: 3% (95% interval 2.51% \u2013 3.57%, leading); "
        "b: 1.5% (95% interval 1.17% \u2013 1.93%, inconclusive); holdout: 1%."
    )
    # The scale ends on a round percentage past every interval: 4% here.
    ticks = [t.text for t in root.iter(f"{SVG}text") if t.text and t.text.endswith("%")]
    assert ticks[0] == "0%" and ticks[-1] == "4%"


def test_results_without_holdout_or_figures():
    zero = ("only", 0, 0, 0.0, (0.0, 0.0), None, "too early", False)
    chart = charts.results_chart(results(zero, holdout=False))
    root = parse(chart.svg)
    assert root.find(f".//{SVG}line[@class='holdout']") is None
    assert chart.summary.endswith("no holdout.")
    empty = charts.results_chart(results(holdout=False))
    assert "no variants" in empty.svg and empty.summary == "No variant has figures yet."
    parse(empty.svg)


def test_results_from_the_real_builder():
    from membership.prompts.counts import Stored
    from membership.prompts.results import tabulate

    stored = Stored(
        totals={"a:views": "2000", "a:conversions": "30", "_holdout:events": "500"},
        readers={"a": 1800, "_holdout": 480},
        days=[],
    )
    built = tabulate("c1", ["a", "b"], True, stored)
    chart = charts.results_chart(built, locale="uk")
    root = parse(chart.svg)
    assert len(root.findall(f".//{SVG}g[@class='variant']")) == 2
    assert table_rows(chart.table)[0][:3] == ["a", "1\xa0800", "30"]


def test_hostile_labels_are_escaped():
    evil = (HOSTILE, 10, 1, 0.1, (0.01, 0.4), None, "too early", True)
    chart = charts.results_chart(results(evil, campaign=HOSTILE))
    for fragment in (chart.svg, chart.table):
        assert "<script>" not in fragment and "</svg><" not in fragment
        assert "\x00" not in fragment and "\x1b" not in fragment
    root = parse(chart.svg)
    assert len(list(root.iter(f"{SVG}svg"))) == 1  # the label did not close the chart
    assert root.find(f"{SVG}title").text.endswith('</svg><script>alert("x")</script>&')
    assert table_rows(chart.table)[0][0].startswith("</svg><script>")
    label = root.find(f".//{SVG}g[@class='variant']/{SVG}text").text
    assert label.endswith("… (retired)") and len(label) <= 19
    goal = charts.goal_chart(1, 2, name=HOSTILE, deadline=HOSTILE)
    assert "<script>" not in goal.svg and "<script>" not in goal.table
    parse(goal.svg)


def test_hostile_day_labels_are_escaped():
    rows = [{"day": HOSTILE, "count": 1, "joins": 0, "leaves": 0}]
    chart = charts.members_chart(rows)
    assert "<script>" not in chart.svg and "<script>" not in chart.table
    parse(chart.svg)


@pytest.mark.parametrize("bad", ['x" onload="alert(1)', "1chart", "", "a b"])
def test_chart_ids_are_checked(bad):
    with pytest.raises(ValueError):
        check_id(bad)
    with pytest.raises(ValueError):
        charts.goal_chart(1, 2, chart_id=bad)


# --- the goal's bar ----------------------------------------------------------


def test_goal_bar():
    chart = charts.goal_chart(25_012, 30_000, name="Winter", deadline="2026-12-31")
    root = parse(chart.svg)
    assert_accessible(root, "goal-chart")
    bar = root.find(f".//{SVG}rect[@class='goal-progress']")
    assert bar.get("width") == "333.4"  # 0.8337 of 400, rounded down
    assert chart.summary == "25,012 of 30,000 members (83.37%) toward Winter, by 2026-12-31."
    assert table_rows(chart.table) == [
        ["Winter", "25,012", "30,000", "83.37%", "4,988", "2026-12-31"]
    ]


@pytest.mark.parametrize(
    ("count", "width"), [(0, "0.0"), (29_999, "399.9"), (30_000, "400.0"), (99_999, "400.0")]
)
def test_goal_bar_is_full_only_at_the_goal(count, width):
    root = parse(charts.goal_chart(count, 30_000).svg)
    assert root.find(f".//{SVG}rect[@class='goal-progress']").get("width") == width


# --- ticks --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lo", "hi", "expected"),
    [
        (0, 0, [0, 1]),
        (0, 7, [0, 2, 4, 6, 8]),
        (0, 100, [0, 50, 100]),
        (24_987, 25_012, [24_980, 24_990, 25_000, 25_010, 25_020]),
        (-5, 5, [-5, 0, 5]),
    ],
)
def test_nice_ticks(lo, hi, expected):
    assert nice_ticks(lo, hi) == expected


@given(st.integers(-(10**15), 10**15), st.integers(-(10**15), 10**15))
def test_ticks_cover_the_range(a, b):
    ticks = nice_ticks(a, b)
    assert ticks[0] <= min(a, b) and ticks[-1] >= max(a, b)
    assert 2 <= len(ticks) <= 12
    assert len({y - x for x, y in itertools.pairwise(ticks)}) == 1


def test_a_campaign_slug_makes_a_chart_id():
    chart_id = "results-" + "a" * 64  # the longest campaign id
    root = parse(charts.results_chart(results(A), chart_id=chart_id).svg)
    assert_accessible(root, chart_id)


_rate = st.floats(0, 1, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.text(max_size=40), _rate, _rate, _rate, st.booleans()), max_size=8),
    st.one_of(st.none(), st.tuples(_rate, _rate, _rate)),
)
def test_random_results_give_well_formed_svg(variants, holdout):
    shaped = results(
        *[
            (vid, 100, 1, rate, sorted((a, b)), None, "inconclusive", retired)
            for vid, rate, a, b, retired in variants
        ],
        holdout=False,
    )
    if holdout is not None:
        rate, a, b = holdout
        shaped["holdout"] = {
            "readers": 10,
            "conversions": 1,
            "conversion_rate": rate,
            "interval": sorted((a, b)),
        }
    chart = charts.results_chart(shaped)
    root = parse(chart.svg)
    assert len(root.findall(f".//{SVG}g[@class='variant']")) == len(variants)
    assert len(table_rows(chart.table)) == len(variants) + (holdout is not None)
    for circle in root.iter(f"{SVG}circle"):
        assert 136 <= float(circle.get("cx")) <= 388
