"""Campaigns: the document staff write, validated into frozen dataclasses (pure, no I/O).

The rules each field follows: docs/prompts.md; `to_json` writes every field back so."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from marshmallow import RAISE, Schema, ValidationError, post_load, validate, validates_schema
from marshmallow import fields as mf

from membership.core import i18n
from membership.core.config import SUPPORTED_LOCALES
from membership.core.text import unsafe_character
from membership.prompts.errors import DocumentError, flatten, join

STATUSES = ("draft", "live", "paused", "archived")
PLACEMENTS = ("banner", "inline", "modal", "gate")
READERS = ("non-members", "members", "everyone")
COPY_FIELDS = ("headline", "body", "cta")
REQUIRED_COPY_FIELDS = ("headline", "cta")
PLACEHOLDERS = frozenset(i18n.PLACEHOLDERS) | {"articles_read"}
DEFAULT_ARTICLES_DAYS = 30  # the window of {articles_read} when a campaign sets none
MAX_HISTORY_DAYS = 90  # the widget keeps (and the request carries) at most 90 days
MAX_VIEWS = 100  # ... and at most the newest 100 views
MAX_CONTROL_SHARE = 0.5
SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,63}\Z")  # \Z: marshmallow's Regexp only matches
VARIANT_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,31}\Z")
RESERVED_VARIANT = "holdout"  # no variant's id: a checkout's metadata says so for the holdout
DOMAIN = re.compile(
    r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
)
COUNTRY = re.compile(r"[A-Z]{2}")

Template = i18n.Template


class CampaignError(DocumentError):
    """A campaign that does not validate; `errors` names each bad field by its path."""


# --- The campaign (frozen) ----------------------------------------------------


@dataclass(frozen=True)
class IncludeExclude:
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class ArticlesRead:
    min: int = 0
    max: int | None = None
    days: int = DEFAULT_ARTICLES_DAYS


@dataclass(frozen=True)
class Audience:
    readers: str = "non-members"
    sections: IncludeExclude = IncludeExclude()
    tags: IncludeExclude = IncludeExclude()
    articles_read: ArticlesRead | None = None
    referrers: IncludeExclude = IncludeExclude()
    countries: IncludeExclude = IncludeExclude()


@dataclass(frozen=True)
class Frequency:
    max_views: int | None = None
    per_days: int = 30
    min_hours_between: float = 0  # held as a whole number when it is one (JSON writes 24, not 24.0)
    after_dismiss_days: int = 7

    def __post_init__(self) -> None:
        hours = self.min_hours_between
        object.__setattr__(self, "min_hours_between", int(hours) if hours % 1 == 0 else hours)


@dataclass(frozen=True)
class Gate:
    dismissible: bool = True
    free_articles: int = 0


@dataclass(frozen=True)
class Variant:
    id: str
    weight: int
    copy: Mapping[str, Mapping[str, Template]]
    cta_url: str | None = None
    # locale -> the values its copy needs: placeholders used, and "count" for plural forms
    needs_by_locale: Mapping[str, frozenset[str]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "needs_by_locale", {loc: copy_needs(f) for loc, f in self.copy.items()}
        )

    def needs(self, locale: str) -> frozenset[str]:
        """What the copy of `locale` cannot be written without: a subset of
        {"count", "goal", "remaining", "articles_read", "publication"}."""
        return self.needs_by_locale.get(locale, frozenset())


@dataclass(frozen=True, kw_only=True)
class Campaign:  # the fields in the order `to_json` writes them
    id: str
    name: str
    status: str
    priority: int
    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None
    placement: str
    locales: tuple[str, ...] | None = None
    audience: Audience = Audience()
    frequency: Frequency = Frequency()
    control_share: float = 0.0
    gate: Gate | None = None
    variants: tuple[Variant, ...]

    @property
    def target_locales(self) -> tuple[str, ...]:
        """The locales it is shown in: its own list, or every locale we serve."""
        return self.locales if self.locales is not None else SUPPORTED_LOCALES

    @property
    def articles_days(self) -> int:
        """The window of {articles_read} and of a gate's free articles."""
        ar = self.audience.articles_read
        return ar.days if ar is not None else DEFAULT_ARTICLES_DAYS

    @property
    def rank(self) -> tuple[int, str]:
        """Lower is considered first: priority, then id."""
        return (self.priority, self.id)


def copy_needs(fields_: Mapping[str, Template]) -> frozenset[str]:
    """The placeholders the fields use, plus "count" when a field is chosen by plural form."""
    needs: set[str] = set()
    for template in fields_.values():
        if isinstance(template, str):
            texts = [template]
        else:
            needs.add("count")
            texts = list(template.values())
        for text in texts:
            for _, name, _, _ in string.Formatter().parse(text):
                if name:
                    needs.add(name)
    return frozenset(needs)


# --- Validation (marshmallow for the shape; cross-field checks below) ------------------


def _m(**extra: str) -> dict:
    return {"required": "missing", "null": "may not be null", **extra}


def _text(max_len: int, **kw) -> mf.String:
    return mf.String(
        validate=validate.Length(min=1, max=max_len, error=f"expected 1 to {max_len} characters"),
        error_messages=_m(invalid="expected text"),
        **kw,
    )


def _int(lo: int, hi: int, **kw) -> mf.Integer:
    return mf.Integer(
        strict=True,
        validate=validate.Range(min=lo, max=hi, error=f"expected a whole number from {lo} to {hi}"),
        error_messages=_m(invalid=f"expected a whole number from {lo} to {hi}"),
        **kw,
    )


def _one_of(choices: Sequence[str], **kw) -> mf.String:
    error = f"expected one of {', '.join(choices)}"
    return mf.String(
        validate=validate.OneOf(choices, error=error), error_messages=_m(invalid=error), **kw
    )


def _list(inner: mf.Field, **kw) -> mf.List:
    return mf.List(inner, error_messages=_m(invalid="expected a list"), **kw)


def _nested(schema: type[Schema], **kw) -> mf.Nested:
    return mf.Nested(schema, error_messages=_m(type="expected an object"), **kw)


class _Number(mf.Float):
    """A JSON number (not a string, not true/false)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class _Bool(mf.Field):
    """true or false, nothing else (not 1, not "yes")."""

    default_error_messages = _m(invalid="expected true or false")

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class UtcTime(mf.Field):
    """ISO-8601 with a zone, held as an aware UTC datetime."""

    default_error_messages = _m(
        invalid="expected an ISO-8601 time with a zone, e.g. 2026-12-01T00:00:00Z"
    )

    def _deserialize(self, value, attr, data, **kwargs):
        at = utc_time(value)
        if at is None:
            raise self.make_error("invalid")
        return at


def utc_time(value: object) -> dt.datetime | None:
    """An ISO-8601 time with a zone as an aware UTC datetime; None for anything else,
    including a time at the edge of the calendar that has no UTC equivalent
    (0001-01-01T00:00+01:00)."""
    if not isinstance(value, str):
        return None
    try:
        at = dt.datetime.fromisoformat(value)
        return at.astimezone(dt.UTC) if at.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None


class _Word(mf.String):
    """A section, tag, domain or country code, normalized and checked."""

    def __init__(self, kind: str, **kw) -> None:
        super().__init__(error_messages=_m(invalid="expected text"), **kw)
        self.kind = kind

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if self.kind == "country":
            text = text.upper()
            if not COUNTRY.fullmatch(text):
                raise ValidationError("expected a two-letter ISO country code, e.g. UA")
        elif self.kind == "domain":
            text = text.lower()
            if len(text) > 253 or not DOMAIN.fullmatch(text):
                raise ValidationError("expected a domain such as news.example")
        else:
            text = text.lower()
            if not 1 <= len(text) <= 100 or not text.strip():
                raise ValidationError("expected 1 to 100 characters")
            bad = unsafe_character(text)
            if bad is not None:
                raise ValidationError(f"control characters are not allowed (found {bad})")
        return text


class _Base(Schema):
    error_messages = {"unknown": "unknown field", "type": "expected an object"}
    model: Callable | None = None  # what a part loads into (None: a dict, built by `_build`)

    class Meta:
        unknown = RAISE

    @post_load
    def _make(self, data, **_):
        return data if self.model is None else self.model(**data)


def _include_exclude(kind: str) -> type[Schema]:
    class IncludeExcludeSchema(_Base):
        include = _list(_Word(kind), load_default=list)
        exclude = _list(_Word(kind), load_default=list)
        model = staticmethod(
            lambda include, exclude: IncludeExclude(tuple(include), tuple(exclude))
        )

    return IncludeExcludeSchema


class _ArticlesReadSchema(_Base):
    model = ArticlesRead
    min = _int(0, 10_000, load_default=0)
    max = _int(0, 10_000, load_default=None, allow_none=True)
    days = _int(1, MAX_HISTORY_DAYS, load_default=DEFAULT_ARTICLES_DAYS)

    @validates_schema
    def _order(self, data, **_):
        if data.get("max") is not None and data["max"] < data.get("min", 0):
            raise ValidationError("must be at least min", field_name="max")


class _AudienceSchema(_Base):
    model = Audience
    readers = _one_of(READERS, load_default=Audience.readers)
    sections = _nested(_include_exclude("word"), load_default=IncludeExclude)
    tags = _nested(_include_exclude("word"), load_default=IncludeExclude)
    articles_read = _nested(_ArticlesReadSchema, load_default=None, allow_none=True)
    referrers = _nested(_include_exclude("domain"), load_default=IncludeExclude)
    countries = _nested(_include_exclude("country"), load_default=IncludeExclude)


class _FrequencySchema(_Base):
    model = Frequency
    max_views = _int(1, MAX_VIEWS, load_default=None, allow_none=True)
    per_days = _int(1, 365, load_default=Frequency.per_days)
    min_hours_between = _Number(
        load_default=0,
        validate=validate.Range(min=0, max=24 * 365, error="expected 0 to 8760 hours"),
        error_messages=_m(invalid="expected a number of hours"),
    )
    after_dismiss_days = _int(0, 365, load_default=Frequency.after_dismiss_days)


class _GateSchema(_Base):
    model = Gate
    dismissible = _Bool(required=True)
    free_articles = _int(0, 1000, required=True)


class _VariantSchema(_Base):
    id = mf.String(
        required=True,
        validate=[
            validate.Regexp(VARIANT_ID, error="expected 1 to 32 of a-z, 0-9 and -"),
            # A checkout's metadata names the holdout so (membership.checkout.request).
            validate.NoneOf([RESERVED_VARIANT], error="holdout is reserved for the holdout"),
        ],
        error_messages=_m(invalid="expected text"),
    )
    weight = _int(0, 1000, required=True)
    copy = mf.Dict(required=True, error_messages=_m(invalid="expected an object"))
    cta_url = mf.Url(
        schemes={"http", "https"},
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=2000, error="expected at most 2000 characters"),
        error_messages=_m(invalid="expected an http(s) URL"),
    )


class CampaignSchema(_Base):
    id = mf.String(
        required=True,
        validate=validate.Regexp(SLUG, error="expected 1 to 64 of a-z, 0-9 and -"),
        error_messages=_m(invalid="expected text"),
    )
    name = _text(100, required=True)
    status = _one_of(STATUSES, required=True)
    priority = _int(-1_000_000, 1_000_000, required=True)
    starts_at = UtcTime(load_default=None, allow_none=True)
    ends_at = UtcTime(load_default=None, allow_none=True)
    placement = _one_of(PLACEMENTS, required=True)
    locales = _list(
        _one_of(SUPPORTED_LOCALES),
        load_default=None,
        allow_none=True,
        validate=validate.Length(min=1, error="expected at least one locale, or null for every"),
    )
    audience = _nested(_AudienceSchema, load_default=Audience)
    frequency = _nested(_FrequencySchema, load_default=Frequency)
    control_share = _Number(
        load_default=0.0,
        validate=validate.Range(min=0, max=MAX_CONTROL_SHARE, error="expected 0 to 0.5"),
        error_messages=_m(invalid="expected a number from 0 to 0.5"),
    )
    gate = _nested(_GateSchema, load_default=None, allow_none=True)
    variants = _list(
        _nested(_VariantSchema),
        required=True,
        validate=validate.Length(min=1, max=26, error="expected 1 to 26 variants"),
    )


def _check_name(name: str) -> str | None:
    if not name.strip():
        return "expected 1 to 100 characters"
    bad = unsafe_character(name)
    return f"control characters are not allowed (found {bad})" if bad else None


def _copy_errors(path: str, copy: Mapping, targets: Sequence[str]) -> list[str]:
    errors: list[str] = []
    for locale in copy:
        if locale not in SUPPORTED_LOCALES:
            errors.append(
                f"{join(path, str(locale))}: unsupported locale; "
                f"expected one of {', '.join(SUPPORTED_LOCALES)}"
            )
    for locale in targets:
        at = join(path, locale)
        fields_ = copy.get(locale)
        if fields_ is None:
            errors.append(f"{at}: missing")
            continue
        if not isinstance(fields_, Mapping):
            errors.append(f"{at}: expected an object")
            continue
        for name in REQUIRED_COPY_FIELDS:
            if fields_.get(name) is None:
                errors.append(f"{join(at, name)}: missing")
        for name, template in fields_.items():
            if name not in COPY_FIELDS:
                errors.append(f"{join(at, str(name))}: unknown field")
                continue
            if template is None and name not in REQUIRED_COPY_FIELDS:
                continue
            problem = _template_error(locale, name, template)
            if problem:
                errors.append(f"{join(at, name)}: {problem}")
    return errors


def _template_error(locale: str, name: str, template: object) -> str | None:
    try:
        if isinstance(template, str):
            i18n.check_template(name, template, PLACEHOLDERS)
        elif isinstance(template, Mapping) and template:
            if not all(isinstance(t, str) for t in template.values()):
                return "each plural form must be a template"
            i18n.check_plural_forms(locale, name, template, PLACEHOLDERS)
            if "other" not in template:
                return 'plural forms need an "other" form'
        else:
            return "expected a template or an object of plural forms"
    except i18n.CopyError as exc:
        return str(exc)
    return None


def _cross_errors(d: Mapping) -> list[str]:
    errors: list[str] = []
    problem = _check_name(d["name"])
    if problem:
        errors.append(f"name: {problem}")
    if d["starts_at"] and d["ends_at"] and d["ends_at"] <= d["starts_at"]:
        errors.append("ends_at: must be after starts_at (ends_at is exclusive)")
    locales = d["locales"]
    if locales is not None and len(set(locales)) != len(locales):
        errors.append("locales: each locale at most once")
    if d["placement"] == "gate" and d["gate"] is None:
        errors.append("gate: missing (required for placement gate)")
    if d["placement"] != "gate" and d["gate"] is not None:
        errors.append("gate: only for placement gate; leave it out or null")
    targets = locales if locales is not None else SUPPORTED_LOCALES
    seen: set[str] = set()
    for i, v in enumerate(d["variants"]):
        if v["id"] in seen:
            errors.append(f"variants[{i}].id: {v['id']!r} is used twice")
        seen.add(v["id"])
        errors += _copy_errors(f"variants[{i}].copy", v["copy"], targets)
    if d["variants"] and not any(v["weight"] > 0 for v in d["variants"]):
        errors.append("variants: every weight is 0; at least one must be above 0")
    return errors


def _freeze_copy(copy: Mapping) -> dict:
    """The copy as plain dicts, without null optional fields (to_json writes it back so)."""
    return {
        locale: {
            k: t if isinstance(t, str) else dict(t) for k, t in fields_.items() if t is not None
        }
        for locale, fields_ in copy.items()
    }


def _build(d: Mapping) -> Campaign:
    """The loaded document (its parts already built by their schemas) as a Campaign."""
    variants = tuple(Variant(**{**v, "copy": _freeze_copy(v["copy"])}) for v in d["variants"])
    locales = tuple(d["locales"]) if d["locales"] is not None else None
    control_share = float(d["control_share"])
    return Campaign(
        **{**d, "locales": locales, "control_share": control_share, "variants": variants}
    )


def parse(data: object) -> Campaign:
    """One campaign document -> Campaign; CampaignError lists every bad field by its path."""
    if not isinstance(data, Mapping):
        raise CampaignError(["expected a campaign object"])
    try:
        loaded = CampaignSchema().load(dict(data))
    except ValidationError as exc:
        raise CampaignError(flatten(exc.messages)) from None
    errors = _cross_errors(loaded)
    if errors:
        raise CampaignError(errors)
    return _build(loaded)


def every_problem(data: object) -> list[str]:
    """What `parse` refuses in `data`, all at once: `parse` checks the copy only once the
    shape is right, so a form would show the copy's problems one save later. Here they come
    with the shape's, for every variant whose copy is an object ([] for a valid campaign)."""
    try:
        parse(data)
    except CampaignError as exc:
        errors = list(exc.errors)
    else:
        return []
    if not isinstance(data, Mapping) or not isinstance(data.get("variants"), list):
        return errors
    locales = data.get("locales")
    if locales is None:
        targets: Sequence[str] = SUPPORTED_LOCALES
    elif isinstance(locales, list) and locales and all(loc in SUPPORTED_LOCALES for loc in locales):
        targets = locales
    else:
        return errors  # the targets are unknown until `locales` is right
    for i, v in enumerate(data["variants"]):
        if isinstance(v, Mapping) and isinstance(v.get("copy"), Mapping):
            for line in _copy_errors(f"variants[{i}].copy", v["copy"], targets):
                if line not in errors:
                    errors.append(line)
    return errors


def parse_list(data: object) -> list[Campaign]:
    """One campaign or a list of them (all or nothing); paths in a list start `[i].`, and an
    id given twice is refused."""
    if isinstance(data, Mapping):
        return [parse(data)]
    if not isinstance(data, list):
        raise CampaignError(["expected a campaign object or a list of them"])
    campaigns: list[Campaign] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(data):
        try:
            campaign = parse(item)
        except CampaignError as exc:
            errors += [
                f"[{i}].{e}" if not e.startswith("expected") else f"[{i}]: {e}" for e in exc.errors
            ]
            continue
        if campaign.id in seen:
            errors.append(f"[{i}].id: {campaign.id!r} is also [{seen[campaign.id]}]")
        seen.setdefault(campaign.id, i)
        campaigns.append(campaign)
    if errors:
        raise CampaignError(errors)
    return campaigns


# --- Back to JSON ------------------------------------------------------------------


def iso(at: dt.datetime) -> str:
    """UTC with a Z, to the second (microseconds only when there are any); a year before
    1000 in four digits (strftime's %Y writes 999, which fromisoformat refuses)."""
    return at.astimezone(dt.UTC).replace(tzinfo=None).isoformat() + "Z"


def to_json(value):
    """A campaign (or any part of one) as JSON-ready data, every field written out in the
    order its dataclass declares them; `parse` takes a campaign's back unchanged."""
    if isinstance(value, dt.datetime):
        return iso(value)
    if dataclasses.is_dataclass(value):
        fields_ = dataclasses.fields(value)
        return {f.name: to_json(getattr(value, f.name)) for f in fields_ if f.init}
    if isinstance(value, tuple):
        return [to_json(v) for v in value]
    if isinstance(value, Mapping):
        return {k: to_json(v) for k, v in value.items()}
    return value


# --- Changes staff make from the list (pure) -----------------------------------------

PRIORITY_RANGE = (-1_000_000, 1_000_000)
COPY_SUFFIX = "-copy"


def _fits(priority: int, cid: str, before: tuple | None, after: tuple | None) -> bool:
    lo, hi = PRIORITY_RANGE
    return (
        lo <= priority <= hi
        and (before is None or before < (priority, cid))
        and (after is None or (priority, cid) < after)
    )


def moved(ordered: Sequence[Campaign], campaign_id: str, offset: int) -> list[Campaign]:
    """The campaigns, with their new priorities, that must change so that `campaign_id`
    moves `offset` places in `ordered` (by rank; negative is up, earlier). The moved
    campaign alone changes when a priority fits between its new neighbours; otherwise the
    ones after it are pushed down, as few as need be. ValueError for an id not in
    `ordered`; [] when it cannot move further."""
    ids = [c.id for c in ordered]
    i = ids.index(campaign_id)
    j = max(0, min(len(ids) - 1, i + offset))
    if i == j:
        return []
    order = list(ordered)
    campaign = order.pop(i)
    order.insert(j, campaign)
    before = order[j - 1].rank if j > 0 else None
    after = order[j + 1].rank if j + 1 < len(order) else None
    candidates = []
    if before is not None:
        candidates += [before[0], before[0] + 1]
    if after is not None:
        candidates += [after[0], after[0] - 1]
    for priority in candidates:
        if _fits(priority, campaign.id, before, after):
            return [dataclasses.replace(campaign, priority=priority)]
    return _renumbered(order)


def _renumbered(order: Sequence[Campaign]) -> list[Campaign]:
    """Keep each priority that still ranks after the one before it, else the next above."""
    changed: list[Campaign] = []
    previous: tuple[int, str] | None = None
    for c in order:
        if previous is not None and c.rank <= previous:
            if previous[0] + 1 > PRIORITY_RANGE[1]:
                raise CampaignError([f"priority: no room after {PRIORITY_RANGE[1]}"])
            c = dataclasses.replace(c, priority=previous[0] + 1)
            changed.append(c)
        previous = c.rank
    return changed


def duplicate_of(campaign: Campaign, taken: set[str] | frozenset[str]) -> Campaign:
    """A copy under the first free id of `<id>-copy`, `<id>-copy-2`, ... (at most 64
    characters), named "Copy of ...", as a draft."""
    n = 1
    while True:
        suffix = COPY_SUFFIX if n == 1 else f"{COPY_SUFFIX}-{n}"
        new_id = campaign.id[: 64 - len(suffix)].rstrip("-") + suffix
        if new_id not in taken:
            break
        n += 1
    name = f"Copy of {campaign.name}"
    if len(name) > 100:
        name = name[:99] + "…"
    return dataclasses.replace(campaign, id=new_id, name=name, status="draft")
