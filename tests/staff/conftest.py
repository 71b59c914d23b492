"""Staff fixtures: an app with one account per role, and a clock set by hand."""

from __future__ import annotations

import pytest

from tests.support.clock import Clock
from tests.support.staff import FAST, with_role_accounts


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def app(make_app):
    """viewer@, editor@ and admin@news.example (password GOOD), a fast hasher, HTTP cookies."""
    return with_role_accounts(make_app(staff_hasher=FAST, staff_insecure_cookies=True))
