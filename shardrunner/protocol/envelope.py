"""What a gateway connection hands on for every event, whatever the platform.

A connection peeks at each event only far enough to route it: the event's name, its sequence number
and its routing key (the guild id on Discord, the channel on Twitch chat). The body stays the raw
bytes the platform sent, for the consumer to decode if and when it wants to.
"""

from __future__ import annotations

import msgspec

from shardrunner.protocol.keys import ConnKey

#: A routing key: guild id (Discord), channel (Twitch), or None (DMs and events without one).
RoutingKey = int | str | None


class Event(msgspec.Struct, array_like=True, gc=False):
    """One platform event as it leaves a connection.

    ``(conn, session, seq)`` identifies it: a consumer that sees the same triple twice has a
    duplicate (possible only after a failure, e.g. a replay after resume). ``conn.platform`` says
    which platform it is from.
    """

    conn: ConnKey
    session: str
    seq: int
    name: str
    key: RoutingKey
    #: The event body exactly as received (Discord: the JSON of ``d``).
    data: bytes
    #: The lease epoch of the connection's holder when it made the event (0 on one host): a
    #: consumer drops events of an epoch lower than one it has seen of the connection (a
    #: superseded holder's). Last, with a default, so an array without it still decodes.
    epoch: int = 0


class SessionSnapshot(msgspec.Struct, kw_only=True, frozen=True):
    """Everything another process needs to resume a connection without identifying.

    Exported by a connection that is closing for a handoff (or made from its last reported state
    after a crash), imported by the connection that takes over.
    """

    conn: ConnKey
    session_id: str
    #: The last sequence number handed on; the gateway replays everything after it.
    seq: int
    #: Where to reconnect to resume (Discord: resume_gateway_url).
    resume_url: str
    #: The routing keys the session serves (Discord: its guild ids), so the process that resumes
    #: it knows its load at once instead of after the next READY.
    keys: list[int | str] = []

    def encode(self) -> bytes:
        return msgspec.json.encode(self)

    @classmethod
    def decode(cls, data: bytes) -> SessionSnapshot:
        return msgspec.json.decode(data, type=cls)
