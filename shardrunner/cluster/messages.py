"""What the supervisor and its workers say to each other, over one ZeroMQ ROUTER/DEALER pair.

Every message is a msgspec struct in one tagged union, encoded with msgpack. The token travels
only in :class:`Assign`, over an ipc socket inside the run directory (mode 0700), never on a
command line or in the environment of a worker.
"""

from __future__ import annotations

import msgspec

from shardrunner.protocol.envelope import SessionSnapshot


class Hello(msgspec.Struct, tag="hello"):
    """Worker -> supervisor, once at boot."""

    slot: int
    generation: int
    pid: int


class Assign(msgspec.Struct, tag="assign"):
    """Supervisor -> worker: the shards to run, and the sessions to resume where there are some."""

    token: str
    num_shards: int
    shard_ids: list[int]
    gateway_url: str
    intents: int
    compression: str
    large_threshold: int
    snapshots: list[SessionSnapshot] = []
    #: Where bots connect to this worker (a ZeroMQ endpoint it binds).
    bus_endpoint: str = ""
    #: Consumer groups known to the cluster, (name, event names or None for all): the worker keeps
    #: their events from the first one on, before their members have reconnected.
    groups: list[tuple[str, list[str] | None]] = []
    queue_events: int = 100_000
    queue_bytes: int = 256 * 1024 * 1024

    def __repr__(self) -> str:  # never show the token
        return (
            f"Assign(shards={self.shard_ids}, num_shards={self.num_shards}, snapshots={len(self.snapshots)})"
        )


class IdentifyRequest(msgspec.Struct, tag="identify"):
    shard_id: int


class IdentifyGrant(msgspec.Struct, tag="grant"):
    shard_id: int


class IdentifySent(msgspec.Struct, tag="identify_sent"):
    """The IDENTIFY went out now (the bucket's window counts from here)."""

    shard_id: int


class IdentifyDone(msgspec.Struct, tag="identified"):
    shard_id: int
    ready: bool


class ShardReport(msgspec.Struct, array_like=True):
    """One shard's state as its worker sees it; carries what a resume needs."""

    shard_id: int
    state: str
    seq: int
    session_id: str | None
    resume_url: str | None
    events_in: int
    heartbeat_latency: float | None
    guilds: int
    resumes: int
    identifies: int
    last_resume_at: float | None
    #: The shard's guild ids, sent only when they changed since the previous report.
    guild_ids: list[int] | None = None

    def snapshot(self, num_shards: int, keys: list[int]) -> SessionSnapshot | None:
        if self.session_id is None or self.resume_url is None:
            return None
        return SessionSnapshot(
            platform="discord",
            shard_id=self.shard_id,
            num_shards=num_shards,
            session_id=self.session_id,
            seq=self.seq,
            resume_url=self.resume_url,
            keys=list(keys),
        )


class GroupReport(msgspec.Struct, array_like=True):
    name: str
    events: list[str] | None
    members: int
    held_events: int
    held_bytes: int
    inflight: int
    dropped: int


class Report(msgspec.Struct, tag="report"):
    """Worker -> supervisor, twice a second: every shard's state, and the bus's."""

    shards: list[ShardReport]
    #: Per shard, the oldest seq a consumer group has not acknowledged yet.
    low_water: dict[int, int] = {}
    groups: list[GroupReport] = []


class Ping(msgspec.Struct, tag="ping"):
    nonce: int


class Pong(msgspec.Struct, tag="pong"):
    nonce: int
    #: Every assigned shard is connected and ready.
    ready: bool


class Handoff(msgspec.Struct, tag="handoff"):
    """Supervisor -> worker: close every shard resumably and send the sessions back.

    With ``exit`` the worker then exits; without, it stays up and idle (a reload that may still
    hand the sessions back to it).
    """

    exit: bool = True


class HandedOff(msgspec.Struct, tag="handed_off"):
    snapshots: list[SessionSnapshot]


class ShardFailed(msgspec.Struct, tag="shard_failed"):
    """A shard stopped on a fatal close code: reconnecting cannot help, the cluster must stop."""

    shard_id: int
    code: int
    message: str


Message = (
    Hello
    | Assign
    | IdentifyRequest
    | IdentifyGrant
    | IdentifySent
    | IdentifyDone
    | Report
    | Ping
    | Pong
    | Handoff
    | HandedOff
    | ShardFailed
)

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Message)


def encode(message: Message) -> bytes:
    return _encoder.encode(message)


def decode(data: bytes) -> Message:
    message: Message = _decoder.decode(data)
    return message
