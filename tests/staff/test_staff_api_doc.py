"""The public OpenAPI document describes every /staff/api/ route and method the app
serves, and nothing it does not serve."""

from __future__ import annotations

import re


def test_every_staff_api_route_is_in_the_openapi_document(app):
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/staff/api/"):
            path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
            served |= {(path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    document = app.test_client().get("/openapi.json").get_json()
    described = {
        (path, method)
        for path, item in document["paths"].items()
        if path.startswith("/staff/api/")
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }
    assert served, "no /staff/api/ routes"
    assert served - described == set(), "served but not described"
    assert described - served == set(), "described but not served"
    for path, item in document["paths"].items():
        if path.startswith("/staff/api/"):
            for method, operation in item.items():
                if method in {"get", "post", "put", "patch", "delete"}:
                    assert operation.get("summary"), (path, method)
                    assert "401" in operation["responses"], (path, method)
