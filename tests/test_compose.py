"""docker-compose.yml cannot run here (no Docker engine); check what it promises by reading it."""

from pathlib import Path

import yaml

COMPOSE = yaml.safe_load((Path(__file__).parent.parent / "docker-compose.yml").read_text())


def test_redis_7_with_aof_everysec_on_a_named_volume():
    redis = COMPOSE["services"]["redis"]
    assert redis["image"].startswith("redis:7")
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    assert "--appendfsync everysec" in command
    volume = redis["volumes"][0].split(":")[0]
    assert volume in COMPOSE["volumes"]
    assert "healthcheck" in redis


def test_app_points_at_that_redis_and_waits_for_it():
    app = COMPOSE["services"]["app"]
    assert app["build"] == "."
    assert app["environment"]["REDIS_URL"].startswith("redis://redis:6379")
    assert app["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "/readyz" in " ".join(app["healthcheck"]["test"])


def test_stripe_listen_forwards_to_the_webhook_endpoint():
    stripe = COMPOSE["services"]["stripe-cli"]
    assert "stripe" in stripe["profiles"]
    assert "--forward-to" in stripe["command"]
    assert "app:8000/webhooks/stripe" in " ".join(stripe["command"])


NGINX = (Path(__file__).parent.parent / "deploy" / "nginx.conf").read_text()


def test_a_reverse_proxy_in_front_is_the_only_published_port():
    proxy = COMPOSE["services"]["proxy"]
    assert proxy["image"].startswith("nginx:")
    assert proxy["ports"] == ["8000:8080"]
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in proxy["volumes"]
    assert proxy["depends_on"]["app"]["condition"] == "service_healthy"
    app = COMPOSE["services"]["app"]
    assert "ports" not in app  # reached only through the proxy
    assert app["expose"] == ["8000"]
    assert app["init"] is True


def test_the_proxy_buffers_whole_requests_with_timeouts_and_the_app_s_body_limit():
    directives = {}
    for line in NGINX.splitlines():
        words = line.split("#")[0].strip().rstrip(";").split()
        if len(words) >= 2:
            directives.setdefault(words[0], " ".join(words[1:]))
    assert directives["proxy_request_buffering"] == "on"
    assert directives["client_max_body_size"] == "1m"
    for timeout in ("client_header_timeout", "client_body_timeout", "send_timeout"):
        assert directives[timeout].endswith("s")
        assert int(directives[timeout][:-1]) <= 15
    assert directives["proxy_read_timeout"] == "30s"
    assert directives["proxy_pass"] == "http://membership"
    assert "server app:8000" in NGINX
    assert "location = /metrics { return 404; }" in NGINX


def test_the_image_runs_membership_serve():
    dockerfile = (Path(__file__).parent.parent / "Dockerfile").read_text()
    assert 'CMD ["membership", "serve", "--host", "0.0.0.0", "--port", "8000"' in dockerfile


def test_the_app_trusts_exactly_the_one_proxy_in_front_for_client_addresses():
    from membership.config import load_settings

    environment = COMPOSE["services"]["app"]["environment"]
    assert environment["TRUSTED_PROXY_HOPS"] == "1"
    # the value is one the app's settings accept
    assert (
        load_settings({"TRUSTED_PROXY_HOPS": environment["TRUSTED_PROXY_HOPS"]}).trusted_proxy_hops
        == 1
    )
