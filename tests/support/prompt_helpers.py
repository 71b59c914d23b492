"""Builders and hypothesis strategies for the prompts' pure core (tests/test_prompt_*.py)."""

from __future__ import annotations

import copy as copylib
import datetime as dt

from hypothesis import strategies as st

from membership.prompts import campaigns
from membership.prompts.campaigns import (
    Audience,
    Campaign,
    Frequency,
    Gate,
    IncludeExclude,
    Variant,
)
from membership.prompts.request import Page, PromptRequest, Seen, parse_request

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
READER = "r_3f9c2a1b7d4e"

# An example campaign, as staff would write it.
EXAMPLE = {
    "id": "winter-drive",
    "name": "Winter drive",
    "status": "live",
    "priority": 10,
    "starts_at": "2026-11-01T00:00:00Z",
    "ends_at": None,
    "placement": "inline",
    "locales": ["en", "uk"],
    "audience": {
        "readers": "non-members",
        "sections": {"include": [], "exclude": ["obituaries"]},
        "tags": {"include": [], "exclude": []},
        "articles_read": {"min": 3, "max": None, "days": 30},
        "referrers": {"include": [], "exclude": ["news.example"]},
        "countries": {"include": [], "exclude": []},
    },
    "frequency": {"max_views": 4, "per_days": 30, "min_hours_between": 24, "after_dismiss_days": 7},
    "control_share": 0.1,
    "gate": None,
    "variants": [
        {
            "id": "a",
            "weight": 1,
            "copy": {
                "en": {
                    "headline": "You've read {articles_read} articles this month",
                    "body": "Join {publication}'s members",
                    "cta": "Become a member",
                },
                "uk": {
                    "headline": "Ви прочитали {articles_read} статей цього місяця",
                    "body": "Долучайтеся до {publication}",
                    "cta": "Стати учасником",
                },
            },
            "cta_url": None,
        },
        {
            "id": "b",
            "weight": 1,
            "copy": {
                "en": {
                    "headline": {"one": "{count} member on board", "other": "{count} members"},
                    "cta": "Join them",
                },
                "uk": {
                    "headline": {
                        "one": "{count} учасник",
                        "few": "{count} учасники",
                        "many": "{count} учасників",
                        "other": "{count} учасника",
                    },
                    "cta": "Долучитися",
                },
            },
            "cta_url": "https://example.org/join?from=prompt",
        },
    ],
}

PLAIN_COPY = {
    "en": {"headline": "Support us", "cta": "Join"},
    "uk": {"headline": "Підтримайте нас", "cta": "Долучитися"},
}


def merge(base: dict, changes: dict) -> dict:
    """`base` with `changes` applied; nested dicts merge, other values replace."""
    out = copylib.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copylib.deepcopy(value)
    return out


def doc(**changes) -> dict:
    """A simple live campaign that any non-member passes, with `changes` merged in."""
    base = {
        "id": "c1",
        "name": "C1",
        "status": "live",
        "priority": 1,
        "placement": "inline",
        "variants": [{"id": "a", "weight": 1, "copy": PLAIN_COPY}],
    }
    return merge(base, changes)


def make(**changes) -> Campaign:
    return campaigns.parse(doc(**changes))


def request(**fields) -> PromptRequest:
    return parse_request({"reader": READER, **fields})


def ago(**delta) -> str:
    return campaigns.iso(NOW - dt.timedelta(**delta))


# --- hypothesis strategies -------------------------------------------------------------

IDS = ["c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7"]
SECTIONS = ["war", "politics", "culture"]
TAGS = ["kursk", "kyiv", "elections"]
DOMAINS = ["t.co", "news.example", "google.com"]
COUNTRIES = ["UA", "PL", "DE"]

COPY_OPTIONS = [
    PLAIN_COPY,
    {
        "en": {"headline": "{count} members", "cta": "Join"},
        "uk": {"headline": "{count} учасників", "cta": "Долучитися"},
    },
    {
        "en": {"headline": "{remaining} to {goal}", "cta": "Join"},
        "uk": {"headline": "{remaining} до {goal}", "cta": "Долучитися"},
    },
]


def _often(value, other):
    """`value` about two times in three, else `other` (most random campaigns should pass)."""
    return st.one_of(st.just(value), st.just(value), other)


def _ie(values: list[str]):
    return _often(
        IncludeExclude(),
        st.builds(
            IncludeExclude,
            include=st.lists(st.sampled_from(values), max_size=2, unique=True).map(tuple),
            exclude=st.lists(st.sampled_from(values), max_size=1, unique=True).map(tuple),
        ),
    )


times = st.integers(min_value=-40 * 24, max_value=10 * 24).map(
    lambda h: NOW + dt.timedelta(hours=h)
)


# Each strategy is built once: one built inside a draw is validated anew every draw, which
# costs far more than the drawing.
_WHEN = _often(None, times)
_COPY = st.sampled_from(COPY_OPTIONS)
_STATUS = _often("live", st.sampled_from(campaigns.STATUSES))
_LOCALES = _often(None, st.sampled_from([("en",), ("uk",), ("en", "uk")]))
_SECTIONS, _TAGS, _REFERRERS, _COUNTRIES = map(_ie, (SECTIONS, TAGS, DOMAINS, COUNTRIES))
_ARTICLES_READ = _often(
    None,
    st.builds(
        campaigns.ArticlesRead, min=st.integers(0, 4), max=st.none(), days=st.integers(1, 30)
    ),
)
_MAX_VIEWS = _often(None, st.integers(1, 4))
_MIN_HOURS = st.sampled_from([0, 1, 24])
_CONTROL_SHARE = st.sampled_from([0.0, 0.1, 0.5])


@st.composite
def campaign_objects(draw, cid: str) -> Campaign:
    placement = draw(st.sampled_from(campaigns.PLACEMENTS))
    starts = draw(_WHEN)
    ends = draw(_WHEN)
    if starts and ends and ends <= starts:
        ends = None
    variants = tuple(
        Variant(id=f"v{i}", weight=draw(st.integers(1, 3)), copy=draw(_COPY))
        for i in range(draw(st.integers(1, 3)))
    )
    return Campaign(
        id=cid,
        name=cid,
        status=draw(_STATUS),
        priority=draw(st.integers(0, 3)),
        placement=placement,
        variants=variants,
        starts_at=starts,
        ends_at=ends,
        locales=draw(_LOCALES),
        audience=Audience(
            readers=draw(st.sampled_from(campaigns.READERS)),
            sections=draw(_SECTIONS),
            tags=draw(_TAGS),
            articles_read=draw(_ARTICLES_READ),
            referrers=draw(_REFERRERS),
            countries=draw(_COUNTRIES),
        ),
        frequency=Frequency(
            max_views=draw(_MAX_VIEWS),
            per_days=draw(st.integers(1, 30)),
            min_hours_between=draw(_MIN_HOURS),
            after_dismiss_days=draw(st.integers(0, 10)),
        ),
        control_share=draw(_CONTROL_SHARE),
        gate=Gate(draw(st.booleans()), draw(st.integers(0, 3))) if placement == "gate" else None,
    )


@st.composite
def campaign_sets(draw) -> list[Campaign]:
    ids = draw(st.lists(st.sampled_from(IDS), min_size=1, max_size=8, unique=True))
    return [draw(campaign_objects(cid)) for cid in ids]


seen = st.builds(Seen, campaign=st.sampled_from(IDS), at=times)


def requests():
    return st.builds(
        PromptRequest,
        reader=st.text("abcdefghijklmnop0123456789_-", min_size=8, max_size=20),
        locale=st.sampled_from(["en", "uk"]),
        page=st.builds(
            Page,
            section=st.none() | st.sampled_from(SECTIONS),
            tags=st.lists(st.sampled_from(TAGS), max_size=2).map(tuple),
            referrer=st.none() | st.sampled_from(DOMAINS).map(lambda d: f"https://www.{d}/x"),
        ),
        articles=st.dictionaries(
            st.integers(-3, 40).map(lambda d: NOW.date() - dt.timedelta(days=d)),
            st.integers(0, 4),
            max_size=10,
        ),
        views=st.lists(seen, max_size=6).map(lambda v: tuple(sorted(v, key=lambda s: s.at)[::-1])),
        dismissed=st.lists(seen, max_size=3).map(
            lambda v: tuple(sorted(v, key=lambda s: s.at)[::-1])
        ),
    )
