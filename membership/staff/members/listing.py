"""What the Members page and GET /staff/api/members ask of the list: the search, the
filters and the sort read from the query string by one marshmallow schema (`ListQuery`,
which also documents the API's parameters), each refused (400) by its label; and what the
page's filter form offers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from marshmallow import EXCLUDE, Schema, ValidationError, validate, validates_schema
from marshmallow import fields as mf

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
CURRENT = {"true": True, "false": False}
SOURCES = ("stripe", "offline")
ORDERS = ("desc", "asc")
_RAW = ("limit", "cursor")  # taken as they come
_FILTERS = ("current", "source", "plan", "status", "joined_from", "joined_to")
_PLAN = f"at most {PLAN_MAX} characters, no control characters"


class Refused(Exception):
    """A request the page answers with a message next to `field` (or above the form)."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


def refuse(field: str, message: str) -> Refused:
    return Refused(400, f"{LABELS[field]}: {message}", field)


def _one_of(choices) -> validate.OneOf:
    return validate.OneOf(choices, error="one of {choices}")


class _Whole(mf.Integer):
    """ASCII digits only: int() would also take "²", "+5" and " 5"."""

    default_error_messages = {"invalid": f"a whole number from 1 to {read_side.LIMIT_MAX}"}

    def _deserialize(self, value, attr, data, **kwargs):
        if not (isinstance(value, str) and value.isascii() and value.isdigit()):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class _Day(mf.Date):
    """A UTC day written in full (fromisoformat alone would take 20261207)."""

    default_error_messages = {"invalid": "a date as YYYY-MM-DD, e.g. 2026-12-07"}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or len(value) != 10:
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


def _no_control(plan: str) -> None:
    if any(ord(c) < 32 or ord(c) == 127 for c in plan):
        raise ValidationError(_PLAN)


class ListQuery(Schema):
    """The list's query string, in the order its fields are checked (the first bad one is
    named); its fields are also GET /staff/api/members' documented parameters."""

    class Meta:
        unknown = EXCLUDE

    q = mf.String(
        validate=validate.Length(max=QUERY_MAX, error="at most {max} characters"),
        metadata={"description": LABELS["q"]},
    )
    limit = _Whole(
        load_default=PAGE,
        validate=validate.Range(1, read_side.LIMIT_MAX, error="a whole number from 1 to {max}"),
    )
    joined_from = _Day(metadata={"description": "Joined on or after (UTC day)"})
    joined_to = _Day(metadata={"description": "Joined on or before (UTC day)"})
    current = mf.String(
        validate=_one_of(tuple(CURRENT)),
        metadata={"description": "Counted as a member now (true) or not (false)"},
    )
    source = mf.String(validate=_one_of(SOURCES), metadata={"description": LABELS["source"]})
    plan = mf.String(
        validate=[validate.Length(max=PLAN_MAX, error=_PLAN), _no_control],
        metadata={"description": "A plan's name, exactly"},
    )
    status = mf.String(validate=_one_of(STATUSES), metadata={"description": LABELS["status"]})
    sort = mf.String(
        load_default="joined", validate=_one_of(SORTS), metadata={"description": LABELS["sort"]}
    )
    order = mf.String(
        validate=_one_of(ORDERS),
        metadata={"description": "Default: desc when sorted by joined, else asc"},
    )
    cursor = mf.String()

    @validates_schema
    def _span(self, data: dict, **_) -> None:
        low, high = data.get("joined_from"), data.get("joined_to")
        if low and high and high < low:
            raise ValidationError(f"on or after {LABELS['joined_from']} ({low})", "joined_to")


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


def _given(args: Mapping[str, str]) -> dict[str, str]:
    """What the query string gives: limit and cursor as they come, the others stripped and
    only when not empty."""
    stripped = {k: (args.get(k) or "").strip() for k in LABELS if k not in _RAW}
    return {k: v for k, v in stripped.items() if v} | {k: args[k] for k in _RAW if k in args}


def read(args: Mapping[str, str]) -> Ask:
    """The Ask of a query string; Refused (400) naming the first bad field by its label."""
    given, schema = _given(args), ListQuery()
    try:
        got = schema.load(given)
    except ValidationError as exc:
        name = next(n for n in schema.fields if n in exc.messages)
        raise refuse(name, exc.messages[name][0]) from None
    sort = got["sort"]
    order = got.get("order") or ("desc" if sort == "joined" else "asc")
    if given.get("limit") == str(PAGE):
        del given["limit"]
    filters = {k: got[k] for k in _FILTERS if k in got}
    return Ask(
        q=got.get("q", ""),
        filters=Filters(**filters | {"current": CURRENT.get(got.get("current", ""))}),
        sort=sort,
        descending=order == "desc",
        limit=got["limit"],
        cursor=got.get("cursor") or None,
        args={"sort": sort} | {k: given[k] for k in (*_FILTERS, "order", "limit") if k in given},
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
