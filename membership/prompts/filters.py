"""Which ask a reader sees: named pure filters, in a fixed order, and `decide` (no I/O).

Each filter is `(campaign, request, now, member, country) -> (passed, reason)`, the reason
a short sentence for the debug trace ("2 in 30 days, needs 3"). `now` is an aware time;
`country` the CDN's ISO code or None. Windows, as the issue defines them:

- `articles_read.days` = N days: today (UTC) and the N-1 days before it. A campaign without
  `articles_read` counts the last 30 days for {articles_read} and a gate's free articles.
- `per_days`, `after_dismiss_days` = the last N x 24 hours before `now`: a view or dismissal
  exactly N x 24 hours ago is outside (a dismissal 7 x 24 h ago no longer hides a campaign
  with `after_dismiss_days` 7).
- `min_hours_between`: a view exactly that many hours ago no longer holds the campaign back.
- `starts_at` is inclusive, `ends_at` exclusive.
- An include list passes when any of the page's values is in it, an exclude list fails when
  any is; a missing value (no section, no referrer, no country) fails an include list and
  passes an exclude list. A referrer domain matches itself and its subdomains.
- A gate with `free_articles` N passes only from the (N+1)-th article in its window (the
  request's history includes the article being viewed).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from membership.prompts.assign import Assignment, assign
from membership.prompts.campaigns import PLACEMENTS, Campaign, IncludeExclude, Variant
from membership.prompts.request import PromptRequest

Result = tuple[bool, str]
Filter = Callable[[Campaign, PromptRequest, dt.datetime, bool, "str | None"], Result]

INTERRUPTIVE = ("modal", "gate")  # at most one of them per page view


def _iso(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _days(n: int) -> str:
    return "1 day" if n == 1 else f"{n} days"


def _hours(h: float) -> str:
    return f"{h:g} hour" + ("" if h == 1 else "s")


# --- The filters, in order ---------------------------------------------------------------


def live(c: Campaign, r: PromptRequest, now: dt.datetime, member: bool, country: str | None):
    return c.status == "live", f"status {c.status}"


def scheduled(c: Campaign, r: PromptRequest, now: dt.datetime, member: bool, country: str | None):
    if c.starts_at is not None and now < c.starts_at:
        return False, f"starts at {_iso(c.starts_at)}"
    if c.ends_at is not None and now >= c.ends_at:
        return False, f"ended at {_iso(c.ends_at)}"
    return True, "running"


def locale(c: Campaign, r: PromptRequest, now: dt.datetime, member: bool, country: str | None):
    if c.locales is None or r.locale in c.locales:
        return True, f"{r.locale} is served"
    return False, f"{r.locale} is not one of {', '.join(c.locales)}"


def readers(c: Campaign, r: PromptRequest, now: dt.datetime, member: bool, country: str | None):
    who = "a member" if member else "not a member"
    wanted = c.audience.readers
    passed = wanted == "everyone" or (wanted == "members") == member
    return passed, f"{who}; the campaign is for {wanted}"


def _include_exclude(
    lists: IncludeExclude,
    values: Sequence[str],
    what: str,
    matches: Callable[[str, str], bool] = str.__eq__,
) -> Result:
    shown = ", ".join(values) if values else f"no {what}"
    if lists.include and not any(matches(v, i) for v in values for i in lists.include):
        return False, f"{shown}: not in the include list"
    for v in values:
        for e in lists.exclude:
            if matches(v, e):
                return False, f"{v}: excluded"
    return True, shown


def sections(c: Campaign, r: PromptRequest, now: dt.datetime, member: bool, country: str | None):
    section = r.page.section
    return _include_exclude(c.audience.sections, [section] if section else [], "section")


def tags(c: Campaign, r: PromptRequest, now: dt.datetime, member: bool, country: str | None):
    return _include_exclude(c.audience.tags, r.page.tags, "tags")


def _domain_matches(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)


def referrers(c: Campaign, r: PromptRequest, now: dt.datetime, member: bool, country: str | None):
    host = r.page.referrer_host
    return _include_exclude(
        c.audience.referrers, [host] if host else [], "referrer", _domain_matches
    )


def countries(c: Campaign, r: PromptRequest, now: dt.datetime, member: bool, country: str | None):
    code = country.upper() if country else None
    return _include_exclude(c.audience.countries, [code] if code else [], "country")


def articles_in_window(c: Campaign, r: PromptRequest, now: dt.datetime) -> int:
    """The reader's articles in the campaign's window (what {articles_read} shows)."""
    return r.articles_in(now.astimezone(dt.UTC).date(), c.articles_days)


def articles_read(
    c: Campaign, r: PromptRequest, now: dt.datetime, member: bool, country: str | None
):
    days = c.articles_days
    n = articles_in_window(c, r, now)
    said = f"{n} in {_days(days)}"
    rule = c.audience.articles_read
    if rule is not None:
        if n < rule.min:
            return False, f"{said}, needs {rule.min}"
        if rule.max is not None and n > rule.max:
            return False, f"{said}, at most {rule.max}"
    if c.placement == "gate" and c.gate is not None and n <= c.gate.free_articles:
        return False, f"{said}; the gate starts after {c.gate.free_articles} free articles"
    return True, said


def _within(at: dt.datetime, now: dt.datetime, hours: float) -> bool:
    """`at` is in the last `hours` hours before `now` (the boundary itself is outside)."""
    return at > now - dt.timedelta(hours=hours)


def max_views(c: Campaign, r: PromptRequest, now: dt.datetime, member: bool, country: str | None):
    f = c.frequency
    if f.max_views is None:
        return True, "no cap"
    since = now - dt.timedelta(days=f.per_days)
    n = sum(1 for at in r.views_of(c.id) if at > since)
    return n < f.max_views, f"{n} views in {_days(f.per_days)}, at most {f.max_views}"


def min_hours_between(
    c: Campaign, r: PromptRequest, now: dt.datetime, member: bool, country: str | None
):
    h = c.frequency.min_hours_between
    last = max(r.views_of(c.id), default=None)
    if last is None:
        return True, "never seen"
    ago = (now - last).total_seconds() / 3600
    said = f"last seen {ago:.1f} hours ago"
    if h and _within(last, now, h):
        return False, f"{said}, needs {_hours(h)}"
    return True, said


def dismissed(c: Campaign, r: PromptRequest, now: dt.datetime, member: bool, country: str | None):
    days = c.frequency.after_dismiss_days
    last = max(r.dismissals_of(c.id), default=None)
    if last is None:
        return True, "never dismissed"
    said = f"dismissed {_iso(last)}"
    if days and _within(last, now, days * 24):
        return False, f"{said}, hidden for {_days(days)}"
    return True, said


FILTERS: tuple[tuple[str, Filter], ...] = (
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


# --- The decision ------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
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
    debug: tuple[Trace, ...]  # one per campaign, in the order tried (empty when trace=False)


def _with_result(t: Trace | None, result: str) -> Trace | None:
    return replace(t, result=result) if t is not None else None  # None: not tracing


GOAL_NEEDS = frozenset({"goal", "remaining"})


def copy_ok(variant: Variant, locale: str, count_known: bool, has_goal: bool) -> bool:
    """`copy_check(...).passed`, without the reason (the decision of every page view)."""
    needs = variant.needs(locale)
    return (count_known or "count" not in needs) and (has_goal or needs.isdisjoint(GOAL_NEEDS))


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


def _passes(
    c: Campaign, request: PromptRequest, now: dt.datetime, member: bool, country: str | None
) -> bool:
    """Every filter passes (the fast path: no trace, stops at the first that fails)."""
    return all(test(c, request, now, member, country)[0] for _, test in FILTERS)


def _evaluate(
    c: Campaign,
    request: PromptRequest,
    now: dt.datetime,
    member: bool,
    country: str | None,
    count_known: bool,
    has_goal: bool,
) -> tuple[tuple[Check, ...], Assignment | None]:
    """One campaign's checks, all of them (the trace), and its assignment (None: a filter
    failed). When the assignment is there but the last check failed, the variant's copy
    cannot be shown."""
    checks = [Check(name, *test(c, request, now, member, country)) for name, test in FILTERS]
    if not all(check.passed for check in checks):
        return tuple(checks), None
    a = assign(c, request.reader)
    if a.variant is not None:
        checks.append(copy_check(a.variant, request.locale, count_known, has_goal))
    return tuple(checks), a


def decide(
    campaigns: Iterable[Campaign],
    request: PromptRequest,
    now: dt.datetime,
    member: bool,
    country: str | None,
    count_known: bool,
    has_goal: bool,
    *,
    trace: bool = True,
) -> Decision:
    """The prompts for one page view, the holdout, and (with `trace`) the debug trace.

    Campaigns are tried in priority order, ties by id ascending. A campaign that passes
    every filter is assigned (`assign.assign`): in its holdout, or to a variant. The first
    campaign of a placement that passes wins the placement; later ones that pass too are
    `outranked`.

    - A variant whose copy (in the reader's locale) needs the count ({count} or plural
      forms, which the count chooses) while the count is unknown (`count_known` False), or
      needs {goal}/{remaining} while there is no current goal (`has_goal` False), is never
      shown: assignment is sticky, so the campaign is `rejected` with the reason (a
      "copy" check after the filters) and the placement goes to the next campaign. No
      other variant is picked instead: that would break the weights and stickiness.
    - A reader in a winning campaign's holdout sees no ask in that placement; the campaign
      is listed in `holdout` (the copy check does not apply: no copy is shown).
    - At most one of modal and gate: when both placements have a winner (shown or
      holdout: a holdout stands for the ask it holds back), the one with the lower
      (priority, id) keeps its placement and the other is `outranked`; its placement then
      stays empty, as giving it to the next campaign would put modal and gate together.

    With `trace=False` (no debug wanted) each campaign stops at its first failed filter and
    campaigns whose placement is taken are not evaluated; the prompts and holdout are the
    same.
    """
    ordered = sorted(campaigns, key=lambda c: c.rank)
    traces: list[Trace | None] = [None] * len(ordered)
    winners: dict[str, tuple[int, Assignment]] = {}  # placement -> (index in ordered, ...)
    copy_facts = (request.locale, count_known, has_goal)
    for i, c in enumerate(ordered):
        if not trace:
            # The fast path (every page view): no Check or Trace objects, nothing after
            # a placement is won. Same winners as below.
            if c.placement in winners or not _passes(c, request, now, member, country):
                continue
            a = assign(c, request.reader)
            if a.variant is None or copy_check(a.variant, *copy_facts).passed:
                winners[c.placement] = (i, a)
            continue
        checks, a = _evaluate(c, request, now, member, country, count_known, has_goal)
        bucket, variant_id = (a.bucket, a.variant.id if a.variant else None) if a else (None, None)
        if a is None or not checks[-1].passed:
            traces[i] = Trace(c.id, c.placement, "rejected", checks, bucket, variant_id)
            continue
        taken = c.placement in winners
        result = "outranked" if taken else "pending"
        traces[i] = Trace(c.id, c.placement, result, checks, bucket, variant_id)
        if not taken:
            winners[c.placement] = (i, a)

    one_interruptive(winners, ordered, traces)
    return assemble(winners, ordered, traces, request, now, trace)


def one_interruptive(winners: dict, ordered: list[Campaign], traces: list) -> None:
    """When both modal and gate have a winner, the lower (priority, id) keeps its place."""
    if all(p in winners for p in INTERRUPTIVE):
        loser = max((winners[p][0] for p in INTERRUPTIVE), key=lambda i: ordered[i].rank)
        del winners[ordered[loser].placement]
        traces[loser] = _with_result(traces[loser], "outranked")


def assemble(
    winners: dict,
    ordered: list[Campaign],
    traces: list,
    request: PromptRequest,
    now: dt.datetime,
    trace: bool,
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
            traces[i] = _with_result(traces[i], "holdout")
        else:
            prompts.append(
                Prompt(placement, c, a.variant, a.bucket, articles_in_window(c, request, now))
            )
            traces[i] = _with_result(traces[i], "shown")
    debug = tuple(t for t in traces if t is not None) if trace else ()
    return Decision(prompts=tuple(prompts), holdout=tuple(holdout), debug=debug)
