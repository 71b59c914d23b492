"""The command line as a new user meets it: readable listings, clear refusals, safe text,
ISO-8601 times in every --json. Real redis-server (tests/conftest.py)."""

from __future__ import annotations

import json
import re

import pytest

from membership.core import i18n
from membership.goals import store as goals
from membership.ledger import Ledger
from membership.store import Keys
from membership.stripe.apply import apply_event
from tests.support import stripe_payloads as sp

KEYS = Keys()
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
DATE = re.compile(r"\d{4}-\d\d-\d\d")


def test_members_list_says_yes_or_no(membership_cli):
    assert membership_cli("members", "add", "a@example.org", "--reason", "gift").exit_code == 0
    listing = membership_cli("members", "list")
    assert listing.exit_code == 0, listing.output
    row = listing.output.splitlines()[1].split()
    assert row[-1] == "no"
    assert "False" not in listing.output and "True" not in listing.output


@pytest.mark.parametrize(
    "args", [["-5"], ["-1"], ["--name", "Spring", "-30000"], ["-5", "--name", "Spring"]]
)
def test_a_negative_target_is_a_clear_error(membership_cli, args):
    result = membership_cli("goals", "add", *args)
    assert result.exit_code == 2
    assert "target: expected 1 to 1,000,000,000" in result.output
    assert "No such option" not in result.output


def test_an_unknown_option_is_still_named(membership_cli):
    result = membership_cli("goals", "add", "--nmae", "x", "5")
    assert result.exit_code == 2
    assert "No such option '--nmae'" in result.output


def test_a_refused_goal_uses_up_no_id(membership_cli, redis_client):
    assert "added goal 1" in membership_cli("goals", "add", "10").output
    for refused in (["10"], ["0"], ["lots"], ["20", "--copy", "en.cta={count}"], ["-5"]):
        assert membership_cli("goals", "add", *refused).exit_code == 2, refused
    assert "added goal 2" in membership_cli("goals", "add", "20").output
    assert [g.id for g in goals.load(redis_client, KEYS)] == [1, 2]


def test_copy_help_lists_every_field_placeholder_and_plural_form(membership_cli):
    result = membership_cli("goals", "add", "--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for field in i18n.FIELDS:
        assert field in text, field
    for placeholder in i18n.PLACEHOLDERS:
        assert "{" + placeholder + "}" in text, placeholder
    for locale in ("en", "uk"):
        for form in i18n.plural_categories(locale):
            assert form in text


def test_a_goal_cannot_set_the_invite_it_would_never_show(membership_cli):
    result = membership_cli("goals", "add", "10", "--copy", "en.invite=Join us")
    assert result.exit_code == 2
    assert "en.invite: shown only when there is no goal" in result.output


UNSAFE = ["\x1b[2J", "\x07", "\x9b31m", "\u202e", "\u200b", "\u2028", "\u2029", "\x7f"]


@pytest.mark.parametrize("bad", UNSAFE, ids=[f"U+{ord(c[0]):04X}" for c in UNSAFE])
def test_control_characters_and_escape_sequences_are_refused(membership_cli, redis_client, bad):
    attempts = [
        (["goals", "add", "10", "--name", f"Spr{bad}ing"], "name: control characters"),
        (["goals", "add", "10", "--copy", f"en.cta=Join{bad}"], "control character"),
        (["goals", "add", "10", "--copy", f"uk.headline.few={{count}}{bad}!"], "control character"),
        (
            ["members", "add", f"a{bad}@example.org", "--reason", "gift"],
            "email: control characters",
        ),
        (
            ["members", "add", "a@example.org", "--reason", "gift", "--name", f"An{bad}n"],
            "name: control characters",
        ),
        (["members", "add", "a@example.org", "--reason", f"gi{bad}ft"], "reason: control"),
        (["members", "remove", "a@example.org", "--reason", f"le{bad}ft"], "reason: control"),
    ]
    for args, problem in attempts:
        result = membership_cli(*args)
        assert result.exit_code == 2, (args, result.output)
        assert problem in result.output, (args, result.output)
        assert bad not in result.output  # the refusal itself never echoes it raw
    assert goals.load(redis_client, KEYS) == []
    assert redis_client.get(KEYS.member_count) is None


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["goals", "add", "10", "--name", "x" * 101], "name: expected 1 to 100 characters"),
        (
            ["members", "add", "a@example.org", "--reason", "gift", "--name", "x" * 201],
            "name: at most 200 characters",
        ),
        (["members", "add", "a@example.org", "--reason", "x" * 501], "reason: at most 500"),
        (["members", "add", "a" * 250 + "@example.org", "--reason", "gift"], "email"),
    ],
)
def test_names_and_reasons_have_length_limits(membership_cli, args, problem):
    result = membership_cli(*args)
    assert result.exit_code == 2
    assert problem in result.output


def test_letters_of_every_script_are_welcome(membership_cli):
    name = "Олена Ковальчук-Дяченко, née O'Brien 🙂"
    result = membership_cli(
        "members", "add", "olena@example.org", "--reason", "подарунок", "--name", name
    )
    assert result.exit_code == 0, result.output
    assert membership_cli("goals", "add", "10", "--name", "Зимова кампанія").exit_code == 0


def _times(value, path=""):
    """Every (path, value) whose key names a time."""
    if isinstance(value, dict):
        for key, inner in value.items():
            here = f"{path}.{key}"
            if key in ("at", "since", "received", "created") or key.endswith("_at"):
                yield here, inner
            yield from _times(inner, here)
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from _times(inner, f"{path}[{i}]")


def test_every_time_in_json_output_is_iso_8601(membership_cli, app, redis_client):
    from membership.core.runtime import runtime

    rt = runtime(app)
    ledger = Ledger.on(redis_client, KEYS, rt.settings.member_statuses)
    sub = sp.subscription(sp.new_id("sub"), sp.new_id("cus"), "active")
    outcome = apply_event(
        ledger.writer, sp.subscription_event(sub, type_="customer.subscription.created")
    )
    assert outcome.outcome == "applied"
    assert membership_cli("members", "add", "a@example.org", "--reason", "gift").exit_code == 0
    assert membership_cli("goals", "add", "1", "--deadline", "2099-12-31").exit_code == 0
    assert membership_cli("goals", "add", "50").exit_code == 0
    redis_client.hset(KEYS.ledger_needs_rebuild, mapping={"since": "2026-11-25T19:00:00Z"})

    outputs = {}
    for args in (
        ["events", "list", "--json"],
        ["audit", "list", "--json"],
        ["members", "list", "--json"],
        ["stats", "--json"],
        ["goals", "list", "--json"],
        ["ledger", "rebuild", "--json"],
    ):
        result = membership_cli(*args)
        assert result.exit_code == 0, (args, result.output)
        outputs[" ".join(args)] = json.loads(result.stdout)

    found = 0
    for command, data in outputs.items():
        for path, value in _times(data):
            if value is None:
                continue
            found += 1
            assert isinstance(value, str), (command, path, value)
            assert ISO.fullmatch(value) or (path.endswith("deadline") and DATE.fullmatch(value)), (
                command,
                path,
                value,
            )
    assert found >= 8
    assert outputs["events list --json"][0]["created"] == "2026-05-28T20:26:40Z"  # sp.T0
