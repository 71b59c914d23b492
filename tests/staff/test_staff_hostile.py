"""Hostile input to every /staff route as an admin (who may send every form), with a goal,
a campaign, members and a failed event stored: strange path parameters (and real ids),
junk query strings, bodies that are not UTF-8, long fields, a body over the limit and
JSON where a form is expected. Each gets an answer (2xx, 3xx or 4xx), never a 500.

A junk form is encoded once and its bytes sent to every route: werkzeug's test client
would encode the same form again for each write (most of the time of the 1.9 MB one)."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest

from tests.support.staff import seed_everything, signed_in

REAL = ["winter-drive", "1", "cus_1", "editor@news.example"]  # what seed_everything stores
PARAMS = [*REAL, "%00", "a" * 300, "..%2F..%2Fetc", "%FF%FE", "caf%C3%A9", "-1", "1e309", "%20"]
QUERY = (
    "q=%FF&cursor=%00%00&days=99999999999999999999&outcome=%3Cscript%3E&type=*&since=2026-13-45"
    "&until=x&limit=-5&actor=%00&action=" + "a" * 2000 + "&version=%FF&count=1e999"
)
FORM_FIELDS = ["email", "role", "name", "target", "deadline", "reason", "session", "code",
               "operation", "status", "direction", "based_on", "document", "json", "q",
               "preview_count", "version", "id", "priority"]  # fmt: skip


def _routes(app):
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/staff") and rule.endpoint != "staff.static":
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield rule.rule, method, rule.endpoint


def _paths(rule: str):
    if "<" not in rule:
        return [rule]
    return [re.sub(r"<[^>]+>", value, rule) for value in PARAMS]


FORM = "application/x-www-form-urlencoded"
JUNK = {
    "utf8": {name: "<script>alert(1)</script>\u202e\x00" for name in FORM_FIELDS},
    "long": {name: "9" * 2_000 for name in FORM_FIELDS},
    "huge": {name: "9" * 100_000 for name in FORM_FIELDS},
}


def _request(junk: str, token: str) -> dict:
    """client.open's keywords for a write with the `junk` body."""
    if junk == "bytes":
        body = b"csrf_token=" + token.encode() + b"&email=%FF%FE&name=\xff\xfe\x00"
        return {"data": body, "content_type": FORM}
    if junk == "json":
        return {"data": b'{"a": [1, {"b": null}]', "content_type": "application/json",
                "headers": {"X-CSRFToken": token}}  # fmt: skip
    return {"data": urlencode({"csrf_token": token, **JUNK[junk]}).encode(), "content_type": FORM}


@pytest.mark.parametrize("junk", ["utf8", "bytes", "json", "long", "huge"])
def test_no_hostile_request_is_a_server_error(app, junk):
    seed_everything(app)
    client, token = signed_in(app, "admin")
    write = _request(junk, token)
    failures = []
    for rule, method, endpoint in _routes(app):
        if endpoint in {"staff.logout", "staff.team.account_end_session", "staff.me_end_session"}:
            continue  # would end the session the rest of the crawl needs
        for path in _paths(rule):
            url = f"{path}?{QUERY}"
            if method == "GET":
                response = client.get(url)
            else:
                response = client.open(url, method=method, **write)
            if response.status_code >= 500:
                failures.append((method, path[:80], response.status_code))
    assert failures == []
