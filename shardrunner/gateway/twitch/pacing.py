"""The message limits of one Twitch account, as the sending connection keeps them (no I/O).

There is exactly one sending connection per account in the cluster, so the account's message
budget is local to it: no relay to the supervisor, just these windows. They mirror what the server
enforces (``sim/twitch/limits.py`` ``Account.check_message``):

- account-wide, ``privmsg_count`` per ``privmsg_window`` in channels where the account is neither
  moderator nor broadcaster, and ``privmsg_mod_count`` per ``privmsg_mod_window`` where it is;
- where it is not moderator, at most one message per ``channel_interval`` per channel;
- where it is not moderator, a message that equals the last delivered one of the channel within
  30 s (after :func:`duplicate_key`) is dropped by Twitch.

Every window counts from our write and adds a margin
(:func:`~shardrunner.identify.budget.margin_for`): the server counts when it reads, a little later,
and a later read of an earlier write must not make two writes look closer than they were.
"""

from __future__ import annotations

import math
import re
from collections import deque
from typing import Final

from shardrunner.identify.budget import margin_for
from shardrunner.protocol.twitch import MAX_MESSAGE_CHARS, TwitchLimits

#: The margin of the duplicate rule's 30 s (seconds).
MARGIN_S: Final = margin_for(30.0)

_SPACES = re.compile(r"\s+")


def duplicate_key(text: str) -> str:
    """What Twitch's duplicate rule compares: the first 500 characters, spaces collapsed, trimmed."""
    return _SPACES.sub(" ", text[:MAX_MESSAGE_CHARS]).strip()


class Window:
    """At most ``count`` writes in any ``window`` seconds (plus the margin), counted from the writes."""

    __slots__ = ("_times", "count", "margin", "window")

    def __init__(self, count: int, window: float, margin: float | None = None) -> None:
        self._times: deque[float] = deque()
        self.count = count
        self.window = window
        self.margin = margin_for(window) if margin is None else margin

    def used(self, now: float) -> int:
        t, span = self._times, self.window + self.margin
        while t and t[0] + span <= now:
            t.popleft()
        return len(t)

    def wait(self, now: float) -> float:
        """Seconds until one more write fits (0: now)."""
        used = self.used(now)
        if used < self.count:
            return 0.0
        return self._times[used - self.count] + self.window + self.margin - now

    def add(self, now: float) -> None:
        self._times.append(now)


class Pacer:
    """The account's windows and the per-channel interval (see the module)."""

    def __init__(self, limits: TwitchLimits, margin: float | None = None) -> None:
        self.limits = limits
        self.margin = margin_for(limits.channel_interval) if margin is None else margin
        self.plain = Window(limits.privmsg_count, limits.privmsg_window, margin)
        self.mod = Window(limits.privmsg_mod_count, limits.privmsg_mod_window, margin)
        #: channel -> when we last wrote there.
        self.last_write: dict[str, float] = {}

    def wait(self, channel: str, moderated: bool, now: float) -> float:
        """Seconds until a message to ``channel`` may be written (0: now)."""
        if moderated:
            return self.mod.wait(now)
        last = self.last_write.get(channel, -math.inf)
        return max(self.plain.wait(now), last + self.limits.channel_interval + self.margin - now)

    def record(self, channel: str, moderated: bool, now: float) -> None:
        (self.mod if moderated else self.plain).add(now)
        self.last_write[channel] = now
