"""Store fixtures: the service's app on the Redis topologies it supports."""

from __future__ import annotations

import pytest


@pytest.fixture
def service_app(make_app):
    """make_app on `url` under `prefix`, answering its errors as the service does rather
    than raising them into the test: the cluster's and the Sentinels' end-to-end runs."""

    def build(url: str, prefix: str):
        app = make_app(redis_url=url, redis_prefix=prefix)
        app.testing = False
        return app

    return build
