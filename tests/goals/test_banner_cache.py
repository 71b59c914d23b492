"""The banner's micro-cache and its last good value, against real redis-servers."""

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from membership.core.runtime import runtime
from membership.goals import banner
from membership.goals import rules as goal_rules
from membership.goals import store as goals
from membership.goals.cache import LastGood, Snapshot
from membership.goals.rules import Goal
from tests.support.member_count import set_member_count
from tests.support.processes import REPO, ServiceProcess

pytestmark = pytest.mark.topologies  # each test on a single server, a Cluster and Sentinel

GOALS_LOGGERS = ("membership.goals.banner", "membership.goals.cache")


def _hgetall_calls(client) -> int:
    return int(client.info("commandstats").get("cmdstat_hgetall", {}).get("calls", 0))


def _cache(app):
    with app.app_context():
        return banner.cache()


@pytest.mark.topologies("single")  # INFO commandstats of the one server it asks
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


def test_stale_when_redis_dies_then_fresh_again(outage_app, own_redis):
    app = outage_app(banner_refresh_seconds=0, banner_retry_seconds=0)
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


def test_outage_does_not_hammer_redis(outage_app, own_redis):
    app = outage_app(banner_refresh_seconds=0)  # retry stays 1 s
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


def test_another_process_newer_value_is_served_when_redis_dies(outage_app, own_redis, tmp_path):
    shared = tmp_path / "shared"
    a = outage_app(data_dir=shared, banner_refresh_seconds=0)
    b = outage_app(data_dir=shared, banner_refresh_seconds=0)
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


def test_a_new_process_serves_the_last_good_value_while_redis_is_down(outage_app, own_redis):
    first = outage_app()
    keys = runtime(first).keys
    set_member_count(own_redis.client(), keys, 25012)
    goals.add(own_redis.client(), keys, goal_rules.parse_goal({"target": 30000}), actor="test")
    assert first.test_client().get("/v1/banner").status_code == 200
    own_redis.kill()

    restarted = outage_app()  # nothing in its memory
    response = restarted.test_client().get("/v1/banner?locale=uk")
    assert response.status_code == 200
    body = response.get_json()
    assert body["stale"] is True
    assert body["count"] == 25012
    assert body["goal"]["target"] == 30000


def test_503_when_nothing_was_ever_seen(outage_app, own_redis):
    app = outage_app()
    own_redis.kill()
    response = app.test_client().get("/v1/banner", headers={"Origin": "https://x.example"})
    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()
    assert response.headers["Cache-Control"] == "no-store"
    assert response.get_json()["error"]["code"] == "banner_unavailable"


def test_a_fresh_install_says_no_member_was_counted_yet_and_logs_it_once(make_app, caplog):
    app = make_app(banner_refresh_seconds=0, banner_retry_seconds=0)
    client = app.test_client()
    with caplog.at_level("INFO"):
        answers = [client.get("/v1/banner") for _ in range(20)]
    assert {a.status_code for a in answers} == {503}
    message = answers[0].get_json()["error"]["message"]
    assert "no member has been counted yet" in message
    assert "cannot be read" not in message
    assert answers[0].headers["Retry-After"].isdigit()
    banner_lines = [r for r in caplog.records if r.name.startswith(GOALS_LOGGERS)]
    assert len(banner_lines) == 1, [r.getMessage() for r in banner_lines]
    assert "no member has been counted yet" in banner_lines[0].getMessage()


def test_redis_down_before_any_count_says_so(outage_app, own_redis, caplog):
    app = outage_app(banner_refresh_seconds=0, banner_retry_seconds=0)
    own_redis.kill()
    client = app.test_client()
    with caplog.at_level("INFO"):
        answers = [client.get("/v1/banner") for _ in range(5)]
    assert {a.status_code for a in answers} == {503}
    assert "cannot be read" in answers[0].get_json()["error"]["message"]
    assert len([r for r in caplog.records if r.name.startswith(GOALS_LOGGERS)]) == 1


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
    old = Snapshot(1, "t1", version=1)
    new = Snapshot(2, "t2", (Goal(id=1, target=5, reached_at="t1"),), version=2)
    store.save(new, seen_at=200.0)
    store.save(old, seen_at=300.0)  # a slower process saw an older value: not written
    assert store.load() == new
    store.save(Snapshot(3, "t3", version=3), seen_at=100.0)  # newer data, whatever the clock
    assert store.load().count == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "banner-membership.json",
        "banner-membership.lock",
    ]


def _file(count=25012, version=7, goals_=None, **snapshot):
    body = {
        "version": version,
        "count": count,
        "changed_at": "2026-11-25T19:00:00Z",
        "goals": goals_ if goals_ is not None else [],
        **snapshot,
    }
    return json.dumps({"seen_at": 1.0, "snapshot": body})


GOAL = {"id": 1, "target": 30000, "deadline": None, "name": "Winter", "copy": {}}

CORRUPT_FILES = {
    "not json": "{not json",
    "truncated": _file()[:40],
    "empty": "",
    "a list": "[]",
    "no snapshot": json.dumps({"seen_at": 1}),
    "negative count": _file(count=-4),
    "count 1e999": _file().replace('"count": 25012', '"count": 1e999'),
    "count Infinity": _file().replace('"count": 25012', '"count": Infinity'),
    "count NaN": _file().replace('"count": 25012', '"count": NaN'),
    "count as text": _file(count="12"),
    "count true": _file(count=True),
    "count 1.9": _file(count=1.9),
    "count null": _file(count=None),
    "count beyond Redis": _file(count=2**64),
    "version as text": _file(version="8"),
    "version -1": _file(version=-1),
    "version 1.5": _file(version=1.5),
    "version true": _file(version=True),
    "no version": _file(version=None),
    "changed_at a number": _file(changed_at=5),
    "changed_at a control character": _file(changed_at="2026\x1b[2J"),
    "goals an object": _file(goals_={"1": GOAL}),
    "goal a string": _file(goals_=["goal"]),
    "goal target text": _file(goals_=[{**GOAL, "target": "30000"}]),
    "goal target 0": _file(goals_=[{**GOAL, "target": 0}]),
    "goal without id": _file(goals_=[{k: v for k, v in GOAL.items() if k != "id"}]),
    "goal name a number": _file(goals_=[{**GOAL, "name": 7}]),
    "copy not text": _file(goals_=[{**GOAL, "copy": {"en": {"headline": 5}}}]),
    "copy a list": _file(goals_=[{**GOAL, "copy": {"en": ["x"]}}]),
    "copy unknown placeholder": _file(goals_=[{**GOAL, "copy": {"en": {"cta": "{secret}"}}}]),
    "copy unknown locale": _file(goals_=[{**GOAL, "copy": {"xx": {"cta": "Join"}}}]),
    "not UTF-8": b"\xff\xfe{}",
    "lineage a number": _file(lineage=7),
    "marks an object": _file()[:-1] + ', "marks": {"a": 1}}',
    "marks not pairs": _file()[:-1] + ', "marks": [["a", 1, 2]]}',
    "mark a text version": _file()[:-1] + ', "marks": [["a", "1"]]}',
    "retired a string": _file()[:-1] + ', "retired": "abc"}',
    "retired a number": _file()[:-1] + ', "retired": [5]}',
    "retired empty text": _file()[:-1] + ', "retired": [""]}',
}


def test_a_sound_last_good_file_is_read(tmp_path):
    store = LastGood(tmp_path, "membership")
    store.path.write_text(_file(goals_=[{**GOAL, "copy": {"en": {"cta": "Join {publication}"}}}]))
    loaded = store.load()
    assert (loaded.count, loaded.version, loaded.goals[0].target) == (25012, 7, 30000)


@pytest.mark.parametrize("content", CORRUPT_FILES.values(), ids=CORRUPT_FILES.keys())
def test_a_corrupt_last_good_file_is_ignored_with_a_warning(tmp_path, caplog, content):
    store = LastGood(tmp_path, "membership")
    if isinstance(content, bytes):
        store.path.write_bytes(content)
    else:
        store.path.write_text(content)
    with caplog.at_level("WARNING", logger="membership.goals.cache"):
        assert store.load() is None
    assert "ignoring unreadable last good banner" in caplog.text


@pytest.mark.parametrize(
    "content",
    [CORRUPT_FILES[k] for k in ("truncated", "count 1e999", "count as text", "copy not text")],
    ids=["truncated", "count 1e999", "count as text", "copy not text"],
)
def test_a_corrupt_file_never_breaks_the_banner(outage_app, own_redis, tmp_path, content):
    data_dir = tmp_path / "corrupt"
    data_dir.mkdir()
    (data_dir / "banner-membership.json").write_text(content)
    app = outage_app(
        data_dir=data_dir,
        banner_refresh_seconds=0,
        banner_retry_seconds=0,
    )
    client = app.test_client()
    own_redis.kill()  # nothing ever seen, and only a corrupt file: 503, not 500
    response = client.get("/v1/banner")
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "banner_unavailable"

    own_redis.start()
    set_member_count(own_redis.client(), runtime(app).keys, 4321)
    assert client.get("/v1/banner").get_json()["count"] == 4321
    (data_dir / "banner-membership.json").write_text(content)  # corrupted again, then an outage
    own_redis.kill()
    body = client.get("/v1/banner").get_json()
    assert (body["count"], body["stale"]) == (4321, True)  # from memory


_LOAD_PLANTED = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))  # bounded even when it fails
from pathlib import Path
from membership.goals.cache import LastGood, Snapshot
store = LastGood(Path(sys.argv[1]), "membership")
loaded = store.load()
try:
    store.save(Snapshot(count=3, changed_at=None, version=9))
    saved = "saved"
except OSError as exc:
    saved = type(exc).__name__
# VmHWM, this process's own peak: ru_maxrss would carry over the parent's from before exec.
peak_kb = next(
    int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")
)
print(loaded, saved, peak_kb // 1024)
"""


def _sparse(path, size=200 * 1024 * 1024):
    with open(path, "wb") as fh:
        fh.truncate(size)


PLANTED = {
    "file a FIFO": ("path", os.mkfifo),
    "file a symlink to /dev/zero": ("path", lambda p: p.symlink_to("/dev/zero")),
    "file a directory": ("path", lambda p: p.mkdir()),
    "file of 200 MB": ("path", _sparse),
    "lock a FIFO": ("_lock_path", os.mkfifo),
}


@pytest.mark.parametrize("where, plant", PLANTED.values(), ids=PLANTED.keys())
def test_what_is_planted_in_place_of_the_file_never_hangs_or_fills_memory(tmp_path, where, plant):
    plant(getattr(LastGood(tmp_path, "membership"), where))
    # In a child process, bounded: before, a FIFO blocked the read (or the lock) forever,
    # /dev/zero was read until memory ran out, and a 200 MB file was read whole.
    result = subprocess.run(
        [sys.executable, "-c", _LOAD_PLANTED, str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    loaded, _, peak_mb = result.stdout.split()
    assert loaded == "None"
    assert "ignoring unreadable last good banner" in result.stderr or where == "_lock_path"
    assert int(peak_mb) < 150


def _outage_banner(app, own_redis):
    own_redis.kill()
    return app.test_client().get("/v1/banner").get_json()


def test_a_file_dated_tomorrow_with_an_older_version_loses(outage_app, own_redis, tmp_path):
    """Today a file's seen_at from a clock stepped forward beat every newer value."""
    data_dir = tmp_path / "var"
    app = outage_app(data_dir=data_dir, banner_refresh_seconds=0)
    keys = runtime(app).keys
    set_member_count(own_redis.client(), keys, 100, "2026-11-25T19:00:00Z")
    assert app.test_client().get("/v1/banner").get_json()["count"] == 100
    old = LastGood(data_dir, "membership").load()
    set_member_count(own_redis.client(), keys, 150, "2026-11-25T19:05:00Z")
    assert app.test_client().get("/v1/banner").get_json()["count"] == 150
    # A process whose clock runs a day ahead wrote the older value (as the old format did).
    path = data_dir / "banner-membership.json"
    path.write_text(json.dumps({"seen_at": time.time() + 86400, "snapshot": old.to_json()}))

    body = _outage_banner(app, own_redis)
    assert (body["count"], body["stale"]) == (150, True)


def test_a_copied_data_dir_with_an_older_version_loses_to_memory(outage_app, own_redis, tmp_path):
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    app = outage_app(data_dir=here, banner_refresh_seconds=0)
    other = outage_app(data_dir=elsewhere, banner_refresh_seconds=0)
    keys = runtime(app).keys
    set_member_count(own_redis.client(), keys, 100)
    assert other.test_client().get("/v1/banner").get_json()["count"] == 100
    set_member_count(own_redis.client(), keys, 150)
    assert app.test_client().get("/v1/banner").get_json()["count"] == 150
    # An operator copies an old data directory over this one, its files freshly dated.
    copied = (elsewhere / "banner-membership.json").read_text()
    (here / "banner-membership.json").write_text(copied)

    body = _outage_banner(app, own_redis)
    assert (body["count"], body["stale"]) == (150, True)
    # and the newer value is written back, never replaced by the older one
    assert LastGood(here, "membership").load().count == 150


def test_a_newer_version_in_the_file_wins_whatever_its_date(outage_app, own_redis, tmp_path):
    data_dir = tmp_path / "var"
    app = outage_app(data_dir=data_dir, banner_refresh_seconds=0)
    set_member_count(own_redis.client(), runtime(app).keys, 100)
    assert app.test_client().get("/v1/banner").get_json()["count"] == 100
    mine = LastGood(data_dir, "membership").load()
    newer = Snapshot(140, mine.changed_at, (), mine.version + 1, mine.lineage)  # same history
    path = data_dir / "banner-membership.json"
    path.write_text(json.dumps({"seen_at": 0, "snapshot": newer.to_json()}))  # dated 1970
    body = _outage_banner(app, own_redis)
    assert (body["count"], body["stale"]) == (140, True)


def test_every_change_of_the_count_or_the_goals_steps_the_version(make_app, redis_client):
    from membership.goals.cache import read_snapshot
    from membership.ledger import ledger_for
    from membership.ledger.rebuild import rebuild

    app = make_app()
    rt = runtime(app)
    keys = rt.keys
    versions = []

    def version():
        return read_snapshot(redis_client, keys).version

    writer = ledger_for(rt).writer
    writer.add_offline_member("a@example.org", "gift", actor="test")  # count None -> 1
    versions.append(version())
    writer.add_offline_member("b@example.org", "gift", actor="test")  # 1 -> 2
    versions.append(version())
    goal = goals.add(redis_client, keys, goal_rules.parse_goal({"target": 3}), actor="test")
    versions.append(version())
    writer.add_offline_member("c@example.org", "gift", actor="test")  # 2 -> 3, marks the goal
    versions.append(version())
    assert versions[-1] == versions[-2] + 2  # the count's change, then the goal's mark
    assert read_snapshot(redis_client, keys).goals[0].reached_at is not None
    goals.mark_reached(redis_client, keys, 3, "2026-11-25T19:00:00Z")  # nothing left to mark
    assert version() == versions[-1]
    assert goals.remove(redis_client, keys, goal.id, actor="test")
    versions.append(version())
    redis_client.set(keys.member_count, 7)  # garbled by hand; a rebuild sets it right
    rebuild(redis_client, keys, rt.settings.member_statuses, actor="test")
    versions.append(version())
    assert versions == sorted(set(versions)), versions  # strictly increasing
    assert read_snapshot(redis_client, keys).count == 3
