"""examples/campaign.json, the document the README points an engineer to, is complete and
valid: `membership campaigns apply` stores it as written, and `export` gives it back
field for field (every field present, so nothing is a default the reader cannot see)."""

from __future__ import annotations

import json
import re

from membership.prompts.request import parse_request
from tests.support.processes import REPO

EXAMPLE = REPO / "examples" / "campaign.json"


def test_the_example_campaign_applies_and_exports_as_written(membership_cli):
    written = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    applied = membership_cli("campaigns", "apply", str(EXAMPLE))
    assert applied.exit_code == 0, applied.output
    assert applied.output.splitlines() == [f"created {written['id']}"]
    exported = membership_cli("campaigns", "export")
    assert exported.exit_code == 0, exported.output
    assert json.loads(exported.output) == [written]


def test_the_example_speaks_every_locale_it_targets():
    written = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    for variant in written["variants"]:
        assert sorted(variant["copy"]) == sorted(written["locales"]), variant["id"]


def test_the_example_speaks_english_and_ukrainian():
    written = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    assert written["locales"] == ["en", "uk"]


def test_the_documented_prompt_request_is_one_the_service_reads():
    """docs/prompts.md's body of `POST /v1/prompt` decodes by the one parser, the section and
    tags inside `page`, as the table beside it says."""
    docs = (REPO / "docs" / "prompts.md").read_text(encoding="utf-8")
    after = docs.split("The body `prompt.js` sends:", 1)[1]
    body = json.loads(re.search(r"```json\n(.*?)```", after, re.S).group(1))
    request = parse_request(body)
    assert request.page.section == "kyiv" and request.page.tags == ("transport", "blackouts")
    assert "| `page.section` |" in docs and "\n| `section` |" not in docs
