"""The campaign document (membership.prompts.campaigns): validation, error paths, round trip."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given, settings

from membership.core import i18n
from membership.goals import rules as goals
from membership.prompts import campaigns
from membership.prompts.campaigns import CampaignError, parse, parse_list, to_json
from tests.support.prompt_helpers import EXAMPLE, campaign_objects, doc, merge


def test_the_issues_example_parses():
    c = parse(EXAMPLE)
    assert c.id == "winter-drive"
    assert c.starts_at == dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    assert c.ends_at is None
    assert c.locales == ("en", "uk")
    assert c.audience.sections.exclude == ("obituaries",)
    assert c.audience.articles_read == campaigns.ArticlesRead(min=3, max=None, days=30)
    assert c.frequency == campaigns.Frequency(4, 30, 24, 7)
    assert c.control_share == 0.1
    assert [v.id for v in c.variants] == ["a", "b"]
    assert c.variants[1].cta_url == "https://example.org/join?from=prompt"


def test_defaults_for_what_is_left_out():
    c = parse(doc())
    assert c.locales is None and c.target_locales == ("en", "uk")
    assert c.audience == campaigns.Audience()
    assert c.audience.readers == "non-members"
    assert c.frequency == campaigns.Frequency(None, 30, 0, 7)  # a dismissal hides it a week
    assert c.control_share == 0.0 and c.gate is None
    assert c.starts_at is None and c.ends_at is None
    assert c.articles_days == 30


def test_the_campaign_is_frozen():
    c = parse(EXAMPLE)
    with pytest.raises(AttributeError):
        c.status = "paused"  # type: ignore[misc]


def _variant_with(copy: dict) -> dict:
    return {"variants": [{"id": "a", "weight": 1, "copy": copy}]}


UK_NO_HEADLINE = merge(
    EXAMPLE, {"variants": [EXAMPLE["variants"][0], merge(EXAMPLE["variants"][1], {})]}
)
del UK_NO_HEADLINE["variants"][1]["copy"]["uk"]["headline"]

# (the document, the exact error line expected among the errors)
BAD = [
    (UK_NO_HEADLINE, "variants[1].copy.uk.headline: missing"),
    ({k: v for k, v in EXAMPLE.items() if k != "name"}, "name: missing"),
    (merge(EXAMPLE, {"id": "Winter"}), "id: expected 1 to 64 of a-z, 0-9 and -"),
    (merge(EXAMPLE, {"id": "a!"}), "id: expected 1 to 64 of a-z, 0-9 and -"),
    (merge(EXAMPLE, {"status": "on"}), "status: expected one of draft, live, paused, archived"),
    (
        merge(EXAMPLE, {"priority": 1.5}),
        "priority: expected a whole number from -1000000 to 1000000",
    ),
    (
        merge(EXAMPLE, {"placement": "popup"}),
        "placement: expected one of banner, inline, modal, gate",
    ),
    (merge(EXAMPLE, {"locales": ["en", "de"]}), "locales[1]: expected one of en, uk"),
    (merge(EXAMPLE, {"locales": ["en", "en"]}), "locales: each locale at most once"),
    (merge(EXAMPLE, {"locales": []}), "locales: expected at least one locale, or null for every"),
    (
        merge(EXAMPLE, {"starts_at": "2026-12-01"}),
        "starts_at: expected an ISO-8601 time with a zone, e.g. 2026-12-01T00:00:00Z",
    ),
    (
        merge(EXAMPLE, {"starts_at": "0001-01-01T00:00:00+01:00"}),  # no UTC equivalent
        "starts_at: expected an ISO-8601 time with a zone, e.g. 2026-12-01T00:00:00Z",
    ),
    (
        merge(EXAMPLE, {"ends_at": "2026-11-01T00:00:00Z"}),
        "ends_at: must be after starts_at (ends_at is exclusive)",
    ),
    (merge(EXAMPLE, {"audience": {"section": {}}}), "audience.section: unknown field"),
    (
        merge(EXAMPLE, {"audience": {"readers": "all"}}),
        "audience.readers: expected one of non-members, members, everyone",
    ),
    (
        merge(EXAMPLE, {"audience": {"countries": {"include": ["UKR"]}}}),
        "audience.countries.include[0]: expected a two-letter ISO country code, e.g. UA",
    ),
    (
        merge(EXAMPLE, {"audience": {"referrers": {"exclude": ["https://t.co/x"]}}}),
        "audience.referrers.exclude[0]: expected a domain such as news.example",
    ),
    (
        merge(EXAMPLE, {"audience": {"articles_read": {"min": 3, "max": 2}}}),
        "audience.articles_read.max: must be at least min",
    ),
    (
        merge(EXAMPLE, {"audience": {"articles_read": {"days": 91}}}),
        "audience.articles_read.days: expected a whole number from 1 to 90",
    ),
    (
        merge(EXAMPLE, {"frequency": {"max_views": 0}}),
        "frequency.max_views: expected a whole number from 1 to 100",
    ),
    (
        merge(EXAMPLE, {"frequency": {"min_hours_between": "24"}}),
        "frequency.min_hours_between: expected a number of hours",
    ),
    (merge(EXAMPLE, {"control_share": 0.6}), "control_share: expected 0 to 0.5"),
    (merge(EXAMPLE, {"control_share": True}), "control_share: expected a number from 0 to 0.5"),
    (merge(EXAMPLE, {"placement": "gate"}), "gate: missing (required for placement gate)"),
    (
        merge(EXAMPLE, {"gate": {"dismissible": True, "free_articles": 3}}),
        "gate: only for placement gate; leave it out or null",
    ),
    (
        merge(EXAMPLE, {"placement": "gate", "gate": {"dismissible": 1, "free_articles": 3}}),
        "gate.dismissible: expected true or false",
    ),
    (merge(EXAMPLE, {"variants": []}), "variants: expected 1 to 26 variants"),
    (merge(EXAMPLE, {"variants": {}}), "variants: expected a list"),
    (
        merge(EXAMPLE, {"variants": [EXAMPLE["variants"][0], EXAMPLE["variants"][0]]}),
        "variants[1].id: 'a' is used twice",
    ),
    (
        merge(EXAMPLE, {"variants": [merge(EXAMPLE["variants"][0], {"weight": 0})]}),
        "variants: every weight is 0; at least one must be above 0",
    ),
    (
        merge(EXAMPLE, {"variants": [merge(EXAMPLE["variants"][0], {"cta_url": "javascript:x"})]}),
        "variants[0].cta_url: expected an http(s) URL",
    ),
    (
        merge(EXAMPLE, {"variants": [{"id": "a", "weight": 1}]}),
        "variants[0].copy: missing",
    ),
    (
        doc(**_variant_with({"en": {"headline": "h", "cta": "c"}})),
        "variants[0].copy.uk: missing",
    ),
    (
        doc(locales=["en"], **_variant_with({"en": {"headline": "h"}})),
        "variants[0].copy.en.cta: missing",
    ),
    (
        doc(locales=["en"], **_variant_with({"en": {"headline": "h", "cta": "c", "title": "t"}})),
        "variants[0].copy.en.title: unknown field",
    ),
    (
        doc(locales=["en"], **_variant_with({"en": {"headline": "h", "cta": "c"}, "de": {}})),
        "variants[0].copy.de: unsupported locale; expected one of en, uk",
    ),
    (
        doc(locales=["en"], **_variant_with({"en": {"headline": "{name}", "cta": "c"}})),
        "variants[0].copy.en.headline: the headline template may use only {count}, {goal}, "
        "{remaining}, {publication}, {articles_read}, not {name}",
    ),
    (
        doc(locales=["en"], **_variant_with({"en": {"headline": "h\u202e", "cta": "c"}})),
        "variants[0].copy.en.headline: the headline template has a control character or "
        "escape sequence (U+202E)",
    ),
    (
        doc(locales=["en"], **_variant_with({"en": {"headline": "h", "cta": "   "}})),
        "variants[0].copy.en.cta: the cta template is empty",
    ),
    (
        doc(
            locales=["en"],
            **_variant_with({"en": {"headline": {"few": "x", "other": "y"}, "cta": "c"}}),
        ),
        "variants[0].copy.en.headline: en has no plural form 'few'; it has one, other",
    ),
    (
        doc(locales=["uk"], **_variant_with({"uk": {"headline": {"one": "x"}, "cta": "c"}})),
        'variants[0].copy.uk.headline: plural forms need an "other" form',
    ),
    (
        doc(locales=["en"], **_variant_with({"en": {"headline": 3, "cta": "c"}})),
        "variants[0].copy.en.headline: expected a template or an object of plural forms",
    ),
    (
        doc(name="bad\x1b[31m"),
        "name: control characters are not allowed (found U+001B)",
    ),
]


@pytest.mark.parametrize(("document", "expected"), BAD, ids=[e.split(":")[0] for _, e in BAD])
def test_errors_name_the_field_path(document, expected):
    with pytest.raises(CampaignError) as caught:
        parse(document)
    assert expected in caught.value.errors
    assert str(caught.value) == caught.value.errors[0]


def test_the_issues_own_example_error_is_the_only_one():
    with pytest.raises(CampaignError) as caught:
        parse(UK_NO_HEADLINE)
    assert caught.value.errors == ["variants[1].copy.uk.headline: missing"]


def test_copy_is_only_required_for_the_targeted_locales():
    c = parse(doc(locales=["uk"], **_variant_with({"uk": {"headline": "h", "cta": "c"}})))
    assert c.variants[0].copy == {"uk": {"headline": "h", "cta": "c"}}


def test_articles_read_is_a_prompt_placeholder_but_not_a_goals_one():
    c = parse(
        doc(locales=["en"], **_variant_with({"en": {"headline": "{articles_read}", "cta": "c"}}))
    )
    assert c.variants[0].needs("en") == {"articles_read"}
    with pytest.raises(i18n.CopyError, match="articles_read"):
        goals.check_copy({"en": {"message": "{articles_read} read"}})
    with pytest.raises(i18n.CopyError, match="body"):
        goals.check_copy({"en": {"body": "x"}})  # banner fields are unchanged


def test_what_a_variants_copy_needs():
    c = parse(EXAMPLE)
    assert c.variants[0].needs("en") == {"articles_read", "publication"}
    assert c.variants[1].needs("uk") == {"count"}  # plural forms are chosen by the count
    plural_without_count = parse(
        doc(
            locales=["en"],
            **_variant_with({"en": {"headline": {"one": "a", "other": "b"}, "cta": "c"}}),
        )
    )
    assert plural_without_count.variants[0].needs("en") == {"count"}
    assert parse(doc()).variants[0].needs("en") == frozenset()


def test_normalized_on_the_way_in():
    c = parse(
        doc(
            starts_at="2026-12-01T02:00:00+02:00",
            audience={
                "sections": {"include": ["War"]},
                "tags": {"exclude": ["Kursk"]},
                "referrers": {"exclude": ["News.Example"]},
                "countries": {"include": ["ua"]},
            },
        )
    )
    assert c.starts_at == dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    assert c.audience.sections.include == ("war",)
    assert c.audience.tags.exclude == ("kursk",)
    assert c.audience.referrers.exclude == ("news.example",)
    assert c.audience.countries.include == ("UA",)
    assert to_json(c)["starts_at"] == "2026-12-01T00:00:00Z"


def test_round_trip_of_the_example():
    c = parse(EXAMPLE)
    written = to_json(c)
    assert parse(written) == c
    assert parse(json.loads(json.dumps(written))) == c
    assert to_json(parse(written)) == written
    assert written == EXAMPLE  # the example is already in the written form


@settings(max_examples=200, deadline=None)
@given(campaign_objects("random-campaign"))
def test_round_trip_of_random_campaigns(c):
    written = json.loads(json.dumps(to_json(c)))
    assert parse(written) == c
    assert to_json(parse(written)) == written


def test_a_list_is_all_or_nothing_with_paths_per_item():
    assert [c.id for c in parse_list([doc(id="a"), doc(id="b")])] == ["a", "b"]
    assert [c.id for c in parse_list(doc(id="a"))] == ["a"]
    with pytest.raises(CampaignError) as caught:
        parse_list([doc(id="a"), doc(id="b", status="on"), doc(id="a"), 3])
    assert caught.value.errors == [
        "[1].status: expected one of draft, live, paused, archived",
        "[2].id: 'a' is also [0]",
        "[3]: expected a campaign object",
    ]
    with pytest.raises(CampaignError, match="expected a campaign object or a list"):
        parse_list("x")
