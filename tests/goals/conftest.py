"""Goals and banner fixtures: apps on a Redis of their own, for the banner's outages."""

from __future__ import annotations

import functools

import pytest


@pytest.fixture
def outage_app(make_app, own_redis):
    """make_app on own_redis, the private Redis a test kills and starts again; keyword
    settings as make_app's."""
    return functools.partial(make_app, redis_url=own_redis.url)
