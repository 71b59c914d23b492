def test_healthz_answers_while_the_process_is_up(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_is_200_when_redis_answers(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ready"


def test_readyz_turns_503_when_redis_dies_and_recovers(outage_app, own_redis):
    client = outage_app().test_client()
    assert client.get("/readyz").status_code == 200

    own_redis.kill()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()
    error = response.get_json()["error"]
    assert error["code"] == "not_ready"
    assert "Redis" in error["message"]
    assert client.get("/healthz").status_code == 200  # the process itself is fine

    own_redis.start()
    assert client.get("/readyz").status_code == 200


def test_readyz_names_no_host_and_logs_the_detail_once_per_change(outage_app, own_redis, caplog):
    import logging

    from membership.core import health

    client = outage_app().test_client()
    assert client.get("/readyz").status_code == 200
    own_redis.kill()
    with caplog.at_level(logging.INFO, logger=health.__name__):
        answers = [client.get("/readyz") for _ in range(3)]
        own_redis.start()
        assert client.get("/readyz").status_code == 200
        assert client.get("/readyz").status_code == 200
    for response in answers:
        assert response.status_code == 503
        assert response.get_json()["error"]["message"] == health.UNREACHABLE
        assert str(own_redis.port) not in response.get_data(as_text=True)
    records = [r for r in caplog.records if r.name == health.__name__]
    assert [r.levelname for r in records] == ["WARNING", "INFO"]
    assert f"127.0.0.1:{own_redis.port}" in records[0].getMessage()


def test_a_refusing_redis_gets_its_own_fixed_sentence():
    from membership.core import health

    assert health.public_reason("Redis is unreachable: Error 111 connecting to h:1") == (
        health.UNREACHABLE
    )
    assert health.public_reason("Redis answered with an error: NOAUTH at 10.0.0.1") == (
        health.REFUSING
    )
    assert health.public_reason("anything else at all") == health.REFUSING


def test_a_redis_refusing_writes_for_its_disk_says_so():
    """Redis refuses PING with MISCONF while it cannot persist writes (a full disk):
    tests/system/test_full_disk.py has the real one."""
    from membership.core import health
    from membership.core.errors import REFUSES_WRITES

    reason = f"{REFUSES_WRITES}: MISCONF Errors writing to the AOF file: No space left on device"
    assert health.public_reason(reason) == health.DISK_FULL
    assert "disk is full" in health.DISK_FULL and "reads are served" in health.DISK_FULL
