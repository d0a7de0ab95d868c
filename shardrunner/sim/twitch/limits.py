"""Per-account limits, counted across every connection of the account (TWITCH.md, "Limits").

:class:`Window` is a sliding window of event times; :class:`Account` holds one login's windows, its
channels, and the last message per channel for the per-channel interval and the duplicate rule.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

from shardrunner.protocol.twitch import DUPLICATE_WINDOW_S, MAX_MESSAGE_CHARS, TwitchLimits

_SPACES = re.compile(r"\s+")


class Window:
    """Events in the last ``window`` seconds; :meth:`take` counts one and says whether it fit."""

    __slots__ = ("_times", "count", "window")

    def __init__(self, count: int, window: float) -> None:
        self._times: deque[float] = deque()
        self.count = count
        self.window = window

    def used(self, now: float) -> int:
        t = self._times
        while t and now - t[0] >= self.window:
            t.popleft()
        return len(t)

    def take(self, now: float) -> bool:
        """Count an event at ``now`` (it uses the budget even when over it); True if within it."""
        ok = self.used(now) < self.count
        self._times.append(now)
        return ok


def duplicate_key(text: str) -> str:
    """What the duplicate rule compares: the first 500 characters, spaces collapsed, trimmed."""
    return _SPACES.sub(" ", text[:MAX_MESSAGE_CHARS]).strip()


@dataclass
class Account:
    """One login's budgets and state, shared by its connections."""

    login: str
    limits: TwitchLimits
    logins: Window = field(init=False)
    joins: Window = field(init=False)
    messages: Window = field(init=False)
    mod_messages: Window = field(init=False)
    #: channel -> how many of the account's connections are in it.
    channels: dict[str, int] = field(default_factory=dict)
    #: channel -> (time, duplicate key) of the last delivered message.
    last_sent: dict[str, tuple[float, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.configure(self.limits)

    def configure(self, limits: TwitchLimits) -> None:
        self.limits = limits
        self.logins = Window(limits.login_count, limits.login_window)
        self.joins = Window(limits.join_count, limits.join_window)
        self.messages = Window(limits.privmsg_count, limits.privmsg_window)
        self.mod_messages = Window(limits.privmsg_mod_count, limits.privmsg_mod_window)

    def counted_channels(self, moderated: set[str] | frozenset[str]) -> int:
        return sum(1 for c in self.channels if c not in moderated)

    def check_message(self, channel: str, text: str, moderator: bool, now: float) -> str | None:
        """Count a PRIVMSG; the NOTICE msg-id that refuses it, or None when it is delivered."""
        if not (self.mod_messages if moderator else self.messages).take(now):
            return "msg_ratelimit"
        if moderator:
            self.last_sent[channel] = (now, duplicate_key(text))
            return None
        last = self.last_sent.get(channel)
        key = duplicate_key(text)
        if last is not None:
            if now - last[0] < self.limits.channel_interval:
                return "msg_ratelimit"
            if last[1] == key and now - last[0] < DUPLICATE_WINDOW_S:
                return "msg_duplicate"
        self.last_sent[channel] = (now, key)
        return None
