"""The banner's micro-cache and its last good value, against real redis-servers."""

import json
import threading
import time

import pytest

from membership import banner, goals
from membership.banner_cache import LastGood, Snapshot
from membership.goals import Goal
from membership.runtime import runtime
from tests.member_count import set_member_count
from tests.processes import ServiceProcess


def _hgetall_calls(client) -> int:
    return int(client.info("commandstats").get("cmdstat_hgetall", {}).get("calls", 0))


def _cache(app):
    with app.app_context():
        return banner.cache()


def test_many_requests_cost_one_redis_read(make_app, redis_client):
    app = make_app()
    set_member_count(redis_client, runtime(app).keys, 25012)
    client = app.test_client()
    before = _hgetall_calls(redis_client)
    started = time.monotonic()
    for _ in range(200):
        assert client.get("/v1/banner").status_code == 200
    elapsed = time.monotonic() - started
    reads = _cache(app).reads
    assert reads <= 1 + int(elapsed / 0.9)
    # each read is one MULTI with two HGETALLs (goals, reached)
    assert _hgetall_calls(redis_client) - before == 2 * reads


def test_a_change_shows_within_one_second(make_app, redis_client):
    app = make_app()
    keys = runtime(app).keys
    set_member_count(redis_client, keys, 100)
    client = app.test_client()
    assert client.get("/v1/banner").get_json()["count"] == 100
    set_member_count(redis_client, keys, 101, "2026-11-25T19:01:00Z")
    changed = time.monotonic()
    while True:
        began = time.monotonic() - changed  # judge a request by when it began, not ended
        if client.get("/v1/banner").get_json()["count"] == 101:
            break
        assert began < 1.0, f"a request {began:.2f} s after the change still had the old count"
        time.sleep(0.01)
    assert client.get("/v1/banner").get_json()["updated_at"] == "2026-11-25T19:01:00Z"


def test_concurrent_threads_share_one_read_and_agree(make_app, redis_client):
    app = make_app()
    set_member_count(redis_client, runtime(app).keys, 777)
    results, errors = [], []

    def worker():
        client = app.test_client()
        try:
            for _ in range(50):
                response = client.get("/v1/banner?locale=uk")
                results.append((response.status_code, response.headers["ETag"]))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    elapsed = time.monotonic() - started
    assert not errors
    assert len(results) == 400
    assert {status for status, _ in results} == {200}
    assert len({etag for _, etag in results}) == 1
    assert _cache(app).reads <= 1 + int(elapsed / 0.9)


def test_stale_when_redis_dies_then_fresh_again(make_app, own_redis):
    app = make_app(redis_url=own_redis.url, banner_refresh_seconds=0, banner_retry_seconds=0)
    set_member_count(own_redis.client(), runtime(app).keys, 25012)
    client = app.test_client()
    fresh = client.get("/v1/banner?locale=uk")
    assert fresh.get_json()["stale"] is False

    own_redis.kill()
    stale = client.get("/v1/banner?locale=uk")
    assert stale.status_code == 200
    body = stale.get_json()
    assert body["stale"] is True
    assert body["count"] == 25012  # never a false zero
    assert body["updated_at"] == fresh.get_json()["updated_at"]
    assert stale.headers["ETag"] != fresh.headers["ETag"]
    assert "stale-if-error=86400" in stale.headers["Cache-Control"]

    own_redis.start()  # back, but empty (a lost volume): still the last good count
    emptied = client.get("/v1/banner?locale=uk").get_json()
    assert (emptied["count"], emptied["stale"]) == (25012, True)

    set_member_count(own_redis.client(), runtime(app).keys, 25013)
    again = client.get("/v1/banner?locale=uk").get_json()
    assert again["stale"] is False
    assert again["count"] == 25013


def test_outage_does_not_hammer_redis(make_app, own_redis):
    app = make_app(redis_url=own_redis.url, banner_refresh_seconds=0)  # retry stays 1 s
    set_member_count(own_redis.client(), runtime(app).keys, 5)
    client = app.test_client()
    client.get("/v1/banner")
    own_redis.kill()
    reads_before = _cache(app).reads
    started = time.monotonic()
    for _ in range(100):
        assert client.get("/v1/banner").get_json()["stale"] is True
    elapsed = time.monotonic() - started
    assert _cache(app).reads - reads_before <= 1 + int(elapsed / 1.0)


def test_another_process_newer_value_is_served_when_redis_dies(make_app, own_redis, tmp_path):
    shared = tmp_path / "shared"
    a = make_app(redis_url=own_redis.url, data_dir=shared, banner_refresh_seconds=0)
    b = make_app(redis_url=own_redis.url, data_dir=shared, banner_refresh_seconds=0)
    keys = runtime(a).keys
    set_member_count(own_redis.client(), keys, 100, "2026-11-25T19:00:00Z")
    assert b.test_client().get("/v1/banner").get_json()["count"] == 100
    set_member_count(own_redis.client(), keys, 150, "2026-11-25T19:05:00Z")
    assert a.test_client().get("/v1/banner").get_json()["count"] == 150

    own_redis.kill()
    body = b.test_client().get("/v1/banner").get_json()
    assert body["stale"] is True
    assert body["count"] == 150  # newer than b's own memory: a saw it
    assert body["updated_at"] == "2026-11-25T19:05:00Z"


def test_a_new_process_serves_the_last_good_value_while_redis_is_down(make_app, own_redis):
    first = make_app(redis_url=own_redis.url)
    keys = runtime(first).keys
    set_member_count(own_redis.client(), keys, 25012)
    goals.add(own_redis.client(), keys, goals.parse_goal({"target": 30000}), actor="test")
    assert first.test_client().get("/v1/banner").status_code == 200
    own_redis.kill()

    restarted = make_app(redis_url=own_redis.url)  # nothing in its memory
    response = restarted.test_client().get("/v1/banner?locale=uk")
    assert response.status_code == 200
    body = response.get_json()
    assert body["stale"] is True
    assert body["count"] == 25012
    assert body["goal"]["target"] == 30000


def test_503_when_nothing_was_ever_seen(make_app, own_redis):
    app = make_app(redis_url=own_redis.url)
    own_redis.kill()
    response = app.test_client().get("/v1/banner", headers={"Origin": "https://x.example"})
    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()
    assert response.headers["Cache-Control"] == "no-store"
    assert response.get_json()["error"]["code"] == "banner_unavailable"


@pytest.mark.slow
def test_served_process_restarted_while_redis_is_down_serves_stale(own_redis, tmp_path):
    env = {"REDIS_URL": own_redis.url, "MEMBERSHIP_DATA_DIR": str(tmp_path / "var")}
    set_member_count(own_redis.client(), runtime_keys(), 4321)
    service = ServiceProcess(env, workers=2).start()
    try:
        assert _get_json(service.url + "/v1/banner")["count"] == 4321
    finally:
        service.stop()
    own_redis.kill()
    service = ServiceProcess(env, workers=2).start()
    try:
        for _ in range(6):  # whichever worker answers
            body = _get_json(service.url + "/v1/banner")
            assert body["stale"] is True
            assert body["count"] == 4321
    finally:
        service.stop()


def runtime_keys():
    from membership.store import Keys

    return Keys()


def _get_json(url):
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        return json.load(response)


# --- The last good value's file ----------------------------------------------------


def test_last_good_keeps_the_newest_and_leaves_no_temp_files(tmp_path):
    store = LastGood(tmp_path, "membership")
    assert store.load() is None
    old, new = Snapshot(1, "t1"), Snapshot(2, "t2", (Goal(id=1, target=5, reached_at="t1"),))
    store.save(new, seen_at=200.0)
    store.save(old, seen_at=100.0)  # a slower process saw an older value: not written
    assert store.load() == (new, 200.0)
    store.save(Snapshot(3, "t3"), seen_at=300.0)
    assert store.load()[0].count == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "banner-membership.json",
        "banner-membership.lock",
    ]


def test_a_corrupt_last_good_file_is_ignored(tmp_path):
    store = LastGood(tmp_path, "membership")
    store.path.write_text("{not json")
    assert store.load() is None
    store.path.write_text(json.dumps({"seen_at": 1, "snapshot": {"count": -4, "goals": []}}))
    assert store.load() is None
