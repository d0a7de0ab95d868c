"""Discord's conveniences on the client: an event's guild, gateway commands by shard or guild, the
set that delivers, and an event's identity across two shard sets.

The platform-neutral client addresses a command to a connection or by routing key
(:meth:`Client.command`); this is where the words ``guild``, ``op`` and ``d`` live. Which shard owns
a guild is decided by :func:`shardrunner.protocol.routing.owner`, the one place the formula is.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Hashable
from typing import Any, Final, Protocol

import msgspec

from shardrunner.client.dedupe import raw_identity
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


#: Dispatches that create an entity with a fresh snowflake ``id`` (the top-level ``d.id``): one
#: such event per id, ever, so the id identifies the event whatever bytes a gateway node wrote.
#: Left out on purpose, as the same id can come again in a distinct event: CHANNEL_CREATE and
#: THREAD_CREATE (sent again when the bot gains access to a channel, or is added to a thread),
#: GUILD_CREATE (lazy load, outage recovery, a rejoin), INTEGRATION_CREATE, GUILD_ROLE_CREATE (its
#: id is nested) and INVITE_CREATE (a code, not an id). See docs/resharding.md.
CREATES_ENTITY: Final = frozenset(
    {
        "MESSAGE_CREATE",
        "INTERACTION_CREATE",
        "GUILD_AUDIT_LOG_ENTRY_CREATE",
        "GUILD_SCHEDULED_EVENT_CREATE",
        "STAGE_INSTANCE_CREATE",
        "AUTO_MODERATION_RULE_CREATE",
        "ENTITLEMENT_CREATE",
        "SUBSCRIPTION_CREATE",
    }
)
#: Dispatches of one session, never the other set's copy of anything: the session's start and
#: resume, and answers to a command sent on that connection (RATE_LIMITED answers one too).
SESSION_ONLY: Final = frozenset(
    {"READY", "RESUMED", "GUILD_MEMBERS_CHUNK", "SOUNDBOARD_SOUNDS", "RATE_LIMITED"}
)


class _EntityView(msgspec.Struct):
    id: str


_decode_entity = msgspec.json.Decoder(_EntityView).decode
_decode = msgspec.json.decode
_encode = msgspec.json.encode


def discord_identity(name: str, data: bytes) -> Hashable:
    """A Discord dispatch's identity across shard sets (None: it has no copy on another set).

    ``(name, id)`` for the dispatches of :data:`CREATES_ENTITY` (read with a view decoder: every
    other field is skipped), ``(name, hash(data))`` for a body without a string ``id``, and for the
    rest ``(name, hash)`` of the body with its keys sorted (the same JSON written in another order
    or spacing is the same event).
    """
    if name in CREATES_ENTITY:
        try:
            return (name, _decode_entity(data).id)
        except msgspec.DecodeError:  # ValidationError included: no id, or not a string
            return raw_identity(name, data)
    if name in SESSION_ONLY:
        return None
    try:
        # Canonical: two gateway nodes may write one payload with its keys in another order or
        # other whitespace. Only the switch's marked events pay for it (about 2 us).
        return raw_identity(name, _encode(_decode(data), order="sorted"))
    except msgspec.DecodeError:
        return raw_identity(name, data)


class _Commands(Protocol):
    @property
    def conns(self) -> list[ConnKey]: ...
    @property
    def platforms(self) -> dict[str, Any]: ...
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


def active_set(conns: list[ConnKey], platforms: dict[str, Any]) -> tuple[ConnKey, ...]:
    """Every shard of the Discord set that delivers: the ``generation`` the ``endpoints`` answer's
    ``platforms["discord"]`` names when a connection of it is among ``conns``, else the newest set.

    During a reshard the new set runs before it delivers: commands still go to the old set until
    the switch names the new one.
    """
    described = platforms.get(PLATFORM)
    generation = described.get("generation") if isinstance(described, dict) else None
    if isinstance(generation, int):
        for conn in conns:
            if conn.platform == PLATFORM and conn.generation == generation:
                return _whole_set(generation, conn.count)
    return newest_set(conns)


class DiscordCommands:
    """The Discord side of :class:`~shardrunner.client.Client`."""

    __slots__ = ()

    @property
    def num_shards(self: _Commands) -> int:
        """The shard count of the Discord set that delivers (:func:`active_set`; 0: not known yet)."""
        return len(active_set(self.conns, self.platforms))

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

        The shard is one of the set that delivers (:func:`active_set`). Returns once the shard has
        sent it; raises :class:`ClientError` saying why it was not.
        """
        if (shard is None) == (guild is None):
            raise ValueError("give exactly one of shard= or guild=")
        deadline = time.monotonic() + timeout
        while not (shards := active_set(self.conns, self.platforms)):
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
