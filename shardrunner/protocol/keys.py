"""The identity of one gateway connection, used end to end.

A bare shard number cannot tell two shard sets apart (a resharding cluster runs the old set of 4
and the new set of 8 side by side), nor a Discord shard from a Twitch chat connection. Every table
that is keyed by a connection (the supervisor's session book, identify requests and grants, the
worker's connections, events on the bus, the router's holds, the client's dedupe, ``status``, the
state file) is keyed by a :class:`ConnKey`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import msgspec

_PATTERN = re.compile(r"^([a-z][a-z0-9_]*):(\d+)/(\d+)(?:@(\d+))?$")


class ConnKey(msgspec.Struct, frozen=True, array_like=True, gc=False, order=True):
    """``(platform, generation, shard, count)``: which connection of which set of which platform.

    ``generation`` numbers a platform's connection sets: Discord's first shard set is 0, the set a
    reshard starts is 1, and so on. ``shard`` is the connection's index in its set of ``count``.
    Frozen (hashable, usable as a dict key), ordered (sets, then shards, sort together), and sent
    as a 4-element array.
    """

    platform: str
    generation: int
    shard: int
    count: int

    def __str__(self) -> str:
        text = f"{self.platform}:{self.shard}/{self.count}"
        return f"{text}@{self.generation}" if self.generation else text

    @classmethod
    def parse(cls, text: str) -> ConnKey:
        """The inverse of ``str()``: ``discord:3/8`` or ``discord:3/8@1``."""
        found = _PATTERN.match(text.strip())
        if found is None:
            raise ValueError(f"{text!r} is not a connection key (platform:shard/count[@generation])")
        platform, shard, count, generation = found.groups()
        key = cls(platform, int(generation or 0), int(shard), int(count))
        if not key.shard < key.count:
            raise ValueError(f"{text!r}: the shard must be below the count")
        return key

    def same_set(self, other: ConnKey) -> bool:
        return (self.platform, self.generation, self.count) == (other.platform, other.generation, other.count)


def describe_conns(conns: Iterable[ConnKey]) -> str:
    """Connections for people, by set and range: ``discord:0-3/8, discord:0-1/4@1``."""
    sets: dict[tuple[str, int, int], list[int]] = {}
    for c in sorted(conns):
        sets.setdefault((c.platform, c.generation, c.count), []).append(c.shard)
    parts = []
    for (platform, generation, count), shards in sets.items():
        span = f"{shards[0]}-{shards[-1]}" if len(shards) > 1 else str(shards[0])
        parts.append(f"{platform}:{span}/{count}" + (f"@{generation}" if generation else ""))
    return ", ".join(parts) or "nothing"
