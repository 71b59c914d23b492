def test_healthz_answers_while_the_process_is_up(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_is_200_when_redis_answers(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ready"


def test_readyz_turns_503_when_redis_dies_and_recovers(make_app, own_redis):
    client = make_app(redis_url=own_redis.url).test_client()
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
