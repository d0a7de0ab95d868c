"""Discord's conveniences on the client: an event's guild, and gateway commands by shard or guild.

The platform-neutral client addresses a command to a connection or by routing key
(:meth:`Client.command`); this is where the words ``guild``, ``op`` and ``d`` live. Which shard owns
a guild is decided by :func:`shardrunner.protocol.routing.owner`, the one place the formula is.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any, Protocol

from shardrunner.client.errors import ClientError
from shardrunner.protocol.envelope import RoutingKey
from shardrunner.protocol.keys import ConnKey
from shardrunner.protocol.routing import owner

PLATFORM = "discord"


class _Keyed(Protocol):
    @property
    def conn(self) -> ConnKey: ...
    @property
    def key(self) -> RoutingKey: ...


class DiscordEvent:
    """The Discord side of :class:`~shardrunner.client.ClientEvent`."""

    __slots__ = ()

    @property
    def guild_id(self: _Keyed) -> int | None:
        """The guild the event belongs to (None: not a Discord event, or a DM)."""
        key = self.key
        return key if isinstance(key, int) and self.conn.platform == PLATFORM else None


class _Commands(Protocol):
    @property
    def conns(self) -> list[ConnKey]: ...
    @property
    def discovered(self) -> bool: ...
    async def command(
        self,
        platform: str,
        body: Any,
        *,
        conn: ConnKey | None = None,
        key: RoutingKey = None,
        timeout: float = 30.0,
    ) -> None: ...


@functools.lru_cache(maxsize=8)
def _whole_set(generation: int, count: int) -> tuple[ConnKey, ...]:
    return tuple(ConnKey(PLATFORM, generation, shard, count) for shard in range(count))


def newest_set(conns: list[ConnKey]) -> tuple[ConnKey, ...]:
    """Every shard of the newest Discord set among ``conns`` (empty: none known)."""
    newest: ConnKey | None = None
    for conn in conns:
        if conn.platform == PLATFORM and (newest is None or conn.generation > newest.generation):
            newest = conn
    return () if newest is None else _whole_set(newest.generation, newest.count)


class DiscordCommands:
    """The Discord side of :class:`~shardrunner.client.Client`."""

    __slots__ = ()

    @property
    def num_shards(self: _Commands) -> int:
        """The shard count of the newest Discord set the cluster runs (0: not known yet)."""
        return len(newest_set(self.conns))

    async def send(
        self: _Commands,
        op: int,
        d: Any,
        *,
        shard: int | None = None,
        guild: int | None = None,
        timeout: float = 30.0,
    ) -> None:
        """Send a gateway command (op 3, 4, 8, ...) on a shard, or on the shard that owns ``guild``.

        The shard is one of the newest Discord set. Returns once the shard has sent it; raises
        :class:`ClientError` saying why it was not.
        """
        if (shard is None) == (guild is None):
            raise ValueError("give exactly one of shard= or guild=")
        deadline = time.monotonic() + timeout
        while not (shards := newest_set(self.conns)):
            if not self.discovered:
                raise ClientError("the shard count is not known yet: start() the client first")
            if time.monotonic() > deadline:
                raise ClientError(f"no running worker has Discord shards (waited {timeout:g} s)")
            await asyncio.sleep(0.1)
        if guild is not None:
            conn = owner(PLATFORM, guild, shards)
        elif shard is not None and 0 <= shard < len(shards):
            conn = shards[shard]
        else:
            raise ClientError(f"unknown shard {shard}: the cluster runs shards 0-{len(shards) - 1}")
        body = {"op": op, "d": d}
        await self.command(
            PLATFORM, body, conn=conn, key=guild, timeout=max(0.0, deadline - time.monotonic())
        )
