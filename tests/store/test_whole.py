"""store/whole.py: the one helper every optimistic write runs through, on a real Redis.

Keys share one hash tag, so the tests run on a Cluster and through Sentinel too (`topologies`)."""

from __future__ import annotations

import threading

import pytest
import redis as redis_lib

from membership.store import whole

pytestmark = pytest.mark.topologies  # each test on a single server, a Cluster and Sentinel

COUNTER, TEXT, A, B, SET = (f"{{whole}}:{name}" for name in ("counter", "text", "a", "b", "set"))


class Busy(Exception):
    pass


class Refused(Exception):
    pass


def increment(r, **options):
    """Read the counter under WATCH and write it plus one: the optimistic write in small."""

    def body(pipe):
        value = int(pipe.get(COUNTER) or 0) + 1
        return whole.Write(lambda pipe: pipe.set(COUNTER, value), value)

    options.setdefault("attempts", 10)
    options.setdefault("busy", Busy("the counter kept changing"))
    return whole.transaction(r, body, watch=[COUNTER], **options)


def test_a_write_commits_and_returns_its_result(r):
    r.set(COUNTER, 41)
    assert increment(r) == 42
    assert r.get(COUNTER) == "42"


def test_the_result_can_be_read_from_the_replies(r):
    def body(pipe):
        return whole.Write(lambda pipe: (pipe.incr(A), pipe.incr(A)), returns=lambda got: got)

    assert whole.transaction(r, body, attempts=1, busy=Busy()) == [1, 2]


def test_a_body_that_writes_nothing_returns_its_value_and_leaves_no_watch(r):
    def body(pipe):
        pipe.get(COUNTER)
        return "nothing to do"

    assert whole.transaction(r, body, watch=[COUNTER], attempts=1, busy=Busy()) == "nothing to do"
    r.set(COUNTER, 5)  # a WATCH left on the pooled connection would make the next one fail
    assert increment(r, attempts=1) == 6


def test_a_change_to_a_watched_key_starts_the_body_over(r):
    calls, pauses = [], []

    def body(pipe):
        value = int(pipe.get(COUNTER) or 0)
        calls.append(value)
        if len(calls) <= 2:
            r.set(COUNTER, value + 10)  # someone else writes between the read and EXEC
        return whole.Write(lambda pipe: pipe.set(COUNTER, value + 1), value + 1)

    got = whole.transaction(r, body, watch=[COUNTER], attempts=3, busy=Busy(), pause=pauses.append)
    assert calls == [0, 10, 20]  # each attempt read what the last one's interference left
    assert pauses == [0, 1]
    assert got == 21 and r.get(COUNTER) == "21"


def test_it_gives_up_as_busy_after_its_attempts_and_writes_nothing(r):
    calls = []

    def body(pipe):
        calls.append(pipe.get(COUNTER))
        r.incr(COUNTER)  # always changed under it
        return whole.Write(lambda pipe: pipe.set(A, "written"))

    with pytest.raises(Busy, match="kept changing"):
        whole.transaction(
            r, body, watch=[COUNTER], attempts=4, busy=Busy("the counter kept changing")
        )
    assert len(calls) == 4
    assert r.get(COUNTER) == "4" and r.exists(A) == 0

    calls.clear()
    got = whole.transaction(r, body, watch=[COUNTER], attempts=2, busy=lambda: "gave up")
    assert got == "gave up" and len(calls) == 2 and r.exists(A) == 0


def test_a_failed_reply_raises_the_callers_error_and_the_rest_stays_applied(r):
    r.set(TEXT, "not a number")
    seen = []

    def refused(errors):
        seen.extend(errors)
        return Refused(f"Redis refused part of the change ({errors[0]})")

    def body(pipe):
        return whole.Write(lambda pipe: (pipe.set(A, 1), pipe.incr(TEXT), pipe.set(B, 2)), "done")

    with pytest.raises(Refused, match=r"refused part of the change \(.*not an integer"):
        whole.transaction(r, body, attempts=3, busy=Busy(), refused=refused)
    assert len(seen) == 1 and isinstance(seen[0], redis_lib.ResponseError)
    assert (r.get(A), r.get(TEXT), r.get(B)) == ("1", "not a number", "2")  # no rollback

    with pytest.raises(redis_lib.ResponseError, match="not an integer"):  # by default: itself
        whole.transaction(r, body, attempts=3, busy=Busy())


def test_types_are_checked_before_anything_is_queued(r):
    r.set(SET, "a string")
    queued = []

    def body(pipe):
        return whole.Write(queued.append, types=[(A, "string"), (SET, "set")])

    with pytest.raises(whole.WrongType, match=r"\{whole\}:set is a string, not a set"):
        whole.transaction(r, body, attempts=3, busy=Busy())
    assert queued == [] and r.get(SET) == "a string" and r.exists(A) == 0


def test_a_key_whose_type_was_checked_is_watched(r):
    """Its type changed after the check and before EXEC: the body starts over and sees it,
    rather than a command failing inside EXEC."""
    calls = []

    def queue(pipe):
        if not calls:
            r.set(SET, "a string now")  # someone else, between the check and EXEC
        calls.append(1)
        pipe.sadd(SET, "member")

    def body(pipe):
        return whole.Write(queue, types=[(SET, "set")])

    with pytest.raises(whole.WrongType, match="is a string, not a set"):
        whole.transaction(r, body, attempts=3, busy=Busy())
    assert calls == [1] and r.get(SET) == "a string now"


def test_the_callers_errors_pass_through_and_nothing_is_written(r):
    def body(pipe):
        pipe.get(COUNTER)
        raise Refused("the body said no")

    with pytest.raises(Refused, match="the body said no"):
        whole.transaction(r, body, watch=[COUNTER], attempts=3, busy=Busy())
    assert increment(r, attempts=1) == 1  # and the connection was left without its WATCH


def test_concurrent_writers_lose_no_increment(r):
    """Four threads increment one counter through the helper: every increment that returned
    is counted exactly once; the others gave up as busy."""
    done, gave_up = [], []

    def worker():
        for _ in range(25):
            try:
                done.append(increment(r, attempts=200))
            except Busy:
                gave_up.append(1)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(done) + len(gave_up) == 100
    assert sorted(done) == list(range(1, len(done) + 1))  # each value handed out once
    assert r.get(COUNTER) == str(len(done))
