"""prompts.results: the Wilson interval against independent oracles, verdicts at their edges,
lift, and the results JSON (pure: no Redis)."""

from __future__ import annotations

import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from membership.prompts import campaigns, results
from membership.prompts.counts import HOLDOUT, CorruptCounts, Stored
from membership.prompts.results import MIN_VIEWS, tabulate, verdict, wilson
from tests.support.prompt_helpers import EXAMPLE

Z = statistics.NormalDist().inv_cdf(0.975)  # not the module's constant


def score_test_bounds(x: int, n: int) -> tuple[float, float]:
    """The Wilson interval by its definition, not its closed form: the proportions p that a
    two-sided score test at 5% does not reject, (x/n - p)^2 <= Z^2 p (1 - p) / n, found by
    bisection on each side of x/n."""
    observed = x / n

    def rejected(p: float) -> bool:
        return (observed - p) ** 2 > Z * Z * p * (1 - p) / n

    def edge(inside: float, outside: float) -> float:
        if not rejected(outside):
            return outside
        for _ in range(200):
            middle = (inside + outside) / 2
            if rejected(middle):
                outside = middle
            else:
                inside = middle
        return (inside + outside) / 2

    return edge(observed, 0.0), edge(observed, 1.0)


# Newcombe (1998), "Two-sided confidence intervals for the single proportion", Statistics in
# Medicine 17:857-872, Table I, method 3 (score interval without continuity correction).
NEWCOMBE = [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0000, 0.1611),
    (1, 29, 0.0061, 0.1718),
    (29, 29, 0.8830, 1.0000),
]


@pytest.mark.parametrize(("x", "n", "low", "high"), NEWCOMBE)
def test_wilson_matches_the_textbook(x, n, low, high):
    got = wilson(x, n)
    assert got == (pytest.approx(low, abs=5e-5), pytest.approx(high, abs=5e-5))


def test_wilson_at_the_extremes_has_a_closed_form():
    # x = 0: [0, z^2 / (n + z^2)]; x = n: [n / (n + z^2), 1]
    for n in (1, 10, 1000):
        assert wilson(0, n) == (0.0, pytest.approx(Z * Z / (n + Z * Z)))
        assert wilson(n, n) == (pytest.approx(n / (n + Z * Z)), 1.0)
    assert wilson(0, 0) == (0.0, 0.0)  # no reader: [0.0, 0.0]
    assert wilson(7, 5) == wilson(5, 5)  # more conversions than readers: one per reader


@given(st.integers(1, 10**6).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_is_the_score_tests_acceptance_region(xn):
    x, n = xn
    low, high = wilson(x, n)
    oracle_low, oracle_high = score_test_bounds(x, n)
    assert low == pytest.approx(oracle_low, abs=1e-9)
    assert high == pytest.approx(oracle_high, abs=1e-9)
    assert 0.0 <= low <= x / n <= high <= 1.0


@given(st.integers(1, 5000).flatmap(lambda n: st.tuples(st.integers(0, n - 1), st.just(n))))
def test_one_more_conversion_moves_both_bounds_up(xn):
    x, n = xn
    assert wilson(x + 1, n)[0] > wilson(x, n)[0]
    assert wilson(x + 1, n)[1] >= wilson(x, n)[1]


# --- Verdicts ---------------------------------------------------------------------------


def test_too_early_under_a_thousand_views():
    strong = (0.5, 0.6)
    weak = (MIN_VIEWS, (0.1, 0.2))
    assert verdict(MIN_VIEWS - 1, strong, [weak]) == "too early"
    assert verdict(MIN_VIEWS, strong, [weak]) == "leading"


def test_leading_needs_the_interval_wholly_above_every_other():
    mine = (0.30, 0.40)
    assert verdict(5000, mine, [(5000, (0.10, 0.2999)), (5000, (0.05, 0.1))]) == "leading"
    assert verdict(5000, mine, [(5000, (0.10, 0.30))]) == "inconclusive"  # touching
    assert verdict(5000, mine, [(5000, (0.10, 0.2)), (5000, (0.2, 0.35))]) == "inconclusive"
    # Another variant too early to judge: nobody leads it yet.
    assert verdict(5000, mine, [(MIN_VIEWS - 1, (0.0, 0.01))]) == "inconclusive"
    # An only variant has nothing to lead.
    assert verdict(5000, mine, []) == "inconclusive"


# --- The JSON ---------------------------------------------------------------------------


def stored(totals=None, readers=None, days=()):
    return Stored(totals=totals or {}, readers=readers or {}, days=list(days))


def test_no_figures_yet_give_the_issues_zeros():
    campaign = campaigns.parse({**EXAMPLE, "variants": EXAMPLE["variants"][:1]})
    assert results.build(campaign, stored()) == {
        "campaign": "winter-drive",
        "variants": [
            {
                "id": "a",
                "views": 0,
                "readers": 0,
                "clicks": 0,
                "click_rate": 0.0,
                "dismissals": 0,
                "excess": 0,
                "conversions": 0,
                "revenue": {},
                "refunds": 0,
                "refunded": {},
                "revenue_per_mille": {},
                "conversion_rate": 0.0,
                "interval": [0.0, 0.0],
                "lift": None,
                "verdict": "too early",
                "retired": False,
            }
        ],
        "holdout": {
            "readers": 0,
            "events": 0,
            "excess": 0,
            "conversions": 0,
            "revenue": {},
            "refunds": 0,
            "refunded": {},
            "conversion_rate": 0.0,
            "interval": [0.0, 0.0],
        },
        "days": [],
    }


def test_figures_become_rates_intervals_lift_and_verdicts():
    totals = {
        "a:views": "4000",
        "a:clicks": "200",
        "a:dismissals": "300",
        "a:conversions": "60",
        "a:revenue:eur": "120000",
        "b:views": "4000",
        "b:conversions": "10",
        "b:revenue:usd": "500",
        f"{HOLDOUT}:events": "900",
        f"{HOLDOUT}:conversions": "5",
        "a:future-metric": "3",  # a newer writer's field: ignored
    }
    readers = {"a": 2000, "b": 2000, HOLDOUT: 500}
    out = tabulate("winter-drive", ["a", "b"], True, stored(totals, readers))
    a, b = out["variants"]
    assert a["click_rate"] == 0.05
    assert a["conversion_rate"] == 0.03
    assert a["interval"] == [round(v, 6) for v in wilson(60, 2000)]
    assert a["revenue"] == {"eur": 120000, "usd": 0}
    assert a["revenue_per_mille"] == {"eur": 30000.0, "usd": 0.0}
    assert b["revenue"] == {"eur": 0, "usd": 500}
    assert a["lift"] == pytest.approx(0.03 / 0.01 - 1)
    assert b["lift"] == pytest.approx(0.005 / 0.01 - 1)
    assert (a["verdict"], b["verdict"]) == ("leading", "inconclusive")
    assert out["holdout"]["readers"] == 500
    assert out["holdout"]["events"] == 900
    assert out["holdout"]["conversion_rate"] == 0.01


def test_lift_is_null_without_a_holdout_or_while_its_rate_is_0():
    totals = {"a:views": "10", "a:conversions": "1"}
    no_holdout = tabulate("c", ["a"], False, stored(totals, {"a": 10}))
    assert no_holdout["holdout"] is None
    assert no_holdout["variants"][0]["lift"] is None
    zero = tabulate("c", ["a"], True, stored(totals, {"a": 10, HOLDOUT: 50}))
    assert zero["holdout"]["conversion_rate"] == 0.0
    assert zero["variants"][0]["lift"] is None


def test_conversions_above_the_readers_count_once_per_reader():
    out = tabulate("c", ["a"], False, stored({"a:conversions": "12"}, {"a": 10}))
    variant = out["variants"][0]
    assert variant["conversions"] == 12  # as stored
    assert variant["conversion_rate"] == 1.0
    assert variant["interval"][1] == 1.0


def test_a_retired_variant_stays_in_the_results():
    out = tabulate("c", ["a"], False, stored({"a:views": "5", "old:views": "7"}, {"old": 3}))
    assert [(v["id"], v["retired"], v["views"], v["readers"]) for v in out["variants"]] == [
        ("a", False, 5, 0),
        ("old", True, 7, 3),
    ]


def test_days_list_each_variant_and_the_holdout():
    days = [
        ("2026-11-24", {}),
        ("2026-11-25", {"a:views": "3", "a:clicks": "1", f"{HOLDOUT}:events": "2"}),
    ]
    out = tabulate("c", ["a", "b"], True, stored({"a:views": "3"}, days=days))
    nothing = {"excess": 0, "conversions": 0, "revenue": {}, "refunds": 0, "refunded": {}}
    assert out["days"][0] == {
        "day": "2026-11-24",
        "variants": [
            {"id": "a", "views": 0, "clicks": 0, "dismissals": 0, **nothing},
            {"id": "b", "views": 0, "clicks": 0, "dismissals": 0, **nothing},
        ],
        "holdout": {"events": 0, **nothing},
    }
    assert out["days"][1]["variants"][0]["views"] == 3
    assert out["days"][1]["holdout"]["events"] == 2


def test_excess_is_shown_per_variant_the_holdout_and_day_and_changes_no_rate():
    """Events refused past PROMPT_EVENTS_PER_ADDRESS: shown where they were aimed, and kept
    out of every figure the verdict is made of."""
    totals = {"a:views": "40", "a:clicks": "4", "b:views": "40", "b:clicks": "4"}
    readers = {"a": 40, "b": 40}
    plain = tabulate("c", ["a", "b"], True, stored(totals, readers))
    steered = {**totals, "b:excess": "1675", f"{HOLDOUT}:excess": "9", "gone:excess": "2"}
    day = ("2026-11-25", {"b:excess": "1675", f"{HOLDOUT}:excess": "9"})
    out = tabulate("c", ["a", "b"], True, stored(steered, readers, days=[day]))
    a, b, gone = out["variants"]
    assert (a["excess"], b["excess"], out["holdout"]["excess"]) == (0, 1675, 9)
    assert (gone["id"], gone["retired"], gone["excess"]) == ("gone", True, 2)
    for key in ("views", "clicks", "click_rate", "conversion_rate", "interval", "verdict"):
        assert [a[key], b[key]] == [v[key] for v in plain["variants"]]
    (figures,) = out["days"]
    assert [v["excess"] for v in figures["variants"]] == [0, 1675, 0]
    assert figures["holdout"]["excess"] == 9


@pytest.mark.parametrize("value", ["many", "", "1.5"])
def test_a_corrupt_counter_is_named(value):
    with pytest.raises(CorruptCounts, match="all time a:views"):
        tabulate("c", ["a"], False, stored({"a:views": value}))
    with pytest.raises(CorruptCounts, match="2026-11-25 a:clicks"):
        tabulate("c", ["a"], False, stored(days=[("2026-11-25", {"a:clicks": value})]))
