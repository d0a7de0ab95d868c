"""Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And Jitter").

Every delay is drawn uniformly between 0 and ``min(cap, base * 2**attempt)``: when a whole cluster
loses its connections at once, the reconnects spread over the window instead of arriving together.
"""

from __future__ import annotations

from collections.abc import Callable


class Backoff:
    """Delays for consecutive failed attempts; :meth:`reset` after a success."""

    __slots__ = ("_random", "attempt", "base", "cap")

    def __init__(self, random: Callable[[], float], base: float = 1.0, cap: float = 60.0) -> None:
        if base <= 0 or cap < base:
            raise ValueError("backoff needs 0 < base <= cap")
        self.base = base
        self.cap = cap
        self.attempt = 0
        self._random = random

    def next(self) -> float:
        """The delay before the next attempt (and count this attempt)."""
        ceiling = min(self.cap, self.base * float(1 << min(self.attempt, 32)))
        self.attempt += 1
        return self._random() * ceiling

    def reset(self) -> None:
        self.attempt = 0
