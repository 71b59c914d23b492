"""HTTP fixtures: the service as the publication's own pages call it."""

from __future__ import annotations

import pytest


@pytest.fixture
def site_client(make_app):
    """A client of an app that lets https://news.example, the publication's site, call it
    from its pages (CORS)."""
    return make_app(allowed_origins=("https://news.example",)).test_client()
