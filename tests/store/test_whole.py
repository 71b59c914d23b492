"""store/whole.py: the one helper every optimistic write runs through, on a real Redis.

Keys share one hash tag, so the tests run on a Cluster and through Sentinel too (`topologies`)."""

from __future__ import annotations

import shutil
import subprocess
import threading

import pytest
import redis as redis_lib

from membership.store import whole
from tests.support.processes import RedisServer

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


def checked_body(reads, meddle=lambda: None, writes=(), returns=lambda result: result, tail=""):
    """A body that reads `reads` (no WATCH), lets `meddle` change Redis, then commits
    `writes` as one `Checked` script that checks the reads first."""

    def body(pipe):
        replies = whole.watch_and_read(pipe, (), [tuple(r) for r in reads])
        meddle()
        absent = [r[1] for r, got in zip(reads, replies, strict=True) if not got]
        same = [
            [*r, whole.expected(r[0].lower(), got)]
            for r, got in zip(reads, replies, strict=True)
            if got
        ]
        queued = whole.Queued()
        for command in writes:
            queued.execute_command(*command)
        return whole.Checked(
            keys=[A], writes=queued.commands, absent=absent, same=same, returns=returns, tail=tail
        )

    return body


def test_a_checked_commit_writes_when_what_it_read_stands(r):
    r.hset(B, mapping={"x": "1", "é\x00": "ü"})
    body = checked_body(
        [("HGETALL", B), ("GET", A), ("SMEMBERS", SET), ("HMGET", B, "x", "missing")],
        writes=[("SET", A, 7), ("SADD", SET, "m", "n"), ("HSET", B, "x", 2.5)],
        returns=lambda result: ("done", result),
        tail="result = redis.call('GET', KEYS[1])",
    )
    assert whole.transaction(r, body, attempts=1, busy=Busy()) == ("done", "7")
    assert r.get(A) == "7" and r.smembers(SET) == {"m", "n"} and r.hget(B, "x") == "2.5"


@pytest.mark.parametrize(
    "meddle",
    [
        lambda r: r.set(A, "now there"),  # read as absent
        lambda r: r.hset(B, "x", "2"),  # read, then changed
        lambda r: r.sadd(SET, "c"),  # a set read, then changed
    ],
    ids=["absent", "hash", "set"],
)
def test_a_checked_commit_starts_over_when_a_read_changed(r, meddle):
    r.hset(B, "x", "1")
    r.sadd(SET, "a", "b")
    meddled, pauses = [], []

    def once():
        if not meddled:
            meddled.append(1)
            meddle(r)

    body = checked_body([("GET", A), ("HGETALL", B), ("SMEMBERS", SET)], once, [("SET", TEXT, 1)])
    whole.transaction(r, body, attempts=2, busy=Busy(), pause=pauses.append)
    assert pauses == [0] and r.get(TEXT) == "1"  # the second attempt committed

    # a read that changes before every commit: given up, nothing written
    body = checked_body([("GET", COUNTER)], lambda: r.incr(COUNTER), [("SET", TEXT, 2)])
    assert whole.transaction(r, body, attempts=3, busy=lambda: "gave up") == "gave up"
    assert r.get(TEXT) == "1" and r.get(COUNTER) == "3"


def test_a_checked_commit_reads_every_reply_and_keeps_going_as_exec_does(r):
    r.set(TEXT, "not a number")
    body = checked_body([], writes=[("SET", A, 1), ("INCR", TEXT), ("SET", B, 2)])
    with pytest.raises(Refused, match=r"1: ERR value is not an integer"):
        whole.transaction(
            r,
            body,
            attempts=3,
            busy=Busy(),
            refused=lambda errors: Refused(f"{len(errors)}: {errors[0]}"),
        )
    assert (r.get(A), r.get(TEXT), r.get(B)) == ("1", "not a number", "2")  # no rollback


@pytest.mark.topologies("single")  # its own memory limit
def test_a_checked_commit_refused_before_its_first_write_raises_as_redis_would(r):
    r.config_set("maxmemory-policy", "noeviction")
    r.config_set("maxmemory", 1)
    try:
        body = checked_body([], writes=[("SET", A, 1), ("SET", B, 2)])
        with pytest.raises(redis_lib.exceptions.OutOfMemoryError):
            whole.transaction(r, body, attempts=3, busy=Busy())
    finally:
        r.config_set("maxmemory", 0)
    assert r.exists(A, B) == 0


def test_a_checked_commits_before_part_refuses_it_whole_or_starts_it_over(r):
    r.set(TEXT, "not a number")
    before = "if redis.call('GET', KEYS[1]) ~= '1' then return {3, KEYS[1], 'not one'} end"
    refusals = []

    def refuse(key, said):
        refusals.append((key, said))
        if len(refusals) == 1:
            r.set(TEXT, "1")  # mended: the next attempt commits
            return
        raise Refused(said)

    def body(pipe):
        queued = whole.Queued()
        queued.hset(B, "x", 1)
        return whole.Checked(
            keys=[TEXT], writes=queued.commands, returns=lambda _: "done", before=before,
            refuse=refuse,
        )  # fmt: skip

    assert whole.transaction(r, body, attempts=3, busy=Busy()) == "done"
    assert refusals == [(TEXT, "not one")] and r.hget(B, "x") == "1"
    r.set(TEXT, "2")
    r.delete(B)
    refusals.append("a second refusal raises")
    with pytest.raises(Refused, match="not one"):
        whole.transaction(r, body, attempts=3, busy=Busy())
    assert r.exists(B) == 0  # nothing written


def test_a_checked_commit_takes_a_hash_read_in_another_order_as_the_same(r):
    """A hash Redis keeps as a hash table (a value over 64 bytes) is rehashed a step at a
    time by whatever touches it, reads included: HGETALL then lists the same fields in
    another order. That is no change, and the commit goes ahead at its first attempt."""
    r.hset(B, mapping={f"f{i}": "long " * 15 for i in range(4)})
    r.hset(B, "f4", "the fifth field grows the table: a rehash starts")
    orders, pauses = [], []

    def meddle():
        orders.append(list(r.hgetall(B)))
        r.hget(B, "f0")  # a reader elsewhere: one rehash step
        orders.append(list(r.hgetall(B)))

    body = checked_body([("HGETALL", B)], meddle, [("SET", TEXT, "written")])
    whole.transaction(r, body, attempts=2, busy=Busy(), pause=pauses.append)
    assert orders[0] != orders[1] and sorted(orders[0]) == sorted(orders[1])
    assert pauses == [] and r.get(TEXT) == "written"


def _move_slot(cluster, slot: int, to: int | None = None) -> int:
    """Hand the empty `slot` to the primary on port `to` (by default the next one), as a
    resharding does; returns the port of the primary that held it."""
    nodes = {n.port: n.client() for n in cluster.nodes}
    ids = {port: client.execute_command("CLUSTER MYID") for port, client in nodes.items()}
    table = nodes[cluster.nodes[0].port].execute_command("CLUSTER SLOTS")
    [owner] = [primary[1] for low, high, primary, *_ in table if low <= slot <= high]
    if to is None:
        ports = sorted(nodes)
        to = ports[(ports.index(owner) + 1) % len(ports)]
    nodes[to].execute_command("CLUSTER SETSLOT", slot, "IMPORTING", ids[owner])
    nodes[owner].execute_command("CLUSTER SETSLOT", slot, "MIGRATING", ids[to])
    for port in (to, owner, *(p for p in nodes if p not in (to, owner))):
        nodes[port].execute_command("CLUSTER SETSLOT", slot, "NODE", ids[to])
    return owner


@pytest.mark.topologies("cluster")
def test_a_checked_commit_follows_a_slot_that_moved_to_another_node(r, redis_server):
    """A resharding moved the keys' slot after the client learnt where it was: the node
    answers MOVED (nothing ran), the client learns the new owner and the next attempt
    commits there, as redis-py's own transactions do."""
    slot = r.keyslot(A)
    r.get(A)  # the client knows the slot's owner
    pauses = []
    owner = _move_slot(redis_server, slot)
    try:
        body = checked_body([("GET", A)], writes=[("SET", A, "moved")])
        whole.transaction(r, body, attempts=3, busy=Busy(), pause=pauses.append)
        assert pauses == [0] and r.get(A) == "moved"
        assert r.get_node_from_key(A).port != owner
    finally:
        r.delete(A)
        _move_slot(redis_server, slot, owner)


def test_a_checked_commit_takes_a_set_read_as_the_same_whatever_the_servers_locale(
    tmp_path, monkeypatch
):
    """Lua compares text by the server's locale (strcoll): under en_US.UTF-8 (a server of
    its own) it sorts `sub_1b` before `sub_1C`, Python after. A set read is the same."""
    localedef = shutil.which("localedef")
    assert localedef, "localedef (glibc) builds the locale the server runs in"
    subprocess.run(
        [localedef, "-i", "en_US", "-f", "UTF-8", str(tmp_path / "en_US.UTF-8")],
        check=True,
        capture_output=True,
    )
    monkeypatch.setenv("LOCPATH", str(tmp_path))
    monkeypatch.setenv("LC_ALL", "en_US.UTF-8")
    server = RedisServer().start()
    try:
        client = server.client()
        members = ["sub_1A", "sub_1b", "sub_1C", "Sub_2"]
        lua_order = client.eval("local t = {...} table.sort(t) return t", 0, *members)
        assert lua_order != sorted(members)  # the locale took
        client.sadd(SET, *members)
        pauses = []
        body = checked_body([("SMEMBERS", SET)], writes=[("SET", TEXT, "written")])
        whole.transaction(client, body, attempts=2, busy=Busy(), pause=pauses.append)
        assert pauses == [] and client.get(TEXT) == "written"
        client.close()
    finally:
        server.stop()


def test_a_checked_commit_loads_its_script_again_after_redis_forgot_it(r):
    """After a SCRIPT FLUSH (or a failover to a server that never ran it) EVALSHA answers
    NOSCRIPT, which runs nothing: the commit sends the script itself, once."""
    body = checked_body([("GET", A)], writes=[("INCR", COUNTER)], returns=lambda _: "done")
    assert whole.transaction(r, body, attempts=1, busy=Busy()) == "done"
    r.script_flush()
    assert whole.transaction(r, body, attempts=1, busy=Busy()) == "done"
    assert whole.transaction(r, body, attempts=1, busy=Busy()) == "done"
    assert r.get(COUNTER) == "3"  # each commit ran once, none twice


def test_a_checked_commit_too_long_for_lua_is_refused_before_anything_is_written(r):
    """Lua's unpack passes at most about 8,000 values: a longer write would fail inside the
    script after the writes before it. It is refused before the script is sent."""
    fields = [str(i) for i in range(4_100) for _ in (0, 1)]  # HSET with 8,200 values
    body = checked_body([], writes=[("SET", A, "1"), ("HSET", B, *fields)])
    with pytest.raises(redis_lib.DataError, match="arguments"):
        whole.transaction(r, body, attempts=1, busy=Busy())
    assert r.exists(A, B) == 0
    small = checked_body([], writes=[("SET", A, "1"), ("HSET", B, *fields[:7_000])])
    whole.transaction(r, small, attempts=1, busy=Busy())
    assert r.get(A) == "1" and r.hlen(B) == 3_500
