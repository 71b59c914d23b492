"""The answer of POST /v1/prompt built from a decision (membership/prompts/render.py): pure."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from membership.goals import banner
from membership.goals.cache import Snapshot, State
from membership.goals.rules import Goal
from membership.prompts import render
from membership.prompts.filters import Decision, Holdout, Prompt, Trace, decide
from tests.support.prompt_helpers import EXAMPLE, NOW, PLAIN_COPY, make, request

NBSP = "\u00a0"
JOIN = "https://example.org/membership"
PUBLICATION = "The Kyiv Independent"
WINTER = make(**EXAMPLE)
TOWARD_GOAL = render.Numbers(25012, 30000)
SNAPSHOT = Snapshot(25012, "2026-11-25T19:00:00Z", (Goal(id=2, target=30000),), version=3)


def _prompt(campaign=WINTER, variant="a", articles_read=3, placement=None) -> Prompt:
    v = next(v for v in campaign.variants if v.id == variant)
    return Prompt(placement or campaign.placement, campaign, v, 4321, articles_read)


def _dict(prompt, locale="en", numbers=TOWARD_GOAL, view=None, token="tok"):
    return render.prompt_dict(
        prompt, locale, numbers, view, token, publication=PUBLICATION, join_url=JOIN
    )


def test_a_prompt_as_the_issue_shows_it():
    view = {"count": 25012}
    assert _dict(_prompt(), view=view) == {
        "placement": "inline",
        "campaign": "winter-drive",
        "variant": "a",
        "headline": "You've read 3 articles this month",
        "body": "Join The Kyiv Independent's members",
        "cta": {"label": "Become a member", "url": JOIN, "checkout": True},
        "banner": view,
        "dismissible": True,
        "token": "tok",
    }


def test_plural_forms_are_chosen_by_the_count_and_numbers_formatted_per_locale():
    b = _prompt(variant="b")
    assert _dict(b, "uk")["headline"] == f"25{NBSP}012 учасників"
    assert _dict(b, "uk", render.Numbers(1, None))["headline"] == "1 учасник"
    assert _dict(b, "uk", render.Numbers(3, None))["headline"] == "3 учасники"
    assert _dict(b, "uk", render.Numbers(21, None))["headline"] == "21 учасник"
    assert _dict(b, "en", render.Numbers(1, None))["headline"] == "1 member on board"
    assert _dict(b, "en")["headline"] == "25,012 members"
    assert _dict(_prompt(articles_read=1234), "uk")["headline"] == (
        f"Ви прочитали 1{NBSP}234 статей цього місяця"
    )


def test_goal_and_remaining_come_from_the_current_goal():
    copy = {
        "en": {"headline": "{remaining} to go to {goal}", "body": "{count} so far", "cta": "Go"},
        "uk": PLAIN_COPY["uk"],
    }
    c = make(variants=[{"id": "a", "weight": 1, "copy": copy}])
    out = _dict(_prompt(c), numbers=render.Numbers(25012, 30000))
    assert (out["headline"], out["body"]) == ("4,988 to go to 30,000", "25,012 so far")


def test_a_number_that_is_unknown_renders_as_nothing_never_none():
    """decide() never picks such copy; should it, no false number is printed."""
    copy = {"en": {"headline": "{count}/{goal}/{remaining}", "cta": "Go"}, "uk": PLAIN_COPY["uk"]}
    c = make(variants=[{"id": "a", "weight": 1, "copy": copy}])
    assert _dict(_prompt(c), numbers=render.Numbers())["headline"] == "//"
    assert _dict(_prompt(c), numbers=render.Numbers(5, None))["headline"] == "5//"


def test_cta_url_body_and_dismissible():
    b = _dict(_prompt(variant="b"))
    assert b["cta"]["url"] == "https://example.org/join?from=prompt"
    assert b["cta"]["checkout"] is False  # staff chose the URL: the widget follows it
    assert b["body"] is None  # variant b has no body
    gate = make(placement="gate", gate={"dismissible": False, "free_articles": 2})
    assert _dict(_prompt(gate))["dismissible"] is False
    open_gate = make(placement="gate", gate={"dismissible": True, "free_articles": 2})
    assert _dict(_prompt(open_gate))["dismissible"] is True
    assert _dict(_prompt(make(placement="modal")))["dismissible"] is True


def test_numbers_of_the_banner_snapshot():
    assert render.numbers_of(None) == render.Numbers()
    assert not render.Numbers().count_known and not render.Numbers().has_goal
    n = render.numbers_of(SNAPSHOT)
    assert (n.count, n.goal, n.remaining, n.count_known, n.has_goal) == (
        25012,
        30000,
        4988,
        True,
        True,
    )
    reached = dataclasses.replace(SNAPSHOT, goals=(Goal(id=1, target=100),))
    assert render.numbers_of(reached) == render.Numbers(25012, None)  # reached: no current goal
    assert not render.numbers_of(reached).has_goal


def test_the_answer_signs_one_token_per_prompt_and_per_holdout_entry():
    signed = []

    def sign(campaign, variant):
        signed.append((campaign, variant))
        return f"{campaign}/{variant}"

    modal = make(id="m", placement="modal")
    decision = Decision(
        prompts=(_prompt(), _prompt(modal)),
        holdout=(Holdout("banner", make(id="h", placement="banner"), 7),),
        debug=(Trace("h", "banner", "holdout", (), 7, None),),
    )
    body = render.answer(
        decision, "en", render.Numbers(), None, sign, publication=PUBLICATION, join_url=JOIN
    )
    assert [p["token"] for p in body["prompts"]] == ["winter-drive/a", "m/a"]
    assert body["holdout"] == [{"campaign": "h", "placement": "banner", "token": "h/None"}]
    assert signed == [("winter-drive", "a"), ("m", "a"), ("h", None)]
    assert "debug" not in body
    traced = render.answer(
        decision, "en", render.Numbers(), None, sign, publication="x", join_url=JOIN, debug=True
    )
    assert traced["debug"] == [
        {
            "campaign": "h",
            "placement": "banner",
            "result": "holdout",
            "variant": None,
            "bucket": 7,
            "filters": [],
        }
    ]


def test_debug_lists_every_filter_with_its_reason():
    c = make(audience={"articles_read": {"min": 3, "days": 30}})
    decision = decide([c], request(), NOW, False, None, True, True, debug=True)
    (entry,) = render.debug_list(decision.debug)
    assert entry["result"] == "rejected"
    by_name = {f["name"]: f for f in entry["filters"]}
    assert by_name["articles_read"] == {
        "name": "articles_read",
        "passed": False,
        "reason": "0 in 30 days, needs 3",
    }
    assert by_name["live"]["passed"] is True


# --- The banner's body, once per state and locale ---------------------------------------


def _state(snapshot=SNAPSHOT, stale=False) -> State:
    return State(snapshot, stale, expires=0.0)


def test_banner_views_are_the_banner_body_computed_once_per_state_and_locale():
    views = render.BannerViews(publication=PUBLICATION, join_url=JOIN)
    facts = views.facts(_state())
    uk = views.view(facts, "uk")
    assert uk == banner.view(SNAPSHOT, "uk", publication=PUBLICATION, join_url=JOIN)
    assert views.view(facts, "uk") is uk  # the same dict: not recomputed
    # The cache read the same data again (a new, equal snapshot): still the same dict.
    again = views.facts(_state(dataclasses.replace(SNAPSHOT)))
    assert again.numbers == facts.numbers
    assert views.view(again, "uk") is uk
    # New data, or the same data gone stale: a new body.
    newer = views.facts(_state(dataclasses.replace(SNAPSHOT, count=25013, version=4)))
    assert views.view(newer, "uk")["count"] == 25013
    stale = views.facts(_state(stale=True))
    assert views.view(stale, "uk")["stale"] is True


def test_no_banner_while_no_count_was_ever_seen():
    views = render.BannerViews(publication=PUBLICATION, join_url=JOIN)
    for state in (None, State(None, True, 0.0, reason="no_count")):
        facts = views.facts(state)
        assert views.view(facts, "en") is None
        assert not facts.numbers.count_known


@given(
    count=st.none() | st.integers(0, 10**9),
    target=st.none() | st.integers(1, 10**9),
    articles=st.integers(0, 100_000),
    locale=st.sampled_from(["en", "uk"]),
    variant=st.sampled_from(["a", "b"]),
)
def test_copy_never_shows_a_placeholder_or_none(count, target, articles, locale, variant):
    has_goal = count is not None and target is not None and target > count
    numbers = render.Numbers(count, target if has_goal else None)
    out = _dict(_prompt(WINTER, variant, articles), locale, numbers)
    texts = [out["headline"], out["cta"]["label"]] + ([out["body"]] if out["body"] else [])
    for text in texts:
        assert text.strip()
        assert "{" not in text and "None" not in text


def test_a_cached_prompt_is_the_prompt_with_its_own_token():
    cache: dict = {}
    view = {"count": 25012}
    for variant, articles, locale in [
        ("a", 3, "en"),
        ("a", 3, "en"),
        ("a", 4, "en"),
        ("b", 3, "uk"),
    ]:
        p = _prompt(variant=variant, articles_read=articles)
        first = render.prompt_dict(
            p, locale, TOWARD_GOAL, view, "t1", publication=PUBLICATION, join_url=JOIN, cache=cache
        )
        second = render.prompt_dict(
            p, locale, TOWARD_GOAL, view, "t2", publication=PUBLICATION, join_url=JOIN, cache=cache
        )
        assert first == _dict(p, locale, view=view, token="t1")
        assert list(first) == list(_dict(p, locale, view=view))  # the same key order
        assert second["token"] == "t2" and first["token"] == "t1"
    assert len(cache) == 3
    # Another campaign object under the same id (a new version): written anew.
    renamed = dataclasses.replace(WINTER, name="Other")
    changed = make(
        **{**EXAMPLE, "variants": [{**EXAMPLE["variants"][0], "cta_url": "https://x.example/"}]}
    )
    for c in (renamed, changed):
        out = render.prompt_dict(
            _prompt(c),
            "en",
            TOWARD_GOAL,
            view,
            "t",
            publication=PUBLICATION,
            join_url=JOIN,
            cache=cache,
        )
        assert out == _dict(_prompt(c), view=view, token="t")


def test_prompts_are_kept_per_banner_state_not_when_there_is_none():
    views = render.BannerViews(publication=PUBLICATION, join_url=JOIN)
    facts = views.facts(_state())
    assert facts.prompts == {}
    facts.prompts["x"] = 1
    assert views.facts(_state(dataclasses.replace(SNAPSHOT))).prompts == {"x": 1}  # same data
    assert views.facts(_state(dataclasses.replace(SNAPSHOT, count=1, version=4))).prompts == {}
    assert views.facts(None).prompts is None


def test_the_answer_with_a_cache_is_the_answer_without():
    r = request(**{"history": {"articles": {"2026-11-25": 5}}})
    d = decide([WINTER], r, NOW, False, None, True, True)
    assert d.prompts

    def sign(campaign, variant):
        return f"{campaign}.{variant}"

    plain = render.answer(d, "uk", TOWARD_GOAL, None, sign, publication=PUBLICATION, join_url=JOIN)
    cached = render.answer(
        d, "uk", TOWARD_GOAL, None, sign, publication=PUBLICATION, join_url=JOIN, cache={}
    )
    assert cached == plain
