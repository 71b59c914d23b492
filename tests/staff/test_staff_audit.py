"""The audit page (/staff/audit): every entry newest first, filters by actor, action and
date, a cursor to older pages, before/after shown, hostile text escaped."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from membership.core import audit
from membership.core.runtime import runtime
from tests.support.staff import signed_in

DAY = 86400
T0 = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC).timestamp()


def _record(app, **kwargs):
    rt = runtime(app)
    audit.record(rt.redis, rt.keys, **{"target": "goal 1", **kwargs})


def _targets(html: str) -> list[str]:
    return re.findall(r"</code> ([^<]*)</p>", html)


@pytest.mark.parametrize("role", ["viewer", "editor", "admin"])
def test_every_role_reads_the_log(app, role):
    client, _ = signed_in(app, role)
    html = client.get("/staff/audit").get_data(as_text=True)
    assert "staff_added" in html and "viewer@news.example" in html  # the fixture's accounts
    assert "<script" not in html and "style=" not in html


def test_newest_first_with_before_and_after_and_filters(app):
    _record(app, actor="ann", action="goal_added", target="g1", after={"target": 10}, at=T0)
    _record(app, actor="bob", action="goal_removed", target="g2", before={"target": 10},
            at=T0 + DAY)  # fmt: skip
    _record(app, actor="Ann", action="goal_removed", target="g3", at=T0 + 2 * DAY)
    client, _ = signed_in(app, "viewer")
    html = client.get("/staff/audit").get_data(as_text=True)
    # The viewer's own sign-in is the newest; then the fixture's staff_added
    assert _targets(html)[:4] == ["staff viewer@news.example", "g3", "g2", "g1"]
    assert "&#34;target&#34;: 10" in html and "Before and after" in html
    filtered = {
        "actor=ann": ["g3", "g1"],
        "action=goal_removed": ["g3", "g2"],
        "actor=ann&action=goal_removed": ["g3"],
        "since=2026-11-02&until=2026-11-20": ["g3", "g2"],
        "since=2026-11-01&until=2026-11-02": ["g2", "g1"],
        "until=2026-11-01": ["g1"],
        "actor=nobody": [],
    }
    for query, targets in filtered.items():
        page = client.get(f"/staff/audit?{query}").get_data(as_text=True)
        assert _targets(page) == targets, query
    bad = client.get("/staff/audit?since=yesterday")
    assert bad.status_code == 400 and "since: expected a date" in bad.get_data(as_text=True)
    assert client.get("/staff/audit?cursor=nope").status_code == 400
    assert client.get(f"/staff/audit?cursor={2**64}-0").status_code == 400  # past Redis's ids


def test_pages_follow_the_cursor(app):
    for i in range(120):
        _record(app, actor="ann", action="copy_changed", target=f"t{i}", at=T0 + i)
    client, _ = signed_in(app, "viewer")
    seen, url = [], "/staff/audit?action=copy_changed"
    while url:
        html = client.get(url).get_data(as_text=True)
        seen += _targets(html)
        found = re.search(r'<a href="([^"]+)" rel="next">', html)
        url = found.group(1).replace("&amp;", "&") if found else None
        assert "action=copy_changed" in (url or "action=copy_changed")
    assert seen == [f"t{i}" for i in reversed(range(120))]


def test_hostile_text_is_escaped(app):
    evil = '<script>alert("x")</script>'
    _record(app, actor="<b>mallory</b>", action="goal_added", target=evil,
            before={"name": evil}, after={evil: "<img src=x onerror=alert(1)>"})  # fmt: skip
    client, _ = signed_in(app, "viewer")
    html = client.get("/staff/audit").get_data(as_text=True)
    assert "<script>" not in html and "<img" not in html and "<b>mallory" not in html
    assert "&lt;script&gt;" in html and "&lt;b&gt;mallory&lt;/b&gt;" in html


def test_a_page_reads_a_bounded_number_of_entries(app):
    rt = runtime(app)
    _record(app, actor="rare", action="goal_added", target="old")
    for i in range(30):
        _record(app, actor="ann", action="copy_changed", target=f"t{i}")
    found, cursor = audit.page(rt.redis, rt.keys, actor="rare", scan=10)
    assert found == [] and cursor  # 10 read, none matched: the next page goes on from there
    while not found and cursor:
        found, cursor = audit.page(rt.redis, rt.keys, actor="rare", cursor=cursor, scan=10)
    assert [e["target"] for e in found] == ["old"]
