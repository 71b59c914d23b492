"""The staff JSON API under /staff/api/: the same roles as the pages, signed in by the
browser's session (CSRF on writes) or by a personal token (`Authorization: Bearer mst_...`).
The later pages add their JSON here; the OpenAPI document describes every route."""

from __future__ import annotations

from flask import g, jsonify

from membership.staff.access.guard import requires
from membership.staff.views import bp


@bp.get("/api/me")
@requires("viewer")
def api_me():
    via = "session" if g.staff_session is not None else "token"
    return jsonify(email=g.staff.email, role=g.staff.role, via=via)
