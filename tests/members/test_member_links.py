"""membership.members.links against a real redis-server: a code signs in once, within its
minutes; Redis holds only its hash; two clicks at once sign in once."""

from __future__ import annotations

import threading
import time

import pytest

from membership.members.links import CODE, LINK_SECONDS, NOTE_SECONDS, Links, Use, digest
from membership.store import Keys

KEYS = Keys()
URL = "https://news.example/story"


@pytest.fixture
def links(redis_url, redis_client):
    return Links(redis_client, KEYS)


def test_a_code_signs_in_once(links):
    now = time.time()
    code = links.issue("email:a@x.org", URL, "uk", now)
    assert CODE.match(code)
    assert links.use(code, now + 1) == Use("ok", URL, "uk", "email:a@x.org")
    assert links.use(code, now + 2) == Use("used", URL, "uk")
    assert links.use(code, now + 3) == Use("used", URL, "uk")


def test_a_code_expires_after_its_minutes(links, redis_client):
    now = time.time()
    code = links.issue("cus_A1", URL, "en", now)
    assert links.use(code, now + LINK_SECONDS + 1) == Use("expired", URL, "en")
    # The late click spent it: the link is gone even if the clock were turned back.
    assert links.use(code, now) == Use("expired", URL, "en")


def test_redis_holds_the_codes_hash_and_the_expiries(links, redis_client):
    code = links.issue("cus_A1", URL, "en", time.time())
    keys = sorted(redis_client.keys("*"))
    assert keys == sorted([KEYS.member_link(digest(code)), KEYS.member_link_note(digest(code))])
    assert not any(code in key for key in keys)
    for key in keys:
        assert code not in str(redis_client.hgetall(key))
    assert 0 < redis_client.ttl(KEYS.member_link(digest(code))) <= LINK_SECONDS
    assert LINK_SECONDS < redis_client.ttl(KEYS.member_link_note(digest(code))) <= NOTE_SECONDS
    assert "subject" not in redis_client.hgetall(KEYS.member_link_note(digest(code)))


def test_unknown_and_malformed_codes(links):
    assert links.use("A" * 43, time.time()) == Use("unknown")
    assert links.use("short", time.time()) == Use("unknown")
    assert links.use("A" * 42 + "!", time.time()) == Use("unknown")


def test_two_clicks_at_once_sign_in_once(links):
    now = time.time()
    for _ in range(20):
        code = links.issue("cus_A1", URL, "en", now)
        results: list[str] = []
        barrier = threading.Barrier(4)

        def click(code=code, results=results, barrier=barrier):
            barrier.wait()
            results.append(links.use(code, now).state)

        threads = [threading.Thread(target=click) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == ["ok", "used", "used", "used"]
