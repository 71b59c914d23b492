"""Transactions that commit whole.

Redis does not roll back a MULTI/EXEC when one command fails inside it: the commands that
did not fail stay applied. So a writer checks, while it WATCHes and before it queues
anything, that every key it writes can take its command (`check_types`), and reads every
reply of EXEC (`execute`). One definition here; the writers turn `WrongType` into their own
errors where they have them.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis


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


def execute(pipe) -> tuple[list, list[Exception]]:
    """EXEC without raising: (every reply, the errors among them). Errors mean the rest of
    the transaction was applied: the caller says so."""
    replies = pipe.execute(raise_on_error=False)
    return replies, [r for r in replies if isinstance(r, Exception)]
