"""Shared fixtures: one real redis-server per test session, flushed before each test.

Each test that asks for an app gets a fresh one (make_app), and building one is most of a
short test's time (werkzeug compiles every route's URL builder). A table of rows that only
read, or that are refused and store nothing, is therefore one test whose rows are subtests
(pytest's `subtests` fixture) on one app; rows that change what the next would see stay
parametrized tests of their own."""

from __future__ import annotations

import functools

import jinja2
import pytest
from click.testing import CliRunner
from hypothesis import settings

from membership import create_app
from membership.cli import cli
from membership.core.config import DEFAULT_MEMBER_STATUSES, ENV_VARS
from membership.ledger import Ledger
from membership.store import Keys, connect
from tests.support.fake_stripe import STRIPE_KEY, FakeStripe
from tests.support.processes import RedisServer
from tests.support.redis_topologies import Cluster, SentinelSetup
from tests.support.settings import SECRET_KEY
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


TOPOLOGIES = ("single", "cluster", "sentinel")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "topologies(*names): run on each Redis topology named (default: single, cluster, "
        "sentinel) through the redis_server fixture",
    )


def _rank(item) -> int:
    if item.get_closest_marker("slow"):
        return 0
    return 1 if item.get_closest_marker("browser") else 2


def pytest_collection_modifyitems(items):
    """The long tests first: the modules with a `slow` test, then those with a browser test,
    then the rest, each module whole and in the order collected. Under pytest-xdist's
    worksteal (pyproject's addopts) an idle worker takes the end of the busiest one's queue,
    so with the long tests at the front the run ends on short tests, not on a long one that
    the other workers wait for."""
    module_rank: dict = {}
    for item in items:
        module_rank[item.module] = min(module_rank.get(item.module, 2), _rank(item))
    items.sort(key=lambda item: module_rank[item.module])  # stable: collected order kept


def pytest_generate_tests(metafunc):
    """A test marked `topologies` runs once per topology it names; tests on `own_redis`
    (a private single server they kill) stay on it."""
    marker = metafunc.definition.get_closest_marker("topologies")
    if marker is None or "redis_server" not in metafunc.fixturenames:
        return
    if "own_redis" in metafunc.fixturenames:
        return
    metafunc.parametrize("redis_server", marker.args or TOPOLOGIES, indirect=True)


@pytest.fixture(scope="session")
def redis_single():
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster():
    """Three primaries, started once per worker."""
    cluster = Cluster().start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def redis_sentinel():
    """A primary, a replica and three Sentinels, started once per worker."""
    setup = SentinelSetup().start()
    yield setup
    setup.stop()


@pytest.fixture
def redis_server(request):
    """The Redis the test's app uses: the single server, or each topology the test's
    `topologies` mark names in turn."""
    return request.getfixturevalue(f"redis_{getattr(request, 'param', 'single')}")


@pytest.fixture
def redis_url(redis_server):
    redis_server.flush()
    return redis_server.url


@pytest.fixture
def r(redis_url, redis_client):
    """redis_client, on the Redis that redis_url has just flushed."""
    return redis_client


@pytest.fixture
def redis_conn(redis_url):
    """A client made as the service makes its own (membership.store.connect), Redis flushed."""
    client = connect(redis_url)
    yield client
    client.close()


@pytest.fixture
def keys():
    """The key names under the prefix "test", for tests that use Redis without an app."""
    return Keys("test")


@pytest.fixture
def ledger(redis_conn, keys):
    """The ledger on `redis_conn` under `keys`, counting the default member statuses."""
    return Ledger.on(redis_conn, keys, DEFAULT_MEMBER_STATUSES)


@pytest.fixture
def own_redis():
    """A private redis-server for tests that kill or restart it."""
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def compiled_templates(tmp_path_factory):
    """Jinja's bytecode cache (keyed by each template's source), shared by the session's apps:
    each app would otherwise compile every page it renders again."""
    return jinja2.FileSystemBytecodeCache(str(tmp_path_factory.mktemp("jinja")))


@pytest.fixture
def make_app(tmp_path, redis_url, compiled_templates):
    def make(*, start_embedded_redis=False, **overrides):
        config = {
            "redis_url": redis_url,
            "data_dir": tmp_path / "var",
            "stripe_webhook_secrets": (WEBHOOK_SECRET,),
            "secret_key": SECRET_KEY,
        }
        config.update(overrides)
        app = create_app(config, start_embedded_redis=start_embedded_redis)
        app.testing = True
        app.jinja_env.bytecode_cache = compiled_templates
        return app

    return make


@pytest.fixture
def outage_app(make_app, own_redis):
    """make_app on own_redis, the private Redis a test kills and starts again; keyword
    settings as make_app's."""
    return functools.partial(make_app, redis_url=own_redis.url)


@pytest.fixture
def membership_cli(redis_url, tmp_path):
    """`membership ARGS` through click's CliRunner, on the flushed test Redis with a data
    directory of the test's own; `env` adds settings, other keywords go to CliRunner.invoke
    (`input`, `catch_exceptions`). Returns the click Result."""
    base = {"REDIS_URL": redis_url, "MEMBERSHIP_DATA_DIR": str(tmp_path / "var")}

    def invoke(*args, env=None, **options):
        return CliRunner().invoke(cli, list(args), env={**base, **(env or {})}, **options)

    return invoke


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def redis_client(redis_server):
    client = redis_server.client()
    yield client
    client.close()


@pytest.fixture
def fake_stripe():
    """The fake Stripe API (tests/support/fake_stripe.py), taking any test key."""
    server = FakeStripe().start()
    yield server
    server.stop()


@pytest.fixture
def priced_stripe():
    """The fake Stripe API for STRIPE_KEY only, with a monthly, a yearly and a one-time price."""
    server = FakeStripe(api_key=STRIPE_KEY).start()
    server.add_price("price_monthly", 500, interval="month")
    server.add_price("price_yearly", 5000, interval="year")
    server.add_price("price_once", 2500, interval=None)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium through Playwright, one per test session (per worker)."""
    from pathlib import Path

    from tests.support.staff_browser import CHROMIUM, launch_chromium

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (scripts/test.sh does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p)
        yield browser
        browser.close()


def pytest_sessionfinish(session, exitstatus):
    from tests.support.staff_browser import stop_site

    stop_site()
