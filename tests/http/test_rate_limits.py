"""Rate limits on public POSTs: `limits` counting in the app's real Redis (single, Cluster,
Sentinel, or the embedded server's socket).

The limited route is registered only here (no public POST exists yet besides the webhook,
which is exempt); later endpoints use the same `@rate_limited(name)`.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from flask import current_app, jsonify, request
from limits._storage_scheme import parse_storage_uri
from limits.storage import storage_from_string

from membership.core.config import RATE_LIMIT_DEFAULTS, ConfigError, load_settings
from membership.http import rate_limits
from membership.http.rate_limits import client_address, rate_limited, storage_for
from tests.support import stripe_payloads as sp
from tests.support.redis_topologies import Cluster

NAME = "test_form"


def _add_route(app, name=NAME):
    @app.post("/_test/form")
    @rate_limited(name)
    def form():
        return jsonify(ok=True)

    return app


@pytest.fixture
def limited_app(make_app):
    return _add_route(make_app(rate_limit_test_form="3/minute"))


def _post(client, address="192.0.2.1", **kwargs):
    return client.post("/_test/form", environ_base={"REMOTE_ADDR": address}, **kwargs)


# --- Storage URIs: one per REDIS_URL form --------------------------------------------------


def test_redis_url_is_used_as_it_is():
    uri, options = storage_for("redis://:pw@10.0.0.5:6380/2", "membership")
    assert uri == "redis://:pw@10.0.0.5:6380/2"
    assert options["key_prefix"] == "membership:ratelimit"
    assert options["wrap_exceptions"] is True
    assert options["socket_timeout"] <= 2


def test_rediss_url_is_used_as_it_is():
    uri, _ = storage_for("rediss://cache.example.org:6379/0", "p")
    assert uri == "rediss://cache.example.org:6379/0"


def test_unix_socket_becomes_redis_plus_unix():
    uri, options = storage_for("unix:///var/run/redis/redis.sock?db=3", "p")
    assert uri == "redis+unix:///var/run/redis/redis.sock?db=3"
    storage = storage_from_string(uri, **options)
    kwargs = storage.storage.connection_pool.connection_kwargs
    assert kwargs["path"] == "/var/run/redis/redis.sock" and kwargs["db"] == 3


def test_sentinel_names_the_service_alone_and_passes_db_and_password_as_options():
    uri, options = storage_for("redis+sentinel://:p%40ss@10.0.0.1:26379,sentinel-2/mymaster/4", "p")
    assert uri == "redis+sentinel://10.0.0.1:26379,sentinel-2:26379/mymaster"
    assert options["password"] == "p@ss"  # unquoted: limits would not unquote it
    assert options["db"] == 4
    assert options["use_replicas"] is False
    assert options["sentinel_kwargs"]["password"] is None  # the data nodes' password only
    storage = storage_from_string(uri, **options)  # builds without connecting
    assert storage.service_name == "mymaster"
    primary = storage.sentinel.connection_kwargs
    assert primary["db"] == 4 and primary["password"] == "p@ss"
    assert storage.sentinel.sentinel_kwargs["password"] is None


def test_cluster_lists_every_node_with_its_port():
    uri, options = storage_for("redis+cluster://:secret@node-a:7000,[::1]:7001,node-c", "p")
    assert uri == "redis+cluster://node-a:7000,[::1]:7001,node-c:6379"
    assert parse_storage_uri(uri).locations == [("node-a", 7000), ("::1", 7001), ("node-c", 6379)]
    assert options["password"] == "secret"
    assert "db" not in options


def test_embedded_redis_is_counted_on_its_unix_socket(make_app):
    # The CLI's role: only it (and `membership serve`) may start the embedded Redis.
    app = _add_route(
        make_app(redis_url=None, rate_limit_test_form="2/minute", start_embedded_redis=True)
    )
    embedded = app.extensions["membership"].embedded
    try:
        assert embedded is not None and embedded.url.startswith("unix://")
        limits = app.extensions[rate_limits.EXTENSION]
        assert limits.uri == "redis+unix://" + embedded.url[len("unix://") :]
        client = app.test_client()
        assert [_post(client).status_code for _ in range(3)] == [200, 200, 429]
    finally:  # this test started it: leave no redis-server behind
        app.extensions["membership"].redis.close()
        if embedded is not None and embedded.started_here:
            embedded.stop()


# --- Behaviour on a real Redis -----------------------------------------------------------


def test_over_the_limit_is_a_json_429_with_retry_after(limited_app):
    client = limited_app.test_client()
    assert [_post(client).status_code for _ in range(3)] == [200, 200, 200]
    response = _post(client)
    assert response.status_code == 429
    assert response.is_json
    assert response.get_json()["error"]["code"] == "rate_limited"
    assert set(response.get_json()["error"]) == {"code", "message"}
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert f"{retry_after} s" in response.get_json()["error"]["message"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_each_address_has_its_own_budget(limited_app):
    client = limited_app.test_client()
    for _ in range(3):
        assert _post(client, "192.0.2.1").status_code == 200
    assert _post(client, "192.0.2.1").status_code == 429
    assert _post(client, "198.51.100.7").status_code == 200


def test_two_app_instances_on_one_redis_share_the_limit(make_app):
    first = _add_route(make_app(rate_limit_test_form="3/minute")).test_client()
    second = _add_route(make_app(rate_limit_test_form="3/minute")).test_client()
    assert _post(first).status_code == 200
    assert _post(second).status_code == 200
    assert _post(first).status_code == 200
    assert _post(second).status_code == 429
    assert _post(first).status_code == 429


def test_the_counters_live_under_the_apps_prefix(limited_app, redis_client):
    _post(limited_app.test_client())
    keys = redis_client.keys("*")
    assert keys and all(k.startswith("membership:ratelimit:") for k in keys), keys


def test_a_limit_can_be_turned_off(make_app):
    client = _add_route(make_app(rate_limit_test_form="off")).test_client()
    assert {_post(client).status_code for _ in range(10)} == {200}


def test_behind_trusted_proxies_the_address_they_saw_counts(make_app):
    app = _add_route(make_app(rate_limit_test_form="2/minute", trusted_proxy_hops=1))
    client = app.test_client()

    def via_proxy(forwarded):
        return _post(client, "10.0.0.2", headers={"X-Forwarded-For": forwarded})

    assert via_proxy("203.0.113.9").status_code == 200
    # A client cannot escape its budget by adding addresses of its own to the header.
    assert via_proxy("1.1.1.1, 203.0.113.9").status_code == 200
    assert via_proxy("2.2.2.2, 203.0.113.9").status_code == 429
    assert via_proxy("203.0.113.10").status_code == 200  # someone else behind the same proxy


def test_client_address():
    assert client_address({"REMOTE_ADDR": "192.0.2.1"}, 0) == "192.0.2.1"
    forwarded = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 192.0.2.1"}
    assert client_address(forwarded, 0) == "10.0.0.2"  # no proxy trusted: the header is ignored
    assert client_address(forwarded, 1) == "192.0.2.1"
    assert client_address(forwarded, 2) == "6.6.6.6"
    assert client_address({"REMOTE_ADDR": "10.0.0.2"}, 1) == "10.0.0.2"  # proxy bypassed
    v6 = client_address({"REMOTE_ADDR": "2001:db8:1:2:aaaa::1"}, 0)
    assert v6 == client_address({"REMOTE_ADDR": "2001:db8:1:2:bbbb::7"}, 0) == "2001:db8:1:2::/64"
    assert client_address({"REMOTE_ADDR": "::ffff:192.0.2.1"}, 0) == "192.0.2.1"


def test_a_port_written_by_the_proxy_is_not_a_new_budget():
    """Found in review: proxies that append the client's port (192.0.2.1:51234) gave each
    new connection a budget of its own."""
    for forwarded, expected in [
        ("192.0.2.1:51234", "192.0.2.1"),
        ("6.6.6.6, 192.0.2.1:443", "192.0.2.1"),
        ("[2001:db8:1:2::7]:51234", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::7", "2001:db8:1:2::/64"),
    ]:
        environ = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": forwarded}
        assert client_address(environ, 1) == expected, forwarded


def test_the_webhook_is_never_limited(make_app):
    tight = {f"rate_limit_{name}": "1/minute" for name in RATE_LIMIT_DEFAULTS}
    app = make_app(**tight, rate_limit_test_form="1/minute")
    client = app.test_client()
    statuses = []
    for i in range(25):
        event = sp.subscription_event(sp.subscription(f"sub_{i}", f"cus_{i}", "active"))
        payload = sp.body(event)
        response = client.post(
            "/webhooks/stripe",
            data=payload,
            headers={"Stripe-Signature": sp.sign(payload)},
            content_type="application/json",
        )
        statuses.append(response.status_code)
    assert statuses == [200] * 25


def test_a_redis_outage_fails_open_with_one_warning(outage_app, own_redis, caplog):
    app = _add_route(outage_app(rate_limit_test_form="1/minute"))
    client = app.test_client()
    assert _post(client).status_code == 200
    assert _post(client).status_code == 429

    own_redis.kill()
    with caplog.at_level(logging.INFO, logger=rate_limits.__name__):
        assert [_post(client).status_code for _ in range(3)] == [200, 200, 200]
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "not enforced" in warnings[0].getMessage()

        own_redis.start()  # empty again: the window starts over
        assert _post(client).status_code == 200
        assert _post(client).status_code == 429
    assert any("counted again" in r.getMessage() for r in caplog.records)


def test_an_unknown_name_is_a_programming_error_not_a_silent_pass(make_app, caplog):
    app = _add_route(make_app(), name="no_such_limit")
    response = _post(app.test_client())
    assert response.status_code == 500
    assert response.get_json()["error"]["code"] == "internal_error"
    assert "RATE_LIMIT_NO_SUCH_LIMIT" in caplog.text


def test_every_limited_view_names_a_configured_limit(app):
    names = {view.rate_limit for view in app.view_functions.values() if hasattr(view, "rate_limit")}
    assert names <= set(RATE_LIMIT_DEFAULTS)


def test_the_banner_path_carries_no_limiter_hooks(app):
    """Only decorated views pay for limiting: no hook of the app's runs the limiter."""
    hooks = [
        *app.before_request_funcs.get(None, []),
        *app.after_request_funcs.get(None, []),
        *app.teardown_request_funcs.get(None, []),
    ]
    assert not any(getattr(f, "__module__", "") == rate_limits.__name__ for f in hooks)
    assert "limiter" not in app.extensions


def test_limits_is_declared_and_counts_directly_without_flask_limiter():
    """The service imports `limits` itself, so it is a declared dependency; Flask-Limiter
    (whose hooks had to be kept off the app on a private Flask object) is gone."""
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    declared = {
        dep.split(";")[0].split("[")[0].split("<")[0].split(">")[0].split("=")[0].strip().lower()
        for dep in pyproject["project"]["dependencies"]
    }
    assert "limits" in declared
    assert "flask-limiter" not in declared
    probe = (
        "import sys, membership.http.rate_limits, membership.members.http,"
        " membership.staff.views; print('flask_limiter' in sys.modules)"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "False"


def test_the_counters_keys_and_windows(limited_app, redis_client):
    """One key per address, limit name and window, as it always was: a deploy keeps counting
    in the windows already open."""
    client = limited_app.test_client()
    _post(client)
    _post(client)
    key = "membership:ratelimit:LIMITER/192.0.2.1/test_form/3/1/minute"
    assert redis_client.keys("*") == [key]
    assert redis_client.get(key) == "2"
    assert 0 < redis_client.ttl(key) <= 60


def test_a_keyed_limit_counts_per_key_apart_from_the_address(make_app, redis_client):
    app = _add_route(make_app(rate_limit_test_form="2/minute"))

    @app.post("/_test/keyed")
    def keyed():
        current_app.extensions[rate_limits.EXTENSION].check(NAME, key=request.args["key"])
        return jsonify(ok=True)

    client = app.test_client()
    statuses = [client.post("/_test/keyed?key=k1").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert client.post("/_test/keyed?key=k2").status_code == 200
    assert _post(client).status_code == 200  # the address's own budget is untouched
    assert redis_client.get("membership:ratelimit:LIMITER/k1/test_form:keyed/2/1/minute") == "3"


@pytest.mark.parametrize("value", ["3/hour;2/minute", "2/minute;3/hour"])
def test_several_limits_count_the_shortest_window_first_and_stop_at_the_first_over(
    make_app, redis_client, value
):
    client = _add_route(make_app(rate_limit_test_form=value)).test_client()
    assert [_post(client).status_code for _ in range(4)] == [200, 200, 429, 429]
    prefix = "membership:ratelimit:LIMITER/192.0.2.1/test_form"
    assert redis_client.get(f"{prefix}/2/1/minute") == "4"
    assert redis_client.get(f"{prefix}/3/1/hour") == "2"  # refused requests never reach it
    assert redis_client.ttl(f"{prefix}/3/1/hour") > 60


def test_retry_after_is_what_is_left_of_the_breached_window(limited_app, redis_client):
    client = limited_app.test_client()
    for _ in range(3):
        _post(client)
    key = "membership:ratelimit:LIMITER/192.0.2.1/test_form/3/1/minute"
    redis_client.expire(key, 17)
    response = _post(client)
    assert response.status_code == 429
    seconds = int(response.headers["Retry-After"])
    assert seconds in (17, 18)  # whole seconds, rounded up
    assert response.get_json()["error"]["message"] == (
        f"too many requests from this address; try again in {seconds} s"
    )


@pytest.mark.topologies("cluster", "sentinel")
def test_counted_on_a_cluster_and_through_sentinel(make_app, redis_server):
    topology = redis_server
    first = _add_route(make_app(rate_limit_test_form="2/minute"))
    second = _add_route(make_app(rate_limit_test_form="2/minute"))
    try:
        assert _post(first.test_client()).status_code == 200
        assert _post(second.test_client()).status_code == 200
        refused = _post(first.test_client())
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert _post(second.test_client(), "198.51.100.7").status_code == 200
        nodes = topology.nodes if isinstance(topology, Cluster) else [topology.primary()]
        keys = [k for node in nodes for k in node.client().keys("*")]
        assert sorted(keys) == [
            "membership:ratelimit:LIMITER/192.0.2.1/test_form/2/1/minute",
            "membership:ratelimit:LIMITER/198.51.100.7/test_form/2/1/minute",
        ]
    finally:
        for app in (first, second):
            app.extensions["membership"].redis.close()


# --- Settings ------------------------------------------------------------------------------


def test_rate_limit_settings_are_validated_by_name():
    settings = load_settings({"RATE_LIMIT_SIGN_IN": "3/minute;10/hour", "SECRET_KEY": "x" * 16})
    assert settings.rate_limit("sign_in") == "3/minute;10/hour"
    assert settings.rate_limit("checkout") == RATE_LIMIT_DEFAULTS["checkout"]
    assert (
        load_settings({"RATE_LIMIT_CHECKOUT": "OFF", "SECRET_KEY": "x" * 16}).rate_limit("checkout")
        == "off"
    )
    for bad in ("lots", "0/minute", "5/fortnight", "-1/hour"):
        with pytest.raises(ConfigError, match=r"^RATE_LIMIT_SIGN_IN: expected"):
            load_settings({"RATE_LIMIT_SIGN_IN": bad, "SECRET_KEY": "x" * 16})
    with pytest.raises(ConfigError, match=r"^TRUSTED_PROXY_HOPS: "):
        load_settings({"TRUSTED_PROXY_HOPS": "9", "SECRET_KEY": "x" * 16})


def test_every_default_limit_parses():
    for name in RATE_LIMIT_DEFAULTS:
        variable = f"RATE_LIMIT_{name.upper()}"
        settings = load_settings({variable: RATE_LIMIT_DEFAULTS[name], "SECRET_KEY": "x" * 16})
        assert settings.rate_limit(name) == RATE_LIMIT_DEFAULTS[name]


def test_an_unreachable_sentinel_fails_open_at_once(make_app):
    """Found in review: redis-py's default retries made each unreachable Sentinel cost
    seconds; a limiter must never be what makes a request slow."""
    import time

    from tests.support.processes import free_port

    url = f"redis+sentinel://127.0.0.1:{free_port()},127.0.0.1:{free_port()}/mymaster"
    app = _add_route(make_app(redis_url=url, rate_limit_test_form="2/minute"))
    client = app.test_client()
    started = time.monotonic()
    statuses = [_post(client).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]  # fail open: no count to refuse by
    assert time.monotonic() - started < 3
