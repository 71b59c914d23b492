"""A clock set by hand, for code that takes its clock as an argument."""

from __future__ import annotations


class Clock:
    """A clock set by hand: call it for the time, set `at` to move it."""

    def __init__(self, at: float = 1_800_000_000.0) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at
