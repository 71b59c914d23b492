"""Stripe fixtures: events arrive through the app, so the keys are the app's."""

from __future__ import annotations

import pytest

from membership.core.runtime import runtime


@pytest.fixture
def keys(app):
    """The keys the app (tests/conftest.py's) writes under."""
    return runtime(app).keys
