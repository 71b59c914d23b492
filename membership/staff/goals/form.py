"""The goal form (pure): its fields <-> a goal's data, error placement and the preview
model. The rules stay in membership/goals/rules.py; the preview is /v1/banner's own view model."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cache

from membership.core import i18n
from membership.core.config import SUPPORTED_LOCALES
from membership.goals import banner
from membership.goals import rules as goals_mod

LOCALE_NAMES = {"en": "English", "uk": "Ukrainian"}
# The copy fields a goal may set, with what each is for (i18n.FIELDS says what each may use).
FIELD_HELP = {
    "headline": "Above the bar, always. The plural form follows the member count.",
    "message": "While this is the current goal. The plural form follows the goal's target.",
    "thanks": "Once this is the milestone and no goal is left. The form follows the target.",
    "cta": "The button, always.",
}
PLURAL_ORDER = ("zero", "one", "two", "few", "many", "other")
GOAL_FIELDS = ("target", "deadline", "name")
MAX_PREVIEW_COUNT = 10 * goals_mod.MAX_TARGET
GOAL_ID = re.compile(r"[1-9][0-9]{0,11}")
# The dashboard's own English, in the plural form Babel's rules pick (i18n.pick).
AT_COUNT = {"one": "At {count} member", "other": "At {count} members"}


# --- The form (pure) ------------------------------------------------------------------
@dataclass(frozen=True)
class CopyInput:
    """One text box of the copy form: a locale's field, or one plural form of it."""

    locale: str
    field: str
    form: str | None  # None: the field has no plural forms (cta)

    @property
    def name(self) -> str:
        return ".".join(p for p in ("copy", self.locale, self.field, self.form) if p)

    @property
    def id(self) -> str:
        return self.name.replace(".", "-")

    @property
    def default(self) -> str:
        """The default copy this box overrides, shown as its placeholder."""
        default = i18n.DEFAULT_COPY[self.locale][self.field]
        if isinstance(default, str):
            return default
        return default.get(self.form or "other") or default["other"]


def copy_inputs(locale: str, field: str) -> list[CopyInput]:
    if i18n.FIELDS[field][0] is None:
        return [CopyInput(locale, field, None)]
    forms = i18n.plural_categories(locale)
    return [CopyInput(locale, field, f) for f in PLURAL_ORDER if f in forms]


def copy_fields() -> list[str]:
    return [f for f in i18n.FIELDS if f != goals_mod.NOT_PER_GOAL]


@cache
def plural_examples(locale: str) -> dict[str, str]:
    """Which whole numbers take each plural form, for the labels: uk few -> "2, 3, 4, 22"."""
    found: dict[str, list[int]] = {}
    for n in (*range(0, 30), 101, 111):
        found.setdefault(i18n.plural_category(locale, n), []).append(n)
    return {form: ", ".join(map(str, numbers[:4])) for form, numbers in found.items()}


def goal_data(form: Mapping[str, str]) -> dict:
    """The form's fields as parse_goal's input. Empty boxes set nothing; a plural field
    with only its "other" form filled is one text for every number."""
    copy: dict[str, dict] = {}
    for locale in SUPPORTED_LOCALES:
        for field in copy_fields():
            texts = {}
            for box in copy_inputs(locale, field):
                text = (form.get(box.name) or "").strip()
                if text:
                    texts[box.form] = text
            if not texts:
                continue
            plain = list(texts) in ([None], ["other"])
            copy.setdefault(locale, {})[field] = next(iter(texts.values())) if plain else texts
    return {
        "target": (form.get("target") or "").strip().replace(",", "").replace("_", ""),
        "deadline": (form.get("deadline") or "").strip() or None,
        "name": form.get("name") or None,
        "copy": copy,
    }


def form_values(goal: goals_mod.Goal) -> dict[str, str]:
    """A stored goal as the form's fields (the inverse of goal_data)."""
    values = {"target": str(goal.target), "deadline": goal.deadline or "", "name": goal.name or ""}
    for locale, fields in goal.copy.items():
        for field, template in fields.items():
            if i18n.FIELDS.get(field, (None,))[0] is None:
                # One box: a plural override of a field with no number is its "other" form
                # (what i18n.render shows), so nothing that shows is lost on saving.
                text = template if isinstance(template, str) else template.get("other", "")
                values[CopyInput(locale, field, None).name] = text
            elif isinstance(template, str):
                values[CopyInput(locale, field, "other").name] = template
            else:
                for form, text in template.items():
                    values[CopyInput(locale, field, form).name] = text
    return values


def copy_rows(copy: Mapping) -> list[tuple[str, str, str, str]]:
    """A goal's copy overrides as (locale, field, plural form or "", text) rows to read."""
    rows = []
    for locale, fields in sorted(copy.items()):
        for field, template in fields.items():
            forms = {"": template} if isinstance(template, str) else template
            rows += [(locale, field, form, text) for form, text in forms.items()]
    return rows


def errors_of(exc: goals_mod.GoalError) -> dict[str, str]:
    """A refusal's messages by the form field they name ("form" when none)."""
    if isinstance(exc, goals_mod.GoalInvalid):
        return exc.errors
    name, _, message = str(exc).partition(": ")
    return {name: message} if name in (*GOAL_FIELDS, "version") else {"form": str(exc)}


def box_label(path: str) -> str:
    """What a copy box is called on the page: "copy.uk.message.few" -> "Ukrainian message
    (few)", "copy.en.cta" -> "English cta"."""
    _, locale, field, *form = path.split(".")
    return f"{LOCALE_NAMES.get(locale, locale)} {field}" + (f" ({form[0]})" if form else "")


def form_errors(errors: Mapping[str, str]) -> dict[str, str]:
    """errors_of's messages as the form shows them: a copy box's named by its language,
    field and plural form, on the box itself (a plural field's one text is its "other"
    box), and the general "copy" message left out when a box says what is wrong."""
    shown: dict[str, str] = {}
    for name, message in errors.items():
        parts = name.split(".")
        if parts[0] != "copy" or len(parts) < 3 or parts[1] not in SUPPORTED_LOCALES:
            shown[name] = message
            continue
        boxes = copy_inputs(parts[1], parts[2]) if parts[2] in i18n.FIELDS else []
        if len(parts) == 3 and boxes and boxes[0].form is not None:
            name = f"{name}.other"
        shown[name] = f"{box_label(name)}: {message}"
    if len(shown) > 1 and any(n.startswith("copy.") for n in shown):
        shown.pop("copy", None)
    return shown


def preview_count(raw: str | None, live: int) -> int:
    """The member count to preview at: the live one when blank. ValueError names the field."""
    text = (raw or "").strip().replace(",", "")
    if not text:
        return live
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_PREVIEW_COUNT:
        raise ValueError(f"expected a whole number of members, 0 to {MAX_PREVIEW_COUNT:,}")
    return int(text)


@dataclass(frozen=True)
class Preview:
    count: int
    banner: dict  # locale -> /v1/banner's body
    shown: goals_mod.Goal | None  # the goal whose copy the banner shows at this count
    goal: goals_mod.Goal  # the previewed goal, as it would be stored

    @property
    def shows_this_goal(self) -> bool:
        return self.shown is not None and self.shown.id == self.goal.id

    @property
    def note(self) -> str:
        """What the preview shows, in a sentence: "At 1 member the banner shows this goal."."""
        at = i18n.pick(AT_COUNT, "en", self.count).format(count=f"{self.count:,}")
        if self.shows_this_goal:
            shows = "this goal"
        elif self.shown is not None:
            shows = (
                f"goal {self.shown.id} (target {self.shown.target:,}), not this one: "
                "change the count to see this goal's copy"
            )
        else:
            shows = "no goal"
        empty = " The widget shows nothing while the count is 0." if self.count == 0 else ""
        return f"{at} the banner shows {shows}.{empty} Nothing is saved by previewing."

    def as_json(self) -> dict:
        shown = None if self.shown is None else {"id": self.shown.id, "target": self.shown.target}
        return {
            "note": self.note,
            "count": self.count,
            "shows_this_goal": self.shows_this_goal,
            "shown_goal": shown,
            "banner": self.banner,
        }


def build_preview(
    stored: list[goals_mod.Goal],
    old: goals_mod.Goal | None,
    new: goals_mod.Goal,
    count: int,
    now: str,
    settings,
) -> Preview:
    """The banner in every locale once `new` is saved (over `old`, or added), at `count`:
    the same rules as saving (plan_update/plan_add; GoalError as they raise it) and the
    same view as /v1/banner."""
    if old is not None:
        goal = goals_mod.plan_update(stored, count, old, new, now)
    else:
        next_id = max((s.id for s in stored), default=0) + 1
        goal = goals_mod.plan_add(stored, count, replace(new, id=next_id), now)
    after = [s for s in stored if s.id != goal.id] + [goal]
    selection = goals_mod.select(after, count)
    bodies = banner.preview(
        after, count, publication=settings.publication_name, join_url=settings.join_url
    )
    return Preview(count, bodies, selection.current or selection.milestone, goal)
