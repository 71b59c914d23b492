"""CLI fixtures: the environment a `membership` command runs in."""

from __future__ import annotations

import pytest


@pytest.fixture
def env(redis_url, tmp_path):
    """REDIS_URL on the flushed test Redis and a data directory of the test's own."""
    return {"REDIS_URL": redis_url, "MEMBERSHIP_DATA_DIR": str(tmp_path / "var")}
