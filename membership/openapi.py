"""The OpenAPI document of every HTTP endpoint, served at GET /openapi.json.

Each area describes its own paths beside its code (`OPENAPI`) and generates its components
from what reads the bodies (`openapi_schemas(settings)`: the prompt body from its msgspec
Struct, the checkout body from its marshmallow schema); this module merges the pieces. Served
by an app, what depends on the settings (return_url's origins, what Checkout sells) says
what this deployment takes. tests/http/test_openapi.py checks the document against the routes
and the validators; tests/http/test_fuzz_http.py, against the service.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from flask import Blueprint, current_app, jsonify

from membership.checkout import openapi as checkout
from membership.core import health, metrics
from membership.core.config import Settings
from membership.core.openapi import TEXT, answer, obj
from membership.core.runtime import runtime
from membership.goals import openapi as goals
from membership.members import openapi as members
from membership.prompts import openapi as prompts
from membership.staff import areas as staff
from membership.staff import views as staff_views
from membership.stripe import openapi as stripe

bp = Blueprint("openapi", __name__)

_AREAS = (goals, prompts, checkout, members)
_ERROR = obj(
    {"error": obj({"code": {"type": "string", "examples": ["invalid_signature"]}, "message": TEXT})}
)

OPENAPI = {
    "/openapi.json": {
        "get": {"summary": "This document", "responses": {"200": answer("OpenAPI 3.1 document")}}
    },
}


def document(version: str, settings: Settings | None = None) -> dict:
    """The document; with the settings, the bodies that depend on them (return_url's
    origins, the plans and limits of Checkout) say exactly what this service takes."""
    paths = {
        **health.OPENAPI,
        **stripe.OPENAPI,
        **metrics.OPENAPI,
        **staff_views.OPENAPI,
        **OPENAPI,
    }
    schemas = {"Error": _ERROR}
    for area in _AREAS:
        paths.update(area.OPENAPI)
        schemas.update(area.openapi_schemas(settings))
    schemas.update(staff.openapi_schemas())
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "membership",
            "version": version,
            "description": "Member ledger, goal banner and paywall prompts for newsrooms.",
        },
        "paths": {**paths, **staff.openapi_paths()},
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "metricsToken": {"type": "http", "scheme": "bearer"},
                "staffToken": {"type": "http", "scheme": "bearer"},
            },
        },
    }


@bp.get("/openapi.json")
def openapi_json():
    try:
        current = version("membership")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        current = "0"
    return jsonify(document(current, runtime(current_app).settings))
