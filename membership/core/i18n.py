"""Languages: which locales we speak, numbers and plural forms (Babel), and the banner's copy.

Copy is a set of templates per locale and field. A field is either one string or a
dict of CLDR plural forms ("one", "few", "many", "other"), chosen by Babel's plural
rules for the number the field is about: the member count for the headline, the
goal's target for the message and the thank-you. Templates may use the placeholders
`{count}`, `{goal}`, `{remaining}` and `{publication}` (each field a subset), filled
with numbers already formatted for the locale.

Pure functions only; no I/O.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from decimal import Decimal
from functools import cache, lru_cache

from babel import Locale
from babel.numbers import format_currency, format_decimal, get_currency_precision

from membership.core.config import SUPPORTED_LOCALES
from membership.core.text import unsafe_character

DEFAULT_LOCALE = "en"
PLACEHOLDERS = ("count", "goal", "remaining", "publication")

# field -> (the value whose plural form picks the template, or None; allowed placeholders)
FIELDS: dict[str, tuple[str | None, frozenset[str]]] = {
    "headline": ("count", frozenset({"count", "publication"})),
    "message": ("goal", frozenset(PLACEHOLDERS)),
    "thanks": ("goal", frozenset({"count", "goal", "publication"})),
    "invite": ("count", frozenset({"count", "publication"})),
    "cta": (None, frozenset({"publication"})),
}

Template = str | Mapping[str, str]

# headline: above the bar, always. message: toward the current goal. thanks: when every
# goal is reached ({goal} is the milestone). invite: when no goal is set. cta: the button.
DEFAULT_COPY: dict[str, dict[str, Template]] = {
    "en": {
        "headline": {"one": "{count} member on board", "other": "{count} members on board"},
        "message": {"one": "Help us reach {goal} member", "other": "Help us reach {goal} members"},
        "thanks": {
            "one": "{goal} person chose to be part of the community — thank you",
            "other": "{goal} people chose to be part of the community — thank you",
        },
        "invite": "Independent journalism is paid for by its readers. Join them and keep "
        "{publication} independent",
        "cta": "Become a member",
    },
    "uk": {
        "headline": {
            "one": "{count} учасник спільноти",
            "few": "{count} учасники спільноти",
            "many": "{count} учасників спільноти",
            "other": "{count} учасника спільноти",
        },
        "message": {
            "one": "Допоможіть нам досягти мети — {goal} учасник",
            "few": "Допоможіть нам досягти мети — {goal} учасники",
            "many": "Допоможіть нам досягти мети — {goal} учасників",
            "other": "Допоможіть нам досягти мети — {goal} учасника",
        },
        "thanks": {
            "one": "{goal} людина вирішила стати частиною спільноти — дякуємо!",
            "few": "{goal} людини вирішили стати частиною спільноти — дякуємо!",
            "many": "{goal} людей вирішили стати частиною спільноти — дякуємо!",
            "other": "{goal} людини вирішили стати частиною спільноти — дякуємо!",
        },
        "invite": "Незалежну журналістику утримують читачі. Долучайтеся до спільноти {publication}",
        "cta": "Стати учасником",
    },
}

# A locale as browsers, people and systems write it: "uk", "en-GB", "uk_UA", "zh-Hant-TW",
# "de-DE-u-co-phonebk" (BCP 47 with extensions), "uk_UA.UTF-8" and "ca_ES@valencia" (POSIX).
LOCALE_TAG = re.compile(
    r"[A-Za-z]{2,8}(?:[-_][A-Za-z0-9]{1,8})*(?:\.[A-Za-z0-9-]{1,20})?(?:@[A-Za-z0-9]{1,20})?"
)
LOCALE_TAG_MAX = 64


class CopyError(ValueError):
    """A template or locale is malformed; the message says what is wrong."""


def resolve_locale(raw: str | None) -> str:
    """The language we serve for a requested tag: its language if we speak it, else English.

    `en-US` -> en, `uk-UA` -> uk, `de` -> en: one answer (one body, one ETag) per
    language we serve, whatever variant was asked for. The widget (static/banner.js)
    does the same before it asks, so a CDN keeps one object per served language.
    Raises CopyError for something that is not a locale tag at all (a client bug).
    """
    if raw is None or raw == "":
        return DEFAULT_LOCALE
    if len(raw) > LOCALE_TAG_MAX or not LOCALE_TAG.fullmatch(raw):
        raise CopyError("expected a locale tag such as en or uk")
    language = re.split(r"[-_.@]", raw, maxsplit=1)[0].lower()
    return language if language in SUPPORTED_LOCALES else DEFAULT_LOCALE


@cache
def _locale(code: str) -> Locale:
    return Locale.parse(code)


def plural_categories(locale: str) -> frozenset[str]:
    """The CLDR plural categories of a locale, e.g. {"one", "few", "many", "other"} for uk."""
    return frozenset(_locale(locale).plural_form.tags) | {"other"}


def plural_category(locale: str, n: int) -> str:
    return _locale(locale).plural_form(n)


@lru_cache(maxsize=4096)
def format_number(locale: str, n: int) -> str:
    """25012 -> "25,012" (en), "25 012" with a no-break space (uk)."""
    return format_decimal(n, locale=_locale(locale))


def format_money(locale: str, minor: int, currency: str) -> str:
    """Minor units as money, by the currency's digits (Babel): 1000 eur -> "€10.00" (en),
    "10,00 EUR" (uk); 500 jpy -> "¥500"."""
    code = currency.upper()
    amount = Decimal(minor).scaleb(-get_currency_precision(code))
    return format_currency(amount, code, locale=locale)


def check_template(field: str, text: str, placeholders: frozenset[str] | None = None) -> None:
    """Raise CopyError unless `text` is a usable template for `field`.

    `placeholders`: the placeholders allowed, for copy that is not the banner's (the
    prompts' headline, body and cta); omitted, `field` must be a banner field and
    FIELDS says what it may use.
    """
    if placeholders is None and field not in FIELDS:
        raise CopyError(f"unknown copy field {field!r}; expected one of {', '.join(FIELDS)}")
    if not text.strip():
        raise CopyError(f"the {field} template is empty")
    if len(text) > 300:
        raise CopyError(f"the {field} template is longer than 300 characters")
    bad = unsafe_character(text)
    if bad is not None:
        raise CopyError(f"the {field} template has a control character or escape sequence ({bad})")
    allowed = FIELDS[field][1] if placeholders is None else placeholders
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise CopyError(f"the {field} template has unbalanced braces ({exc})") from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in allowed or spec or conversion:
            known = [p for p in PLACEHOLDERS if p in allowed] + sorted(allowed - set(PLACEHOLDERS))
            expected = ", ".join("{" + p + "}" for p in known)
            raise CopyError(
                f"the {field} template may use only {expected}, not {{{name}"
                + (f"!{conversion}" if conversion else "")
                + (f":{spec}" if spec else "")
                + "}"
            )


def check_plural_forms(
    locale: str, field: str, forms: Mapping[str, str], placeholders: frozenset[str] | None = None
) -> None:
    categories = plural_categories(locale)
    for category, text in forms.items():
        if category not in categories:
            raise CopyError(
                f"{locale} has no plural form {category!r}; it has {', '.join(sorted(categories))}"
            )
        check_template(field, text, placeholders)


def pick(template: Template, locale: str, n: int | None) -> str:
    """The template text for a number: its plural form, else "other"."""
    if isinstance(template, str):
        return template
    if n is not None:
        chosen = template.get(plural_category(locale, n))
        if chosen is not None:
            return chosen
    return template["other"]


def render(
    locale: str,
    field: str,
    numbers: Mapping[str, int],
    publication: str,
    override: Template | None = None,
) -> str:
    """The text of one field: the goal's override when it has one, else the default.

    `numbers` holds the raw values of count/goal/remaining that apply; they are
    formatted for the locale. A plural override lacking the needed form falls back to
    its "other" form, then to the default copy.
    """
    plural_on = FIELDS[field][0]
    n = numbers.get(plural_on) if plural_on else None
    text = None
    if override is not None:
        if isinstance(override, str):
            text = override
        else:
            category = plural_category(locale, n) if n is not None else "other"
            text = override.get(category) or override.get("other")
    if text is None:
        text = pick(DEFAULT_COPY[locale][field], locale, n)
    values = {name: format_number(locale, value) for name, value in numbers.items()}
    values["publication"] = publication
    return text.format_map(Blank(values))


class Blank(dict):
    """A placeholder that does not apply here renders as nothing, never as "None"."""

    def __missing__(self, key: str) -> str:
        return ""
