"""A listing piped into a program that stops reading (`membership events list | head -1`)
ends quietly with status 0: no "Broken pipe" error, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.processes import REPO


@pytest.mark.parametrize("args", [["stats"], ["events", "list"], ["goals", "list"]])
def test_a_reader_that_stops_reading_ends_the_listing_quietly(args, redis_url, tmp_path):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line: every write is EPIPE
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "MEMBERSHIP_"))}
    env |= {"REDIS_URL": redis_url, "MEMBERSHIP_DATA_DIR": str(tmp_path)}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "membership.cli", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            env=env,
            cwd=REPO,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
