"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

from flask import Blueprint, jsonify

from membership.errors import RETRY_AFTER_SECONDS, error_response
from membership.runtime import runtime
from membership.store import is_healthy

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process is up and serving requests."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """Ready to do real work: Redis answers."""
    healthy, reason = is_healthy(runtime().redis)
    if not healthy:
        return error_response(503, "not_ready", reason, {"Retry-After": str(RETRY_AFTER_SECONDS)})
    return jsonify(status="ready", redis="ok")
