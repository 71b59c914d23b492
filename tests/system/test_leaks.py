"""Nothing internal in a public answer: with Redis down (over TCP or a unix socket), no host,
port, socket path or exception text reaches a client of /readyz, /v1/banner or the webhook;
the detail goes to the log."""

from __future__ import annotations

import logging

import pytest

from membership.store import Keys
from tests.support import stripe_payloads as sp
from tests.support.member_count import set_member_count
from tests.support.processes import RedisServer


@pytest.fixture(params=["tcp", "unix"])
def dying_redis(request, own_redis):
    """(a running Redis, the strings that must never appear in a public answer)."""
    if request.param == "tcp":
        yield own_redis, ["127.0.0.1", str(own_redis.port), "localhost"]
        return
    server = RedisServer(unix_socket=True).start()
    try:
        yield server, [str(server.path), str(server.dir), "redis.sock", "membership-redis-"]
    finally:
        server.stop()


GENERIC = ["redis://", "unix://", "Errno", "ConnectionError", "Exception", "refused", "Traceback"]


def _public_text(response) -> str:
    headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    return headers + "\n" + response.get_data(as_text=True)


def _assert_clean(response, secrets: list[str]) -> None:
    text = _public_text(response)
    for secret in [*secrets, *GENERIC]:
        assert secret.lower() not in text.lower(), f"{secret!r} leaked in:\n{text}"


def _signed_event(i: int = 0):
    event = sp.subscription_event(sp.subscription(f"sub_{i}", f"cus_{i}", "active"))
    payload = sp.body(event)
    return payload, {"Stripe-Signature": sp.sign(payload)}


def test_no_internals_in_any_answer_while_redis_is_down(make_app, dying_redis, caplog, tmp_path):
    server, secrets = dying_redis
    set_member_count(server.client(), Keys(), 321)
    app = make_app(redis_url=server.url, banner_refresh_seconds=0.0)  # asks Redis every time
    client = app.test_client()
    assert client.get("/v1/banner").status_code == 200  # seen once: served stale later
    never_saw = make_app(redis_url=server.url, data_dir=tmp_path / "fresh").test_client()

    server.kill()
    with caplog.at_level(logging.INFO):
        answers = {
            "readyz": client.get("/readyz"),
            "banner (stale)": client.get("/v1/banner?locale=uk"),
            "banner (never seen)": never_saw.get("/v1/banner"),
        }
        payload, headers = _signed_event(1)
        answers["webhook"] = client.post(
            "/webhooks/stripe", data=payload, headers=headers, content_type="application/json"
        )
    assert answers["readyz"].status_code == 503
    assert answers["banner (stale)"].status_code == 200
    assert answers["banner (stale)"].get_json()["stale"] is True
    assert answers["banner (never seen)"].status_code == 503
    assert answers["webhook"].status_code == 503
    for name, response in answers.items():
        assert response.is_json, name
        _assert_clean(response, secrets)
    # The operator still learns where it failed: the detail is in the log.
    assert any(secrets[0] in r.getMessage() for r in caplog.records), caplog.text


def test_an_unexpected_error_says_nothing_of_its_cause(app, caplog):
    @app.get("/_test/bug")
    def bug():
        raise OSError("cannot open /srv/membership/var/secret_key on db-7.internal:6379")

    response = app.test_client().get("/_test/bug")
    assert response.status_code == 500
    _assert_clean(response, ["/srv/membership", "db-7.internal", "6379", "secret_key"])
    assert "db-7.internal" in caplog.text  # logged with its traceback for the operator
