"""Liveness and readiness probes for load balancers and orchestrators.

`/readyz` answers with a fixed public sentence; the detail (which host, port or socket
path, what Redis said) goes to the log at WARNING once per change of state, not per probe.
A full data disk (Redis refuses writes it cannot persist, MISCONF) is not ready, with its
own sentence; `/healthz` stays 200 and reads go on.
"""

from __future__ import annotations

import logging
import threading

import redis
from flask import Blueprint, jsonify

from membership.core.errors import (
    REFUSES_WRITES,
    RETRY_AFTER_SECONDS,
    error_response,
    store_kind,
)
from membership.core.openapi import answer, obj, retry_later
from membership.core.runtime import per_app, runtime

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)

UNREACHABLE = "Redis is unreachable; try again shortly"
REFUSING = "Redis answered with an error; try again shortly"
DISK_FULL = (
    "the data disk is full (Redis cannot persist writes): reads are served, writes are "
    "refused until space is freed"
)

OPENAPI = {
    "/healthz": {
        "get": {"summary": "Liveness: the process is up", "responses": {"200": answer("Up")}}
    },
    "/readyz": {
        "get": {
            "summary": "Readiness: Redis answers",
            "responses": {
                "200": answer(
                    "Ready; `ledger` is `needs_rebuild` after a failed write",
                    obj(
                        {
                            "status": {"const": "ready"},
                            "redis": {"const": "ok"},
                            "ledger": {"enum": ["ok", "needs_rebuild"]},
                        },
                        required=(),
                    ),
                ),
                "503": retry_later("Redis is unreachable"),
            },
        }
    },
}


# What a failed check says by errors.store_kind: in the log (with the detail), and in public.
_SAID = {
    "unavailable": ("Redis is unreachable", UNREACHABLE),
    "disk": (REFUSES_WRITES, DISK_FULL),
    "refused": ("Redis answered with an error", REFUSING),
}


def is_healthy(client: redis.Redis) -> tuple[bool, str]:
    """(True, "ok") when Redis answers PING, else (False, reason). Redis refuses PING too
    while it refuses writes (MISCONF): the reason then starts with REFUSES_WRITES."""
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        return False, f"{_SAID[store_kind(exc)][0]}: {exc}"
    return True, "ok"


def public_reason(reason: str) -> str:
    """A fixed sentence for a failed check: never the exception text, which names hosts."""
    return next((public for said, public in _SAID.values() if reason.startswith(said)), REFUSING)


class _Readiness:
    """The last reason seen by this process, so a change is logged once, not on every probe."""

    def __init__(self) -> None:
        self.reason = "ok"
        self.lock = threading.Lock()

    def saw(self, reason: str) -> None:
        with self.lock:
            previous, self.reason = self.reason, reason
        if reason == previous:
            return
        if reason == "ok":
            log.info("ready again: Redis answers")
        else:
            log.warning("not ready: %s", reason)


_readiness = per_app(bp, lambda app: _Readiness())


@bp.get("/healthz")
def healthz():
    """The process is up and serving requests."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """Ready to do real work: Redis answers. `ledger` says whether its counters need
    `membership ledger rebuild` (still ready: the count and the banner keep working)."""
    rt = runtime()
    healthy, reason = is_healthy(rt.redis)
    _readiness().saw("ok" if healthy else reason)
    if not healthy:
        return error_response(
            503, "not_ready", public_reason(reason), {"Retry-After": str(RETRY_AFTER_SECONDS)}
        )
    needed = rt.needs_rebuild()
    return jsonify(status="ready", redis="ok", ledger="needs_rebuild" if needed else "ok")
