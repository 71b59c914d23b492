"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

from flask import Blueprint, jsonify

from membership.errors import RETRY_AFTER_SECONDS, error_response
from membership.ledger.queries import Queries
from membership.runtime import runtime
from membership.store import is_healthy

bp = Blueprint("health", __name__)


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
    if not healthy:
        return error_response(503, "not_ready", reason, {"Retry-After": str(RETRY_AFTER_SECONDS)})
    needed = Queries(rt.redis, rt.keys).needs_rebuild()
    return jsonify(status="ready", redis="ok", ledger="needs_rebuild" if needed else "ok")
