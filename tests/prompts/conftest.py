"""Prompts fixtures: the token signer the test apps share."""

from __future__ import annotations

import pytest

from membership.prompts.tokens import Tokens
from tests.support.settings import SECRET_KEY


@pytest.fixture
def tokens():
    """The Tokens of every test app (its SECRET_KEY): decision tokens to send, or to read
    from a prompt's answer."""
    return Tokens(SECRET_KEY)
