"""Transactions that commit whole: the one helper every optimistic write runs through.

Redis does not roll back a MULTI/EXEC when one command fails inside it, so `transaction`
checks before it queues and reads every reply after. It works the same on one Redis, behind
Sentinel and on a Cluster (the keys' shared hash tag puts them on one slot). redis-py's own
`Redis.transaction` retries forever and raises on the first failed reply, so it is not used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import redis
from redis.cluster import ClusterPipeline

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


def watch_and_read(pipe, keys: Sequence[str], reads: Sequence[tuple]) -> list:
    """WATCH `keys` on the transaction pipeline `pipe` (before `multi()`), then run `reads`
    (commands as sent: `("HGETALL", key)`) on the same connection, all in one round trip.

    The WATCH is processed before every read, so a change after any of them fails EXEC.
    Returns the reads' replies, parsed as redis-py parses them; a reply that is an error is
    raised once every reply is read. A connection error drops the connection (its WATCH
    with it) and is raised: the caller's attempt starts over or gives up."""
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
        conn.send_packed_command(conn.pack_commands(commands))
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
    checks, raising the writer's own errors, and returns a `Write`, or any other value to
    write nothing (returned as it is). A Write is checked (`types`), queued inside MULTI and
    EXECed. A reply that is an error means Redis kept the rest: `refused(errors)` gives
    what to raise (the first error itself by default); it may record the damage first, or
    raise itself.

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
