"""Staff pages: webhooks (to be built)."""

from __future__ import annotations

from flask import render_template

from membership.staff.guard import requires
from membership.staff.views import bp

OPENAPI: dict = {}


@bp.get("/webhooks")
@requires("viewer")
def webhooks():
    return render_template("staff/message.html", title="Webhooks: not built yet", status=200)
