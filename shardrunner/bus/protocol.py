"""What bot processes and workers say to each other on the event bus (ZeroMQ, msgpack).

A bot process (``shardrunner.client``) connects one DEALER socket to each worker's bus ROUTER and
joins a consumer group there. The worker sends it batches of events, many per message (one frame:
multipart frames cost about three times as much per event); the member acknowledges batches
cumulatively. Commands (presence updates, member requests...) travel the other way and are answered
once the shard has sent them.
"""

from __future__ import annotations

import enum
from typing import Any

import msgspec

from shardrunner.protocol.envelope import Event, RoutingKey
from shardrunner.protocol.keys import ConnKey


class Delivery(enum.StrEnum):
    """How a worker's bus delivers one connection's events (set by the supervisor for a reshard).

    ``live``: normally. ``hold`` (a new set warming up) and ``mute`` (an old set about to close):
    the connection runs but no group gets its events, nothing is held for them (they are not part
    of the low water), they are counted as withheld. ``dedupe``: delivered, each event marked (in
    :attr:`Batch.dedupe`) for the client to check against the platform's other connection sets.
    """

    LIVE = "live"
    HOLD = "hold"
    DEDUPE = "dedupe"
    MUTE = "mute"


class Join(msgspec.Struct, tag="join"):
    """Member -> worker: deliver this group's events: of these names, every platform event when
    ``events`` is None or holds ``"*"``, and the lifecycle events (``shardrunner.*``) it names."""

    group: str
    member: str
    events: list[str] | None = None
    #: A durable group keeps queueing while it has no member; an ephemeral one (``shardrunner
    #: tail``) ends with its last member.
    durable: bool = True
    #: This group's queue bounds on the worker (None: the cluster's queue_events / queue_bytes).
    max_events: int | None = None
    max_bytes: int | None = None


class Leave(msgspec.Struct, tag="leave"):
    group: str
    member: str


class Alive(msgspec.Struct, tag="alive"):
    """Member -> worker, every second: without it for a few seconds the member counts as gone.

    It repeats the member's join, so a worker that does not know the member (it was removed while
    silent, or the worker is new) admits it again."""

    member: str
    joins: list[Join] = []


class Ack(msgspec.Struct, tag="ack"):
    """Member -> worker: every batch up to ``batch`` (inclusive) is processed."""

    group: str
    member: str
    batch: int


class Batch(msgspec.Struct, tag="batch"):
    """Worker -> member: events, in order per connection. ``redelivered`` lists the indexes of events that
    were sent before to a member that failed (they may have been processed already); ``dedupe`` the
    indexes of events of a connection in ``dedupe`` mode (a reshard's overlap: the same platform
    event may come from another connection set, with another session and seq). An event can be in
    both."""

    group: str
    batch: int
    events: list[Event]
    redelivered: list[int] = []
    dedupe: list[int] = []
    #: For each of ``dedupe``: when its worker received it (wall clock, milliseconds).
    stamps: list[int] = []
    #: Two marked copies of one event were received by their workers within this many
    #: milliseconds of each other (the client matches no pair further apart; 0: any).
    window: int = 0


class Gap(msgspec.Struct, tag="gap"):
    """Worker -> members: events the group's queue had to drop (it was full while nobody consumed):
    ``count`` events of one connection's session, as inclusive ``[first, last]`` seq ranges."""

    group: str
    conn: ConnKey
    session: str
    count: int
    ranges: list[tuple[int, int]]


class Command(msgspec.Struct, tag="command"):
    """Member -> worker: send a command on a connection; answered by :class:`CommandResult`.

    Addressed either to a connection (``conn``) or by routing key (``key``: the platform maps it to
    the connection that owns it). ``body`` is the platform's command as its package defines it
    (Discord: ``{"op": ..., "d": ...}``).
    """

    request: int
    platform: str
    body: Any
    conn: ConnKey | None = None
    key: RoutingKey = None
    timeout: float = 30.0


class CommandResult(msgspec.Struct, tag="command_result"):
    request: int
    ok: bool
    error: str | None = None
    #: What the connection answered (Twitch: the sent message's id); None for most commands.
    result: Any = None


class GroupStats(msgspec.Struct, array_like=True):
    """One consumer group as one worker holds it (for ``status``; durable groups only)."""

    name: str
    events: list[str] | None
    members: int
    held_events: int
    held_bytes: int
    inflight: int
    dropped: int
    #: Events acknowledged by the group's members, and events sent again to another member after
    #: theirs left or went silent (both count from the worker's start).
    delivered: int = 0
    redelivered: int = 0
    #: Seconds the oldest unacknowledged batch has waited for its acknowledgement (0: none waits).
    ack_lag: float = 0.0


class StateRequest(msgspec.Struct, tag="state_request"):
    """Member -> worker: the events that rebuild a consumer's view of each of this worker's
    connections of ``platform``; answered by one or more :class:`State` (the last with ``last``)."""

    request: int
    platform: str


class StateMark(msgspec.Struct, array_like=True):
    """What a :class:`State` answer reflects of one connection: every event of ``session`` up to
    ``seq``. ``session`` empty: the connection's state is kept but holds nothing yet (no session
    start seen: not yet, or its session started before the worker did). A connection without a
    mark keeps no state (its platform does not, or not with these settings)."""

    conn: ConnKey
    session: str
    seq: int


class State(msgspec.Struct, tag="state"):
    """Worker -> member: part of the answer to a :class:`StateRequest`: per connection its events
    in order, connection after connection. Not a batch: neither acknowledged nor deduplicated."""

    request: int
    events: list[Event]
    marks: list[StateMark] = []
    last: bool = True


class Rejected(msgspec.Struct, tag="rejected"):
    """Worker -> member: a message of this peer was refused (not a bus message, or one it may not
    send: an ack for a batch never sent, another member's leave...; see docs/delivery.md). Sent at
    most once a second per peer; every refusal is counted in the worker's ``bus_rejected``."""

    reason: str


BusMessage = (
    Join | Leave | Alive | Ack | Batch | Gap | Command | CommandResult | StateRequest | State | Rejected
)

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(BusMessage)


def encode(message: BusMessage) -> bytes:
    return _encoder.encode(message)


def decode(data: bytes) -> BusMessage:
    message: BusMessage = _decoder.decode(data)
    return message
