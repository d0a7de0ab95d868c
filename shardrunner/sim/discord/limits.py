"""The gateway's rate limits: identifies per bucket and per day, and commands per connection.

Discord counts identifies per token: one per ``shard_id % max_concurrency`` bucket every 5 s (faster
gets op 9 false) and ``session_start_limit.total`` a day (when they run out the token is reset). A
connection may send 120 payloads per 60 s, heartbeats included; one more closes it with 4008.
"""

from __future__ import annotations

import time
from collections import deque

from shardrunner.protocol.discord import COMMAND_WINDOW_S, COMMANDS_PER_WINDOW
from shardrunner.sim.discord.config import SimConfig


class CommandWindow:
    """The payloads one connection sent in the last 60 s (a sliding window)."""

    __slots__ = ("_times",)

    def __init__(self) -> None:
        self._times: deque[float] = deque()

    def over_limit(self, now: float) -> int | None:
        """Count a payload sent at ``now``; the count in the window if that is one too many, else None."""
        window = self._times
        window.append(now)
        while window and now - window[0] > COMMAND_WINDOW_S:
            window.popleft()
        return len(window) if len(window) > COMMANDS_PER_WINDOW else None


class IdentifyLimits:
    """Identify buckets and the daily session start limit, shared by every connection of the token."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        #: bucket -> time.monotonic() of its last accepted identify.
        self.bucket_last: dict[int, float] = {}
        self.starts_remaining = config.starts_remaining
        self.starts_reset_at = time.monotonic() + config.session_start_reset_after

    def bucket(self, shard_id: int) -> int:
        return shard_id % self.config.max_concurrency

    def too_soon(self, bucket: int, now: float) -> float | None:
        """Seconds since the bucket's last identify if that is within the window, else None."""
        last = self.bucket_last.get(bucket)
        if last is not None and now - last < self.config.identify_window:
            return now - last
        return None

    def take(self, bucket: int, now: float) -> None:
        """Count an accepted identify: one session start, and the bucket's window starts again."""
        self.starts_remaining -= 1
        self.bucket_last[bucket] = now

    def reset_after(self, now: float) -> float:
        """Seconds until ``starts_remaining`` goes back to the total."""
        return max(0.0, self.starts_reset_at - now)

    def tick(self, now: float) -> None:
        """Refill the daily limit once its reset time has come."""
        if now >= self.starts_reset_at:
            self.starts_remaining = self.config.session_start_total
            self.starts_reset_at = now + self.config.session_start_reset_after
