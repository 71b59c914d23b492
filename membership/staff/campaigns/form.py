"""The campaign form: a campaign document <-> the fields of a plain HTML form (pure, no I/O).

Field names are the document's own paths (`audience.sections.include`,
`variants[1].copy.uk.headline`), so a validation error of `campaigns.parse` names the field
it belongs to and is shown next to it (`place_errors`). The form holds every field of the
document, and a document taken to the form and back is the same document:

- lists of sections, tags, referrer domains and countries are written comma-separated;
- `locales` is "every locale we serve" (null) or the checked ones;
- `audience.articles_read` is null unless its box is ticked;
- empty number fields are left out (the schema's default applies, or it says "missing"),
  and text that is not a number is passed on as it is, so the schema names the field;
- a variant's copy in a language whose three fields are all empty is left out;
- copy given as CLDR plural forms is carried in a hidden field as JSON and edited in the
  JSON view (the page says so): a form with a box per plural form and language would be
  unwieldy, and the JSON view validates it the same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from membership.core.config import SUPPORTED_LOCALES
from membership.prompts.campaigns import COPY_FIELDS

LISTS = tuple(
    f"audience.{part}.{side}"
    for part in ("sections", "tags", "referrers", "countries")
    for side in ("include", "exclude")
)
MAX_VARIANTS = 26  # the schema's limit; more rows than this are not read
_VARIANT_KEY = re.compile(r"variants\[(\d{1,3})\]\.")
_PATH_TAIL = re.compile(r"(\[\d+\]|\.[^.\[]+)$")
_INT = re.compile(r"[+-]?\d{1,18}")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
PLURAL = ".plural"  # suffix of the hidden field that carries a copy field's plural forms


def field_id(name: str) -> str:
    """An HTML id for a field name: `variants[1].copy.uk.cta` -> `f-variants-1-copy-uk-cta`."""
    return "f-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "on" if value else ""
    return str(value)


# --- document -> form ------------------------------------------------------------------


def to_form(doc: Mapping) -> dict[str, str | list[str]]:
    """A document (as `campaigns.to_json` writes it) as form values by field name."""
    a, f = doc.get("audience") or {}, doc.get("frequency") or {}
    values: dict[str, str | list[str]] = {
        name: _text(doc.get(name))
        for name in ("id", "name", "status", "priority", "starts_at", "ends_at", "placement")
    }
    values["control_share"] = _text(doc.get("control_share"))
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
    values = {f"{prefix}.{k}": _text(v.get(k)) for k in ("id", "weight", "cta_url")}
    for locale, fields_ in (v.get("copy") or {}).items():
        for name, template in (fields_ or {}).items():
            key = f"{prefix}.copy.{locale}.{name}"
            if isinstance(template, Mapping):
                values[key + PLURAL] = json.dumps(template, ensure_ascii=False, sort_keys=True)
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


def from_form(form, campaign_id: str | None = None) -> dict:
    """The document a posted form describes (`form`: a MultiDict, or a dict of strings).
    `campaign_id` is the edited campaign's (its id is not a form field then)."""
    get = form.get
    doc: dict = {"id": campaign_id if campaign_id is not None else get("id", "").strip()}
    for name in ("name", "status", "placement"):
        doc[name] = get(name, "")
    _put(doc, "priority", get("priority"))
    for name in ("starts_at", "ends_at"):
        doc[name] = get(name, "").strip() or None
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
    _put(doc, "control_share", get("control_share"), whole=False)
    if doc["placement"] == "gate":
        gate: dict = {"dismissible": bool(get("gate.dismissible"))}
        _put(gate, "free_articles", get("gate.free_articles"))
        doc["gate"] = gate
    else:
        doc["gate"] = None
    doc["variants"] = [_variant(form, f"variants[{i}]") for i in variant_indexes(form)]
    return doc


def _variant(form, prefix: str) -> dict:
    get = form.get
    v: dict = {"id": get(f"{prefix}.id", "").strip()}
    _put(v, "weight", get(f"{prefix}.weight"))
    copy: dict = {}
    for locale in SUPPORTED_LOCALES:
        fields_: dict = {}
        for name in COPY_FIELDS:
            key = f"{prefix}.copy.{locale}.{name}"
            plural = get(key + PLURAL)
            if plural:
                try:
                    fields_[name] = json.loads(plural)
                except ValueError:
                    fields_[name] = plural  # the schema says what is wrong with it
                continue
            text = get(key, "").replace("\r\n", "\n")
            if text.strip():
                fields_[name] = text
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


def plural_forms(values: Mapping[str, object], key: str) -> dict | None:
    """The plural forms a copy field carries (shown read-only), or None for a plain one."""
    raw = values.get(key + PLURAL)
    if not raw:
        return None
    try:
        forms = json.loads(str(raw))
    except ValueError:
        return {"?": str(raw)}
    return forms if isinstance(forms, dict) else {"?": str(raw)}


# --- errors next to their fields --------------------------------------------------------


@dataclass
class Placed:
    """Validation messages by the form field (or group of fields) they belong to; `general`
    holds those that name no part of the form."""

    by_field: dict[str, list[str]] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)
    anchors: dict[str, str] = field(default_factory=dict)  # each full line -> the field's id

    def __bool__(self) -> bool:
        return bool(self.by_field or self.general)


def split_error(line: str) -> tuple[str, str]:
    """ "variants[1].copy.uk.headline: missing" -> (path, message); ("", line) when it has none."""
    path, sep, message = line.partition(": ")
    if not sep or " " in path:
        return "", line
    return path, message


def place_errors(lines: Sequence[str], names: set[str] | frozenset[str]) -> Placed:
    """Each `path: message` line under the nearest field or group named in `names`: the path
    itself, else the path with its last parts taken off (`...include[2]` -> `...include`)."""
    placed = Placed()
    for line in lines:
        path, message = split_error(line)
        target = path
        while target and target not in names:
            shorter = _PATH_TAIL.sub("", target)
            target = "" if shorter == target else shorter
        if target:
            placed.by_field.setdefault(target, []).append(message)
            placed.anchors[line] = field_id(target)
        else:
            placed.general.append(line)
    return placed


def field_names(values: Mapping[str, object]) -> set[str]:
    """Every field and group of fields the form shows, for `place_errors`."""
    names = {
        "id",
        "name",
        "status",
        "priority",
        "starts_at",
        "ends_at",
        "placement",
        "locales",
        "control_share",
        "audience",
        "audience.readers",
        "audience.articles_read",
        "audience.articles_read.min",
        "audience.articles_read.max",
        "audience.articles_read.days",
        "frequency",
        "frequency.max_views",
        "frequency.per_days",
        "frequency.min_hours_between",
        "frequency.after_dismiss_days",
        "gate",
        "gate.dismissible",
        "gate.free_articles",
        "variants",
        *LISTS,
    }
    for i in range(len(variant_indexes(values))):
        prefix = f"variants[{i}]"
        names |= {prefix, f"{prefix}.id", f"{prefix}.weight", f"{prefix}.cta_url"}
        names.add(f"{prefix}.copy")
        for locale in SUPPORTED_LOCALES:
            names.add(f"{prefix}.copy.{locale}")
            names |= {f"{prefix}.copy.{locale}.{name}" for name in COPY_FIELDS}
    return names
