"""Which connection owns a routing key: the one place each platform's formula lives.

The worker's platform object and the bot's client both ask here, so a command addressed by routing
key (a guild id on Discord) reaches the same connection the key's events come from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from shardrunner.protocol.discord import shard_for_guild
from shardrunner.protocol.envelope import RoutingKey
from shardrunner.protocol.keys import ConnKey


def _discord_owner(key: RoutingKey, conns: list[ConnKey]) -> ConnKey | None:
    if key is None:
        return None
    guild = int(key)
    # The newest shard set serves new work; an older set still running is on its way out.
    newest = max(c.generation for c in conns)
    for conn in conns:
        if conn.generation == newest and conn.shard == shard_for_guild(guild, conn.count):
            return conn
    return None


_OWNERS: dict[str, Callable[[RoutingKey, list[ConnKey]], ConnKey | None]] = {"discord": _discord_owner}


def owner(platform: str, key: RoutingKey, conns: Iterable[ConnKey]) -> ConnKey | None:
    """The connection among ``conns`` that owns ``key`` on ``platform`` (None: none of them).

    Raises ValueError for a key the platform cannot read (a guild id that is not a number).
    """
    mine = [c for c in conns if c.platform == platform]
    find = _OWNERS.get(platform)
    if find is None or not mine:
        return None
    return find(key, mine)
