"""A campaign's results from its stored figures (pure: no Redis, no clock); what each figure
means, the verdicts included: docs/prompts.md ("Results")."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from membership.prompts.campaigns import Campaign
from membership.prompts.counts import HOLDOUT, CorruptCounts, Stored, slots_in

MIN_VIEWS = 1000
Z95 = 1.959963984540054  # the standard normal's 97.5th percentile
_METRICS = ("views", "clicks", "dismissals", "events", "excess", "conversions", "refunds")
_PLACES = 6


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion; (0.0, 0.0) with no trial.

    centre = (p + z²/2n) / (1 + z²/n); half width = z √(p(1-p)/n + z²/4n²) / (1 + z²/n)
    """
    if trials <= 0:
        return (0.0, 0.0)
    x = min(max(successes, 0), trials)
    p = x / trials
    z2 = z * z
    scale = 1 + z2 / trials
    centre = (p + z2 / (2 * trials)) / scale
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / scale
    # At x = 0 and x = n one bound is exactly 0 or 1; rounding must not say 1e-20 or 0.99...
    low = 0.0 if x == 0 else max(0.0, centre - half)
    high = 1.0 if x == trials else min(1.0, centre + half)
    return (low, high)


@dataclass(frozen=True)
class Tally:
    views: int = 0
    clicks: int = 0
    dismissals: int = 0
    events: int = 0
    excess: int = 0  # events refused: their address had had its bound (PROMPT_EVENTS_PER_ADDRESS)
    conversions: int = 0
    revenue: Mapping[str, int] = field(default_factory=dict)
    refunds: int = 0  # conversions later refunded in full (still in `conversions`)
    refunded: Mapping[str, int] = field(default_factory=dict)


def tallies(fields: Mapping[str, str], where: str) -> dict[str, Tally]:
    """`<slot>:<metric>` fields -> a Tally per slot. Unknown metrics are ignored (a newer
    writer's); a value that is not a whole number is CorruptCounts naming `where` and the field."""
    found: dict[str, dict] = {}
    for name, raw in fields.items():
        slot, _, metric = name.partition(":")
        try:
            value = int(raw)
        except (TypeError, ValueError):
            raise CorruptCounts(
                f"{where} {name}: {str(raw)[:40]!r} is not a whole number"
            ) from None
        values = found.setdefault(slot, {"revenue": {}, "refunded": {}})
        if metric in _METRICS:
            values[metric] = value
        elif metric.startswith(("revenue:", "refunded:")):
            money, _, currency = metric.partition(":")
            values[money][currency] = value
    return {slot: Tally(**values) for slot, values in found.items()}


def _rate(part: int, whole: int) -> float:
    return part / whole if whole > 0 else 0.0


def _r(value: float) -> float:
    return round(value, _PLACES)


def _money(revenue: Mapping[str, int], currencies: Sequence[str]) -> dict[str, int]:
    return {c: revenue.get(c, 0) for c in currencies}


@dataclass(frozen=True)
class _Arm:
    """One variant's figures and its interval, before the verdicts are given."""

    id: str
    tally: Tally
    readers: int
    retired: bool

    @property
    def converted(self) -> int:
        return min(self.tally.conversions, self.readers)

    @property
    def rate(self) -> float:
        return _rate(self.converted, self.readers)

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.converted, self.readers)


def verdict(
    arm_views: int, interval: tuple[float, float], others: Sequence[tuple[int, tuple]]
) -> str:
    """`others`: (views, interval) of every other variant."""
    if arm_views < MIN_VIEWS:
        return "too early"
    if others and all(views >= MIN_VIEWS and interval[0] > other[1] for views, other in others):
        return "leading"
    return "inconclusive"


def build(campaign: Campaign, stored: Stored) -> dict:
    """The results JSON from `counts.read`'s figures; the holdout null for a campaign without
    one (control_share 0) that never had one counted."""
    return tabulate(
        campaign.id, [v.id for v in campaign.variants], campaign.control_share > 0, stored
    )


def tabulate(
    campaign_id: str, variant_ids: Sequence[str], has_holdout: bool, stored: Stored
) -> dict:
    totals = tallies(stored.totals, "all time")
    retired = sorted(slots_in(stored.totals) - set(variant_ids) - {HOLDOUT})
    arms = [
        _Arm(v, totals.get(v, Tally()), int(stored.readers.get(v, 0)), v in retired)
        for v in [*variant_ids, *retired]
    ]
    currencies = sorted({c for t in totals.values() for c in (*t.revenue, *t.refunded)})
    holdout, h_rate = None, 0.0
    if has_holdout or HOLDOUT in totals:
        holdout, h_rate = _holdout(
            totals.get(HOLDOUT, Tally()), int(stored.readers.get(HOLDOUT, 0)), currencies
        )
    variants = []
    for arm in arms:
        t = arm.tally
        others = [(o.tally.views, o.interval) for o in arms if o is not arm]
        variants.append(
            {
                "id": arm.id,
                "views": t.views,
                "readers": arm.readers,
                "clicks": t.clicks,
                "click_rate": _r(_rate(t.clicks, t.views)),
                "dismissals": t.dismissals,
                **_outcomes(t, currencies),
                "revenue_per_mille": {
                    c: _r(_rate(t.revenue.get(c, 0) * 1000, t.views)) for c in currencies
                },
                "conversion_rate": _r(arm.rate),
                "interval": [_r(x) for x in arm.interval],
                "lift": _r(arm.rate / h_rate - 1) if h_rate > 0 else None,
                "verdict": verdict(t.views, arm.interval, others),
                "retired": arm.retired,
            }
        )
    days = [_day(day, fields, [a.id for a in arms], currencies) for day, fields in stored.days]
    return {"campaign": campaign_id, "variants": variants, "holdout": holdout, "days": days}


def _outcomes(t: Tally, currencies: Sequence[str]) -> dict:
    """What every slot shows, all time and per day: excess, conversions, money."""
    return {
        "excess": t.excess,
        "conversions": t.conversions,
        "revenue": _money(t.revenue, currencies),
        "refunds": t.refunds,
        "refunded": _money(t.refunded, currencies),
    }


def _holdout(held: Tally, readers: int, currencies: Sequence[str]) -> tuple[dict, float]:
    converted = min(held.conversions, readers)
    rate = _rate(converted, readers)
    shown = {
        "readers": readers,
        "events": held.events,
        **_outcomes(held, currencies),
        "conversion_rate": _r(rate),
        "interval": [_r(x) for x in wilson(converted, readers)],
    }
    return shown, rate


def _day(day: str, fields: Mapping[str, str], ids: Sequence[str], currencies) -> dict:
    found = tallies(fields, day)
    held = found.get(HOLDOUT, Tally())
    variants = []
    for v in ids:
        t = found.get(v, Tally())
        variants.append(
            {
                "id": v,
                "views": t.views,
                "clicks": t.clicks,
                "dismissals": t.dismissals,
                **_outcomes(t, currencies),
            }
        )
    return {
        "day": day,
        "variants": variants,
        "holdout": {"events": held.events, **_outcomes(held, currencies)},
    }
