"""Lifecycle events: what shardrunner itself says about its connections, beside the platforms' events.

A connection's session started (Discord's READY, Twitch logged in with its channels joined), resumed,
dropped (and will reconnect), closed for good; a reshard's switch; a Twitch channel joined, failed
or moved. Each is a :class:`Notice` inside the worker and the supervisor; the worker also publishes
each one on its bus as an :class:`~shardrunner.protocol.envelope.Event` whose name is one of
:data:`NAMES` and whose body is a :class:`Lifecycle` in JSON (docs/delivery.md, "Lifecycle events").

Every name starts with :data:`PREFIX` (``shardrunner.``): no platform names an event so (Discord's
are upper case, Twitch's are IRC commands), so the two can never clash. A consumer group gets them
only when it asks (opt-in, see ``bus/groups.py``): by name, or all of them with :data:`WILDCARD`.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from shardrunner.protocol.keys import ConnKey

PREFIX: Final = "shardrunner."
#: In a group's event list: every lifecycle event.
WILDCARD: Final = "shardrunner.*"

# -- published on the bus by the worker, per connection -------------------------------------------
#: A session started: Discord's READY, Twitch logged in and every channel joined (or failed).
READY: Final = "shardrunner.ready"
#: A session resumed (Discord's RESUMED): what was missed is replayed before it.
RESUMED: Final = "shardrunner.resumed"
#: The connection dropped and reconnects: ``code``, ``reason``, ``resumable``.
DISCONNECTED: Final = "shardrunner.disconnected"
#: The connection closed for good: ``code`` and ``reason`` (what to do).
FATAL: Final = "shardrunner.fatal"
#: A reshard's switch: this connection of the new set delivers alone, the old set's no longer.
SWITCHED: Final = "shardrunner.switched"
#: Twitch: a channel is read (``channel``).
CHANNEL_JOINED: Final = "shardrunner.channel_joined"
#: Twitch: a channel cannot be read (``channel``, ``reason``); it is tried again later.
CHANNEL_FAILED: Final = "shardrunner.channel_failed"
#: Twitch: a channel moved (``channel``, ``from``, ``to``; see :data:`CHANNEL_MOVED` in docs).
CHANNEL_MOVED: Final = "shardrunner.channel_moved"

#: The names the worker publishes on the bus.
NAMES: Final = frozenset(
    {READY, RESUMED, DISCONNECTED, FATAL, SWITCHED, CHANNEL_JOINED, CHANNEL_FAILED, CHANNEL_MOVED}
)

# -- the supervisor's, to its listeners only (not on the bus) -------------------------------------
RESHARD_STARTED: Final = "shardrunner.reshard_started"
RESHARD_SWITCHED: Final = "shardrunner.reshard_switched"
RESHARD_ABORTED: Final = "shardrunner.reshard_aborted"
WORKER_CRASHED: Final = "shardrunner.worker_crashed"
LEASE_LOST: Final = "shardrunner.lease_lost"
LEASE_TAKEN: Final = "shardrunner.lease_taken"

SUPERVISOR_NAMES: Final = frozenset(
    {RESHARD_STARTED, RESHARD_SWITCHED, RESHARD_ABORTED, WORKER_CRASHED, LEASE_LOST, LEASE_TAKEN}
)

#: The start of the pseudo session of the lifecycle events a worker process publishes: they are
#: numbered per connection from 1 in a session of their own (``shardrunner:<hex>``), never in the
#: platform's, so the resume point of a connection never depends on them.
SESSION_PREFIX: Final = "shardrunner:"


def is_lifecycle(name: str) -> bool:
    """Whether an event name is one of shardrunner's (lifecycle), not a platform's."""
    return name.startswith(PREFIX)


class Notice(msgspec.Struct, frozen=True):
    """One lifecycle fact as the worker and the supervisor pass it around (and to the listeners of
    ``Worker.lifecycle_listeners`` / ``Supervisor.lifecycle_listeners``).

    ``kind`` is one of the names above; ``conn`` the connection it is about (None for the
    supervisor's notices about workers, leases or a reshard); ``fields`` the per-kind details
    (``code``, ``reason``, ``resumable``, ``session``, ``channel``, ``from``, ``to``, ...). Never a
    secret: a session id is fine, a token never.
    """

    kind: str
    conn: ConnKey | None
    fields: dict[str, Any] = {}


class Lifecycle(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The JSON body of a lifecycle event on the bus (what the client's handlers get).

    ``conn`` is the connection as text (``discord:3/8``, ``discord:3/8@1``) and ``shard``,
    ``count``, ``generation``, ``platform`` its parts; ``at`` is when the worker saw it (wall clock,
    seconds). The other fields are set by the kinds that have them.
    """

    kind: str
    conn: str
    platform: str
    shard: int
    count: int
    generation: int
    at: float
    #: The close code (disconnected, fatal), if there was one.
    code: int | None = None
    #: Why, in words (disconnected: ``op 7``, ``op 9``, ``zombie``, ``closed``, ...; fatal: what to
    #: do; channel_failed: Twitch's reason).
    reason: str | None = None
    #: disconnected: whether the session resumes (False: the next session starts with READY).
    resumable: bool | None = None
    #: The platform's session id (ready, resumed): an identifier, never a credential.
    session: str | None = None
    #: Twitch: the channel (without ``#``).
    channel: str | None = None
    #: channel_moved: where it was and where it is now; switched: the old set (``discord:*/4``).
    from_: str | None = msgspec.field(default=None, name="from")
    to: str | None = None
    #: Fields of a kind added later (or by a controller), kept as they came.
    extra: dict[str, Any] | None = None

    @property
    def conn_key(self) -> ConnKey:
        return ConnKey(self.platform, self.generation, self.shard, self.count)


_KNOWN: Final = frozenset({"code", "reason", "resumable", "session", "channel", "from", "to"})
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Lifecycle)


def body(notice: Notice, at: float) -> Lifecycle:
    """The bus body of a connection's notice (``notice.conn`` must be set)."""
    conn = notice.conn
    if conn is None:
        raise ValueError(f"{notice.kind}: a notice without a connection has no bus body")
    f = notice.fields
    extra = {k: v for k, v in f.items() if k not in _KNOWN}
    return Lifecycle(
        kind=notice.kind,
        conn=str(conn),
        platform=conn.platform,
        shard=conn.shard,
        count=conn.count,
        generation=conn.generation,
        at=at,
        code=f.get("code"),
        reason=f.get("reason"),
        resumable=f.get("resumable"),
        session=f.get("session"),
        channel=f.get("channel"),
        from_=f.get("from"),
        to=f.get("to"),
        extra=extra or None,
    )


def encode(lifecycle: Lifecycle) -> bytes:
    return _encoder.encode(lifecycle)


def decode(data: bytes) -> Lifecycle:
    return _decoder.decode(data)
