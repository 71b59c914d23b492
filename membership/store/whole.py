"""Transactions that commit whole: the one helper every optimistic write runs through.

Redis does not roll back a MULTI/EXEC when one command fails inside it, so `transaction`
checks before it queues and reads every reply after. A body may instead return a `Checked`
commit: one script that checks the reads still stand, then writes (no WATCH, MULTI or EXEC).
Both work the same on one Redis, behind Sentinel and on a Cluster (the keys' shared hash tag
puts them on one slot). redis-py's own `Redis.transaction` retries forever and raises on the
first failed reply, so it is not used.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgspec
import redis
from hiredis import pack_command
from redis._parsers.base import BaseParser
from redis.cluster import ClusterPipeline
from redis.commands.core import CoreCommands
from redis.exceptions import MovedError

T = TypeVar("T")


class WrongType(redis.ResponseError):
    """A key holds another type than the transaction writes to it; nothing was queued."""


def check_types(pipe, expected: Iterable[tuple[str, str]]) -> None:
    """Each (key, Redis type) must be that type or absent; WrongType names the first that
    is not. Call on a WATCHing pipeline, before `multi()`."""
    for key, wanted in expected:
        kind = pipe.type(key)
        if isinstance(kind, bytes):
            kind = kind.decode()
        if kind not in ("none", wanted):
            raise WrongType(f"{key} is a {kind}, not a {wanted}; nothing was changed")


def pack(commands: Sequence[tuple]) -> bytes:
    """Commands in Redis's protocol, packed by hiredis (several times faster than redis-py's
    packer, which handles argument kinds these commands never hold); text as UTF-8."""
    return b"".join([pack_command(command) for command in commands])


def watch_and_read(pipe, keys: Sequence[str], reads: Sequence[tuple]) -> list:
    """WATCH `keys` on the transaction pipeline `pipe` (before `multi()`), then run `reads`
    (commands as sent: `("HGETALL", key)`) on the same connection, all in one round trip.

    The WATCH is processed before every read, so a change after any of them fails EXEC.
    Returns the reads' replies, parsed as redis-py parses them; a reply that is an error is
    raised once every reply is read (a Cluster's MOVED as a WatchError, the slot's new
    owner learnt: the next attempt goes there). A connection error drops the connection
    (its WATCH with it) and is raised: the caller's attempt starts over or gives up."""
    commands = [("WATCH", *keys), *reads] if keys else list(reads)
    if not commands:
        return []
    if isinstance(pipe, ClusterPipeline):  # every key shares one slot: its node's connection
        # redis-py has no public way to send a Cluster transaction's WATCH and reads in one
        # round trip: these private names are why pyproject bounds redis (re-test on upgrade).
        strategy = pipe._execution_strategy
        for command in commands:
            strategy._pipeline_slots.add(strategy._resolve_transaction_slot(*command))
        if keys:
            strategy._validate_watch()
        node, conn = strategy._get_client_and_connection_for_transaction()
        parse = node.parse_response
    else:
        if pipe.connection is None:
            pipe.connection = pipe.connection_pool.get_connection()
        conn, parse = pipe.connection, pipe.parse_response  # a WATCH reply sets `watching`
    replies: list = []
    try:
        conn.send_packed_command([pack(commands)])
        for command in commands:
            try:
                replies.append(parse(conn, command[0]))
            except redis.ResponseError as exc:
                replies.append(exc)
    except BaseException:
        conn.disconnect()
        raise
    if keys and isinstance(pipe, ClusterPipeline):
        strategy._watch_acknowledged = True
    for reply in replies:
        if isinstance(reply, MovedError) and isinstance(pipe, ClusterPipeline):
            # The slot moved (nothing ran): the next attempt goes to its owner now.
            strategy._nodes_manager.move_slot(reply)
            raise redis.WatchError("the keys' slot moved to another node") from reply
        if isinstance(reply, redis.ResponseError):
            raise reply
    return replies[1:] if keys else replies


@dataclass(frozen=True)
class Write(Generic[T]):
    """What a transaction's body decided to write.

    `queue(pipe)` queues the commands (inside MULTI). `types`: (key, Redis type) pairs
    WATCHed and checked with `check_types` just before MULTI, so its WrongType leaves nothing
    written. Once EXEC has applied every command the transaction returns `result`, or
    `returns(replies)` when the answer is read from EXEC's replies."""

    queue: Callable[[Any], object]
    result: T | None = None
    types: Iterable[tuple[str, str]] = ()
    returns: Callable[[list], T] | None = None


# A commit as one script (`Checked`): each check's key absent, each read giving what it gave
# (a hash's fields, a set's members in any order; else {1}: start over), then each write,
# its reply checked as EXEC's are; a write refused before any was made (a read-only
# replica, no memory, no disk) refuses the whole ({2, err}).
# A caller's Lua runs at `-- before` (before any write: it may return {3, ...} to refuse)
# and at `-- tail`, last (it may set `result` and add to `errors`).
_CHECKED = """
local job = cmsgpack.unpack(ARGV[1])
if #job[1] > 0 and redis.call('EXISTS', unpack(job[1])) > 0 then return {1} end
for _, read in ipairs(job[2]) do
  local want = table.remove(read)
  local got = redis.pcall(unpack(read))  -- a key of another type now: start over
  if type(got) == 'table' and got.err then return {1} end
  if type(got) ~= 'table' then got = got and {got} or {} end
  if #got ~= #want then return {1} end
  if read[1] == 'HGETALL' then  -- in any order: a rehash reorders a hash it leaves alone
    local fields = {}
    for i = 1, #got, 2 do fields[got[i]] = got[i + 1] end
    for i = 1, #want, 2 do
      if fields[want[i]] ~= want[i + 1] then return {1} end
    end
  elseif read[1] == 'SMEMBERS' then  -- in any order: Lua sorts by the server's locale
    local members = {}
    for _, member in ipairs(got) do members[member] = true end
    for _, member in ipairs(want) do
      if not members[member] then return {1} end
    end
  else
    for i = 1, #got do
      if got[i] ~= want[i] then return {1} end
    end
  end
end
-- before
local errors, result = {}, false
for i, command in ipairs(job[3]) do
  local reply = redis.pcall(unpack(command))
  if type(reply) == 'table' and reply.err then
    local err = reply.err:match('^@user_script:%s*%d+:%s*%-(.*)$') or reply.err
    err = err:gsub('%s+$', '')
    if i == 1 and (err:find('^READONLY') or err:find('^OOM') or err:find('^MISCONF')) then
      return {2, err}
    end
    errors[#errors + 1] = err
  end
end
-- tail
return {0, result, errors}
"""


class Queued(CoreCommands):
    """Stands for a pipeline: records the commands redis-py's methods make (`hset`,
    `xadd`, ...) as lists of text, for a `Checked` commit to run."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []

    def execute_command(self, *args, **_options) -> None:
        self.commands.append(
            [a if a.__class__ is str else str(a) if a.__class__ is int else _text(a) for a in args]
        )


def _text(value) -> str:
    """An argument as redis-py's encoder writes it (bytes must be UTF-8 here)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, bool):
        raise redis.DataError(f"invalid input of type bool: {value!r}")
    if isinstance(value, int | float):
        return repr(value)
    raise redis.DataError(f"invalid input of type {type(value).__name__}: {value!r}")


def expected(method: str, reply) -> list[str]:
    """A read's reply as `_CHECKED` compares it: a list of text (a hash's fields and
    values; a set's members, sorted: both compared in any order; nothing for no value)."""
    if reply is None:
        return []
    if isinstance(reply, dict):
        return [x for pair in reply.items() for x in pair]
    if isinstance(reply, set | frozenset):
        return sorted(reply)
    if isinstance(reply, list | tuple):  # a missing value is Lua's false (as MessagePack's)
        return [False if x is None else x for x in reply]
    return [reply]


@dataclass(frozen=True)
class Checked(Generic[T]):
    """What a transaction's body decided, written by one script instead of WATCH and
    MULTI/EXEC: `absent` keys must still not exist and each read in `same` ((command,
    args..., its reply as `expected` gives it)) must still give it, or the attempt starts
    over; then `writes` (from a `Queued`) run, every reply checked. `before` is Lua that
    runs before the writes and `tail` Lua that runs last (`job[4]` holds `tail_args`, KEYS
    `keys`; the tail may set `result`). The transaction returns `returns(result)`. A
    `before` that returns {3, ...} writes nothing: `refuse(...)` raises, or returns to start
    over. `keys`: at least one key of the hash tag (a Cluster routes by it)."""

    keys: Sequence[str]
    writes: Sequence[Sequence[str]]
    returns: Callable[[Any], T]
    absent: Sequence[str] = ()
    same: Sequence[Sequence[Any]] = ()
    tail: str = ""
    tail_args: Sequence[Any] = ()
    before: str = ""
    refuse: Callable[..., None] | None = None

    def run(self, pipe) -> list:
        longest = max(map(len, (*self.writes, *self.same, self.absent)), default=0)
        if longest > _MOST_VALUES:  # unpack would fail mid-script, after earlier writes
            raise redis.DataError(f"a command of {longest} arguments is more than Lua passes whole")
        source, sha = _SCRIPTS.get((self.tail, self.before)) or _script(self.tail, self.before)
        job = _JOB.encode((self.absent, self.same, self.writes, self.tail_args))
        keys = list(self.keys)
        try:
            [reply] = watch_and_read(pipe, (), [("EVALSHA", sha, len(keys), *keys, job)])
        except redis.exceptions.NoScriptError:
            [reply] = watch_and_read(pipe, (), [("EVAL", source, len(keys), *keys, job)])
        return reply


# (tail, before) -> the script's source and SHA1: made once, not for every commit (its
# 5 kB of text copied and hashed again cost about 10 us an event).
_SCRIPTS: dict[tuple[str, str], tuple[str, str]] = {}
# The job as MessagePack, which Redis's Lua reads (cmsgpack) in less time than JSON (cjson),
# encoded by msgspec in less time than json.dumps.
_JOB = msgspec.msgpack.Encoder()
# What Lua's unpack passes at most (LUAI_MAXCSTACK is 8,000), with room for a read's reply.
_MOST_VALUES = 7_900


def _script(tail: str, before: str) -> tuple[str, str]:
    source = _CHECKED.replace("-- tail", tail).replace("-- before", before)
    return _SCRIPTS.setdefault((tail, before), (source, hashlib.sha1(source.encode()).hexdigest()))


def _commit(pipe, decided: Checked, refused) -> tuple[bool, Any]:
    """Run a `Checked` commit: (False, None) when a check failed (start over), else
    (True, what the transaction returns)."""
    reply = decided.run(pipe)
    if reply[0] == 1:
        return False, None
    if reply[0] == 2:
        raise BaseParser.parse_error(reply[1])
    if reply[0] == 3 and decided.refuse is not None:
        decided.refuse(*reply[1:])
        return False, None
    errors = [redis.ResponseError(e) for e in reply[2]]
    if errors:
        raise refused(errors)
    return True, decided.returns(reply[1])


def _first(errors: list[Exception]) -> Exception:
    return errors[0]


def transaction(
    client: redis.Redis,
    body: Callable[[Any], Write[T] | T],
    *,
    watch: Iterable[str] = (),
    attempts: int,
    busy: BaseException | Callable[[], T],
    refused: Callable[[list[Exception]], BaseException] = _first,
    pause: Callable[[int], object] | None = None,
) -> T:
    """Run one optimistic write; return what it decided.

    Each attempt WATCHes `watch` on a transaction pipeline and calls `body(pipe)`: it reads
    (on the pipeline, or on another connection once it has WATCHed more keys on `pipe`) and
    checks, raising the writer's own errors, and returns a `Write`, a `Checked` (its script
    run instead of MULTI/EXEC: a failed check starts the next attempt as a WatchError does),
    or any other value to write nothing (returned as it is). A Write is checked (`types`),
    queued inside MULTI and EXECed. A reply that is an error means Redis kept the rest:
    `refused(errors)` gives what to raise (the first error itself by default); it may record
    the damage first, or raise itself.

    A WATCHed key changed before EXEC (WatchError) starts the next attempt, after
    `pause(attempt)` when given (a back-off). After `attempts`, `busy` is raised when it is
    an exception, else `busy()` is returned.
    """
    watch = tuple(watch)
    for attempt in range(attempts):
        with client.pipeline(transaction=True) as pipe:
            try:
                if watch:
                    pipe.watch(*watch)
                decided = body(pipe)
                if isinstance(decided, Checked):
                    done, result = _commit(pipe, decided, refused)
                    if done:
                        return result
                    if pause is not None:
                        pause(attempt)
                    continue
                if not isinstance(decided, Write):
                    return decided
                types = tuple(decided.types)
                if types:  # WATCHed too: a key's type changed before EXEC starts over
                    pipe.watch(*(key for key, _ in types))
                    check_types(pipe, types)
                pipe.multi()
                decided.queue(pipe)
                replies = pipe.execute(raise_on_error=False)
            except redis.WatchError:
                if pause is not None:
                    pause(attempt)
                continue
        errors = [r for r in replies if isinstance(r, Exception)]
        if errors:
            raise refused(errors)
        return decided.returns(replies) if decided.returns is not None else decided.result
    if isinstance(busy, BaseException):
        raise busy
    return busy()
