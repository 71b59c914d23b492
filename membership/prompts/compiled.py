"""Campaigns compiled for the decision of every page view: only the checks that can fail (pure).

`filters.decide` runs every named filter of every campaign and can say why (the `?debug=1`
trace). Most of that work gives the same answer for every request: a campaign for
"everyone" with empty include lists and no frequency limits passes seven of its twelve
filters whatever the reader sent. `compile_campaigns` (run by the snapshot when it reads
the campaigns, not per request) keeps, per campaign, only the tests that depend on the
request, each a plain predicate with its constants bound; `Compiled.decide` gives the same
Decision as `filters.decide(..., trace=False)`, with no reason text built.

tests/test_prompt_compiled.py checks that over random campaigns and requests, with
`filters.decide` as the oracle; change a filter there and here together.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import attrgetter

from membership.prompts import filters
from membership.prompts.assign import Assignment, assign
from membership.prompts.campaigns import Campaign, IncludeExclude
from membership.prompts.request import PromptRequest

# Where a winner leaves no room for another: its placement, and modal and gate together.
# Campaigns are tried by rank, so a gate found after a modal (or the other way round)
# would lose to it (filters.one_interruptive): it need not be tried at all.
SLOTS = {"banner": "banner", "inline": "inline", "modal": "interruptive", "gate": "interruptive"}
ALL_SLOTS = len(set(SLOTS.values()))  # once each has a winner, stop looking


class Facts:
    """One request's values as the tests read them, worked out once per decision."""

    __slots__ = ("country", "host", "member", "now", "request", "section", "tags", "today")

    def __init__(
        self, request: PromptRequest, now: dt.datetime, member: bool, country: str | None
    ) -> None:
        page = request.page
        self.request = request
        self.now = now
        self.member = member
        self.section = page.section or None
        self.tags = page.tags
        self.host = page.referrer_host or None
        self.country = country.upper() if country else None
        self.today = now.astimezone(dt.UTC).date()


Test = Callable[[Facts], bool]


@dataclass(frozen=True)
class Entry:
    campaign: Campaign
    tests: tuple[Test, ...]  # all must pass; empty: every request passes the filters
    slot: str  # SLOTS[placement]


class Compiled:
    """Campaigns by rank, each with its tests; those that never pass are left out."""

    def __init__(self, ordered: tuple[Campaign, ...], entries: tuple[tuple[int, Entry], ...]):
        self.ordered = ordered  # every campaign, by rank (what the decision indexes)
        self.entries = entries  # (index in ordered, entry) of those that can pass

    def decide(
        self,
        request: PromptRequest,
        now: dt.datetime,
        member: bool,
        country: str | None,
        count_known: bool,
        has_goal: bool,
    ) -> filters.Decision:
        """`filters.decide(..., trace=False)`: the same prompts and holdout."""
        facts = Facts(request, now, member, country)
        winners: dict[str, tuple[int, Assignment]] = {}
        taken: set[str] = set()
        reader, locale = request.reader, request.locale
        for i, entry in self.entries:
            if entry.slot in taken:
                continue
            for test in entry.tests:
                if not test(facts):
                    break
            else:
                c = entry.campaign
                a = assign(c, reader)
                if a.variant is None or filters.copy_ok(a.variant, locale, count_known, has_goal):
                    winners[c.placement] = (i, a)
                    taken.add(entry.slot)
                    if len(taken) == ALL_SLOTS:
                        break
        # No modal and gate together here (SLOTS): filters.one_interruptive has nothing to do.
        traces: list = [None] * len(self.ordered)
        return filters.assemble(winners, self.ordered, traces, request, now, False)


def compile_campaigns(campaigns: Iterable[Campaign]) -> Compiled:
    ordered = tuple(sorted(campaigns, key=lambda c: c.rank))
    entries = []
    for i, c in enumerate(ordered):
        tests = compile_campaign(c)
        if tests is not None:
            entries.append((i, Entry(c, tests, SLOTS[c.placement])))
    return Compiled(ordered, tuple(entries))


def compile_campaign(c: Campaign) -> tuple[Test, ...] | None:
    """The tests of `c` that depend on the request, in the filters' order; None when a
    filter fails whatever the request (`live`)."""
    if c.status != "live":
        return None
    tests: list[Test] = [*_scheduled(c), *_locale(c), *_readers(c)]
    audience = c.audience
    tests += _one_of(audience.sections, attrgetter("section"))
    tests += _tags(audience.tags)
    tests += _referrers(audience.referrers)
    tests += _one_of(audience.countries, attrgetter("country"))
    tests += _articles_read(c)
    tests += _frequency(c)
    return tuple(tests)


# --- One builder per filter (filters.py says what each means) -------------------------------


def _scheduled(c: Campaign) -> list[Test]:
    tests = []
    if c.starts_at is not None:
        starts = c.starts_at
        tests.append(lambda f: not f.now < starts)
    if c.ends_at is not None:
        ends = c.ends_at
        tests.append(lambda f: not f.now >= ends)
    return tests


def _locale(c: Campaign) -> list[Test]:
    if c.locales is None:
        return []
    locales = frozenset(c.locales)
    return [lambda f: f.request.locale in locales]


def _readers(c: Campaign) -> list[Test]:
    wanted = c.audience.readers
    if wanted == "everyone":
        return []
    members = wanted == "members"
    return [lambda f: members == f.member]


def _one_of(lists: IncludeExclude, read: Callable[[Facts], str | None]) -> list[Test]:
    """A single value (section, country; None: none): in the include list, not excluded."""
    include, exclude = frozenset(lists.include), frozenset(lists.exclude)
    tests = []
    if include:
        tests.append(lambda f: read(f) in include)
    if exclude:
        tests.append(lambda f: read(f) not in exclude)
    return tests


def _tags(lists: IncludeExclude) -> list[Test]:
    include, exclude = frozenset(lists.include), frozenset(lists.exclude)
    tests = []
    if include:
        tests.append(lambda f: not include.isdisjoint(f.tags))
    if exclude:
        tests.append(lambda f: exclude.isdisjoint(f.tags))
    return tests


def _matches(host: str | None, domains: tuple[tuple[str, str], ...]) -> bool:
    return host is not None and any(host == d or host.endswith(dot) for d, dot in domains)


def _referrers(lists: IncludeExclude) -> list[Test]:
    include = tuple((d, "." + d) for d in lists.include)
    exclude = tuple((d, "." + d) for d in lists.exclude)
    tests = []
    if include:
        tests.append(lambda f: _matches(f.host, include))
    if exclude:
        tests.append(lambda f: not _matches(f.host, exclude))
    return tests


def _articles_read(c: Campaign) -> list[Test]:
    rule = c.audience.articles_read
    free = c.gate.free_articles if c.placement == "gate" and c.gate is not None else None
    if rule is None and free is None:
        return []
    days = c.articles_days
    low = rule.min if rule is not None else None
    high = rule.max if rule is not None else None

    def test(f: Facts) -> bool:
        n = f.request.articles_in(f.today, days)
        if low is not None and n < low:
            return False
        if high is not None and n > high:
            return False
        return free is None or n > free

    return [test]


def _frequency(c: Campaign) -> list[Test]:
    cid, freq = c.id, c.frequency
    tests = []
    if freq.max_views is not None:
        cap, window = freq.max_views, dt.timedelta(days=freq.per_days)

        def max_views(f: Facts) -> bool:
            views = f.request.views_of(cid)
            if len(views) < cap:  # fewer in all than the cap: fewer in the window too
                return True
            since = f.now - window
            return sum(1 for at in views if at > since) < cap

        tests.append(max_views)
    if freq.min_hours_between:
        between = dt.timedelta(hours=freq.min_hours_between)

        def min_hours_between(f: Facts) -> bool:
            views = f.request.views_of(cid)
            return not views or not max(views) > f.now - between

        tests.append(min_hours_between)
    if freq.after_dismiss_days:
        hidden = dt.timedelta(hours=freq.after_dismiss_days * 24)

        def dismissed(f: Facts) -> bool:
            gone = f.request.dismissals_of(cid)
            return not gone or not max(gone) > f.now - hidden

        tests.append(dismissed)
    return tests
