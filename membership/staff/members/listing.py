"""What the Members page and GET /staff/api/members ask of the list: the search, the
filters and the sort read from the query string, each refused (400) by its label; and
what the page's filter form offers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from membership.core.config import SUBSCRIPTION_STATUSES
from membership.ledger import members as read_side
from membership.ledger.queries import SORTS, Filters

LABELS = {
    "q": "Search",
    "current": "Counted",
    "source": "Source",
    "plan": "Plan",
    "status": "Status",
    "joined_from": "Joined from",
    "joined_to": "Joined to",
    "sort": "Sort by",
    "order": "Order",
    "limit": "Per page",
    "cursor": "Page",
}
PAGE = 50
QUERY_MAX = 254
PLAN_MAX = 200
STATUSES = (*SUBSCRIPTION_STATUSES, "offline", "offline_in_stripe")
CURRENT = {"": None, "true": True, "false": False}
SOURCES = ("stripe", "offline")
ORDERS = ("desc", "asc")


class Refused(Exception):
    """A request the page answers with a message next to `field` (or above the form)."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


def refuse(field: str, message: str) -> Refused:
    return Refused(400, f"{LABELS[field]}: {message}", field)


@dataclass(frozen=True)
class Ask:
    """One request of the list or the search, as read from the query string."""

    q: str = ""
    filters: Filters = field(default_factory=Filters)
    sort: str = "joined"
    descending: bool = True
    limit: int = PAGE
    cursor: str | None = None
    args: Mapping[str, str] | None = None  # the sort, and what else was given (for links)


def _one_of(args: Mapping[str, str], name: str, allowed) -> str:
    value = (args.get(name) or "").strip()
    if value and value not in allowed:
        raise refuse(name, f"one of {', '.join(a for a in allowed if a)}")
    return value


def _day(args: Mapping[str, str], name: str) -> date | None:
    value = (args.get(name) or "").strip()
    if not value:
        return None
    try:
        if len(value) != 10:
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise refuse(name, "a date as YYYY-MM-DD, e.g. 2026-12-07") from None


def _plan(args: Mapping[str, str]) -> str:
    plan = (args.get("plan") or "").strip()
    if len(plan) > PLAN_MAX or any(ord(c) < 32 or ord(c) == 127 for c in plan):
        raise refuse("plan", f"at most {PLAN_MAX} characters, no control characters")
    return plan


def filters_of(args: Mapping[str, str]) -> Filters:
    joined_from, joined_to = _day(args, "joined_from"), _day(args, "joined_to")
    if joined_from and joined_to and joined_to < joined_from:
        raise refuse("joined_to", f"on or after {LABELS['joined_from']} ({joined_from})")
    return Filters(
        current=CURRENT[_one_of(args, "current", tuple(CURRENT))],
        source=_one_of(args, "source", SOURCES),
        plan=_plan(args),
        status=_one_of(args, "status", STATUSES),
        joined_from=joined_from,
        joined_to=joined_to,
    )


def read(args: Mapping[str, str]) -> Ask:
    """The Ask of a query string; Refused (400) naming the first bad field by its label."""
    q = (args.get("q") or "").strip()
    if len(q) > QUERY_MAX:
        raise refuse("q", f"at most {QUERY_MAX} characters")
    raw_limit = args.get("limit", str(PAGE))
    whole = raw_limit.isascii() and raw_limit.isdigit()  # int() would take "²" as a digit: no
    if not whole or not 1 <= int(raw_limit) <= read_side.LIMIT_MAX:
        raise refuse("limit", f"a whole number from 1 to {read_side.LIMIT_MAX}")
    filters = filters_of(args)
    sort = _one_of(args, "sort", SORTS) or "joined"
    order = _one_of(args, "order", ORDERS) or ("desc" if sort == "joined" else "asc")
    named = ("current", "source", "plan", "status", "joined_from", "joined_to", "order")
    given = {k: (args.get(k) or "").strip() for k in named}
    if raw_limit != str(PAGE):
        given["limit"] = raw_limit
    return Ask(
        q=q,
        filters=filters,
        sort=sort,
        descending=order == "desc",
        limit=int(raw_limit),
        cursor=args.get("cursor") or None,
        args={"sort": sort} | {k: v for k, v in given.items() if v},
    )


def as_given(args: Mapping[str, str]) -> Ask:
    """An Ask holding the query string as it came (a refused one), so that the form shows
    what was typed."""
    given = {k: args[k] for k in LABELS if k not in ("q", "cursor") and args.get(k)}
    return Ask(q=(args.get("q") or "")[:QUERY_MAX], args=given)


def filtered(ask: Ask) -> bool:
    return ask.filters != Filters()


def plan_choices(stats: Mapping, chosen: str) -> list[str]:
    """The plans the filter offers: those members hold now, offline, and the one chosen."""
    plans = set(stats.get("members_by_plan") or ()) | {"offline"}
    return sorted(plans | ({chosen} if chosen else set()), key=str.casefold)
