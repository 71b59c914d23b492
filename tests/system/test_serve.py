"""`membership serve` as the README's first command runs it: granian, embedded Redis."""

import json
import urllib.request

import pytest

pytestmark = pytest.mark.slow


def _get(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, json.load(response)


def test_serve_on_embedded_redis_then_stop_it_cleanly(serve, tmp_path):
    data_dir = tmp_path / "var"
    service = serve({"MEMBERSHIP_DATA_DIR": str(data_dir)})
    assert _get(service.url + "/healthz") == (200, {"status": "ok"})
    assert _get(service.url + "/readyz")[0] == 200
    assert (data_dir / "redis.sock").exists()
    service.stop()
    assert service.process.returncode == 0
    assert not (data_dir / "redis.sock").exists()  # the server that started it stopped it
    assert (data_dir / "appendonly.aof").exists()


def test_serve_with_redis_url(serve, redis_server, tmp_path):
    service = serve(
        {"REDIS_URL": redis_server.url, "MEMBERSHIP_DATA_DIR": str(tmp_path)}, workers=1
    )
    status, body = _get(service.url + "/readyz")
    assert status == 200
    assert body["redis"] == "ok"
    service.stop()
    assert "using Redis at redis://127.0.0.1" in service.log.read_text()


def test_a_worker_loads_the_app_then_freezes_it_out_of_the_collectors_sight():
    import gc

    from membership.cli.server import load_frozen

    before = gc.get_freeze_count()
    held = []
    try:
        app = load_frozen(lambda: held.append([object() for _ in range(1000)]) or "app")
        assert app == "app"
        assert gc.get_freeze_count() >= before + 1000  # what the load made is frozen
    finally:
        gc.unfreeze()
