import time

import pytest

from membership.core.health import is_healthy
from membership.store import UNAVAILABLE, Keys, connect, redacted
from membership.store.embedded import EmbeddedRedis


def test_every_key_shares_one_hash_tag():
    keys = Keys("kyiv")
    declared = {name: getattr(Keys, name) for name in dir(Keys) if not name.startswith("_")}
    declared = {name: key for name, key in declared.items() if hasattr(key, "template")}
    assert len(declared) > 50
    for name, key in declared.items():
        value = getattr(keys, name)
        value = value(*["x"] * key.arity) if key.arity else value
        assert value.startswith("{kyiv}:"), name


def test_redacted_hides_the_password():
    assert redacted("redis://:hunter2@host:6379/0") == "redis://:***@host:6379/0"
    assert redacted("redis://host:6379/0") == "redis://host:6379/0"


@pytest.fixture
def embedded(tmp_path):
    server = EmbeddedRedis(tmp_path / "var")
    yield server
    server.stop()


def test_embedded_redis_starts_and_keeps_data_across_a_restart(embedded):
    assert not embedded.is_running()
    embedded.ensure_running()
    assert embedded.started_here
    import redis

    client = redis.Redis.from_url(embedded.url)
    client.set("members", 25012)
    client.close()
    embedded.stop()
    assert not embedded.is_running()

    again = EmbeddedRedis(embedded.data_dir)
    again.ensure_running()
    assert again.started_here
    client = redis.Redis.from_url(again.url)
    assert client.get("members") == b"25012"
    client.close()


def test_a_second_process_reuses_the_running_server(embedded):
    embedded.ensure_running()
    other = EmbeddedRedis(embedded.data_dir)
    other.ensure_running()
    assert not other.started_here
    assert other.url == embedded.url


def test_long_data_dirs_put_the_socket_in_tmp(tmp_path):
    deep = tmp_path / ("d" * 120)
    server = EmbeddedRedis(deep)
    assert len(str(server.socket)) <= 100
    assert EmbeddedRedis(deep).socket == server.socket


def test_app_uses_embedded_redis_when_redis_url_is_unset(tmp_path, caplog):
    from membership import create_app
    from membership.core.runtime import runtime
    from membership.store.ownership import ServerLock

    caplog.set_level("INFO")
    lock = ServerLock(tmp_path / "var").acquire()  # this test plays `membership serve`
    owned = EmbeddedRedis(tmp_path / "var")
    owned.ensure_running(owner=True)
    try:
        app = create_app({"data_dir": tmp_path / "var"})
        rt = runtime(app)
        assert rt.embedded is not None and not rt.embedded.started_here
        assert rt.redis.ping()
        assert app.test_client().get("/readyz").status_code == 200
        assert "using embedded Redis" in caplog.text
        rt.redis.close()
    finally:
        owned.stop()
        lock.release()


def test_an_app_never_starts_the_embedded_redis_itself(tmp_path):
    from membership import create_app
    from membership.store.embedded import NoEmbeddedRedisOwner

    with pytest.raises(NoEmbeddedRedisOwner, match=r"set REDIS_URL .* `membership serve`"):
        create_app({"data_dir": tmp_path / "var"})
    assert not EmbeddedRedis(tmp_path / "var").is_running()
    assert not (tmp_path / "var" / "redis.pid").exists()


# --- REDIS_URL forms: one server, Sentinel, Cluster --------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2:26379/members/2",
            "redis+sentinel://:***@10.0.0.1:26379,10.0.0.2:26379/members/2",
        ),
        ("redis+cluster://app:p%40ss@a:7000,b:7001", "redis+cluster://app:***@a:7000,b:7001"),
        ("redis+cluster://a:7000,b:7001", "redis+cluster://a:7000,b:7001"),
        ("rediss://user:pw@host:6380/1", "rediss://user:***@host:6380/1"),
    ],
)
def test_redacted_hides_the_password_of_every_form(url, shown):
    assert redacted(url) == shown


def test_a_password_in_the_query_string_is_not_logged_at_start_up(caplog):
    """Found in review: redis-py takes `?password=` (the documented form for a unix socket),
    and the start-up line printed it whole."""
    import logging

    from membership.core.config import load_settings
    from membership.store import resolve_url

    url = "unix:///run/redis/redis.sock?db=0&password=hunter2-in-query"
    assert redacted(url) == "unix:///run/redis/redis.sock?db=0&password=***"
    assert redacted("redis://h:6379/0?Password=x&db=1") == "redis://h:6379/0?Password=***&db=1"
    with caplog.at_level(logging.INFO, logger="membership.store"):
        resolve_url(load_settings({}, {"redis_url": url}))
    assert "using Redis at" in caplog.text
    assert "hunter2" not in caplog.text


def test_a_sentinel_url_makes_a_client_of_the_named_primary():
    from redis.sentinel import SentinelConnectionPool

    client = connect("redis+sentinel://:pw@127.0.0.1:26379,127.0.0.1:26380/members/3")
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool) and pool.service_name == "members"
    kwargs = pool.connection_kwargs
    assert (kwargs["db"], kwargs["password"], kwargs["decode_responses"]) == (3, "pw", True)
    assert (kwargs["socket_connect_timeout"], kwargs["socket_timeout"]) == (1.0, 2.0)
    sentinels = pool.sentinel_manager.sentinels
    assert [s.connection_pool.connection_kwargs["port"] for s in sentinels] == [26379, 26380]
    assert all(s.connection_pool.connection_kwargs.get("password") is None for s in sentinels)


def test_unreachable_sentinels_and_clusters_are_unavailable_not_crashes():
    from tests.support.processes import free_port

    for url in (
        f"redis+sentinel://127.0.0.1:{free_port()}/members",
        f"redis+cluster://127.0.0.1:{free_port()}",
    ):
        client = connect(url)  # nothing is contacted yet: the service can start
        started = time.monotonic()
        with pytest.raises(UNAVAILABLE):
            client.get("anything")
        healthy, reason = is_healthy(client)
        assert not healthy and reason.startswith("Redis is unreachable")
        assert time.monotonic() - started < 1.0  # short timeouts, no long backoff
        client.close()


def test_a_patient_client_waits_longer_and_is_its_own(redis_url):
    from membership.store import patient_client
    from membership.store.client import PATIENT_READ_TIMEOUT, READ_TIMEOUT

    quick = connect(redis_url)
    with patient_client(redis_url) as patient:
        assert patient.ping()
        kwargs = patient.connection_pool.connection_kwargs
        assert kwargs["socket_timeout"] == PATIENT_READ_TIMEOUT > 60
        assert patient.connection_pool is not quick.connection_pool
    assert quick.connection_pool.connection_kwargs["socket_timeout"] == READ_TIMEOUT
