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
