"""membership: member ledger, goal banner and paywall prompts for independent newsrooms."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping

import redis
from flask import Flask

from membership.core.config import Settings, load_settings
from membership.core.runtime import EXTENSION, Runtime
from membership.http.sessions import LazySessionInterface
from membership.ledger import queries as ledger_queries
from membership.ledger.codec import CorruptRecord
from membership.ledger.queries import Queries
from membership.store import Keys, connect, resolve_url

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def create_app(
    config: Mapping[str, object] | Settings | None = None, *, start_embedded_redis: bool = False
) -> Flask:
    """Build the WSGI app.

    `config` is either ready Settings or overrides by Settings field name (tests
    pass e.g. {"redis_url": ...}); the environment supplies the rest. A bad
    setting raises ConfigError before anything starts.

    With REDIS_URL unset the app uses the embedded Redis of the `membership serve`
    running on MEMBERSHIP_DATA_DIR, and raises NoEmbeddedRedisOwner when none runs
    (set REDIS_URL, or use `membership serve`): only that server restarts and stops
    it. `start_embedded_redis=True` is for CLI commands (cli.with_app), which start it
    for their own run when no server does, and stop it after.
    """
    settings = config if isinstance(config, Settings) else load_settings(overrides=config)
    from membership.core import logs

    logs.configure_logging(settings)

    # No implicit /static route: the widget serves its one file with its own caching.
    app = Flask(__name__, static_folder=None)
    app.config["SECRET_KEY"] = settings.secret_key
    app.session_interface = LazySessionInterface()
    app.json.sort_keys = False

    url, embedded = resolve_url(settings, start_embedded=start_embedded_redis)
    client, keys = connect(url), Keys(settings.redis_prefix)
    app.extensions[EXTENSION] = Runtime(
        settings=settings,
        redis=client,
        keys=keys,
        embedded=embedded,
        redis_url=url,
        member_count=functools.partial(_member_count, client, keys),
        needs_rebuild=Queries(client, keys).needs_rebuild,
    )

    from membership import openapi
    from membership.core import errors, health, metrics

    metrics.init_app(app)  # GET /metrics; requests are counted by the outer layer
    errors.init_app(app)
    from membership.http import outer, rate_limits, security

    rate_limits.init_app(app, settings, url)  # @rate_limited(name), counted in this Redis
    app.register_blueprint(health.bp)
    app.register_blueprint(openapi.bp)

    plain = _add_areas(app, app.extensions[EXTENSION])
    # What every request gets, whoever answers it: request id, security headers, the body
    # limit (chunked bodies read whole), metrics; and the plain WSGI endpoints beside Flask.
    app.wsgi_app = outer.Outer(
        app,
        limit=errors.MAX_BODY_BYTES,
        html_headers=security.html_headers(),
        endpoints=plain,
    )
    return app


def _member_count(client: redis.Redis, keys: Keys) -> int | None:
    """The count the metrics show; None when unknown or unreadable (logged at DEBUG)."""
    try:
        return ledger_queries.count(client, keys)
    except (redis.exceptions.RedisError, CorruptRecord, ValueError) as exc:
        log.debug("metrics: cannot read the member count: %s", exc)
        return None


def _add_areas(app: Flask, rt: Runtime) -> dict:
    """Each area's routes and its part in the ledger's writes, in the order they build on;
    returns the plain WSGI endpoints (answered outside Flask) by path."""
    # --- Ledger ---
    from membership.stripe import webhooks

    # Stripe's deliveries: a plain WSGI endpoint, no Flask request (as `/v1/prompt` below).
    plain = {webhooks.PATH: webhooks.WebhookEndpoint(app)}

    # --- Goals and banner ---
    from membership.goals import banner, widget
    from membership.goals import store as goals

    rt.ledger_subscribers.append(goals.reach_goals(rt.redis, rt.keys))

    app.register_blueprint(banner.bp)
    app.register_blueprint(widget.bp)

    # --- Prompts ---
    from membership.prompts import http as prompts_http

    # Every page view asks: a plain WSGI endpoint, no Flask request (after the banner's
    # blueprint: it shares its cache).
    plain[prompts_http.PATH] = prompts_http.PromptEndpoint(app)

    from membership.prompts import event_api

    app.register_blueprint(event_api.bp)  # POST /v1/prompt/events

    # --- Checkout ---
    from membership.checkout import http as checkout_http

    app.register_blueprint(checkout_http.bp)  # POST /v1/checkout
    from membership.prompts.conversions import ConversionHook

    # A paid session from a prompt credits its variant in the webhook's own transaction.
    rt.ledger_hooks.append(ConversionHook(rt.keys))

    # --- Members: recognized after checkout and by email, renewal, the Billing Portal ---
    from membership.members import http as members_http

    app.register_blueprint(members_http.bp)

    # --- Staff dashboard: access (sign-in, sessions, CSRF, roles) under /staff ---
    from membership.staff import views as staff_views

    staff_views.init_app(app)
    return plain
