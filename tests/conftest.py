"""Shared fixtures: one real redis-server per test session, flushed before each test."""

from __future__ import annotations

import pytest
from hypothesis import settings

from membership import create_app
from membership.core.config import ENV_VARS
from tests.support.processes import RedisServer
from tests.support.stripe_payloads import (
    WEBHOOK_SECRET,  # the secret every test app is configured with
)

# Properties are tested, not how long an example takes: the suite runs on every core of a
# loaded machine, where an example's time varies far past hypothesis's 200 ms deadline.
settings.register_profile("membership", deadline=None)
settings.load_profile("membership")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    """The host's settings never leak into a test."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server):
    if redis_server.process.poll() is not None:  # a test killed it: bring it back
        redis_server.start()
    redis_server.client().flushall()
    return redis_server.url


@pytest.fixture
def own_redis():
    """A private redis-server for tests that kill or restart it."""
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def make_app(tmp_path, redis_url):
    def make(*, start_embedded_redis=False, **overrides):
        config = {
            "redis_url": redis_url,
            "data_dir": tmp_path / "var",
            "stripe_webhook_secrets": (WEBHOOK_SECRET,),
            "secret_key": "test-secret-key-0123456789",
        }
        config.update(overrides)
        app = create_app(config, start_embedded_redis=start_embedded_redis)
        app.testing = True
        return app

    return make


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def redis_client(redis_server):
    return redis_server.client()


CHROMIUM = "/usr/bin/chromium"  # Debian's; scripts/test.sh installs it (never `playwright install`)


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium through Playwright, one per test module."""
    from pathlib import Path

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (scripts/test.sh does)")
    from playwright.sync_api import sync_playwright

    from tests.support.staff_browser import site_port

    # staff.test: the local server of the staff pages' browser tests
    # (tests/support/staff_browser.py)
    staff = f"--host-resolver-rules=MAP staff.test 127.0.0.1:{site_port()}"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                staff,
            ],
        )
        yield browser
        browser.close()


def pytest_sessionfinish(session, exitstatus):
    from tests.support.staff_browser import stop_site

    stop_site()
