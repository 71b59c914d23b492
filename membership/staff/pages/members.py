"""Staff pages: members (to be built)."""

from __future__ import annotations

from flask import render_template

from membership.staff.guard import requires
from membership.staff.views import bp

OPENAPI: dict = {}


@bp.get("/members")
@requires("viewer")
def members():
    return render_template("staff/message.html", title="Members: not built yet", status=200)
