"""What the supervisor and its workers say to each other, over one ZeroMQ ROUTER/DEALER pair.

Every message is a msgspec struct in one tagged union, encoded with msgpack. Connections are named
by :class:`~shardrunner.protocol.keys.ConnKey` everywhere. What only a platform understands travels
as a :class:`PlatformPart` whose ``config`` the platform's own package encodes and decodes; the
token travels only there, over an ipc socket inside the run directory (mode 0700), never on a
command line or in the environment of a worker.
"""

from __future__ import annotations

from typing import Any

import msgspec

from shardrunner.bus.protocol import Delivery, GroupStats
from shardrunner.protocol.envelope import SessionSnapshot
from shardrunner.protocol.keys import ConnKey


class Hello(msgspec.Struct, tag="hello"):
    """Worker -> supervisor, once at boot."""

    slot: int
    generation: int
    pid: int


class PlatformPart(msgspec.Struct):
    """One platform's share of an assignment: the connections to run and the platform's settings.

    ``config`` is opaque here (the platform package decodes it); it may hold secrets and is never
    shown.
    """

    platform: str
    conns: list[ConnKey]
    config: bytes

    def __repr__(self) -> str:
        return f"PlatformPart({self.platform}, conns={len(self.conns)})"


class Assign(msgspec.Struct, tag="assign"):
    """Supervisor -> worker: the connections to run, and the sessions to resume where there are some."""

    parts: list[PlatformPart]
    snapshots: list[SessionSnapshot] = []
    #: Where bots connect to this worker (a ZeroMQ endpoint it binds).
    bus_endpoint: str = ""
    #: Consumer groups known to the cluster, (name, event names or None for all): the worker keeps
    #: their events from the first one on, before their members have reconnected.
    groups: list[tuple[str, list[str] | None]] = []
    queue_events: int = 100_000
    queue_bytes: int = 256 * 1024 * 1024
    #: The bus's delivery mode of these connections (a reshard); the ones not listed are live. The
    #: worker applies it before its connections start.
    delivery: list[tuple[ConnKey, Delivery]] = []
    #: The version of the supervisor's delivery modes this assignment carries (see SetDelivery).
    delivery_version: int = 0
    #: Seconds within which the two sets receive one event (the client's match window; 0: unset).
    dedupe_window: float = 0.0
    #: A reshard's switch: the connections set live here deliver alone from now on (each says
    #: ``shardrunner.switched`` to the bots).
    switch: bool = False
    #: The lease epoch of each connection, stamped on its events (those not listed: 0).
    epochs: list[tuple[ConnKey, int]] = []
    #: The lease fence (CLOCK_MONOTONIC of this machine, see :class:`LeaseUntil`); 0: no fence.
    lease_until: float = 0.0

    def __repr__(self) -> str:  # never show a platform's config (it holds the token)
        conns = sum(len(p.conns) for p in self.parts)
        return (
            f"Assign(parts={self.parts!r}, conns={conns}, snapshots={len(self.snapshots)}, "
            f"delivery={len(self.delivery)}@{self.delivery_version}, lease_until={self.lease_until})"
        )

    @property
    def conns(self) -> list[ConnKey]:
        return [c for p in self.parts for c in p.conns]


class Adopt(msgspec.Struct, tag="adopt"):
    """Supervisor -> worker: run these connections too (a block whose lease this host took),
    resuming those with a session; the ones the worker runs already are not disturbed."""

    parts: list[PlatformPart]
    snapshots: list[SessionSnapshot] = []
    #: The lease epoch of each connection, stamped on its events (those not listed: 0).
    epochs: list[tuple[ConnKey, int]] = []
    #: The delivery mode of each connection that is not live (Twitch's backup readers: dedupe).
    delivery: list[tuple[ConnKey, Delivery]] = []

    def __repr__(self) -> str:  # never show a platform's config (it holds the token)
        return f"Adopt(parts={self.parts!r}, snapshots={len(self.snapshots)})"

    @property
    def conns(self) -> list[ConnKey]:
        return [c for p in self.parts for c in p.conns]


class Release(msgspec.Struct, tag="release"):
    """Supervisor -> worker: close these connections resumably (their block goes to another host)
    and answer :class:`Released` with their sessions; the others are not disturbed."""

    conns: list[ConnKey]


class Released(msgspec.Struct, tag="released"):
    """Worker -> supervisor: the sessions of released connections, each rewound to the oldest event
    a consumer group still holds (the next holder's gateway replays from there).

    ``fenced``: not asked for; the worker's lease fence passed (:class:`LeaseUntil`), so it closed
    every connection it ran."""

    snapshots: list[SessionSnapshot]
    fenced: bool = False


class LeaseUntil(msgspec.Struct, tag="lease_until"):
    """Supervisor -> worker, after each lease renewal: the worker may deliver events until
    ``until`` (CLOCK_MONOTONIC seconds of this machine: the supervisor's ``time.monotonic()``).

    Past it the bus stops sending batches and the worker closes every connection resumably
    (:class:`Released` with ``fenced``): a host that could not renew stops before another can
    take its leases. A later one with a future time lifts the stop; 0: no fence."""

    until: float


class IdentifyRequest(msgspec.Struct, tag="identify"):
    """Worker -> supervisor: ``conn`` asks to identify (connected). With ``near``: it is not
    connected yet, it stands in line until :class:`IdentifyNear`, then connects and asks again."""

    conn: ConnKey
    near: bool = False


class IdentifyNear(msgspec.Struct, tag="identify_near"):
    """Supervisor -> worker: the turn of ``conn`` in the identify queue is near: connect now."""

    conn: ConnKey


class IdentifyGrant(msgspec.Struct, tag="grant"):
    conn: ConnKey


class IdentifySent(msgspec.Struct, tag="identify_sent"):
    """The IDENTIFY went out now (the limit's window counts from here)."""

    conn: ConnKey


class IdentifyDone(msgspec.Struct, tag="identified"):
    conn: ConnKey
    ready: bool


class BudgetRequest(msgspec.Struct, tag="budget"):
    """Worker -> supervisor: ``n`` uses of budget ``name`` for ``key`` (an account's JOINs...)."""

    request: int
    name: str
    key: str
    n: int = 1


class BudgetGrant(msgspec.Struct, tag="budget_grant"):
    """Supervisor -> worker: the uses of ``request`` are the worker's (or, with ``refused``, never)."""

    request: int
    refused: str | None = None


class BudgetUsed(msgspec.Struct, tag="budget_used"):
    """Worker -> supervisor: the granted uses were written now (the window counts from here)."""

    request: int


class BudgetCancel(msgspec.Struct, tag="budget_cancel"):
    """Worker -> supervisor: the request is not wanted any more (its uses, if granted, come back)."""

    request: int


class ConnReport(msgspec.Struct, array_like=True):
    """One connection's state as its worker sees it; carries what a resume needs."""

    conn: ConnKey
    state: str
    seq: int
    session_id: str | None
    resume_url: str | None
    events_in: int
    heartbeat_latency: float | None
    #: How many routing keys (Discord: guilds) the connection serves.
    key_count: int
    resumes: int
    identifies: int
    last_resume_at: float | None
    #: Unexpected exceptions the connection's run raised (each one restarted it, resuming).
    crashes: int = 0
    last_error: str | None = None
    #: The connection's routing keys, sent only when they changed since the previous report.
    keys: list[int | str] | None = None
    #: Routing keys the session's start announced that have not arrived yet (Discord: guilds of
    #: READY without their GUILD_CREATE); a reshard's new set is ready to switch at 0.
    keys_pending: int = 0
    #: Events of this connection the bus kept from every group (``hold`` and ``mute`` modes).
    withheld: int = 0
    #: What the platform shows of the connection beyond these (Twitch: role, login, channels,
    #: failed channels); None for a platform that shows nothing more.
    detail: dict[str, Any] | None = None
    #: Bytes of the platform's frames as received (compressed where the transport compresses), and
    #: how many times the connection reconnected; both count from the worker's start.
    bytes_in: int = 0
    reconnects: int = 0
    #: What the platform sent that the connection could not read (``ConnCounters.decode_errors``).
    decode_errors: int = 0

    def snapshot(self, keys: list[int | str]) -> SessionSnapshot | None:
        if self.session_id is None or self.resume_url is None:
            return None
        return SessionSnapshot(
            conn=self.conn,
            session_id=self.session_id,
            seq=self.seq,
            resume_url=self.resume_url,
            keys=list(keys),
        )


class Report(msgspec.Struct, tag="report"):
    """Worker -> supervisor, twice a second: every connection's state, and the bus's."""

    conns: list[ConnReport]
    #: Per connection, the oldest seq of its current session a consumer group has not acknowledged.
    low_water: list[tuple[ConnKey, int]] = []
    groups: list[GroupStats] = []
    #: Seconds the worker's event loop woke late for this report (its loop lag, measured on the
    #: report timer's sleep): a loop kept busy delays every connection's reads.
    loop_lag: float = 0.0
    #: Events its controller's filter dropped before the bus, since the worker started.
    filtered: int = 0
    #: Per controller hook, the calls that failed in this worker (raised, timed out, stalled).
    hook_failures: dict[str, int] = {}
    #: Bots' messages its bus refused since the worker started (docs/delivery.md, bad input).
    bus_rejected: int = 0


class Ping(msgspec.Struct, tag="ping"):
    nonce: int


class Pong(msgspec.Struct, tag="pong"):
    nonce: int
    #: Every assigned connection is connected and ready.
    ready: bool


class Handoff(msgspec.Struct, tag="handoff"):
    """Supervisor -> worker: close every connection resumably and send the sessions back.

    With ``exit`` the worker then exits; without, it stays up and idle (a reload that may still
    hand the sessions back to it).
    """

    exit: bool = True


class HandedOff(msgspec.Struct, tag="handed_off"):
    snapshots: list[SessionSnapshot]


class SetDelivery(msgspec.Struct, tag="set_delivery"):
    """Supervisor -> worker: change the bus's delivery mode of these connections (the ones not
    named keep theirs); answered by :class:`DeliverySet` once applied."""

    version: int
    delivery: list[tuple[ConnKey, Delivery]]
    #: Seconds within which the two sets receive one event (the client's match window; 0: unset).
    dedupe_window: float = 0.0
    #: A reshard's switch: the connections set live here deliver alone from now on (each says
    #: ``shardrunner.switched`` to the bots).
    switch: bool = False


class DeliverySet(msgspec.Struct, tag="delivery_set"):
    version: int


class Finish(msgspec.Struct, tag="finish"):
    """Supervisor -> worker: end every session (close code 1000: nothing resumes them), give the
    bots up to ``drain_timeout`` seconds to take what the durable groups are owed (members or
    not), answer :class:`Finished` and exit. A reshard's old set ends so."""

    drain_timeout: float


class Finished(msgspec.Struct, tag="finished"):
    #: Events still owed to durable groups when the drain gave up (summed over the groups).
    undelivered: int


class ConnFailed(msgspec.Struct, tag="conn_failed"):
    """A connection stopped on a fatal close code: reconnecting cannot help, the cluster must stop
    (``stop``), or, when the worker's controller said to keep the others running, not."""

    conn: ConnKey
    code: int
    message: str
    stop: bool = True


class Reconfigure(msgspec.Struct, tag="reconfigure"):
    """Supervisor -> worker: the part config of a platform changed while running (Twitch: channels
    added or removed); the worker's connections of it take the change."""

    platform: str
    config: bytes


class BusBound(msgspec.Struct, tag="bus_bound"):
    """Worker -> supervisor: the TCP endpoint its bus bound (``--bus-bind``), as bound
    (``tcp://ADDR:PORT``); the supervisor lists it advertised in its ``endpoints`` answer."""

    endpoint: str


Message = (
    Hello
    | Assign
    | IdentifyRequest
    | IdentifyNear
    | IdentifyGrant
    | IdentifySent
    | IdentifyDone
    | BudgetRequest
    | BudgetGrant
    | BudgetUsed
    | BudgetCancel
    | Report
    | Ping
    | Pong
    | Handoff
    | HandedOff
    | ConnFailed
    | SetDelivery
    | DeliverySet
    | Finish
    | Finished
    | Reconfigure
    | BusBound
    | Adopt
    | Release
    | Released
    | LeaseUntil
)

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Message)


def encode(message: Message) -> bytes:
    return _encoder.encode(message)


def decode(data: bytes) -> Message:
    message: Message = _decoder.decode(data)
    return message
