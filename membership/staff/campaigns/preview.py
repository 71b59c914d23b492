"""What each variant of a campaign looks like to a reader, in each locale it targets.

The copy is written by `membership.prompts.render.prompt_dict`, the function that writes
`POST /v1/prompt`'s answer, with today's member count and goal from the banner's data: the
preview never templates copy itself. The page draws each answer with the widget's markup
(prompt.js's `card()`: the same elements and class names) and the widget's own CSS, read
out of its scripts (membership.goals.widget.styles) and served from our origin
(`widget_css`), so a change to the widget's look shows here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from membership.goals import banner, widget
from membership.goals.cache import State
from membership.prompts import render
from membership.prompts.campaigns import Campaign, Variant
from membership.prompts.filters import Prompt

SAMPLE_ARTICLES = 5  # {articles_read} when the campaign sets no minimum
# The widget's words, per language: its close button's label (prompt.js's CLOSE) and a gate's
# "maybe later" (prompt-gate.js's LATER); tests/goals/test_widget.py holds them to those.
WIDGET_WORDS = {"en": ("Close", "Maybe later"), "uk": ("Закрити", "Можливо, пізніше")}


@dataclass(frozen=True)
class Preview:
    variant: str
    locale: str
    placement: str
    prompt: dict  # render.prompt_dict's answer
    progress: float | None  # the ticker's bar, 0-1, when the widget would draw one
    missing: tuple[str, ...]  # numbers the copy needs that are unknown now


@lru_cache(maxsize=1)
def widget_css() -> str:
    """The CSS the widget adds to a page: the look the count box and the asks share, then each
    placement module's (membership.goals.widget.styles)."""
    return "".join(widget.styles())


def sample_articles(campaign: Campaign) -> int:
    """A plausible {articles_read}: the campaign's minimum (a gate's first gated article)."""
    ar = campaign.audience.articles_read
    if campaign.gate is not None:
        return campaign.gate.free_articles + 1
    return max(ar.min, 1) if ar is not None else SAMPLE_ARTICLES


def _missing(variant: Variant, locale: str, numbers: render.Numbers) -> tuple[str, ...]:
    needs = variant.needs(locale)
    unknown = []
    if "count" in needs and not numbers.count_known:
        unknown.append("the member count")
    if needs & {"goal", "remaining"} and not numbers.has_goal:
        unknown.append("a current goal")
    return tuple(unknown)


def _progress(banner_view: dict | None) -> float | None:
    """The ticker's bar as prompt.js draws it (a count above 0, a goal and a message)."""
    if not banner_view or not banner_view.get("count") or not banner_view.get("headline"):
        return None
    goal = banner_view.get("goal")
    if not goal or not goal.get("target") or not banner_view.get("message"):
        return None
    return max(0.0, min(1.0, float(goal.get("progress") or 0)))


def previews(
    campaign: Campaign, state: State | None, *, publication: str, join_url: str
) -> list[Preview]:
    """One preview per variant and target locale, variants in order."""
    views = render.BannerViews(publication=publication, join_url=join_url)
    facts = views.facts(state)
    found = []
    for variant in campaign.variants:
        for locale in campaign.target_locales:
            prompt = Prompt(
                placement=campaign.placement,
                campaign=campaign,
                variant=variant,
                bucket=0,
                articles_read=sample_articles(campaign),
            )
            banner_view = views.view(facts, locale)
            answer = render.prompt_dict(
                prompt,
                locale,
                facts.numbers,
                banner_view,
                "preview",
                publication=publication,
                join_url=join_url,
            )
            found.append(
                Preview(
                    variant=variant.id,
                    locale=locale,
                    placement=campaign.placement,
                    prompt=answer,
                    progress=_progress(banner_view),
                    missing=_missing(variant, locale, facts.numbers),
                )
            )
    return found


def previews_now(campaign: Campaign, settings) -> list[Preview]:
    """previews() as /v1/prompt would answer now: the banner's last good state, the
    deployment's publication and join URL."""
    state = banner.cache().get()
    return previews(
        campaign, state, publication=settings.publication_name, join_url=settings.join_url
    )
