"""Member fixtures: a module's `make` builds its app; the keys are the app's own."""

from __future__ import annotations

import pytest

from membership.store import Keys


@pytest.fixture
def keys():
    """The keys of an app with the default prefix: what the member tests' apps write."""
    return Keys()


@pytest.fixture
def app(make):
    """The app of the module's `make`, with its defaults."""
    return make()
