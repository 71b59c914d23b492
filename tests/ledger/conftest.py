"""Ledger fixtures: the ledger on a clock set by hand, so tests can move time."""

from __future__ import annotations

import pytest

from membership.core.config import DEFAULT_MEMBER_STATUSES
from membership.ledger import Ledger
from tests.support.clock import Clock


@pytest.fixture
def clock():
    return Clock(1_795_600_000)  # 2026-11-25T...Z


@pytest.fixture
def ledger(redis_conn, keys, clock):
    """tests/conftest.py's ledger, on `clock`."""
    return Ledger.on(redis_conn, keys, DEFAULT_MEMBER_STATUSES, clock=clock)
