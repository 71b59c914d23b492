import pytest

from membership.store import Keys, redacted
from membership.store.embedded import EmbeddedRedis


def test_every_key_shares_one_hash_tag():
    keys = Keys("kyiv")
    names = [getattr(keys, name) for name in dir(Keys) if isinstance(getattr(Keys, name), property)]
    assert names
    for name in names:
        assert name.startswith("{kyiv}:")


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
    from membership.runtime import runtime

    caplog.set_level("INFO")
    app = create_app({"data_dir": tmp_path / "var"})
    rt = runtime(app)
    try:
        assert rt.embedded is not None
        assert rt.redis.ping()
        assert app.test_client().get("/readyz").status_code == 200
        assert "using embedded Redis" in caplog.text
    finally:
        rt.redis.close()
        rt.embedded.stop()
