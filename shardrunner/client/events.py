"""What the client hands to the bot: events, gaps, and the one error it raises."""

from __future__ import annotations

from typing import Any

import msgspec

from shardrunner.client.discord import DiscordEvent
from shardrunner.client.twitch import TwitchEvent, twitch_body
from shardrunner.protocol import lifecycle as lc
from shardrunner.protocol.envelope import Event, RoutingKey
from shardrunner.protocol.keys import ConnKey

_decode_json = msgspec.json.decode


class ClientEvent(DiscordEvent, TwitchEvent):
    """One event: where it came from, what it is, and its body (``data``: decoded on first access).

    ``(conn, session, seq)`` identifies it; ``conn`` says which connection of which set of which
    platform (``conn.platform``), ``key`` is its routing key (None: the event has none).
    """

    # Made for every event the bot gets: only slots, and what can be derived (``shard``, the
    # platform's conveniences) is derived when asked instead of here.
    __slots__ = ("_data", "conn", "key", "name", "raw", "redelivered", "seq", "session")

    def __init__(self, event: Event, redelivered: bool) -> None:
        self.conn: ConnKey = event.conn
        self.session = event.session
        self.seq = event.seq
        self.name = event.name
        self.key: RoutingKey = event.key
        self.raw = event.data
        self.redelivered = redelivered
        self._data: Any = None

    @property
    def shard(self) -> int:
        """The connection's index in its set (Discord: the shard id)."""
        return self.conn.shard

    @property
    def data(self) -> Any:
        """The event's body (Discord: its ``d``; Twitch: the parsed line; a lifecycle event's JSON),
        decoded on first access."""
        if self._data is None:
            twitch = self.conn.platform == "twitch" and not lc.is_lifecycle(self.name)
            self._data = twitch_body(self.raw) if twitch else _decode_json(self.raw)
        return self._data

    @property
    def lifecycle(self) -> lc.Lifecycle:
        """A lifecycle event's body, typed (``shardrunner.*`` names only; ValueError otherwise)."""
        if not lc.is_lifecycle(self.name):
            raise ValueError(f"{self.name} is not a lifecycle event")
        return lc.decode(self.raw)

    def __repr__(self) -> str:
        return f"<ClientEvent {self.name} conn={self.conn} seq={self.seq} key={self.key}>"


class Gap(msgspec.Struct):
    """Events the group's queue dropped while it was full (nobody consumed fast enough):
    ``count`` events of one connection's session, as inclusive ``[first, last]`` seq ranges."""

    conn: ConnKey
    session: str
    count: int
    ranges: list[tuple[int, int]]

    @property
    def shard(self) -> int:
        """The connection's index in its set (Discord: the shard id)."""
        return self.conn.shard
