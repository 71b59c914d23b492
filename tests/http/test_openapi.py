import re

import jsonschema
from openapi_spec_validator import validate

from membership.openapi import document
from tests.support.member_count import set_member_count

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
    from membership.core.runtime import runtime

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


# --- The request schemas and the validators agree ------------------------------------------
#
# Each body below is taken or refused by the validator that reads it (called directly), and
# the served document (bound to the app's settings) says the same of it. The fuzz run
# (tests/http/test_fuzz_http.py, `positive_data_acceptance` and `negative_data_rejection`)
# searches for more; these are the disagreements it found, kept.

SITE = "https://news.example"
PROMPT = {"reader": "r_3f9c2a1b7d4e"}


def _seen(at):
    return {**PROMPT, "views": [{"campaign": "winter-drive", "at": at}]}


PROMPT_BODIES = [
    (PROMPT, True),
    (_seen("2026-11-25T10:00:00Z"), True),
    (_seen("2026-11-25T10:00:00.5+02:00"), True),
    (_seen("0001-01-01T00:00:00Z"), True),
    (_seen("2026-11-25T10:00:00z"), False),  # a lower-case z
    (_seen("2026-11-25T10:00:60Z"), False),  # a leap second
    (_seen("2026-11-25T10:00:00"), False),  # no zone
    (_seen("0001-01-01T00:00:00+01:00"), False),  # before the calendar's first day in UTC
    ({**PROMPT, "history": {"articles": {"2026-11-25": 3, "2026-W48-2": 1}}}, True),
    ({**PROMPT, "history": {"articles": {"2026-02-30": 1}}}, False),
    ({**PROMPT, "history": {"articles": {"yesterday": 1}}}, False),
    ({**PROMPT, "locale": "uk-UA"}, True),
    ({**PROMPT, "locale": ""}, True),
    ({**PROMPT, "locale": "not a tag"}, False),
    ({**PROMPT, "locale": "en\n"}, False),
    ({**PROMPT, "locale": "e" * 65}, False),
]


def _request_schema(client, path):
    spec = client.get("/openapi.json").get_json()
    schema = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    return jsonschema.Draft202012Validator(
        {**schema, "components": spec["components"]},
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


def test_the_prompt_body_schema_takes_what_the_parser_takes(client):
    from membership.prompts import request as prompt_request

    schema = _request_schema(client, "/v1/prompt")
    for body, taken in PROMPT_BODIES:
        try:
            prompt_request.parse_request(body)
        except prompt_request.RequestError:
            parsed = False
        else:
            parsed = True
        assert parsed is taken, body
        assert schema.is_valid(body) is taken, body


def test_the_member_body_schemas_take_what_the_parsers_take(site_client):
    from membership.members import rules

    sign_in, refresh, portal = (
        _request_schema(site_client, path)
        for path in ("/v1/member/sign-in", "/v1/member/token/refresh", "/v1/member/portal")
    )
    mail = {"email": "reader@example.org", "return_url": f"{SITE}/2026/11/26/story"}
    cases = [
        (sign_in, lambda b: rules.parse_sign_in(b, (SITE,)), mail, True),
        (sign_in, lambda b: rules.parse_sign_in(b, (SITE,)), {**mail, "locale": "uk"}, True),
        (sign_in, lambda b: rules.parse_sign_in(b, (SITE,)), {**mail, "locale": "x y"}, False),
        (sign_in, lambda b: rules.parse_sign_in(b, (SITE,)), {**mail, "email": "a b@c"}, False),
        (
            sign_in,
            lambda b: rules.parse_sign_in(b, (SITE,)),
            {**mail, "return_url": "https://elsewhere.example/x"},
            False,
        ),
        (refresh, rules.parse_token, {"token": "t"}, True),
        (refresh, rules.parse_token, {"token": ""}, False),
        (refresh, rules.parse_token, {"token": "t" * (rules.MAX_TOKEN + 1)}, False),
        (
            portal,
            lambda b: rules.parse_portal(b, (SITE,)),
            {"token": "t", "return_url": SITE},
            True,
        ),
        (
            portal,
            lambda b: rules.parse_portal(b, (SITE,)),
            {"token": "", "return_url": SITE},
            False,
        ),
    ]
    for schema, parse, body, taken in cases:
        try:
            parse(body)
        except rules.RequestError:
            parsed = False
        else:
            parsed = True
        assert parsed is taken, body
        assert schema.is_valid(body) is taken, body


def test_the_checkout_body_schema_takes_what_the_parser_takes(make_app):
    from membership.checkout import request as checkout_request
    from membership.core.runtime import runtime

    app = make_app(
        stripe_prices=(("monthly", "price_monthly"),),
        checkout_once_min=100,
        checkout_once_max=100_000,
        checkout_currencies=("eur", "usd"),
    )
    schema = _request_schema(app.test_client(), "/v1/checkout")
    offer = checkout_request.Offer.from_settings(runtime(app).settings)
    for body, taken in [
        ({"plan": "monthly"}, True),
        ({"plan": "monthly", "locale": "de-AT", "email": "reader@example.org"}, True),
        ({"plan": "yearly"}, False),  # no price
        ({"plan": "monthly", "amount": 500}, False),
        ({"plan": "once", "amount": 500}, True),
        ({"plan": "once", "amount": 500, "currency": "USD"}, True),
        ({"plan": "once", "amount": 99}, False),
        ({"plan": "once", "amount": 100_001}, False),
        ({"plan": "once", "amount": 500, "currency": "gbp"}, False),
        ({"plan": "once"}, False),
        ({"plan": "once", "amount": 500, "locale": "x"}, False),
        ({"plan": "once", "amount": 500, "locale": "en-GB\n"}, False),
        ({"plan": "gift"}, False),
    ]:
        try:
            checkout_request.parse(body, offer)
        except checkout_request.CheckoutInvalid:
            parsed = False
        else:
            parsed = True
        assert parsed is taken, body
        assert schema.is_valid(body) is taken, body


def test_the_checkout_fields_are_generated_from_the_marshmallow_schema(client):
    from membership.checkout.request import BodySchema

    spec = client.get("/openapi.json").get_json()
    body = spec["components"]["schemas"]["CheckoutRequest"]
    variants = body.get("oneOf", [body])
    for variant in variants:
        assert set(variant["properties"]) == set(BodySchema().fields)


def test_the_goal_body_schema_takes_what_the_goal_schema_takes(client):
    from marshmallow import ValidationError

    from membership.goals.rules import MAX_NAME, MAX_TARGET, GoalInput

    spec = client.get("/openapi.json").get_json()
    body = spec["paths"]["/staff/api/goals"]["post"]["requestBody"]
    schema = jsonschema.Draft202012Validator(
        {**body["content"]["application/json"]["schema"], "components": spec["components"]},
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )
    for goal, taken in [
        ({"target": 30_000}, True),
        ({"target": MAX_TARGET, "deadline": "2099-12-31", "name": "Winter"}, True),
        ({"target": 30_000, "deadline": None, "name": None}, True),
        ({"target": 30_000, "copy": {"en": {"headline": "Join {count} readers"}}}, True),
        ({"target": 0}, False),
        ({"target": MAX_TARGET + 1}, False),
        ({"target": 30_000, "deadline": "2099-02-30"}, False),
        ({"target": 30_000, "name": "n" * (MAX_NAME + 1)}, False),
        ({"target": 30_000, "colour": "red"}, False),  # unknown fields are refused
        ({}, False),
    ]:
        try:
            GoalInput().load(goal)
        except ValidationError:
            loaded = False
        else:
            loaded = True
        assert loaded is taken, goal
        assert schema.is_valid(goal) is taken, goal
