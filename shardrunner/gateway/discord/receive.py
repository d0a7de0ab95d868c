"""The shard's inbound side: the hot path, the gateway's control ops, heartbeats and state changes.

The hot path runs synchronously inside the transport's receive callback: inflate, decode the
envelope (``op``, ``t``, ``s``, ``d`` kept as raw bytes) with the views' decoders built once, peek
the routing key, hand an :class:`~shardrunner.protocol.envelope.Event` to the sink. No task switch,
no per-event allocation beyond the event itself; the connection's key is built once per shard.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import msgspec

from shardrunner.clock import Clock, Flag, Timer
from shardrunner.gateway.backoff import Backoff
from shardrunner.gateway.connection import ConnCounters, ConnState, Notify, Sink
from shardrunner.gateway.discord import views
from shardrunner.gateway.discord.options import ShardOptions
from shardrunner.gateway.limiter import CommandLimiter
from shardrunner.gateway.transport import Connection
from shardrunner.identify.protocol import IdentifyQueue
from shardrunner.protocol import lifecycle
from shardrunner.protocol.compression import StreamDecompressor
from shardrunner.protocol.discord import Op
from shardrunner.protocol.envelope import Event
from shardrunner.protocol.keys import ConnKey
from shardrunner.protocol.lifecycle import Notice

log = logging.getLogger("shardrunner.gateway")

#: The close code a shard uses when it means to resume: anything but 1000/1001 keeps the session.
RESUME_CLOSE_CODE: Final = 4000

_decode_envelope = views.decode_envelope
_decode_guild_key = views.decode_guild_key
_decode_guild_self = views.decode_guild_self
_GUILD_SELF_EVENTS = views.GUILD_SELF_EVENTS
_NO_KEY_EVENTS = views.NO_KEY_EVENTS


class Why(enum.Enum):
    """Why the shard itself ended a connection (None in ``_why``: the gateway or the network did)."""

    STOP = "stop"
    HANDOFF = "handoff"
    RECONNECT = "reconnect"  # op 7
    INVALID_SESSION = "invalid_session"  # op 9
    ZOMBIE = "zombie"
    STREAM_ERROR = "stream_error"


class _Condemned:
    """The decompressor of a connection being closed for a broken stream: reads nothing more."""

    __slots__ = ()

    def feed(self, data: bytes) -> bytes | None:
        return None


_CONDEMNED: Final = _Condemned()


class Receiving:
    """The part of :class:`~shardrunner.gateway.discord.shard.DiscordShard` that reads the gateway."""

    if not TYPE_CHECKING:  # the shard's __slots__ name what it sets; mypy would check them here
        __slots__ = ()

    # Set by DiscordShard.__init__; declared here for the methods below.
    conn: ConnKey
    options: ShardOptions
    sink: Sink
    clock: Clock
    identify_queue: IdentifyQueue
    counters: ConnCounters
    state: ConnState
    limiter: CommandLimiter
    session_id: str | None
    seq: int
    resume_url: str | None
    epoch: int
    notify: Notify
    #: READY or RESUMED came since the last ``disconnected`` notice: the next drop is one.
    _up: bool
    _listeners: list[Callable[[ConnState, ConnState], None]]
    _ready_event: Flag
    _backoff: Backoff
    _conn: Connection | None
    _inflate: StreamDecompressor
    _hello: asyncio.Future[float] | None
    _why: Why | None
    _invalid_resumable: bool
    _acked: bool
    _beat_sent_at: float
    _identifying: bool
    _reached: bool
    _pending_close: int | None
    _resume_url_failed: bool
    _heartbeat_timer: Timer | None

    # -- state ----------------------------------------------------------------------------------
    def add_state_listener(self, listener: Callable[[ConnState, ConnState], None]) -> None:
        """Call ``listener(old, new)`` on every state change."""
        self._listeners.append(listener)

    def _set_state(self, state: ConnState) -> None:
        old, self.state = self.state, state
        if old is state:
            return
        if state is ConnState.READY:
            self._ready_event.set()
        elif old is ConnState.READY:
            self._ready_event.clear()
        log.debug("%s: %s -> %s", self.conn, old.value, state.value)
        for listener in self._listeners:
            listener(old, state)

    # -- heartbeats -----------------------------------------------------------------------------
    def _start_heartbeat(self, conn: Connection, interval: float) -> None:
        """Beat on ``conn`` every ``interval`` s, the first after ``interval`` x random(): a timer
        re-armed at each beat, not a task that sleeps (a task, its coroutines and its sleep's
        future cost an idle shard about 1.3 KiB; docs/performance.md, decision 12)."""
        self._heartbeat_timer = self.clock.call_later(
            interval * self.clock.random(), lambda: self._heartbeat_due(conn, interval)
        )

    def _stop_heartbeat(self) -> None:
        timer, self._heartbeat_timer = self._heartbeat_timer, None
        if timer is not None:
            timer.cancel()

    def _heartbeat_due(self, conn: Connection, interval: float) -> None:
        self._heartbeat_timer = None
        if conn.closed.done() or self._why is not None:
            return  # gone, or already closing for another reason
        if not self._acked:
            log.warning("%s: no heartbeat ACK in %.1f s: zombie connection, resuming", self.conn, interval)
            self._why = Why.ZOMBIE
            self._close(conn, RESUME_CLOSE_CODE)
            return
        self._beat(conn)
        self._heartbeat_timer = self.clock.call_later(interval, lambda: self._heartbeat_due(conn, interval))

    def _beat(self, conn: Connection) -> None:
        self._acked = False
        self._beat_sent_at = self.clock.monotonic()
        if not self.limiter.try_acquire(priority=True):
            # Never happens with the reserve kept for heartbeats; a late heartbeat would be worse.
            self.limiter.record()
        conn.send_text(b'{"op":1,"d":%b}' % (str(self.seq).encode() if self.seq else b"null"))

    def _close(self, conn: Connection, code: int) -> None:
        conn.close(code)

    def _close_current(self, code: int) -> None:
        """Close the current connection, or as soon as the transport hands it over."""
        if self._conn is not None:
            self._close(self._conn, code)
        else:
            self._pending_close = code

    # -- receiving: the hot path ----------------------------------------------------------------
    def _on_message(self, data: bytes) -> None:
        self.counters.bytes_in += len(data)
        try:
            payload = self._inflate.feed(data)
        except Exception as exc:
            # A stream that cannot be inflated cannot be continued: resume on a new connection.
            self._unusable(f"a message that cannot be inflated ({exc})")
            return
        if payload is None:
            return
        try:
            env = _decode_envelope(payload)
            if not payload.isascii():
                payload.decode()  # msgspec skips ``d`` unchecked: consumers must get valid UTF-8
        except (msgspec.DecodeError, ValueError, RecursionError) as exc:
            if self.options.compression.binary:
                # Inflated without an error but not JSON: the stream's history is suspect, and
                # later payloads could inflate wrong without an error. Resume on a new connection.
                self._unusable(f"an undecodable payload ({exc})")
            else:
                # Plain JSON: the next payload is read on its own, and a resume would only be sent
                # this one again. Dropped and counted.
                self._dropped(f"an undecodable payload ({exc})")
            return
        try:
            if env.op == 0:
                self._on_dispatch(env)
            else:
                self._on_control(env)
        except Exception as exc:
            # HELLO or READY unusable: the connection cannot go on without them.
            self._unusable(f"an unusable payload ({exc})")

    def _dropped(self, what: str) -> None:
        if self.counters.decode_error():
            log.warning("%s: %s dropped (%d so far)", self.conn, what, self.counters.decode_errors)

    def _unusable(self, what: str) -> None:
        # Nothing more of this connection is read: after a broken stream what it would inflate to
        # could be wrong without an error, and it is closing anyway.
        self._inflate = _CONDEMNED
        self.counters.decode_errors += 1
        log.error("%s: %s, reconnecting", self.conn, what)
        if self._why is None:
            self._why = Why.STREAM_ERROR
            self._close_current(RESUME_CLOSE_CODE)

    def _on_dispatch(self, env: views.Envelope) -> None:
        name = env.t
        seq = env.s
        if not name:
            # Nothing to hand on; its seq is not taken either, so a valid dispatch of that seq
            # (a resume's replay) is still delivered.
            self._dropped(f"a dispatch without a name (seq {seq})")
            return
        if seq is not None:
            last = self.seq
            if seq <= last:
                self.counters.duplicates += 1
                if name == "RESUMED":
                    # Discord gives RESUMED the next seq, so this is a gateway that numbers it
                    # otherwise: dropped and counted like any repeated seq, it still ends the
                    # resume, or the shard would stay RESUMING and its commands wait for nothing.
                    self._on_resumed()
                return
            if last and seq != last + 1:
                self.counters.gaps += 1
                log.warning("%s: sequence gap %d -> %d", self.conn, last, seq)
        key: int | None
        if name in _NO_KEY_EVENTS:
            if name == "READY":
                self._on_ready(env.d)
            elif name == "RESUMED":
                # Discord gives RESUMED a seq of its own: it is handed on like any dispatch, so a
                # consumer sees no hole before the next event.
                self._on_resumed()
            key = None
        else:
            try:
                key = self._route_key(name, env.d)
            except (msgspec.DecodeError, ValueError, RecursionError):
                # An odd key must not cost the event (or, replayed forever, the connection).
                self.counters.key_errors += 1
                log.warning("%s: %s %s has no usable guild id; routed without one", self.conn, name, seq)
                key = None
        self.counters.events_in += 1
        try:
            self.sink(Event(self.conn, self.session_id or "", seq or 0, name, key, bytes(env.d), self.epoch))
        except Exception:
            self.counters.sink_errors += 1
            log.exception("%s: the event sink raised on %s %s", self.conn, name, seq)
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
            counters = self.counters
            if name == "GUILD_DELETE" and not guild.unavailable:
                counters.remove_key(key)  # left or kicked; unavailable guilds stay ours
            else:
                counters.add_key(key)
            if counters.pending and name != "GUILD_UPDATE":
                # A guild READY listed has come (or will not come: deleted, or unavailable).
                counters.key_arrived(key)
        return key

    def _on_ready(self, d: msgspec.Raw) -> None:
        ready = views.decode_ready(d)
        self.session_id = ready.session_id
        self.resume_url = ready.resume_gateway_url.rstrip("/")
        guilds = []
        for g in ready.guilds:
            try:
                guilds.append(int(g.id or ""))
            except ValueError:
                self.counters.key_errors += 1  # one odd guild must not cost the session
        self.counters.set_keys(guilds)
        self.counters.expect_keys(guilds)  # each pending until its GUILD_CREATE (or DELETE) comes
        self._resume_url_failed = False
        self._reached = True
        self._backoff.reset()
        if self._identifying:
            self._identifying = False
            self.identify_queue.release(self.conn, ready=True)
        self._set_state(ConnState.READY)
        self._up = True
        self.notify(Notice(lifecycle.READY, self.conn, {"session": ready.session_id}))
        log.info("%s: ready with %d guilds", self.conn, len(ready.guilds))

    def _on_resumed(self) -> None:
        self.counters.resumes += 1
        self.counters.last_resume_at = self.clock.monotonic()
        self._resume_url_failed = False
        self._reached = True
        self._backoff.reset()
        self._set_state(ConnState.READY)
        self._up = True
        self.notify(Notice(lifecycle.RESUMED, self.conn, {"session": self.session_id}))
        log.info("%s: resumed at seq %d", self.conn, self.seq)

    def _on_control(self, env: views.Envelope) -> None:
        op = env.op
        if op == Op.HEARTBEAT_ACK:
            self._acked = True
            self.counters.heartbeat_latency = self.clock.monotonic() - self._beat_sent_at
        elif op == Op.HEARTBEAT:
            if self._conn is not None:
                self._beat(self._conn)  # the gateway asks for one now
        elif op == Op.HELLO:
            interval = views.decode_hello(env.d).heartbeat_interval
            if not views.MIN_HEARTBEAT_MS <= interval <= views.MAX_HEARTBEAT_MS:
                raise ValueError(f"a HELLO with heartbeat_interval {interval} ms")
            if self._hello is not None and not self._hello.done():
                self._reached = False
                self._hello.set_result(interval / 1000)
        elif op == Op.RECONNECT:
            log.info("%s: gateway asked to reconnect (op 7)", self.conn)
            if self._why is None:
                self._why = Why.RECONNECT
                self._close_current(RESUME_CLOSE_CODE)
        elif op == Op.INVALID_SESSION:
            resumable = bytes(env.d).strip() == b"true"
            log.info("%s: invalid session (op 9, resumable=%s)", self.conn, resumable)
            if self._identifying:
                self._identifying = False
                self.identify_queue.release(self.conn, ready=False)
            if self._why is None:
                self._why = Why.INVALID_SESSION
                self._invalid_resumable = resumable and self.session_id is not None
                self._close_current(RESUME_CLOSE_CODE if self._invalid_resumable else 1000)
        else:
            self._dropped(f"a payload of unknown op {op}")
