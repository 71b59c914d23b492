"""Staff pages: goals (to be built)."""

from __future__ import annotations

from flask import render_template

from membership.staff.guard import requires
from membership.staff.views import bp

OPENAPI: dict = {}


@bp.get("/goals")
@requires("viewer")
def goals():
    return render_template("staff/message.html", title="Goals: not built yet", status=200)
