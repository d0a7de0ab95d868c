"""What stands in for discord.py's ``DiscordWebSocket`` in an adapted bot: its gateway sends go
through shardrunner's bus (``Client.send``) to the cluster's shards.

discord.py sends presence (op 3), voice state (op 4), member requests (op 8) and anything else
through ``ws.send_as_json``; here each becomes one bus command, addressed to the shard this socket
stands for, or by guild (the shard that owns it) when the payload names one. ``close()`` closes
nothing: the sessions are the cluster's, and outlive the bot.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shardrunner.client import Client

OP_PRESENCE = 3
OP_VOICE_STATE = 4
OP_REQUEST_MEMBERS = 8


class BusSocket:
    """One shard's (``shard``), or with ``shard`` None every shard's, gateway as discord.py sees it."""

    def __init__(self, client: Client, shard: int | None, latencies: dict[int, float]) -> None:
        self.client = client
        self.shard_id = shard
        #: Per shard, its heartbeat latency in seconds as the cluster last reported it.
        self._latencies = latencies
        self.open = True
        # What discord.py reads of a socket it did not connect (reconnect paths it never takes).
        self.session_id: str | None = None
        self.sequence: int | None = None
        self.gateway: Any = None

    @property
    def latency(self) -> float:
        """The shard's heartbeat latency as the cluster measures it (the average over the shards
        for the one socket of a plain ``Client``); nan until the cluster reported one."""
        if self.shard_id is not None:
            return self._latencies.get(self.shard_id, math.nan)
        values = list(self._latencies.values())
        return sum(values) / len(values) if values else math.nan

    def is_ratelimited(self) -> bool:
        # The shard's own limiter queues commands (answered once sent): never refused here.
        return False

    async def close(self, code: int = 4000) -> None:
        """Closes nothing: the cluster keeps the session for the next bot."""

    async def send_as_json(self, data: Any) -> None:
        """Send one gateway payload ``{"op", "d"}`` on this socket's shard, or by its guild."""
        op, d = int(data["op"]), data.get("d")
        guild = d.get("guild_id") if isinstance(d, dict) else None
        if guild is not None and not isinstance(guild, list):
            await self.client.send(op, d, guild=int(guild))
        elif self.shard_id is not None:
            await self.client.send(op, d, shard=self.shard_id)
        else:
            for shard in range(self.client.num_shards):
                await self.client.send(op, d, shard=shard)

    async def change_presence(
        self, *, activity: Any = None, status: str | None = None, since: float = 0.0
    ) -> None:
        activities = [] if activity is None else [activity.to_dict()]
        if status == "idle":
            since = int(time.time() * 1000)
        d = {"activities": activities, "afk": False, "since": since, "status": status}
        await self.send_as_json({"op": OP_PRESENCE, "d": d})

    async def request_chunks(
        self,
        guild_id: int,
        query: str | None = None,
        *,
        limit: int,
        user_ids: list[int] | None = None,
        presences: bool = False,
        nonce: str | None = None,
    ) -> None:
        d: dict[str, Any] = {"guild_id": guild_id, "presences": presences, "limit": limit}
        if nonce:
            d["nonce"] = nonce
        if user_ids:
            d["user_ids"] = user_ids
        if query is not None:
            d["query"] = query
        await self.send_as_json({"op": OP_REQUEST_MEMBERS, "d": d})

    async def voice_state(
        self, guild_id: int, channel_id: int | None, self_mute: bool = False, self_deaf: bool = False
    ) -> None:
        d = {"guild_id": guild_id, "channel_id": channel_id, "self_mute": self_mute, "self_deaf": self_deaf}
        await self.send_as_json({"op": OP_VOICE_STATE, "d": d})
