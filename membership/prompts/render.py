"""The answer of `POST /v1/prompt`, built from a decision (pure; its shape in /openapi.json).
A placeholder whose number is unknown renders as nothing, never as "None"."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from membership.core import i18n
from membership.goals import banner
from membership.goals import rules as goals
from membership.goals.cache import Snapshot, State
from membership.prompts.filters import Decision, Prompt, Trace

Sign = Callable[[str, "str | None"], str]  # (campaign id, variant id or None) -> token


@dataclass(frozen=True)
class Numbers:
    """The numbers copy may print, from the banner's data: None is unknown."""

    count: int | None = None
    goal: int | None = None  # the current goal's target (None: no current goal)

    @property
    def count_known(self) -> bool:
        return self.count is not None

    @property
    def has_goal(self) -> bool:
        return self.count is not None and self.goal is not None

    @property
    def remaining(self) -> int | None:
        return self.goal - self.count if self.has_goal else None


def numbers_of(snapshot: Snapshot | None) -> Numbers:
    if snapshot is None:
        return Numbers()
    current = goals.select(snapshot.goals, snapshot.count).current
    return Numbers(snapshot.count, current.target if current is not None else None)


def text(template: i18n.Template, locale: str, values: Mapping[str, str], count: int | None):
    return i18n.pick(template, locale, count).format_map(i18n.Blank(values))


PROMPTS_HELD = 4096  # rendered prompts kept per banner state; cleared when full


def prompt_dict(
    prompt: Prompt,
    locale: str,
    numbers: Numbers,
    banner_view: dict | None,
    token: str,
    *,
    publication: str,
    join_url: str,
    cache: dict | None = None,
) -> dict:
    """One prompt of the answer. With `cache`, which holds one banner state's (so the
    numbers and the banner are fixed), its copy is written once per (campaign, variant,
    locale, articles read): formatting numbers per locale is most of a prompt's cost, and a
    reader only adds its token. The campaign is kept with its entry, so a replaced campaign
    whose id() comes back is not mistaken for it."""
    campaign = prompt.campaign
    if cache is not None:
        key = (id(campaign), prompt.variant.id, locale, prompt.articles_read)
        found = cache.get(key)
        if found is None or found[0] is not campaign:
            body = _copy_dict(prompt, locale, numbers, banner_view, publication, join_url)
            if len(cache) >= PROMPTS_HELD:
                cache.clear()
            found = cache[key] = (campaign, body)
        body = found[1].copy()  # shallow: the nested dicts are shared, and only ever read
    else:
        body = _copy_dict(prompt, locale, numbers, banner_view, publication, join_url)
    body["token"] = token
    return body


def _copy_dict(prompt, locale, numbers, banner_view, publication: str, join_url: str) -> dict:
    campaign, variant = prompt.campaign, prompt.variant
    copy = variant.copy.get(locale) or variant.copy.get(i18n.DEFAULT_LOCALE)
    if copy is None:  # validation requires copy for every targeted locale; never crash
        copy = next(iter(variant.copy.values()))
    values = {"publication": publication}
    raw = {
        "count": numbers.count,
        "goal": numbers.goal if numbers.has_goal else None,
        "remaining": numbers.remaining,
        "articles_read": prompt.articles_read,
    }
    for name, n in raw.items():
        if n is not None:
            values[name] = i18n.format_number(locale, n)
    body = copy.get("body")
    gate = campaign.gate
    return {
        "placement": prompt.placement,
        "campaign": campaign.id,
        "variant": variant.id,
        "headline": text(copy["headline"], locale, values, numbers.count),
        "body": text(body, locale, values, numbers.count) if body is not None else None,
        "cta": {
            "label": text(copy["cta"], locale, values, numbers.count),
            "url": variant.cta_url or join_url,
            # JOIN_URL's ask goes through Stripe Checkout; a URL staff chose is followed.
            "checkout": variant.cta_url is None,
        },
        "banner": banner_view,
        "dismissible": gate.dismissible if prompt.placement == "gate" and gate else True,
    }


def debug_list(traces: tuple[Trace, ...]) -> list[dict]:
    """`?debug=1`: one entry per campaign, in the order tried, each filter's verdict (and
    the copy check after them); `variant` and `bucket` once the campaign was assigned."""
    return [
        {
            "campaign": t.campaign,
            "placement": t.placement,
            "result": t.result,
            "variant": t.variant,
            "bucket": t.bucket,
            "filters": [
                {"name": c.name, "passed": c.passed, "reason": c.reason} for c in t.filters
            ],
        }
        for t in traces
    ]


def answer(
    decision: Decision,
    locale: str,
    numbers: Numbers,
    banner_view: dict | None,
    sign: Sign,
    *,
    publication: str,
    join_url: str,
    debug: bool = False,
    cache: dict | None = None,
) -> dict:
    """The whole answer: one signed token per prompt and per holdout entry (the prompts'
    copy kept in the banner state's `cache` when given).

    A holdout entry names the placement its ask would have taken, so the widget reports
    the holdout when that place is on screen, as it reports a variant's view: otherwise
    readers who never scroll to an inline slot count in the holdout and not in a variant,
    and the lift is biased."""
    body: dict = {
        "prompts": [
            prompt_dict(
                p,
                locale,
                numbers,
                banner_view,
                sign(p.campaign.id, p.variant.id),
                publication=publication,
                join_url=join_url,
                cache=cache,
            )
            for p in decision.prompts
        ],
        "holdout": [
            {
                "campaign": h.campaign.id,
                "placement": h.placement,
                "token": sign(h.campaign.id, None),
            }
            for h in decision.holdout
        ],
    }
    if debug:
        body["debug"] = debug_list(decision.debug)
    return body


# --- The banner's body per locale, computed once per banner state -------------------------


@dataclass
class BannerFacts:
    """One banner state as prompts use it: its numbers, its body per locale and the prompts
    written with them (`prompt_dict`'s cache; None: not kept). Both filled on first use;
    racing threads compute the same dict, the last one stays."""

    snapshot: Snapshot | None
    stale: bool
    numbers: Numbers
    views: dict[str, dict] = field(default_factory=dict)
    prompts: dict | None = field(default_factory=dict)


# No data yet: nothing kept (one instance for every app, whatever its publication name).
NO_BANNER = BannerFacts(None, False, Numbers(), prompts=None)


class BannerViews:
    """Memo of the current banner state's facts: recomputed when the data (or its
    staleness) changes, not per request, nor when the cache reads the same data again."""

    def __init__(self, *, publication: str, join_url: str) -> None:
        self.publication = publication
        self.join_url = join_url
        self._memo = NO_BANNER

    def facts(self, state: State | None) -> BannerFacts:
        snapshot = state.snapshot if state is not None else None
        if snapshot is None:
            return NO_BANNER
        memo = self._memo
        if memo.snapshot is snapshot and memo.stale == state.stale:
            return memo
        if memo.snapshot == snapshot and memo.stale == state.stale:
            # The same data read again: keep the views, compare by identity from now on.
            memo = BannerFacts(snapshot, state.stale, memo.numbers, memo.views, memo.prompts)
        else:
            memo = BannerFacts(snapshot, state.stale, numbers_of(snapshot))
        self._memo = memo
        return memo

    def view(self, facts: BannerFacts, locale: str) -> dict | None:
        if facts.snapshot is None:
            return None
        found = facts.views.get(locale)
        if found is None:
            found = banner.view(
                facts.snapshot,
                locale,
                publication=self.publication,
                join_url=self.join_url,
                stale=facts.stale,
            )
            facts.views[locale] = found
        return found
