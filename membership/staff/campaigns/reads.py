"""What the campaign pages read: the list with each campaign's figures, one campaign's
results. Reads only; every figure comes from `membership.prompts.counts` and `results`, as
`membership campaigns results` prints them.

The list reads every campaign (one HGETALL: campaigns are tens, not members) and the figures
of those that are not archived, one transaction each; archived campaigns are listed by name
only, so years of them cost nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis as redis_lib

from membership.prompts import counts, results, store
from membership.prompts.campaigns import Campaign
from membership.staff.forms import period
from membership.store import Keys

RESULT_PERIODS = (7, 30, 90)  # the per-day table's choices of days
DEFAULT_RESULT_DAYS = 30


@dataclass(frozen=True)
class Row:
    campaign: Campaign
    views: int | None  # None: the figures could not be read
    readers: int
    conversions: int
    conversion_rate: float | None  # per unique reader, all variants together; None: no reader


@dataclass(frozen=True)
class Listing:
    active: list[Row]  # by rank: the order decisions try them in
    archived: list[Campaign]
    corrupt: dict[str, str]


def totals(data: dict) -> tuple[int, int, int]:
    """(views, readers, conversions) of every variant of a results JSON."""
    variants = data["variants"]
    return (
        sum(v["views"] for v in variants),
        sum(v["readers"] for v in variants),
        sum(min(v["conversions"], v["readers"]) for v in variants),
    )


def _row(client: redis_lib.Redis, keys: Keys, campaign: Campaign, now: float) -> Row:
    try:
        data = results.build(campaign, counts.read_campaign(client, keys, campaign, now))
    except counts.CorruptCounts:
        return Row(campaign, None, 0, 0, None)
    views, readers, converted = totals(data)
    rate = converted / readers if readers else None
    return Row(campaign, views, readers, converted, rate)


def listing(client: redis_lib.Redis, keys: Keys, now: float | None = None) -> Listing:
    now = time.time() if now is None else now
    stored = store.read(client, keys)
    active = [c for c in stored.campaigns if c.status != "archived"]
    archived = [c for c in stored.campaigns if c.status == "archived"]
    return Listing(
        active=[_row(client, keys, c, now) for c in active],
        archived=archived,
        corrupt=dict(stored.corrupt),
    )


def parse_days(raw: str | None) -> int:
    return period(raw, RESULT_PERIODS, DEFAULT_RESULT_DAYS)


def campaign_results(
    client: redis_lib.Redis, keys: Keys, campaign: Campaign, days: int, now: float | None = None
) -> dict:
    """`campaigns results ID --json --days N`'s JSON (CorruptCounts when a figure is bad)."""
    now = time.time() if now is None else now
    return results.build(campaign, counts.read_campaign(client, keys, campaign, now, days))
