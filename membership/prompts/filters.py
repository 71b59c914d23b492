"""Which ask a reader sees: named filters in a fixed order, compiled per campaign, and the
one decider, `decide` (pure, no I/O).

Each filter compiles, per campaign, to the tests that can fail for it (each with what its
failure says) and what a pass says: a decision runs those up to the first that fails,
`?debug=1` runs all of them and records each result. The windows: docs/prompts.md."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from operator import attrgetter, methodcaller
from typing import NamedTuple

from membership.prompts.assign import Assignment, assign
from membership.prompts.campaigns import PLACEMENTS, Campaign, IncludeExclude, Variant
from membership.prompts.request import PromptRequest

INTERRUPTIVE = ("modal", "gate")  # at most one of them per page view
# Where a winner leaves no room for another: its placement, and modal and gate together.
# Campaigns are tried by rank, so a gate found after a modal (or the other way round)
# would lose to it (`one_interruptive`): a decision need not try it at all.
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
Why = Callable[[Facts], str]


class Filter(NamedTuple):
    """One named filter of one campaign: it passes when every test does."""

    name: str
    tests: tuple[tuple[Test, Why], ...]  # each with what its failure says; () always passes
    passed: Why  # what a pass says


def _iso(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _days(n: int) -> str:
    return "1 day" if n == 1 else f"{n} days"


def _hours(h: float) -> str:
    return f"{h:g} hour" + ("" if h == 1 else "s")


def _said(text: str) -> Why:
    return lambda f: text


def _never(f: Facts) -> bool:
    return False


# --- The filters, in order: one builder each -------------------------------------------------


def live(c: Campaign) -> Filter:
    said = _said(f"status {c.status}")
    return Filter("live", () if c.status == "live" else ((_never, said),), said)


def scheduled(c: Campaign) -> Filter:
    tests = []
    if c.starts_at is not None:
        starts = c.starts_at
        tests.append((lambda f: not f.now < starts, _said(f"starts at {_iso(starts)}")))
    if c.ends_at is not None:
        ends = c.ends_at
        tests.append((lambda f: not f.now >= ends, _said(f"ended at {_iso(ends)}")))
    return Filter("scheduled", tuple(tests), _said("running"))


def locale(c: Campaign) -> Filter:
    def served(f: Facts) -> str:
        return f"{f.request.locale} is served"

    if c.locales is None:
        return Filter("locale", (), served)
    locales, listed = frozenset(c.locales), ", ".join(c.locales)

    def test(f: Facts) -> bool:
        return f.request.locale in locales

    def failed(f: Facts) -> str:
        return f"{f.request.locale} is not one of {listed}"

    return Filter("locale", ((test, failed),), served)


def readers(c: Campaign) -> Filter:
    wanted = c.audience.readers

    def said(f: Facts) -> str:
        return f"{'a member' if f.member else 'not a member'}; the campaign is for {wanted}"

    if wanted == "everyone":
        return Filter("readers", (), said)
    members = wanted == "members"
    return Filter("readers", ((lambda f: members == f.member, said),), said)


Tests = Callable[[frozenset[str]], tuple[Test, Test]]  # listed -> (any is in, none is)


def _one(attr: str) -> Tests:
    """A single value (section, referrer, country; None when there is none)."""
    read = attrgetter(attr)
    return lambda listed: (lambda f: read(f) in listed, lambda f: read(f) not in listed)


def _tags(listed: frozenset[str]) -> tuple[Test, Test]:
    return lambda f: not listed.isdisjoint(f.tags), lambda f: listed.isdisjoint(f.tags)


def _in_domains(host: str | None, domains: frozenset[str]) -> bool:
    """The host is one of the domains or a subdomain of one."""
    return host is not None and any(host == d or host.endswith("." + d) for d in domains)


def _domains(listed: frozenset[str]) -> tuple[Test, Test]:
    return lambda f: _in_domains(f.host, listed), lambda f: not _in_domains(f.host, listed)


def _include_exclude(
    name: str,
    lists: IncludeExclude,
    values: Callable[[Facts], tuple[str, ...]],
    what: str,
    tests_for: Tests,
    hit: Callable[[str, frozenset[str]], bool] = lambda v, listed: v in listed,
) -> Filter:
    """Any of the page's values (`values`, as the trace shows them) in the include list,
    none in the exclude list; `tests_for` makes the tests, `hit` says which value is out."""
    include, exclude = frozenset(lists.include), frozenset(lists.exclude)

    def shown(f: Facts) -> str:
        return ", ".join(values(f)) or f"no {what}"

    def excluded(f: Facts) -> str:
        return next(v for v in values(f) if hit(v, exclude)) + ": excluded"

    tests = []
    if include:
        tests.append((tests_for(include)[0], lambda f: f"{shown(f)}: not in the include list"))
    if exclude:
        tests.append((tests_for(exclude)[1], excluded))
    return Filter(name, tuple(tests), shown)


def _listed(value: str | None) -> tuple[str, ...]:
    return (value,) if value else ()


def sections(c: Campaign) -> Filter:
    lists, values = c.audience.sections, lambda f: _listed(f.section)
    return _include_exclude("sections", lists, values, "section", _one("section"))


def tags(c: Campaign) -> Filter:
    return _include_exclude("tags", c.audience.tags, attrgetter("tags"), "tags", _tags)


def referrers(c: Campaign) -> Filter:
    lists, values = c.audience.referrers, lambda f: _listed(f.host)
    return _include_exclude("referrers", lists, values, "referrer", _domains, _in_domains)


def countries(c: Campaign) -> Filter:
    lists, values = c.audience.countries, lambda f: _listed(f.country)
    return _include_exclude("countries", lists, values, "country", _one("country"))


def articles_in_window(c: Campaign, r: PromptRequest, now: dt.datetime) -> int:
    """The reader's articles in the campaign's window (what {articles_read} shows)."""
    return r.articles_in(now.astimezone(dt.UTC).date(), c.articles_days)


def articles_read(c: Campaign) -> Filter:
    days = c.articles_days

    def n(f: Facts) -> int:
        return f.request.articles_in(f.today, days)

    def said(f: Facts) -> str:
        return f"{n(f)} in {_days(days)}"

    tests = []  # n(f) written out in each: they run on every page view
    rule = c.audience.articles_read
    if rule is not None:
        low, high = rule.min, rule.max
        tests.append(
            (
                lambda f: f.request.articles_in(f.today, days) >= low,
                lambda f: f"{said(f)}, needs {low}",
            )
        )
        if high is not None:
            tests.append(
                (
                    lambda f: f.request.articles_in(f.today, days) <= high,
                    lambda f: f"{said(f)}, at most {high}",
                )
            )
    if c.placement == "gate" and c.gate is not None:
        free, gate = (
            c.gate.free_articles,
            f"; the gate starts after {c.gate.free_articles} free articles",
        )
        tests.append(
            (lambda f: f.request.articles_in(f.today, days) > free, lambda f: said(f) + gate)
        )
    return Filter("articles_read", tuple(tests), said)


def max_views(c: Campaign) -> Filter:
    cid, cap, per_days = c.id, c.frequency.max_views, c.frequency.per_days
    if cap is None:
        return Filter("max_views", (), _said("no cap"))
    window = dt.timedelta(days=per_days)

    def seen(f: Facts) -> int:
        since = f.now - window
        return sum(1 for at in f.request.views_of(cid) if at > since)

    def test(f: Facts) -> bool:  # fewer views in all than the cap: fewer in the window too
        return len(f.request.views_of(cid)) < cap or seen(f) < cap

    def said(f: Facts) -> str:
        return f"{seen(f)} views in {_days(per_days)}, at most {cap}"

    return Filter("max_views", ((test, said),), said)


def _held_back(
    name: str,
    times: Callable[[PromptRequest], Sequence[dt.datetime]],
    hours: float,
    never: str,
    said: Callable[[Facts, dt.datetime], str],
    why: str,
) -> Filter:
    """`name` holds the campaign back for `hours` after the last of `times` (0: never)."""

    def passed(f: Facts) -> str:
        last = max(times(f.request), default=None)
        return never if last is None else said(f, last)

    if not hours:
        return Filter(name, (), passed)
    within = dt.timedelta(hours=hours)

    def test(f: Facts) -> bool:
        seen = times(f.request)
        return not seen or not max(seen) > f.now - within

    return Filter(name, ((test, lambda f: f"{passed(f)}, {why}"),), passed)


def min_hours_between(c: Campaign) -> Filter:
    h = c.frequency.min_hours_between
    return _held_back(
        "min_hours_between",
        methodcaller("views_of", c.id),
        h,
        "never seen",
        lambda f, last: f"last seen {(f.now - last).total_seconds() / 3600:.1f} hours ago",
        f"needs {_hours(h)}" if h else "",
    )


def dismissed(c: Campaign) -> Filter:
    days = c.frequency.after_dismiss_days
    return _held_back(
        "dismissed",
        methodcaller("dismissals_of", c.id),
        days * 24 if days else 0,
        "never dismissed",
        lambda f, last: f"dismissed {_iso(last)}",
        f"hidden for {_days(days)}" if days else "",
    )


FILTERS: tuple[tuple[str, Callable[[Campaign], Filter]], ...] = (
    ("live", live),
    ("scheduled", scheduled),
    ("locale", locale),
    ("readers", readers),
    ("sections", sections),
    ("tags", tags),
    ("referrers", referrers),
    ("countries", countries),
    ("articles_read", articles_read),
    ("max_views", max_views),
    ("min_hours_between", min_hours_between),
    ("dismissed", dismissed),
)


# --- Campaigns compiled ------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    campaign: Campaign
    filters: tuple[Filter, ...]  # every filter, in order (what the trace shows)
    passes: Test  # their tests in the same order, up to the first that fails: what a
    # decision runs (one call: the test itself when there is one, `_never` when a filter
    # fails whatever the request, as `live` does)
    slot: str  # SLOTS[placement]


class Compiled:
    """Campaigns by rank, each with its filters compiled."""

    def __init__(self, campaigns: Iterable[Campaign]) -> None:
        self.ordered = tuple(sorted(campaigns, key=lambda c: c.rank))
        self.entries = tuple(_entry(c) for c in self.ordered)


def _entry(c: Campaign) -> Entry:
    filters = tuple(build(c) for _, build in FILTERS)
    return Entry(
        c, filters, _all_of(tuple(t for f in filters for t, _ in f.tests)), SLOTS[c.placement]
    )


def _always(f: Facts) -> bool:
    return True


def _all_of(tests: tuple[Test, ...]) -> Test:
    """One test that passes when each of `tests` does, run in order up to the first that
    fails."""
    if _never in tests:
        return _never
    if not tests:
        return _always
    if len(tests) == 1:
        return tests[0]

    def passes(f: Facts) -> bool:  # not all() of a generator: it costs more, per campaign
        for test in tests:  # noqa: SIM110
            if not test(f):
                return False
        return True

    return passes


compile_campaigns = Compiled  # what the snapshot does when it reads the campaigns


# --- The decision ------------------------------------------------------------------------


class Check(NamedTuple):  # a tuple: a decision makes one per winning campaign
    name: str
    passed: bool
    reason: str


@dataclass(frozen=True)
class Trace:
    """One campaign's part in a decision (`?debug=1`)."""

    campaign: str
    placement: str
    result: str  # shown | holdout | rejected | outranked
    filters: tuple[Check, ...]
    bucket: int | None = None
    variant: str | None = None


@dataclass(frozen=True)
class Prompt:
    placement: str
    campaign: Campaign
    variant: Variant
    bucket: int
    articles_read: int  # the value of {articles_read}


@dataclass(frozen=True)
class Holdout:
    placement: str
    campaign: Campaign
    bucket: int


@dataclass(frozen=True)
class Decision:
    prompts: tuple[Prompt, ...]  # at most one per placement, in the order of PLACEMENTS
    holdout: tuple[Holdout, ...]
    debug: tuple[Trace, ...]  # one per campaign, in the order tried (empty without debug)


GOAL_NEEDS = frozenset({"goal", "remaining"})


def copy_check(variant: Variant, locale: str, count_known: bool, has_goal: bool) -> Check:
    """Whether the variant's copy can be written without a false number."""
    needs = variant.needs(locale)
    if "count" in needs and not count_known:
        return Check("copy", False, f"variant {variant.id} needs the member count, unknown yet")
    missing = sorted(needs & GOAL_NEEDS)
    if missing and not has_goal:
        return Check(
            "copy", False, f"variant {variant.id} needs {{{missing[0]}}}; there is no current goal"
        )
    return Check("copy", True, f"variant {variant.id}")


def _record(entry: Entry, facts: Facts, checks: list[Check]) -> bool:
    """Every filter of the campaign passes, with each filter's result and reason recorded
    in `checks` (the trace): all its tests run, whatever fails."""
    passed = True
    for name, tests, said in entry.filters:
        for test, failed in tests:
            if not test(facts):
                checks.append(Check(name, False, failed(facts)))
                passed = False
                break
        else:
            checks.append(Check(name, True, said(facts)))
    return passed


def decide(
    campaigns: Compiled | Iterable[Campaign],
    request: PromptRequest,
    now: dt.datetime,
    member: bool,
    country: str | None,
    count_known: bool,
    has_goal: bool,
    *,
    debug: bool = False,
) -> Decision:
    """The prompts for one page view, the holdout, and (with `debug`) the trace; how
    campaigns compete for a placement: docs/prompts.md ("The decision"). Without `debug` a
    campaign stops at its first failed test and one whose slot is taken is not tried."""
    if not isinstance(campaigns, Compiled):
        campaigns = Compiled(campaigns)
    facts = Facts(request, now, member, country)
    traces: list | None = [None] * len(campaigns.entries) if debug else None
    winners: dict[str, tuple[int, Assignment]] = {}  # placement -> (index in ordered, ...)
    taken: set[str] = set()  # slots
    for i, entry in enumerate(campaigns.entries):
        if debug:
            checks: list[Check] = []
            passed = _record(entry, facts, checks)
        elif entry.slot in taken or not entry.passes(facts):  # the same tests
            continue
        else:
            passed = True
        c = entry.campaign
        a = assign(c, request.reader) if passed else None
        copy = None
        if a is not None and a.variant is not None:
            copy = copy_check(a.variant, request.locale, count_known, has_goal)
        wins = a is not None and (copy is None or copy.passed)
        if debug:
            if copy is not None:
                checks.append(copy)
            # pending: shown or holdout, as `_assemble` says
            result = ("outranked" if c.placement in winners else "pending") if wins else "rejected"
            variant = a.variant.id if a is not None and a.variant is not None else None
            traces[i] = Trace(  # type: ignore[index]
                c.id, c.placement, result, tuple(checks), a and a.bucket, variant
            )
        if wins and c.placement not in winners:
            winners[c.placement] = (i, a)
            taken.add(entry.slot)
            if not debug and len(taken) == ALL_SLOTS:
                break
    one_interruptive(winners, campaigns.ordered, traces)
    return _assemble(winners, campaigns.ordered, traces, request, now)


def one_interruptive(winners: dict, ordered: tuple[Campaign, ...], traces: list | None) -> None:
    """When both modal and gate have a winner, the lower (priority, id) keeps its place."""
    if INTERRUPTIVE[0] in winners and INTERRUPTIVE[1] in winners:
        loser = max((winners[p][0] for p in INTERRUPTIVE), key=lambda i: ordered[i].rank)
        del winners[ordered[loser].placement]
        if traces is not None:
            traces[loser] = replace(traces[loser], result="outranked")


def _assemble(
    winners: dict,
    ordered: tuple[Campaign, ...],
    traces: list | None,
    request: PromptRequest,
    now: dt.datetime,
) -> Decision:
    """The winners as prompts and holdout entries, in the order of PLACEMENTS."""
    prompts: list[Prompt] = []
    holdout: list[Holdout] = []
    for placement in PLACEMENTS:
        if placement not in winners:
            continue
        i, a = winners[placement]
        c = ordered[i]
        if a.variant is None:
            holdout.append(Holdout(placement, c, a.bucket))
            result = "holdout"
        else:
            prompts.append(
                Prompt(placement, c, a.variant, a.bucket, articles_in_window(c, request, now))
            )
            result = "shown"
        if traces is not None:
            traces[i] = replace(traces[i], result=result)
    debug = () if traces is None else tuple(traces)
    return Decision(prompts=tuple(prompts), holdout=tuple(holdout), debug=debug)
