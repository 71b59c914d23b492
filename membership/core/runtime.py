"""What a running app holds: its settings, its Redis client and the key names.

Built once per process by create_app() and stored on the app, so request
handlers and CLI commands reach Redis the same way (`runtime()`), and tests
can build as many independent apps as they like.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import redis
from flask import Blueprint, Flask, current_app

from membership.core.config import Settings

if TYPE_CHECKING:  # core sits below store: the types only
    from membership.store import EmbeddedRedis, Keys

EXTENSION = "membership"
T = TypeVar("T")


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    redis: redis.Redis
    keys: Keys
    embedded: EmbeddedRedis | None = None  # set when REDIS_URL is unset
    redis_url: str = ""  # the one `redis` was made from (the embedded server's, if that)
    # Called with each committed ledger Outcome; registered at app start (goals, ...).
    ledger_subscribers: list[Callable] = field(default_factory=list)
    # Join the ledger writer's transaction of each new Stripe event (ledger.writer.TransactionHook).
    ledger_hooks: list = field(default_factory=list)
    # What the ledger tells the service's own endpoints (core sits below it; create_app sets
    # them): the member count, None when unknown or unreadable (the metrics' gauge), and why
    # its counters need a rebuild, None when they do not (/readyz).
    member_count: Callable[[], int | None] = lambda: None
    needs_rebuild: Callable[[], dict | None] = lambda: None


def runtime(app: Flask | None = None) -> Runtime:
    return (app or current_app).extensions[EXTENSION]


def per_app(bp: Blueprint, build: Callable[[Flask], T]) -> Callable[..., T]:
    """What `bp`'s views need, built by `build(app)` once for each app that registers `bp`;
    the function returned gives the current app's (or, given, `app`'s)."""
    key = f"membership.{bp.name}"

    def attach(state) -> None:
        state.app.extensions[key] = build(state.app)

    bp.record_once(attach)
    return lambda app=None: (app or current_app).extensions[key]
