"""One Discord Gateway v10 connection: the shard.

The shard is an explicit state machine (:class:`ShardState`) around one reconnect loop. Each turn of
the loop opens one WebSocket connection, waits for HELLO, resumes or identifies, and then receives
until the connection ends; how it ended (the close code, or what the shard itself decided: op 7,
op 9, a zombie connection, a handoff) decides the next turn: resume, identify anew, or stop.

The hot path runs synchronously inside the transport's receive callback: inflate, decode the
envelope (``op``, ``t``, ``s``, ``d`` kept as raw bytes) with decoders built once, peek the routing
key, hand an :class:`~shardrunner.protocol.envelope.Event` to the sink. No task switch, no
per-event allocation beyond the event itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

from shardrunner.gateway.backoff import Backoff
from shardrunner.clock import Clock, RealClock, wait_with_timeout
from shardrunner.gateway.identify import IdentifyQueue, LocalIdentifyQueue
from shardrunner.gateway.limiter import CommandLimiter
from shardrunner.gateway.transport import Connection, PicowsTransport, Transport, TransportError
from shardrunner.protocol.compression import Compression, StreamDecompressor, new_decompressor
from shardrunner.protocol.discord import (
    API_VERSION,
    CLOSE_REASONS,
    COMMAND_WINDOW_S,
    COMMANDS_PER_WINDOW,
    MAX_PAYLOAD_BYTES,
    CloseAction,
    CloseCode,
    Op,
    close_action,
)
from shardrunner.protocol.envelope import Event, SessionSnapshot

log = logging.getLogger("shardrunner.gateway")

#: The close code a shard uses when it means to resume: anything but 1000/1001 keeps the session.
RESUME_CLOSE_CODE: Final = 4000
HELLO_TIMEOUT_S: Final = 20.0
CONNECT_TIMEOUT_S: Final = 10.0


class ShardState(enum.Enum):
    IDLE = "idle"
    CONNECTING = "connecting"
    IDENTIFYING = "identifying"
    RESUMING = "resuming"
    READY = "ready"
    RECONNECTING = "reconnecting"
    STOPPED = "stopped"
    FATAL = "fatal"


class ShardFatalError(Exception):
    """Discord closed with a code after which reconnecting cannot help; the message says what to do."""

    def __init__(self, shard_id: int, code: int) -> None:
        self.shard_id = shard_id
        self.code = code
        super().__init__(f"shard {shard_id}: {fatal_advice(code)}")


_ADVICE: Final[dict[int, str]] = {
    CloseCode.AUTHENTICATION_FAILED: "Discord rejected the token (close 4004, authentication failed): "
    "check the token (--token or SHARDRUNNER_TOKEN); it may have been reset in the Developer Portal",
    CloseCode.INVALID_SHARD: "Discord refused the shard id or count (close 4010, invalid shard): "
    "the shard id must be below the shard count, and large bots must use a multiple of the count "
    "Discord gives",
    CloseCode.SHARDING_REQUIRED: "a shard would hold more than 2,500 guilds (close 4011, sharding required): "
    "raise the shard count (--shards auto uses Discord's recommendation)",
    CloseCode.INVALID_API_VERSION: "Discord refused gateway version 10 (close 4012, invalid API version): "
    "shardrunner only speaks v10",
    CloseCode.INVALID_INTENTS: "the intents value is not valid (close 4013, invalid intents): "
    "check the intents setting",
    CloseCode.DISALLOWED_INTENTS: "the bot asked for privileged intents it is not approved or enabled for "
    "(close 4014, disallowed intents): enable them in the Developer Portal (Bot, Privileged Gateway "
    "Intents) or remove them from the intents setting",
}


def fatal_advice(code: int) -> str:
    return _ADVICE.get(
        code, f"Discord closed with {code} ({CLOSE_REASONS.get(code, 'unknown')}), which is fatal"
    )


class PayloadTooLarge(ValueError):
    """A command would exceed Discord's 4096-byte limit; it was not sent."""


class ShardNotReady(RuntimeError):
    """The command could not be sent within its timeout (not connected, or no free command slot)."""


@dataclass(slots=True)
class ShardCounters:
    """What a shard has done; platform-neutral so every connection kind reports the same way."""

    events_in: int = 0
    bytes_in: int = 0
    reconnects: int = 0
    resumes: int = 0
    identifies: int = 0
    duplicates: int = 0
    gaps: int = 0
    sink_errors: int = 0
    #: Events whose routing key could not be read (delivered without one).
    key_errors: int = 0
    #: Seconds between the last heartbeat and its ACK.
    heartbeat_latency: float | None = None
    last_resume_at: float | None = None
    guilds: set[int] = field(default_factory=set)
    #: Bumped on every change of ``guilds``, so a reporter can send the set only when it changed.
    guilds_version: int = 0

    @property
    def guild_count(self) -> int:
        return len(self.guilds)

    def set_guilds(self, ids: Iterable[int]) -> None:
        self.guilds = set(ids)
        self.guilds_version += 1

    def add_guild(self, guild_id: int) -> None:
        if guild_id not in self.guilds:
            self.guilds.add(guild_id)
            self.guilds_version += 1

    def remove_guild(self, guild_id: int) -> None:
        if guild_id in self.guilds:
            self.guilds.discard(guild_id)
            self.guilds_version += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "events_in": self.events_in,
            "bytes_in": self.bytes_in,
            "reconnects": self.reconnects,
            "resumes": self.resumes,
            "identifies": self.identifies,
            "duplicates": self.duplicates,
            "gaps": self.gaps,
            "sink_errors": self.sink_errors,
            "key_errors": self.key_errors,
            "heartbeat_latency": self.heartbeat_latency,
            "last_resume_at": self.last_resume_at,
            "guilds": self.guild_count,
        }


# -- decoders, built once --------------------------------------------------------------------------
class _Envelope(msgspec.Struct):
    op: int
    d: msgspec.Raw = msgspec.Raw(b"null")
    s: int | None = None
    t: str | None = None


class _GuildKey(msgspec.Struct):
    guild_id: str | None = None


class _GuildSelf(msgspec.Struct):
    id: str | None = None
    unavailable: bool | None = None


class _Hello(msgspec.Struct):
    heartbeat_interval: int


class _Ready(msgspec.Struct):
    session_id: str
    resume_gateway_url: str
    guilds: list[_GuildSelf] = []


_decode_envelope = msgspec.json.Decoder(_Envelope).decode
_decode_guild_key = msgspec.json.Decoder(_GuildKey).decode
_decode_guild_self = msgspec.json.Decoder(_GuildSelf).decode
_decode_hello = msgspec.json.Decoder(_Hello).decode
_decode_ready = msgspec.json.Decoder(_Ready).decode
_encode = msgspec.json.encode

#: Events whose ``d`` is the guild itself (routing key ``d.id``).
_GUILD_SELF_EVENTS: Final = frozenset({"GUILD_CREATE", "GUILD_UPDATE", "GUILD_DELETE"})
#: Events that never carry a guild.
_NO_KEY_EVENTS: Final = frozenset(
    {"READY", "RESUMED", "USER_UPDATE", "APPLICATION_COMMAND_PERMISSIONS_UPDATE"}
)


class _Why(enum.Enum):
    """Why the shard itself ended a connection (None in ``_why``: the gateway or the network did)."""

    STOP = "stop"
    HANDOFF = "handoff"
    RECONNECT = "reconnect"  # op 7
    INVALID_SESSION = "invalid_session"  # op 9
    ZOMBIE = "zombie"
    STREAM_ERROR = "stream_error"


Sink = Callable[[Event], None]


@dataclass(slots=True)
class ShardOptions:
    """How a shard identifies and connects. The token is never logged or shown."""

    token: str = field(repr=False)
    intents: int
    compression: Compression = Compression.ZLIB_STREAM
    large_threshold: int = 250
    presence: dict[str, Any] | None = None
    properties: dict[str, str] = field(
        default_factory=lambda: {"os": sys.platform, "browser": "shardrunner", "device": "shardrunner"}
    )
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    hello_timeout: float = HELLO_TIMEOUT_S
    connect_timeout: float = CONNECT_TIMEOUT_S
    #: Command slots kept free for heartbeats in every 60 s window.
    heartbeat_reserve: int = 3


class DiscordShard:
    """One gateway connection, kept alive until :meth:`close` or a fatal close code.

    ``sink`` receives every dispatch (READY included, RESUMED excluded), synchronously and in order.
    Start it with ``await shard.run()`` (returns when stopped, raises :class:`ShardFatalError` on a
    fatal close code). Give ``snapshot`` to resume a session another process left.
    """

    def __init__(
        self,
        shard_id: int,
        num_shards: int,
        options: ShardOptions,
        sink: Sink,
        *,
        gateway_url: str,
        identify_queue: IdentifyQueue | None = None,
        transport: Transport | None = None,
        clock: Clock | None = None,
        snapshot: SessionSnapshot | None = None,
    ) -> None:
        if not 0 <= shard_id < num_shards:
            raise ValueError(f"shard id {shard_id} is not below the shard count {num_shards}")
        self.shard_id = shard_id
        self.num_shards = num_shards
        self.options = options
        self.sink = sink
        self.gateway_url = gateway_url.rstrip("/")
        self.clock: Clock = clock or RealClock()
        self.identify_queue: IdentifyQueue = identify_queue or LocalIdentifyQueue(clock=self.clock)
        self.transport: Transport = transport or PicowsTransport()
        self.counters = ShardCounters()
        self.state = ShardState.IDLE
        self._listeners: list[Callable[[ShardState, ShardState], None]] = []
        self._backoff = Backoff(self.clock.random, options.backoff_base, options.backoff_cap)
        self.limiter = CommandLimiter(
            self.clock, COMMANDS_PER_WINDOW, COMMAND_WINDOW_S, reserved=options.heartbeat_reserve
        )
        # Session
        self.session_id: str | None = None
        self.seq = 0
        self.resume_url: str | None = None
        if snapshot is not None:
            self._import(snapshot)
        # Connection
        self._conn: Connection | None = None
        self._inflate: StreamDecompressor = new_decompressor(options.compression)
        self._hello: asyncio.Future[float] | None = None
        self._why: _Why | None = None
        self._invalid_resumable = False
        self._acked = True
        self._beat_sent_at = 0.0
        self._identifying = False
        self._reached = False  # READY or RESUMED arrived on the current connection
        #: A close decided before the transport handed over the connection (op 7/9 with the handshake).
        self._pending_close: int | None = None
        self._stop_why = _Why.STOP
        self._resume_url_failed = False
        self._next_delay = 0.0
        self._stopping = False
        self._stop_event = asyncio.Event()
        self._ready_event = asyncio.Event()
        self.fatal: ShardFatalError | None = None

    def __repr__(self) -> str:
        return f"<DiscordShard {self.shard_id}/{self.num_shards} {self.state.value}>"

    # -- observation ----------------------------------------------------------------------------
    def add_state_listener(self, listener: Callable[[ShardState, ShardState], None]) -> None:
        """Call ``listener(old, new)`` on every state change."""
        self._listeners.append(listener)

    def _set_state(self, state: ShardState) -> None:
        old, self.state = self.state, state
        if old is state:
            return
        if state is ShardState.READY:
            self._ready_event.set()
        elif old is ShardState.READY:
            self._ready_event.clear()
        log.debug("shard %d: %s -> %s", self.shard_id, old.value, state.value)
        for listener in self._listeners:
            listener(old, state)

    # -- sessions -------------------------------------------------------------------------------
    def snapshot(self) -> SessionSnapshot | None:
        """The resumable session as it stands (None if there is none)."""
        if self.session_id is None or self.resume_url is None:
            return None
        return SessionSnapshot(
            platform="discord",
            shard_id=self.shard_id,
            num_shards=self.num_shards,
            session_id=self.session_id,
            seq=self.seq,
            resume_url=self.resume_url,
            keys=sorted(self.counters.guilds),
        )

    def _import(self, snapshot: SessionSnapshot) -> None:
        if snapshot.platform != "discord" or (snapshot.shard_id, snapshot.num_shards) != (
            self.shard_id,
            self.num_shards,
        ):
            raise ValueError(
                f"snapshot of {snapshot.platform} shard {snapshot.shard_id}/{snapshot.num_shards} "
                f"does not fit discord shard {self.shard_id}/{self.num_shards}"
            )
        self.session_id = snapshot.session_id
        self.seq = snapshot.seq
        self.resume_url = snapshot.resume_url.rstrip("/")
        self.counters.set_guilds(int(k) for k in snapshot.keys)

    def _forget_session(self) -> None:
        self.session_id = None
        self.resume_url = None
        self.seq = 0

    # -- the reconnect loop ---------------------------------------------------------------------
    async def run(self) -> None:
        """Keep the shard connected until :meth:`close`; raise :class:`ShardFatalError` on a fatal code."""
        if self.state not in (ShardState.IDLE, ShardState.STOPPED):
            raise RuntimeError(f"shard {self.shard_id} is already running ({self.state.value})")
        self._stopping = False
        self._stop_event.clear()
        try:
            while not self._stopping:
                if self._next_delay > 0:
                    self._set_state(ShardState.RECONNECTING)
                    await self._sleep_unless_stopped(self._next_delay)
                    if self._stop_event.is_set():  # close() during the wait
                        break
                await self._connect_once()
        except ShardFatalError as exc:
            self.fatal = exc
            self._set_state(ShardState.FATAL)
            raise
        self._set_state(ShardState.STOPPED)

    async def _sleep_unless_stopped(self, seconds: float) -> None:
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        stopper = asyncio.ensure_future(self._stop_event.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            stopper.cancel()

    def _url(self, base: str) -> str:
        query = f"v={API_VERSION}&encoding=json"
        if self.options.compression is not Compression.NONE:
            query += f"&compress={self.options.compression.value}"
        return f"{base}/?{query}"

    async def _connect_once(self) -> None:
        resuming = self.session_id is not None
        use_resume_url = resuming and self.resume_url is not None and not self._resume_url_failed
        base = self.resume_url if use_resume_url and self.resume_url else self.gateway_url
        self._set_state(ShardState.CONNECTING)
        self._why = None
        self._reached = False
        self._pending_close = None
        self._acked = True
        self._inflate = new_decompressor(self.options.compression)
        self._hello = asyncio.get_running_loop().create_future()
        self.limiter.reset()
        try:
            conn = await self.transport.connect(
                self._url(base), self._on_message, timeout=self.options.connect_timeout
            )
        except TransportError as exc:
            log.warning("shard %d: %s", self.shard_id, exc)
            if use_resume_url:
                self._resume_url_failed = True  # next time, resume through the main gateway URL
            self._next_delay = self._backoff.next()
            self.counters.reconnects += 1
            return
        self._conn = conn
        if self._stopping:  # close() was called while connecting
            self._why = self._stop_why
            self._pending_close = RESUME_CLOSE_CODE if self._stop_why is _Why.HANDOFF else 1000
        if self._pending_close is not None:
            self._close(conn, self._pending_close)
        heartbeat: asyncio.Task[None] | None = None
        reached = False
        try:
            got_hello, interval = await self._await_or_closed(conn, self._hello, self.options.hello_timeout)
            if got_hello:
                heartbeat = asyncio.ensure_future(self._heartbeat(conn, interval))
                if resuming and self.session_id is not None:
                    self._set_state(ShardState.RESUMING)
                    self._send_now(
                        conn,
                        {
                            "op": Op.RESUME,
                            "d": {
                                "token": self.options.token,
                                "session_id": self.session_id,
                                "seq": self.seq,
                            },
                        },
                    )
                else:
                    self._set_state(ShardState.IDENTIFYING)
                    acquire = self.identify_queue.acquire(self.shard_id)
                    allowed, _ = await self._await_or_closed(conn, acquire, None)
                    if allowed and conn.closed.done():
                        self.identify_queue.release(self.shard_id, ready=False)  # granted too late
                    elif allowed:
                        self._identifying = True
                        self.counters.identifies += 1
                        self._send_now(conn, self._identify_payload())
            await conn.closed
            reached = self._reached
        finally:
            if heartbeat is not None:
                heartbeat.cancel()
            self._conn = None
            if self._identifying:
                self._identifying = False
                self.identify_queue.release(self.shard_id, ready=False)
        code = conn.closed.result()
        self._after_close(code, used_resume_url=use_resume_url and resuming, reached=reached)

    async def _await_or_closed(
        self, conn: Connection, awaitable: Any, timeout: float | None
    ) -> tuple[bool, Any]:
        """``(True, result)`` of the awaitable, or ``(False, None)`` if the connection closed (or
        ``timeout`` passed) first."""
        task = asyncio.ensure_future(awaitable)
        waiters: set[asyncio.Future[Any]] = {task, conn.closed}
        timer = asyncio.ensure_future(self.clock.sleep(timeout)) if timeout is not None else None
        if timer is not None:
            waiters.add(timer)
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if timer is not None:
                timer.cancel()
        if task.done() and not task.cancelled() and task.exception() is None:
            return True, task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        if not conn.closed.done():
            log.warning("shard %d: no HELLO within %.0f s, reconnecting", self.shard_id, timeout or 0)
            if self._why is None:
                self._why = _Why.ZOMBIE
            conn.abort()
        return False, None

    def _after_close(self, code: int | None, *, used_resume_url: bool, reached: bool) -> None:
        why = self._why
        self.counters.reconnects += 1
        if why in (_Why.STOP, _Why.HANDOFF):
            self._stopping = True
            self.counters.reconnects -= 1
            if why is _Why.STOP:
                self._forget_session()
            return
        if why is _Why.RECONNECT:
            self._next_delay = 0.0  # Discord asked for it: reconnect at once
        elif why is _Why.INVALID_SESSION:
            # Discord's advice for op 9: wait a random 1-5 s.
            self._next_delay = 1.0 + 4.0 * self.clock.random()
            if not self._invalid_resumable:
                self._forget_session()
        elif why in (_Why.ZOMBIE, _Why.STREAM_ERROR):
            self._next_delay = self._backoff.next()
        else:
            action = close_action(code)
            if action is CloseAction.FATAL:
                self._stopping = True
                self.counters.reconnects -= 1
                log.error("shard %d: %s", self.shard_id, fatal_advice(code or 0))
                raise ShardFatalError(self.shard_id, code or 0)
            if action is CloseAction.NEW_SESSION:
                self._forget_session()
            log.info("shard %d: connection closed (%s), reconnecting", self.shard_id, code)
            self._next_delay = self._backoff.next()
        if used_resume_url and not reached and why is not _Why.INVALID_SESSION:
            self._resume_url_failed = True

    # -- heartbeats -----------------------------------------------------------------------------
    async def _heartbeat(self, conn: Connection, interval: float) -> None:
        await self.clock.sleep(interval * self.clock.random())
        while not conn.closed.done():
            if self._why is not None:
                return  # the connection is already closing for another reason
            if not self._acked:
                log.warning(
                    "shard %d: no heartbeat ACK in %.1f s: zombie connection, resuming",
                    self.shard_id,
                    interval,
                )
                self._why = _Why.ZOMBIE
                self._close(conn, RESUME_CLOSE_CODE)
                return
            self._beat(conn)
            await self.clock.sleep(interval)

    def _beat(self, conn: Connection) -> None:
        self._acked = False
        self._beat_sent_at = self.clock.monotonic()
        if not self.limiter.try_acquire(priority=True):
            # Never happens with the reserve kept for heartbeats; a late heartbeat would be worse.
            self.limiter.record()
        conn.send_text(b'{"op":1,"d":%b}' % (str(self.seq).encode() if self.seq else b"null"))

    def _close(self, conn: Connection, code: int) -> None:
        conn.close(code)

    # -- receiving: the hot path ----------------------------------------------------------------
    def _on_message(self, data: bytes) -> None:
        self.counters.bytes_in += len(data)
        try:
            payload = self._inflate.feed(data)
            if payload is None:
                return
            env = _decode_envelope(payload)
            if env.op == 0:
                self._on_dispatch(env)
            else:
                self._on_control(env)
        except Exception as exc:
            # A stream that cannot be decoded cannot be continued: resume on a new connection.
            log.error("shard %d: undecodable payload (%s), reconnecting", self.shard_id, exc)
            if self._why is None:
                self._why = _Why.STREAM_ERROR
                self._close_current(RESUME_CLOSE_CODE)

    def _on_dispatch(self, env: _Envelope) -> None:
        name = env.t or ""
        seq = env.s
        if seq is not None:
            last = self.seq
            if seq <= last:
                if name != "RESUMED":
                    self.counters.duplicates += 1
                    return
            elif last and seq != last + 1:
                self.counters.gaps += 1
                log.warning("shard %d: sequence gap %d -> %d", self.shard_id, last, seq)
        if name in _NO_KEY_EVENTS:
            if name == "READY":
                self._on_ready(env.d)
            elif name == "RESUMED":
                self._on_resumed()
                if seq is not None and seq > self.seq:
                    self.seq = seq
                return
            key: int | None = None
        else:
            try:
                key = self._route_key(name, env.d)
            except (msgspec.DecodeError, ValueError):
                # An odd key must not cost the event (or, replayed forever, the connection).
                self.counters.key_errors += 1
                log.warning(
                    "shard %d: %s %s has no usable guild id; routed without one", self.shard_id, name, seq
                )
                key = None
        self.counters.events_in += 1
        try:
            self.sink(Event(self.shard_id, self.session_id or "", seq or 0, name, key, bytes(env.d)))
        except Exception:
            self.counters.sink_errors += 1
            log.exception("shard %d: the event sink raised on %s %s", self.shard_id, name, seq)
        # Only now is the event handed on: a resume from this seq can no longer skip it.
        if seq is not None:
            self.seq = seq

    def _route_key(self, name: str, d: msgspec.Raw) -> int | None:
        """The guild id an event is routed by (``d.guild_id``, or ``d.id`` for the guild itself)."""
        if name not in _GUILD_SELF_EVENTS:
            gid = _decode_guild_key(d).guild_id
            return int(gid) if gid else None
        guild = _decode_guild_self(d)
        key = int(guild.id) if guild.id else None
        if key is not None:
            if name == "GUILD_DELETE" and not guild.unavailable:
                self.counters.remove_guild(key)  # left or kicked; unavailable guilds stay ours
            else:
                self.counters.add_guild(key)
        return key

    def _on_ready(self, d: msgspec.Raw) -> None:
        ready = _decode_ready(d)
        self.session_id = ready.session_id
        self.resume_url = ready.resume_gateway_url.rstrip("/")
        self.counters.set_guilds(int(g.id) for g in ready.guilds if g.id)
        self._resume_url_failed = False
        self._reached = True
        self._backoff.reset()
        if self._identifying:
            self._identifying = False
            self.identify_queue.release(self.shard_id, ready=True)
        self._set_state(ShardState.READY)
        log.info("shard %d: ready with %d guilds", self.shard_id, len(ready.guilds))

    def _on_resumed(self) -> None:
        self.counters.resumes += 1
        self.counters.last_resume_at = self.clock.monotonic()
        self._resume_url_failed = False
        self._reached = True
        self._backoff.reset()
        self._set_state(ShardState.READY)
        log.info("shard %d: resumed at seq %d", self.shard_id, self.seq)

    def _close_current(self, code: int) -> None:
        """Close the current connection, or as soon as the transport hands it over."""
        if self._conn is not None:
            self._close(self._conn, code)
        else:
            self._pending_close = code

    def _on_control(self, env: _Envelope) -> None:
        op = env.op
        if op == Op.HEARTBEAT_ACK:
            self._acked = True
            self.counters.heartbeat_latency = self.clock.monotonic() - self._beat_sent_at
        elif op == Op.HEARTBEAT:
            if self._conn is not None:
                self._beat(self._conn)  # the gateway asks for one now
        elif op == Op.HELLO:
            hello = _decode_hello(env.d)
            if self._hello is not None and not self._hello.done():
                self._reached = False
                self._hello.set_result(hello.heartbeat_interval / 1000)
        elif op == Op.RECONNECT:
            log.info("shard %d: gateway asked to reconnect (op 7)", self.shard_id)
            if self._why is None:
                self._why = _Why.RECONNECT
                self._close_current(RESUME_CLOSE_CODE)
        elif op == Op.INVALID_SESSION:
            resumable = bytes(env.d).strip() == b"true"
            log.info("shard %d: invalid session (op 9, resumable=%s)", self.shard_id, resumable)
            if self._identifying:
                self._identifying = False
                self.identify_queue.release(self.shard_id, ready=False)
            if self._why is None:
                self._why = _Why.INVALID_SESSION
                self._invalid_resumable = resumable and self.session_id is not None
                self._close_current(RESUME_CLOSE_CODE if self._invalid_resumable else 1000)

    # -- sending --------------------------------------------------------------------------------
    def _identify_payload(self) -> dict[str, Any]:
        o = self.options
        d: dict[str, Any] = {
            "token": o.token,
            "properties": o.properties,
            "intents": o.intents,
            "shard": [self.shard_id, self.num_shards],
            "large_threshold": o.large_threshold,
            "compress": False,
        }
        if o.presence is not None:
            d["presence"] = o.presence
        return {"op": Op.IDENTIFY, "d": d}

    def _send_now(self, conn: Connection, payload: dict[str, Any]) -> None:
        self.limiter.record()
        conn.send_text(_encode(payload))

    async def send(self, op: int, d: Any, *, timeout: float = 30.0) -> None:
        """Send a gateway command once the shard is ready, within the outbound rate limit.

        Raises :class:`PayloadTooLarge` (never sent), or :class:`ShardNotReady` if the shard was not
        ready, or no slot of the outbound limit was free, within ``timeout``.
        """
        if op in (Op.HEARTBEAT, Op.IDENTIFY, Op.RESUME):
            raise ValueError(f"op {op} is sent by the shard itself")
        data = _encode({"op": op, "d": d})
        if len(data) > MAX_PAYLOAD_BYTES:
            raise PayloadTooLarge(
                f"shard {self.shard_id}: op {op} payload is {len(data)} bytes, "
                f"over Discord's limit of {MAX_PAYLOAD_BYTES}"
            )
        deadline = self.clock.monotonic() + timeout
        while True:
            left = deadline - self.clock.monotonic()
            if self.state is ShardState.FATAL or self._stopping or left <= 0:
                raise ShardNotReady(
                    f"shard {self.shard_id} is not ready ({self.state.value}); op {op} not sent"
                )
            if self.state is not ShardState.READY:
                with contextlib.suppress(TimeoutError):
                    await wait_with_timeout(self.clock, self._ready_event.wait(), left)
                continue
            try:
                await wait_with_timeout(self.clock, self.limiter.acquire(), left)
            except TimeoutError:
                raise ShardNotReady(
                    f"shard {self.shard_id}: op {op} not sent within {timeout:g} s: the outbound limit "
                    f"({COMMANDS_PER_WINDOW} per {COMMAND_WINDOW_S:g} s, heartbeats first) is used up"
                ) from None
            conn = self._conn
            if conn is not None and self.state is ShardState.READY:
                conn.send_text(data)
                return

    async def update_presence(self, presence: dict[str, Any], *, timeout: float = 30.0) -> None:
        await self.send(Op.PRESENCE_UPDATE, presence, timeout=timeout)

    async def request_guild_members(self, guild_id: int, *, timeout: float = 30.0, **fields: Any) -> None:
        fields.setdefault("query", "")
        fields.setdefault("limit", 0)
        await self.send(Op.REQUEST_GUILD_MEMBERS, {"guild_id": str(guild_id), **fields}, timeout=timeout)

    async def update_voice_state(
        self, guild_id: int, channel_id: int | None, *, self_mute: bool = False, self_deaf: bool = False
    ) -> None:
        await self.send(
            Op.VOICE_STATE_UPDATE,
            {
                "guild_id": str(guild_id),
                "channel_id": None if channel_id is None else str(channel_id),
                "self_mute": self_mute,
                "self_deaf": self_deaf,
            },
        )

    # -- stopping -------------------------------------------------------------------------------
    async def close(self, *, handoff: bool = False, timeout: float = 10.0) -> SessionSnapshot | None:
        """Stop the shard. With ``handoff`` close resumably and return the session for another process.

        Every event received before the close completed has reached the sink, and the snapshot's
        ``seq`` is the last of them: the process that resumes from it misses nothing.
        """
        self._stopping = True
        self._stop_why = _Why.HANDOFF if handoff else _Why.STOP
        self._stop_event.set()
        conn = self._conn
        if conn is not None and not conn.closed.done():
            if self._why is None or self._why in (_Why.RECONNECT, _Why.ZOMBIE, _Why.STREAM_ERROR):
                self._why = _Why.HANDOFF if handoff else _Why.STOP
            self._close(conn, RESUME_CLOSE_CODE if handoff else 1000)
            with contextlib.suppress(TimeoutError):
                await wait_with_timeout(self.clock, asyncio.shield(conn.closed), timeout)
            if not conn.closed.done():
                conn.abort()
        elif not handoff:
            self._forget_session()
        return self.snapshot() if handoff else None
