"""Staff pages: campaigns (to be built)."""

from __future__ import annotations

from flask import render_template

from membership.staff.guard import requires
from membership.staff.views import bp

OPENAPI: dict = {}


@bp.get("/campaigns")
@requires("viewer")
def campaigns():
    return render_template("staff/message.html", title="Campaigns: not built yet", status=200)
