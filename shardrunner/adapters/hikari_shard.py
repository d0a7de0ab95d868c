"""hikari's ``GatewayShard`` for a shard shardrunner runs: what the bot sends goes over the bus.

A :class:`BusShard` stands for one shard of the set that delivers. It opens no connection: the
cluster's worker holds it. Its sends (presence, member chunks, voice state, channel info) are
built as hikari builds them, checked as hikari checks them, and handed to ``send(op, d, shard)``
(the adapter's, which is ``Client.send``); a send the cluster refuses raises hikari's
``ComponentStateConflictError`` with the cluster's sentence. Its state (connected, heartbeat
latency) is what the adapter last learnt from the stream and the cluster's status.
"""

from __future__ import annotations

import asyncio
import datetime
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

from hikari import errors, presences, snowflakes, undefined
from hikari import intents as intents_
from hikari.api import shard as shard_api

from shardrunner.client import ClientError

if TYPE_CHECKING:
    from hikari import capabilities as capabilities_
    from hikari import channels, guilds
    from hikari import users as users_

#: Discord's gateway opcodes of what a bot sends (docs/PROTOCOL.md).
PRESENCE_UPDATE: Final = 3
VOICE_STATE_UPDATE: Final = 4
REQUEST_GUILD_MEMBERS: Final = 8
REQUEST_CHANNEL_INFO: Final = 43

Send = Callable[[int, dict[str, Any], int], Awaitable[None]]


def _activity(activity: presences.Activity | None) -> list[dict[str, Any]]:
    if activity is None:
        return []
    name, state = activity.name, activity.state
    if activity.type is presences.ActivityType.CUSTOM and name and not state:
        # hikari's sugar: a custom status given as its name is the state of "Custom Status".
        name, state = "Custom Status", name
    return [{"name": name, "state": state, "type": int(activity.type), "url": activity.url}]


def _snowflake(value: snowflakes.SnowflakeishOr[snowflakes.Unique] | None) -> str | None:
    return None if value is None else str(int(value))


class BusShard(shard_api.GatewayShard):
    """One shard of the cluster's set, as hikari's bot and event manager see it."""

    __slots__ = (
        "_activity",
        "_afk",
        "_bot_capabilities",
        "_closed",
        "_count",
        "_id",
        "_idle_since",
        "_intents",
        "_on_close",
        "_send",
        "_status",
        "connected",
        "latency",
        "user_id",
    )

    def __init__(
        self,
        shard_id: int,
        shard_count: int,
        *,
        intents: intents_.Intents,
        capabilities: capabilities_.GatewayCapabilities,
        send: Send,
        on_close: Callable[[], Awaitable[None]],
        closed: asyncio.Event,
    ) -> None:
        self._id = shard_id
        self._count = shard_count
        self._intents = intents
        self._bot_capabilities = capabilities
        self._send = send
        self._on_close = on_close
        #: Set when the adapter stopped (the bot closed, or the stream ended): ``join`` returns.
        self._closed = closed
        #: The presence sent last (hikari's partial updates keep what they do not name).
        self._status = presences.Status.ONLINE
        self._activity: presences.Activity | None = None
        self._idle_since: datetime.datetime | None = None
        self._afk = False
        #: Whether the cluster's connection is ready (READY or RESUMED seen, or the status says so).
        self.connected = False
        #: The worker's heartbeat latency of this shard in seconds as of the last status (NaN: none).
        self.latency = math.nan
        self.user_id: snowflakes.Snowflake | None = None

    # -- what hikari reads --------------------------------------------------------------------
    @property
    def capabilities(self) -> capabilities_.GatewayCapabilities:
        return self._bot_capabilities

    @property
    def heartbeat_latency(self) -> float:
        """The gateway heartbeat latency the cluster's worker measured (seconds, NaN: not known)."""
        return self.latency

    @property
    def id(self) -> int:
        return self._id

    @property
    def intents(self) -> intents_.Intents:
        return self._intents

    @property
    def is_alive(self) -> bool:
        return not self._closed.is_set()

    @property
    def is_connected(self) -> bool:
        return self.connected and not self._closed.is_set()

    @property
    def shard_count(self) -> int:
        return self._count

    def get_user_id(self) -> snowflakes.Snowflake:
        if self.user_id is None:
            raise errors.ComponentStateConflictError(f"shard {self._id} has not seen READY yet")
        return self.user_id

    # -- lifecycle: the adapter's ---------------------------------------------------------------
    async def close(self) -> None:
        """Stop the adapter (every shard at once: they share one stream), as ``bot.close()`` does."""
        await self._on_close()

    async def join(self) -> None:
        await self._closed.wait()

    async def start(self) -> None:
        raise errors.ComponentStateConflictError(
            "a shardrunner shard is started by the cluster: use shardrunner.adapters.hikari.start(bot)"
        )

    # -- sends ----------------------------------------------------------------------------------
    async def _command(self, op: int, d: dict[str, Any]) -> None:
        if self._closed.is_set():
            raise errors.ComponentStateConflictError(f"shard {self._id} is closed")
        try:
            await self._send(op, d, self._id)
        except ClientError as exc:
            raise errors.ComponentStateConflictError(f"shard {self._id}: {exc}") from exc

    async def update_presence(
        self,
        *,
        idle_since: undefined.UndefinedNoneOr[datetime.datetime] = undefined.UNDEFINED,
        afk: undefined.UndefinedOr[bool] = undefined.UNDEFINED,
        activity: undefined.UndefinedNoneOr[presences.Activity] = undefined.UNDEFINED,
        status: undefined.UndefinedOr[presences.Status] = undefined.UNDEFINED,
    ) -> None:
        if idle_since is not undefined.UNDEFINED:
            self._idle_since = idle_since
        if afk is not undefined.UNDEFINED:
            self._afk = afk
        if activity is not undefined.UNDEFINED:
            self._activity = activity
        if status is not undefined.UNDEFINED:
            self._status = status
        since = self._idle_since
        d = {
            "since": None if since is None else int(since.timestamp() * 1000),
            "afk": self._afk,
            "activities": _activity(self._activity),
            # "offline" changes nothing on Discord: "invisible" is what hides the bot (as hikari).
            "status": "invisible" if self._status is presences.Status.OFFLINE else str(self._status),
        }
        await self._command(PRESENCE_UPDATE, d)

    async def update_voice_state(
        self,
        guild: snowflakes.SnowflakeishOr[guilds.PartialGuild],
        channel: snowflakes.SnowflakeishOr[channels.GuildVoiceChannel] | None,
        *,
        self_mute: undefined.UndefinedOr[bool] = undefined.UNDEFINED,
        self_deaf: undefined.UndefinedOr[bool] = undefined.UNDEFINED,
    ) -> None:
        d: dict[str, Any] = {"guild_id": _snowflake(guild), "channel_id": _snowflake(channel)}
        if self_mute is not undefined.UNDEFINED:
            d["self_mute"] = self_mute
        if self_deaf is not undefined.UNDEFINED:
            d["self_deaf"] = self_deaf
        await self._command(VOICE_STATE_UPDATE, d)

    async def request_guild_members(
        self,
        guild: snowflakes.SnowflakeishOr[guilds.PartialGuild],
        *,
        include_presences: undefined.UndefinedOr[bool] = undefined.UNDEFINED,
        query: str = "",
        limit: int = 0,
        users: undefined.UndefinedOr[snowflakes.SnowflakeishSequence[users_.User]] = undefined.UNDEFINED,
        nonce: undefined.UndefinedOr[str] = undefined.UNDEFINED,
    ) -> None:
        # hikari's own checks, in its order: the same call fails here as on its own shard.
        if not query and not limit and not self._intents & intents_.Intents.GUILD_MEMBERS:
            raise errors.MissingIntentError(intents_.Intents.GUILD_MEMBERS)
        if include_presences and not self._intents & intents_.Intents.GUILD_PRESENCES:
            raise errors.MissingIntentError(intents_.Intents.GUILD_PRESENCES)
        if users is not undefined.UNDEFINED and (query or limit):
            raise ValueError("Cannot specify limit/query with users")
        if not 0 <= limit <= 100:
            raise ValueError("'limit' must be between 0 and 100, both inclusive")
        if users is not undefined.UNDEFINED and len(users) > 100:
            raise ValueError("'users' is limited to 100 users")
        if nonce is not undefined.UNDEFINED and len(nonce.encode()) > 32:
            raise ValueError("'nonce' can be no longer than 32 byte characters long.")
        d: dict[str, Any] = {"guild_id": _snowflake(guild), "query": query, "limit": limit}
        if include_presences is not undefined.UNDEFINED:
            d["presences"] = include_presences
        if users is not undefined.UNDEFINED:
            d["user_ids"] = [str(int(user)) for user in users]
        if nonce is not undefined.UNDEFINED:
            d["nonce"] = nonce
        await self._command(REQUEST_GUILD_MEMBERS, d)

    async def request_channel_info(
        self,
        guild: snowflakes.SnowflakeishOr[guilds.PartialGuild],
        *,
        fields: Sequence[shard_api.ChannelInfoField],
    ) -> None:
        d = {"guild_id": _snowflake(guild), "fields": [str(field) for field in fields]}
        await self._command(REQUEST_CHANNEL_INFO, d)

    def __repr__(self) -> str:
        return f"<BusShard {self._id}/{self._count} connected={self.connected}>"
