"""The campaign form: a campaign document <-> the fields of a plain HTML form (pure, no I/O).

Field names are the document's own paths (`audience.sections.include`,
`variants[1].copy.uk.headline`), so a validation error of `campaigns.parse` belongs to the
field of its path (`place_errors`); the field's definition here (`FIELDS`, its label, kind
and hint) is what the page draws and what an error is named by ("Holdout share: at most
50%", "Variant A, English headline: required"). A document taken to the form and back is
the same document:

- lists of sections, tags, referrer domains and countries are written comma-separated;
- `locales` is "every locale we serve" (null) or the checked ones;
- `audience.articles_read` is null unless its box is ticked;
- times are date-and-time pickers in the newsroom's time zone (`zone`), stored in UTC (the
  second of an hour the clocks repeat is marked in a hidden `<name>.fold` field);
- the holdout share is typed as a percentage (0 to 50), stored as a fraction;
- empty number fields are left out (the schema's default applies, or it says "missing"),
  and text that is not a number is passed on as it is, so the schema names the field;
- a copy field is one box, plus one per other CLDR plural form of its language
  (`name.one`, `name.few`, ...): filled, they make the field plural forms and the first
  box is their "other" form;
- a variant's copy in a language whose fields are all empty is left out.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, DecimalException

from membership.core import i18n
from membership.core.config import SUPPORTED_LOCALES
from membership.prompts.campaigns import COPY_FIELDS, MAX_CONTROL_SHARE, utc_time
from membership.staff.goals.form import LOCALE_NAMES

MAX_VARIANTS = 26  # the schema's limit; more rows than this are not read
_VARIANT_KEY = re.compile(r"variants\[(\d{1,3})\]\.")
_PATH_TAIL = re.compile(r"(\[\d+\]|\.[^.\[]+)$")
_INT = re.compile(r"[+-]?\d{1,18}")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
PLURAL_ORDER = ("zero", "one", "two", "few", "many")  # "other" is the copy field's own box
MAX_PERCENT = Decimal(str(MAX_CONTROL_SHARE)) * 100
_TIME_MESSAGES = {
    "expected an ISO-8601 time with a zone, e.g. 2026-12-01T00:00:00Z": "expected a date and time",
}


@dataclass(frozen=True)
class Field:
    """One field (or group of fields, kind "group") of the form, as the page draws it and
    as its errors name it."""

    name: str
    label: str
    kind: str = "text"  # text, number, percent, datetime, select, checkbox, url, textarea, group
    hint: str | None = None
    extra: str = ""  # more attributes of its input
    messages: Mapping[str, str] = field(default_factory=dict)  # the schema's words -> ours


LISTS = tuple(
    f"audience.{part}.{side}"
    for part in ("sections", "tags", "referrers", "countries")
    for side in ("include", "exclude")
)
_LIST_LABELS = {
    "sections": ("Sections", "e.g. war, politics"),
    "tags": ("Tags", "e.g. kursk"),
    "referrers": ("Referrer domains", "subdomains match, e.g. t.co, news.example"),
    "countries": ("Countries", "two-letter ISO codes, e.g. UA, PL"),
}


def _list_field(name: str) -> Field:
    label, example = _LIST_LABELS[name.split(".")[1]]
    if name.endswith(".include"):
        return Field(name, f"{label}: only these", hint=f"Comma-separated; empty: any. {example}")
    return Field(name, f"{label}: not these", hint="Comma-separated")


_AFTER = {"must be after starts_at (ends_at is exclusive)": "must be after Starts at"}

# fmt: off
FIELDS: dict[str, Field] = {f.name: f for f in (
    Field("id", "Id", hint="1 to 64 of a-z, 0-9 and -; it cannot change later",
          extra='autocomplete="off" maxlength="64"'),
    Field("name", "Name", extra='maxlength="100"'),
    Field("status", "Status", "select",
          hint="Only a live campaign is shown; an archived one is kept for its results"),
    Field("placement", "Placement", "select", hint="banner: a bar at the bottom; inline: at "
          "the end of the article; modal: a dialog; gate: over the article"),
    Field("priority", "Priority", "number", "Lower is tried first; ties by id", 'step="1"'),
    Field("starts_at", "Starts at", "datetime", "Empty: now", messages=_TIME_MESSAGES),
    Field("ends_at", "Ends at (exclusive)", "datetime", "Empty: no end",
          messages={**_TIME_MESSAGES, **_AFTER}),
    Field("locales", "Locales", "group"),
    Field("control_share", "Holdout share", "percent", "0 to 50%: the share of readers who see "
          "no ask from this campaign (lift is measured against them)",
          'step="any" min="0" max="50"'),
    Field("audience", "Audience", "group"),
    Field("audience.readers", "Readers", "select"),
    *map(_list_field, LISTS),
    Field("audience.articles_read", "Only readers who read a number of articles", "checkbox"),
    Field("audience.articles_read.min", "At least", "number", extra='min="0"'),
    Field("audience.articles_read.max", "At most", "number", "Empty: any", 'min="0"',
          messages={"must be at least min": "must be at least At least"}),
    Field("audience.articles_read.days", "In the last … days", "number",
          "Today and the days before it, 1 to 90", 'min="1" max="90"'),
    Field("frequency", "Frequency", "group"),
    Field("frequency.max_views", "At most … views", "number", "Empty: no cap",
          'min="1" max="100"'),
    Field("frequency.per_days", "… in the last … days", "number", extra='min="1" max="365"'),
    Field("frequency.min_hours_between", "Hours between views", "number",
          extra='min="0" step="any"'),
    Field("frequency.after_dismiss_days", "Days hidden after a dismissal", "number",
          "0: a dismissal does not hide it", 'min="0" max="365"'),
    Field("gate", "Gate", "group"),
    Field("gate.dismissible", "Readers may dismiss it (“Maybe later”)", "checkbox"),
    Field("gate.free_articles", "Free articles", "number",
          "The gate shows from the next article in the articles-read window",
          'min="0" max="1000"'),
    Field("variants", "Variants", "group"),
)}
VARIANT_FIELDS: dict[str, Field] = {f.name: f for f in (
    Field("id", "Id", hint="a-z, 0-9 and -", extra='maxlength="32" autocomplete="off"'),
    Field("weight", "Weight", "number", "0 to 1000; 0 pauses it", 'min="0" max="1000"'),
    Field("cta_url", "Call to action URL", "url", "Empty: the join page, through Stripe Checkout"),
)}
# fmt: on
COPY_LABELS = {"headline": "Headline", "body": "Body", "cta": "Call to action"}
GENERAL_MESSAGES = {"missing": "required", "may not be null": "required"}


def field_id(name: str) -> str:
    """An HTML id for a field name: `variants[1].copy.uk.cta` -> `f-variants-1-copy-uk-cta`."""
    return "f-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def definition(name: str) -> Field:
    """The definition of a field by its name; a variant's fields by their name after
    `variants[i].` (`variants[2].weight` -> VARIANT_FIELDS["weight"])."""
    m = _VARIANT_KEY.match(name)
    return VARIANT_FIELDS[name[m.end() :]] if m else FIELDS[name]


def plural_forms(locale: str) -> list[str]:
    """The CLDR plural forms of a locale that get a box besides the field's own ("other")."""
    forms = i18n.plural_categories(locale)
    return [f for f in PLURAL_ORDER if f in forms]


def variant_name(values: Mapping[str, object], i: int) -> str:
    """ "Variant A" for id "a", "Variant spring-1" for a longer id, "Variant 3" for none."""
    vid = str(values.get(f"variants[{i}].id") or "").strip()
    return f"Variant {vid.upper() if len(vid) == 1 else vid or i + 1}"


def label_of(name: str, values: Mapping[str, object]) -> str:
    """What the editor reads for a field or group: "Holdout share", "Variant A, weight",
    "Variant A, English headline", "Variant A, Ukrainian headline (few)"."""
    m = _VARIANT_KEY.match(name + ".")
    if m is None:
        return FIELDS[name].label
    variant, rest = variant_name(values, int(m.group(1))), name[m.end() :].rstrip(".")
    if not rest:
        return variant
    parts = rest.split(".")
    if parts[0] != "copy":
        return f"{variant}, {VARIANT_FIELDS[rest].label[0].lower()}{VARIANT_FIELDS[rest].label[1:]}"
    language = LOCALE_NAMES.get(parts[1], parts[1]) if len(parts) > 1 else ""
    what = COPY_LABELS[parts[2]].lower() if len(parts) > 2 else "copy"
    form = f" ({parts[3]})" if len(parts) > 3 else ""
    return f"{variant}, {language} {what}{form}" if language else f"{variant}, copy"


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "on" if value else ""
    return str(value)


# --- times and percentages --------------------------------------------------------------


def local_time(value: object, zone: dt.tzinfo) -> str:
    """A stored UTC time as a datetime-local value in `zone` ("2026-12-01T10:00", seconds
    only when there are some); anything unreadable as it is."""
    at = utc_time(value)
    if at is None:
        return _text(value)
    try:
        local = at.astimezone(zone)
    except (OverflowError, ValueError):
        return _text(value)
    return local.replace(tzinfo=None).isoformat("T", "seconds" if local.second else "minutes")


def second_of_repeated(value: object, zone: dt.tzinfo) -> str:
    """ "1" when a stored UTC time is the second of an hour the clocks repeat in `zone` (its
    datetime-local value cannot say so: the form keeps it beside it), else ""."""
    at = utc_time(value)
    try:
        return "1" if at is not None and at.astimezone(zone).fold else ""
    except (OverflowError, ValueError):
        return ""


def utc_text(raw: str, zone: dt.tzinfo, fold: object = "") -> str | None:
    """A datetime-local value read in `zone` as the document's UTC time (an hour the clocks
    repeat: its first time, its second with `fold` "1"); a time that says its zone is kept;
    empty is None; anything else is passed on for the schema to refuse."""
    text = raw.strip()
    if not text:
        return None
    try:
        at = dt.datetime.fromisoformat(text)
        if at.tzinfo is not None:
            return text
        utc = at.replace(tzinfo=zone, fold=int(fold == "1")).astimezone(dt.UTC)
    except (ValueError, OverflowError):
        return text
    return utc.replace(tzinfo=None).isoformat("T", "seconds") + "Z"  # a year in 4 digits


def skipped_times(form: Mapping, zone: dt.tzinfo) -> list[str]:
    """ "starts_at: 2026-03-29T03:30 does not exist in Europe/Kyiv ..." for each time typed
    in the hour the clocks skip (utc_text would move it by that hour)."""
    lines = []
    for name in ("starts_at", "ends_at"):
        text = str(form.get(name) or "").strip()
        try:
            at = dt.datetime.fromisoformat(text)
            back = at.replace(tzinfo=zone).astimezone(dt.UTC).astimezone(zone)
        except (ValueError, OverflowError):
            continue  # empty or unreadable: utc_text passes it on to the schema
        if at.tzinfo is None and back.replace(tzinfo=None) != at:
            where = getattr(zone, "key", None) or zone
            lines.append(f"{name}: {text} does not exist in {where} (the clocks skip it)")
    return lines


def percent_text(value: object) -> str:
    """0.1 -> "10" (exactly: 0.123 -> "12.3")."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _text(value)
    shown = format((Decimal(repr(value)) * 100).normalize(), "f")
    return shown.removesuffix(".0")


def fraction(raw: str) -> object:
    """ "10" -> 0.1; anything else as typed, for the schema to refuse by name."""
    text = raw.strip()
    if not _NUMBER.fullmatch(text):
        return raw
    try:
        return float(Decimal(text) / 100)
    except DecimalException:
        return raw


# --- document -> form ------------------------------------------------------------------


def to_form(doc: Mapping, zone: dt.tzinfo = dt.UTC) -> dict[str, str | list[str]]:
    """A document (as `campaigns.to_json` writes it) as form values by field name; its
    times in `zone`, the newsroom's."""
    a, f = doc.get("audience") or {}, doc.get("frequency") or {}
    values: dict[str, str | list[str]] = {
        name: _text(doc.get(name)) for name in ("id", "name", "status", "priority", "placement")
    }
    for name in ("starts_at", "ends_at"):
        values[name] = local_time(doc.get(name), zone)
        values[f"{name}.fold"] = second_of_repeated(doc.get(name), zone)
    values["control_share"] = percent_text(doc.get("control_share"))
    locales = doc.get("locales")
    values["locales_mode"] = "all" if locales is None else "some"
    values["locales"] = list(locales or [])
    values["audience.readers"] = _text(a.get("readers"))
    for name in LISTS:
        _, part, side = name.split(".")
        values[name] = ", ".join(str(x) for x in ((a.get(part) or {}).get(side) or []))
    ar = a.get("articles_read")
    values["audience.articles_read"] = "on" if ar else ""
    for key in ("min", "max", "days"):
        values[f"audience.articles_read.{key}"] = _text((ar or {}).get(key))
    for key in ("max_views", "per_days", "min_hours_between", "after_dismiss_days"):
        values[f"frequency.{key}"] = _text(f.get(key))
    gate = doc.get("gate") or {}
    values["gate.dismissible"] = "on" if gate.get("dismissible", True) else ""
    values["gate.free_articles"] = _text(gate.get("free_articles"))
    for i, v in enumerate(doc.get("variants") or []):
        values.update(_variant_values(f"variants[{i}]", v))
    return values


def _variant_values(prefix: str, v: Mapping) -> dict[str, str]:
    values = {f"{prefix}.{k}": _text(v.get(k)) for k in VARIANT_FIELDS}
    for locale, fields_ in (v.get("copy") or {}).items():
        for name, template in (fields_ or {}).items():
            key = f"{prefix}.copy.{locale}.{name}"
            if isinstance(template, Mapping):
                for form, text in template.items():
                    values[key if form == "other" else f"{key}.{form}"] = _text(text)
            else:
                values[key] = _text(template)
    return values


# --- form -> document ------------------------------------------------------------------


def _number(raw: str, *, whole: bool) -> object:
    """ "12" -> 12, "0.1" -> 0.1 (unless `whole`); anything else as typed, for the schema
    to refuse by name."""
    text = raw.strip()
    if _INT.fullmatch(text):
        return int(text)
    if not whole and _NUMBER.fullmatch(text):
        return float(text)
    return raw


def _put(target: dict, key: str, raw: str | None, *, whole: bool = True, null: bool = False):
    """A number field: left out when empty (or null, for fields where empty means none)."""
    if raw is None or not raw.strip():
        if null:
            target[key] = None
        return
    target[key] = _number(raw, whole=whole)


def _words(raw: str) -> list[str]:
    return [w.strip() for w in raw.split(",") if w.strip()]


def _getlist(form, key: str) -> list:
    """Every value of `key`: a MultiDict's list, or a dict's value as a list."""
    if hasattr(form, "getlist"):
        return form.getlist(key)
    value = form.get(key)
    return list(value) if isinstance(value, list | tuple) else [] if value is None else [value]


def variant_indexes(form: Mapping) -> list[int]:
    """The variant rows a form holds, by their index, at most MAX_VARIANTS + 1 of them
    (one more than allowed, so the schema says there are too many)."""
    found = sorted({int(m.group(1)) for k in form if (m := _VARIANT_KEY.match(k))})
    return found[: MAX_VARIANTS + 1]


def from_form(form, campaign_id: str | None = None, zone: dt.tzinfo = dt.UTC) -> dict:
    """The document a posted form describes (`form`: a MultiDict, or a dict of strings).
    `campaign_id` is the edited campaign's (its id is not a form field then); times are
    read in `zone`."""
    get = form.get
    doc: dict = {"id": campaign_id if campaign_id is not None else get("id", "").strip()}
    for name in ("name", "status", "placement"):
        doc[name] = get(name, "")
    _put(doc, "priority", get("priority"))
    for name in ("starts_at", "ends_at"):
        doc[name] = utc_text(get(name, ""), zone, get(f"{name}.fold"))
    if get("locales_mode") == "all":
        doc["locales"] = None
    else:
        doc["locales"] = [x for x in _getlist(form, "locales") if x]
    audience: dict = {"readers": get("audience.readers", "")}
    for name in LISTS:
        _, part, side = name.split(".")
        audience.setdefault(part, {})[side] = _words(get(name, ""))
    if get("audience.articles_read"):
        ar: dict = {}
        _put(ar, "min", get("audience.articles_read.min"))
        _put(ar, "max", get("audience.articles_read.max"), null=True)
        _put(ar, "days", get("audience.articles_read.days"))
        audience["articles_read"] = ar
    else:
        audience["articles_read"] = None
    doc["audience"] = audience
    frequency: dict = {}
    _put(frequency, "max_views", get("frequency.max_views"), null=True)
    _put(frequency, "per_days", get("frequency.per_days"))
    _put(frequency, "min_hours_between", get("frequency.min_hours_between"), whole=False)
    _put(frequency, "after_dismiss_days", get("frequency.after_dismiss_days"))
    doc["frequency"] = frequency
    if (get("control_share") or "").strip():
        doc["control_share"] = fraction(get("control_share"))
    if doc["placement"] == "gate":
        gate: dict = {"dismissible": bool(get("gate.dismissible"))}
        _put(gate, "free_articles", get("gate.free_articles"))
        doc["gate"] = gate
    else:
        doc["gate"] = None
    doc["variants"] = [_variant(form, f"variants[{i}]") for i in variant_indexes(form)]
    return doc


def _template(form, key: str, locale: str) -> str | dict | None:
    """A copy field's boxes as its template: plain text, or its plural forms (the field's
    own box their "other" form); None when every box is empty."""
    text = (form.get(key) or "").replace("\r\n", "\n")
    forms = {}
    for form_name in plural_forms(locale):
        other = (form.get(f"{key}.{form_name}") or "").replace("\r\n", "\n")
        if other.strip():
            forms[form_name] = other
    if forms:
        return {**forms, "other": text} if text.strip() else forms
    return text if text.strip() else None


def _variant(form, prefix: str) -> dict:
    get = form.get
    v: dict = {"id": get(f"{prefix}.id", "").strip()}
    _put(v, "weight", get(f"{prefix}.weight"))
    copy: dict = {}
    for locale in SUPPORTED_LOCALES:
        fields_: dict = {}
        for name in COPY_FIELDS:
            template = _template(form, f"{prefix}.copy.{locale}.{name}", locale)
            if template is not None:
                fields_[name] = template
        if fields_:
            copy[locale] = fields_
    v["copy"] = copy
    v["cta_url"] = get(f"{prefix}.cta_url", "").strip() or None
    return v


# --- rows: adding and removing variants without JavaScript --------------------------------


def without_variant(values: Mapping[str, object], index: int) -> dict:
    """Form values with variant `index` taken out and the rows after it renumbered."""
    kept: dict = {}
    for key, value in values.items():
        m = _VARIANT_KEY.match(key)
        if m is None:
            kept[key] = value
            continue
        i = int(m.group(1))
        if i == index:
            continue
        j = i - 1 if i > index else i
        kept[f"variants[{j}]." + key[m.end() :]] = value
    return kept


def with_new_variant(values: Mapping[str, object], count: int) -> dict:
    """Form values with an empty variant row after the `count` there are (weight 1)."""
    ids = {str(values.get(f"variants[{i}].id", "")) for i in range(count)}
    new_id = next((c for c in "abcdefghijklmnopqrstuvwxyz" if c not in ids), f"v{count + 1}")
    return {**values, f"variants[{count}].id": new_id, f"variants[{count}].weight": "1"}


def form_values(form) -> dict[str, str | list[str]]:
    """A posted form as values to render again (the variants renumbered 0..n-1)."""
    values: dict[str, str | list[str]] = {}
    rows = {i: n for n, i in enumerate(variant_indexes(form))}
    for key in form:
        if key == "csrf_token":
            continue
        m = _VARIANT_KEY.match(key)
        if m is not None:
            i = int(m.group(1))
            if i not in rows:
                continue
            key_out = f"variants[{rows[i]}]." + key[m.end() :]
        else:
            key_out = key
        values[key_out] = _getlist(form, key) if key == "locales" else form.get(key, "")
    return values


# --- errors next to their fields, named by their labels ----------------------------------


@dataclass
class Placed:
    """Validation messages by the form field (or group of fields) they belong to; `summary`
    lists each as the editor reads it ("Holdout share: at most 50%") with the id of its
    field; `general` holds those that name no part of the form."""

    by_field: dict[str, list[str]] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)
    summary: list[tuple[str, str]] = field(default_factory=list)  # (line, the field's id)

    def __bool__(self) -> bool:
        return bool(self.by_field or self.general)

    @property
    def count(self) -> int:
        return len(self.summary) + len(self.general)


def split_error(line: str) -> tuple[str, str]:
    """ "variants[1].copy.uk.headline: missing" -> (path, message); ("", line) when it has none."""
    path, sep, message = line.partition(": ")
    if not sep or " " in path:
        return "", line
    return path, message


def _message(name: str, message: str, values: Mapping[str, object]) -> str:
    """The schema's message in the form's words: "missing" is "required", a share is in %."""
    m = _VARIANT_KEY.match(name)
    known = VARIANT_FIELDS.get(name[m.end() :]) if m else FIELDS.get(name)
    if known is not None and known.kind == "percent":
        typed = fraction(str(values.get(name) or ""))
        if isinstance(typed, float) and typed > MAX_CONTROL_SHARE:
            return f"at most {MAX_PERCENT.normalize():f}%"
        if isinstance(typed, float) and typed < 0:
            return "at least 0%"
        return f"expected a number from 0 to {MAX_PERCENT.normalize():f} (%)"
    blank = not str(values.get(name) or "").strip()
    if known is not None and known.kind == "text" and name not in LISTS and blank:
        return "required"  # an empty name or id: whatever the schema expected, it is needed
    if known is not None and message in known.messages:
        return known.messages[message]
    return GENERAL_MESSAGES.get(message, message)


def place_errors(
    lines: Sequence[str],
    names: set[str] | frozenset[str],
    values: Mapping[str, object] | None = None,
) -> Placed:
    """Each `path: message` line under the nearest field or group named in `names`: the path
    itself, else the path with its last parts taken off (`...include[2]` -> `...include`);
    `values`, the form's, name the variants and tell an empty box."""
    placed, values = Placed(), values or {}
    for line in lines:
        path, message = split_error(line)
        target = path
        while target and target not in names:
            shorter = _PATH_TAIL.sub("", target)
            target = "" if shorter == target else shorter
        if target:
            shown = _message(target, message, values)
            placed.by_field.setdefault(target, []).append(shown)
            placed.summary.append((f"{label_of(target, values)}: {shown}", field_id(target)))
        else:
            placed.general.append(line)
    return placed


def field_names(values: Mapping[str, object]) -> set[str]:
    """Every field and group of fields the form shows, for `place_errors`."""
    names = set(FIELDS)
    for i in range(len(variant_indexes(values))):
        prefix = f"variants[{i}]"
        names |= {prefix, f"{prefix}.copy"} | {f"{prefix}.{k}" for k in VARIANT_FIELDS}
        for locale in SUPPORTED_LOCALES:
            names.add(f"{prefix}.copy.{locale}")
            names |= {f"{prefix}.copy.{locale}.{name}" for name in COPY_FIELDS}
    return names
