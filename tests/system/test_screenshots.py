"""`scripts/screenshots.sh DIR --quick` as a reviewer runs it: one page of each dashboard area
at 1280 and 375 px and each prompt placement on a phone, as real PNGs of those widths."""

from __future__ import annotations

import os
import struct
import subprocess

import pytest

from tests.support.processes import REPO

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAGES = ("home", "goals", "campaigns", "members", "member", "webhooks", "audit-log", "accounts")
PLACEMENTS = ("banner", "inline", "modal", "gate")


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", path
    return struct.unpack(">II", data[16:24])


def test_one_command_writes_the_screenshots(tmp_path):
    out = tmp_path / "shots"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "MEMBERSHIP_"))}
    done = subprocess.run(
        [str(REPO / "scripts" / "screenshots.sh"), str(out), "--quick"],
        capture_output=True,
        env=env,
        cwd=tmp_path,  # the script finds the repository itself
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    expected = {f"staff-{page}-{width}.png": width for page in (*PAGES, "login", "set-password")
                for width in (1280, 375)}  # fmt: skip
    expected |= {f"prompt-{placement}-375.png": 375 for placement in PLACEMENTS}
    assert {p.name for p in out.iterdir()} == set(expected)
    for name, width in expected.items():
        path = out / name
        shot_width, height = _png_size(path)
        assert shot_width == width, name
        assert height >= (812 if name.startswith("prompt-") else 300), name
        assert path.stat().st_size > 8_000, name  # not a blank page
    assert f"{len(expected)} screenshots in {out}/" in done.stdout
