import pytest
from hypothesis import given
from hypothesis import strategies as st

from membership.core import i18n

NBSP = "\u00a0"


@pytest.mark.parametrize(
    ("n", "category", "headline"),
    [
        (0, "many", "0 учасників спільноти"),
        (1, "one", "1 учасник спільноти"),
        (2, "few", "2 учасники спільноти"),
        (4, "few", "4 учасники спільноти"),
        (5, "many", "5 учасників спільноти"),
        (11, "many", "11 учасників спільноти"),
        (12, "many", "12 учасників спільноти"),
        (14, "many", "14 учасників спільноти"),
        (21, "one", "21 учасник спільноти"),
        (22, "few", "22 учасники спільноти"),
        (25, "many", "25 учасників спільноти"),
        (101, "one", "101 учасник спільноти"),
        (111, "many", "111 учасників спільноти"),
        (1001, "one", f"1{NBSP}001 учасник спільноти"),
        (25012, "many", f"25{NBSP}012 учасників спільноти"),
    ],
)
def test_ukrainian_plural_table(n, category, headline):
    assert i18n.plural_category("uk", n) == category
    assert i18n.render("uk", "headline", {"count": n}, "Kyiv Independent") == headline


@pytest.mark.parametrize(
    ("n", "headline"),
    [(1, "1 member on board"), (2, "2 members on board"), (0, "0 members on board")],
)
def test_english_plurals(n, headline):
    assert i18n.render("en", "headline", {"count": n}, "x") == headline


def test_numbers_are_grouped_per_locale():
    assert i18n.format_number("en", 25012) == "25,012"
    assert i18n.format_number("uk", 25012) == f"25{NBSP}012"
    assert i18n.format_number("uk", 1234567) == f"1{NBSP}234{NBSP}567"
    assert i18n.format_number("en", 999) == "999"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, "en"),
        ("", "en"),
        ("en", "en"),
        ("uk", "uk"),
        ("UK", "uk"),
        ("uk-UA", "uk"),
        ("uk_UA", "uk"),
        ("en-GB", "en"),
        ("de", "en"),
        ("fr-CA", "en"),
        ("zh-Hant-TW", "en"),
        ("EN-us", "en"),
        ("uk-Cyrl-UA", "uk"),
        ("de-DE-u-co-phonebk", "en"),
        ("uk-UA-x-kyiv-press", "uk"),
        ("uk_UA.UTF-8", "uk"),
        ("ca_ES@valencia", "en"),
        ("haw", "en"),
    ],
)
def test_unsupported_locales_fall_back_to_english(raw, expected):
    assert i18n.resolve_locale(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["u", "../etc", "<script>", "en-", "e1", "x" * 40, "en US", "uk;q=1", "uk-" + "UA-" * 30 + "x"],
)
def test_malformed_locale_is_refused(raw):
    with pytest.raises(i18n.CopyError, match="locale tag"):
        i18n.resolve_locale(raw)


def test_defaults_cover_every_field_and_plural_form_in_every_locale():
    for locale in ("en", "uk"):
        copy = i18n.DEFAULT_COPY[locale]
        assert set(copy) == set(i18n.FIELDS)
        for field, template in copy.items():
            if isinstance(template, str):
                i18n.check_template(field, template)
            else:
                assert set(template) == i18n.plural_categories(locale), (locale, field)
                i18n.check_plural_forms(locale, field, template)


@given(
    locale=st.sampled_from(["en", "uk"]),
    field=st.sampled_from(sorted(i18n.FIELDS)),
    count=st.integers(min_value=0, max_value=10**9),
    goal=st.integers(min_value=1, max_value=10**9),
)
def test_rendered_copy_is_always_filled_in(locale, field, count, goal):
    text = i18n.render(
        locale, field, {"count": count, "goal": goal, "remaining": goal}, "The Kyiv Independent"
    )
    assert text.strip()
    for leftover in ("{", "}", "None", "undefined"):
        assert leftover not in text


def test_thank_you_copy():
    assert (
        i18n.render("en", "thanks", {"count": 25012, "goal": 25000}, "x")
        == "25,000 people chose to be part of the community — thank you"
    )
    assert i18n.render("uk", "thanks", {"goal": 21}, "x").startswith("21 людина вирішила")
    assert i18n.render("uk", "thanks", {"goal": 3}, "x").startswith("3 людини вирішили")
    assert i18n.render("uk", "thanks", {"goal": 25000}, "x").startswith(f"25{NBSP}000 людей")


def test_override_wins_and_a_missing_plural_form_falls_back():
    forms = {"one": "{count} читач", "other": "{count} читачів"}
    assert i18n.render("uk", "headline", {"count": 21}, "x", forms) == "21 читач"
    assert i18n.render("uk", "headline", {"count": 5}, "x", forms) == "5 читачів"
    assert i18n.render("en", "message", {"goal": 10, "remaining": 3}, "x", "{remaining} to go") == (
        "3 to go"
    )


@pytest.mark.parametrize(
    ("field", "template", "problem"),
    [
        ("headline", "{count} and {goal}", "may use only {count}, {publication}"),
        ("message", "{count!r}", "not {count!r}"),
        ("message", "{count:>9}", "not {count:>9}"),
        ("message", "{count.real}", "may use only"),
        ("message", "{", "unbalanced braces"),
        ("message", "   ", "empty"),
        ("message", "x" * 301, "longer than 300"),
        ("footer", "hi", "unknown copy field"),
    ],
)
def test_bad_templates_are_refused_with_a_reason(field, template, problem):
    with pytest.raises(i18n.CopyError) as info:
        i18n.check_template(field, template)
    assert problem in str(info.value)


def test_escaped_braces_are_fine():
    i18n.check_template("message", "{{sic}} {goal}")
    assert i18n.render("en", "message", {"goal": 5}, "x", "{{sic}} {goal}") == "{sic} 5"
