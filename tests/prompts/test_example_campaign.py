"""examples/campaign.json, the document the README points an engineer to, is complete and
valid: `membership campaigns apply` stores it as written, and `export` gives it back
field for field (every field present, so nothing is a default the reader cannot see)."""

from __future__ import annotations

import json

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
