"""Sticky assignment: which variant of a campaign a reader gets, or its holdout (pure).

bucket = SHA-256("<campaign id>\\0<reader>") read as a big-endian integer (first 8 bytes)
modulo 10,000. The first round(control_share x 10,000) buckets are the holdout; the rest
are split by weight, in the variants' order. The same reader gets the same answer on every
process, host and restart (never Python's `hash`, which is salted per process).

Changing a campaign's control share or weights moves some readers between variants;
renaming its id reshuffles everyone. tests/prompts/test_prompt_assign.py pins a few (reader,
campaign) -> (bucket, variant) pairs, so a change of the hash is caught.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from membership.prompts.campaigns import Campaign, Variant

BUCKETS = 10_000


@dataclass(frozen=True)
class Assignment:
    bucket: int
    variant: Variant | None  # None: the reader is in the campaign's holdout

    @property
    def holdout(self) -> bool:
        return self.variant is None


def bucket(reader: str, campaign_id: str) -> int:
    """The reader's bucket in a campaign, 0-9999."""
    digest = hashlib.sha256(f"{campaign_id}\0{reader}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def control_buckets(control_share: float) -> int:
    """How many buckets (from 0) are the holdout: 0.1 -> 1000 (rounded, so 0.29 is 2900)."""
    return round(control_share * BUCKETS)


def variant_at(campaign: Campaign, b: int) -> Variant | None:
    """The variant of bucket `b`, or None in the holdout. Outside the holdout, variant i holds
    the buckets where (b - control) / (10000 - control) < (w_0 + ... + w_i) / sum(w), exactly
    (integers), so a weight of 0 holds none."""
    control = control_buckets(campaign.control_share)
    if b < control:
        return None
    rest = BUCKETS - control
    total = sum(v.weight for v in campaign.variants)
    position = (b - control) * total
    cumulative = 0
    for variant in campaign.variants:
        cumulative += variant.weight
        if position < cumulative * rest:
            return variant
    raise ValueError(f"campaign {campaign.id} has no variant with a weight above 0")


def assign(campaign: Campaign, reader: str) -> Assignment:
    b = bucket(reader, campaign.id)
    return Assignment(bucket=b, variant=variant_at(campaign, b))
