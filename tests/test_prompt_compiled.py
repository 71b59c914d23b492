"""Compiled campaigns (membership.prompts.compiled) against the named filters as the oracle.

The compiled tests are what every page view runs; `filters.decide` with its trace is the
unoptimised, explained path. Over random campaigns and requests both must agree per
campaign (passes every filter or not) and per decision (the same prompts and holdout).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from membership.prompts.compiled import Facts, compile_campaign, compile_campaigns
from membership.prompts.filters import FILTERS, decide
from tests.prompt_helpers import NOW, campaign_sets, make, request, requests
from tests.test_prompt_filters import ROWS

H = dt.timedelta(hours=1)

decisions = st.tuples(
    campaign_sets(),
    requests(),
    st.booleans(),
    st.none() | st.sampled_from(["UA", "PL", "DE", "ua"]),
    st.booleans(),
    st.booleans(),
    st.integers(-48, 48).map(lambda h: NOW + h * H),
)


def _passes_all(c, r, now, member, country) -> bool:
    return all(test(c, r, now, member, country)[0] for _, test in FILTERS)


@settings(max_examples=600, deadline=None)
@given(decisions)
def test_each_campaigns_tests_agree_with_its_filters(args):
    cs, r, member, country, _, _, now = args
    facts = Facts(r, now, member, country)
    for c in cs:
        tests = compile_campaign(c)
        compiled = tests is not None and all(t(facts) for t in tests)
        assert compiled == _passes_all(c, r, now, member, country), c


@settings(max_examples=600, deadline=None)
@given(decisions)
def test_a_compiled_decision_is_the_decision(args):
    cs, r, member, country, count_known, has_goal, now = args
    explained = decide(cs, r, now, member, country, count_known, has_goal)
    quick = compile_campaigns(cs).decide(r, now, member, country, count_known, has_goal)
    assert quick == replace(explained, debug=())


def test_only_the_tests_that_can_fail_are_kept():
    anyone = make(audience={"readers": "everyone"})
    assert compile_campaign(anyone) == ()
    assert compile_campaign(make(status="paused")) is None
    # non-members (the default), one exclude list, a view cap: three tests
    c = make(
        audience={"sections": {"exclude": ["obituaries"]}},
        frequency={"max_views": 3, "per_days": 30},
    )
    assert len(compile_campaign(c)) == 3


def test_a_campaign_that_never_passes_is_not_tried():
    cs = [make(id="a", status="draft"), make(id="b", priority=2)]
    compiled = compile_campaigns(cs)
    assert [entry.campaign.id for _, entry in compiled.entries] == ["b"]
    d = compiled.decide(request(), NOW, False, None, True, True)
    assert [p.campaign.id for p in d.prompts] == ["b"]


@pytest.mark.parametrize(
    ("name", "changes", "fields", "member", "country", "now", "passed", "reason"),
    ROWS,
    ids=[f"{r[0]}-{i}" for i, r in enumerate(ROWS)],
)
def test_the_filters_table_edges(name, changes, fields, member, country, now, passed, reason):
    """Each row of the filters' table (exactly N articles, a view exactly N hours ago, the
    day a window ends...): the compiled tests say what the named filters say."""
    c, r = make(**changes), request(**fields)
    tests = compile_campaign(c)
    compiled = tests is not None and all(t(Facts(r, now, member, country)) for t in tests)
    assert compiled == _passes_all(c, r, now, member, country)
