import re

import jsonschema
from openapi_spec_validator import validate

from membership.openapi import document
from tests.member_count import set_member_count

IGNORED_METHODS = {"HEAD", "OPTIONS"}  # added by Flask to every GET / every route


def _public(rule) -> bool:
    """The staff dashboard's HTML pages are not the public API (docs/staff-dashboard.md
    describes them); its JSON under /staff/api/ is."""
    return not rule.rule.startswith("/staff/") or rule.rule.startswith("/staff/api/")


def test_the_document_is_valid_openapi_3_1(client):
    body = client.get("/openapi.json").get_json()
    validate(body)
    assert body["openapi"] == "3.1.0"


def test_every_route_is_documented_and_nothing_else(app):
    routes = set()
    for rule in filter(_public, app.url_map.iter_rules()):
        methods = set(rule.methods) - IGNORED_METHODS
        if rule.endpoint == "banner.preflight":
            methods = {"OPTIONS"}  # an explicit CORS preflight handler
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)  # Flask's <x> is {x}
        routes |= {(path, m.lower()) for m in methods}
    for path, endpoint in app.wsgi_app.endpoints.items():  # plain WSGI endpoints beside Flask
        routes |= {(path, m.lower()) for m in set(endpoint.methods) - IGNORED_METHODS}
    documented = {
        (path, m)
        for path, ops in document("0")["paths"].items()
        for m in ops
        if m not in {"parameters", "summary", "description", "servers"}  # path-level fields
    }
    assert routes == documented


def test_the_banner_answers_as_its_schema_says(app, client, redis_client):
    from membership.runtime import runtime

    set_member_count(redis_client, runtime(app).keys, 25012)
    spec = document("0")
    schema = {**spec["components"]["schemas"]["Banner"], "components": spec["components"]}
    for locale in ("en", "uk"):
        body = client.get(f"/v1/banner?locale={locale}").get_json()
        jsonschema.validate(body, schema)


def test_errors_answer_as_the_error_schema_says(client):
    schema = document("0")["components"]["schemas"]["Error"]
    for response in (
        client.get("/nope"),
        client.post("/webhooks/stripe", data="{}"),
        client.get("/v1/banner?colour=red"),
    ):
        assert response.status_code >= 400
        jsonschema.validate(response.get_json(), schema)
