"""One Discord Gateway v10 connection: the shard.

The shard is an explicit state machine (:class:`~shardrunner.gateway.connection.ConnState`) around
one reconnect loop. Each turn of the loop opens one WebSocket connection, waits for HELLO, resumes
or identifies, and then receives until the connection ends; how it ended (the close code, or what
the shard itself decided: op 7, op 9, a zombie connection, a handoff) decides the next turn: resume,
identify anew, or stop. What it reads is in :mod:`.receive` (the hot path), what it writes in
:mod:`.send`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from shardrunner.clock import Clock, Flag, RealClock, Timer, wait_with_timeout
from shardrunner.gateway.backoff import Backoff
from shardrunner.gateway.connection import ConnCounters, ConnState, Notify, Sink, no_notice
from shardrunner.gateway.discord.advice import ShardFatalError, fatal_advice
from shardrunner.gateway.discord.options import ShardOptions
from shardrunner.gateway.discord.receive import RESUME_CLOSE_CODE, Receiving, Why
from shardrunner.gateway.discord.send import Sending
from shardrunner.gateway.gate import ConnectGate
from shardrunner.gateway.limiter import CommandLimiter
from shardrunner.gateway.transport import Connection, PicowsTransport, Transport, TransportError
from shardrunner.identify.local import LocalIdentifyQueue
from shardrunner.identify.protocol import IdentifyQueue, StartLimit
from shardrunner.protocol import lifecycle
from shardrunner.protocol.compression import (
    PlainDecompressor,
    StreamDecompressor,
    new_decompressor,
)
from shardrunner.protocol.discord import (
    COMMAND_WINDOW_S,
    COMMANDS_PER_WINDOW,
    CloseAction,
    close_action,
)
from shardrunner.protocol.envelope import SessionSnapshot
from shardrunner.protocol.keys import ConnKey
from shardrunner.protocol.lifecycle import Notice

log = logging.getLogger("shardrunner.gateway")


def _one_bucket(conn: ConnKey) -> tuple[str, int]:
    return ("discord.identify", 0)


class DiscordShard(Receiving, Sending):
    """One gateway connection, kept alive until :meth:`close` or a fatal close code.

    A :class:`~shardrunner.gateway.connection.GatewayConnection` named by its ``conn`` key
    (``discord:3/8``). ``sink`` receives every dispatch (READY and RESUMED included), synchronously
    and in order. Start it with ``await shard.run()`` (returns when stopped, raises
    :class:`ShardFatalError` on a fatal close code). Give ``snapshot`` to resume a session another
    process left.
    """

    #: Slots, not a dict: 35 attributes made a 1.6 KiB dict per shard (docs/performance.md, 12).
    __slots__ = (
        "_acked", "_backoff", "_beat_sent_at", "_conn", "_heartbeat_timer", "_hello", "_identifying",
        "_inflate", "_invalid_resumable", "_listeners", "_next_delay", "_pending_close", "_reached",
        "_ready_event", "_resume_url_failed", "_said_bad_hook", "_stop_event", "_stop_why", "_stopping",
        "_up", "_why", "clock", "conn", "connect_gate", "counters", "epoch", "fatal", "gateway_url",
        "identify_queue", "limiter", "notify", "options", "resume_url", "seq", "session_id", "sink", "state",
        "transport"
    )  # fmt: skip

    def __init__(
        self,
        conn: ConnKey,
        options: ShardOptions,
        sink: Sink,
        *,
        gateway_url: str,
        identify_queue: IdentifyQueue | None = None,
        connect_gate: ConnectGate | None = None,
        transport: Transport | None = None,
        clock: Clock | None = None,
        snapshot: SessionSnapshot | None = None,
    ) -> None:
        if conn.platform != "discord" or not 0 <= conn.shard < conn.count:
            raise ValueError(f"{conn} is not a Discord shard (the shard id must be below the shard count)")
        self.conn = conn
        self.options = options
        self.sink = sink
        self.gateway_url = gateway_url.rstrip("/")
        self.clock: Clock = clock or RealClock()
        self.identify_queue: IdentifyQueue = identify_queue or LocalIdentifyQueue(
            [StartLimit("discord.identify", 1, 5.0)], _one_bucket, clock=self.clock
        )
        self.transport: Transport = transport or PicowsTransport(options.max_message)
        #: Caps the handshakes in flight of the process (shared by its shards; None: no cap).
        self.connect_gate = connect_gate
        self.counters = ConnCounters()
        #: The lease epoch of this host's hold on the shard (set by the worker), on every event.
        self.epoch = 0
        self.state = ConnState.IDLE
        self.notify: Notify = no_notice
        self._up = False
        self._listeners: list[Callable[[ConnState, ConnState], None]] = []
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
        # Made for each connection (``_connect_once``); none is needed before the first one.
        self._inflate: StreamDecompressor = PlainDecompressor()
        self._hello: asyncio.Future[float] | None = None
        self._why: Why | None = None
        self._invalid_resumable = False
        self._acked = True
        self._beat_sent_at = 0.0
        self._identifying = False
        self._reached = False  # READY or RESUMED arrived on the current connection
        self._said_bad_hook = False  # an identify hook's unsendable payload was logged
        #: A close decided before the transport handed over the connection (op 7/9 with the handshake).
        self._pending_close: int | None = None
        self._stop_why = Why.STOP
        self._resume_url_failed = False
        self._next_delay = 0.0
        self._stopping = False
        self._stop_event = Flag()
        self._ready_event = Flag()
        self._heartbeat_timer: Timer | None = None
        self.fatal: ShardFatalError | None = None

    def __repr__(self) -> str:
        return f"<DiscordShard {self.conn} {self.state.value}>"

    @property
    def shard_id(self) -> int:
        return self.conn.shard

    @property
    def num_shards(self) -> int:
        return self.conn.count

    # -- sessions -------------------------------------------------------------------------------
    def snapshot(self) -> SessionSnapshot | None:
        """The resumable session as it stands (None if there is none)."""
        if self.session_id is None or self.resume_url is None:
            return None
        return SessionSnapshot(
            conn=self.conn,
            session_id=self.session_id,
            seq=self.seq,
            resume_url=self.resume_url,
            keys=sorted(self.counters.keys),
        )

    def _import(self, snapshot: SessionSnapshot) -> None:
        if snapshot.conn != self.conn:
            raise ValueError(f"the snapshot of {snapshot.conn} does not fit {self.conn}")
        self.session_id = snapshot.session_id
        self.seq = snapshot.seq
        self.resume_url = snapshot.resume_url.rstrip("/")
        self.counters.set_keys(int(k) for k in snapshot.keys)

    def _forget_session(self) -> None:
        self.session_id = None
        self.resume_url = None
        self.seq = 0

    # -- the reconnect loop ---------------------------------------------------------------------
    async def run(self) -> None:
        """Keep the shard connected until :meth:`close`; raise :class:`ShardFatalError` on a fatal code."""
        if self.state not in (ConnState.IDLE, ConnState.STOPPED):
            raise RuntimeError(f"{self.conn} is already running ({self.state.value})")
        self._stopping = False
        self._stop_event.clear()
        try:
            while not self._stopping:
                if self._next_delay > 0:
                    self._set_state(ConnState.RECONNECTING)
                    await self._until_stopped(self.clock.sleep(self._next_delay))
                    if self._stop_event.is_set():  # close() during the wait
                        break
                await self._connect_once()
        except ShardFatalError as exc:
            self.fatal = exc
            self._set_state(ConnState.FATAL)
            raise
        self._set_state(ConnState.STOPPED)

    async def _connect_once(self) -> None:
        resuming = self.session_id is not None
        use_resume_url = resuming and self.resume_url is not None and not self._resume_url_failed
        base = self.resume_url if use_resume_url and self.resume_url else self.gateway_url
        # One that must identify stands in line first, and connects once its turn is near.
        in_line = not resuming
        if in_line:
            self._set_state(ConnState.QUEUED)
            if not await self._until_stopped(self.identify_queue.near(self.conn)):
                self.identify_queue.release(self.conn, ready=False)
                return
        self._set_state(ConnState.CONNECTING)
        gate = self.connect_gate
        if gate is not None and not await self._until_stopped(gate.enter(resume=resuming)):
            if in_line:
                self.identify_queue.release(self.conn, ready=False)
            return
        self._why = None
        self._reached = False
        self._pending_close = None
        self._acked = True
        self._inflate = new_decompressor(self.options.compression, self.options.max_message)
        self._hello = asyncio.get_running_loop().create_future()
        self.limiter.reset()
        try:
            conn = await self.transport.connect(
                self._url(base), self._on_message, timeout=self.options.connect_timeout
            )
        except TransportError as exc:
            log.warning("%s: %s", self.conn, exc)
            if gate is not None:
                gate.leave()
            if in_line:  # its place goes to the next in line
                self.identify_queue.release(self.conn, ready=False)
            if use_resume_url:
                self._resume_url_failed = True  # next time, resume through the main gateway URL
            self._next_delay = self._backoff.next()
            self.counters.reconnects += 1
            return
        self._conn = conn
        if self._stopping:  # close() was called while connecting
            self._why = self._stop_why
            self._pending_close = RESUME_CLOSE_CODE if self._stop_why is Why.HANDOFF else 1000
        if self._pending_close is not None:
            self._close(conn, self._pending_close)
        reached = False
        try:
            got_hello, interval = await self._await_or_closed(conn, self._hello, self.options.hello_timeout)
            if gate is not None:
                gate.leave()  # the handshake is over
                gate = None
            self._hello = None
            if got_hello:
                self._start_heartbeat(conn, interval)
                if resuming and self.session_id is not None:
                    self._set_state(ConnState.RESUMING)
                    self._send_now(conn, self._resume_payload())
                else:
                    self._set_state(ConnState.IDENTIFYING)
                    # A controller's change comes before the grant is asked for: it never
                    # lengthens the grant's hold.
                    hooked = await self._hooked_identify(conn) if self.options.start_hook else None
                    allowed = False
                    if hooked is not None or self.options.start_hook is None:
                        # Not kept in a local: this frame lives as long as the connection.
                        allowed, _ = await self._await_or_closed(
                            conn, self.identify_queue.acquire(self.conn), None
                        )
                    in_line = not allowed
                    if allowed and conn.closed.done():
                        self.identify_queue.release(self.conn, ready=False)  # granted too late
                    elif allowed:
                        self._identifying = True
                        self.counters.identifies += 1
                        self._send_now(conn, hooked or self._identify_payload())
                        hooked = None
                        # In the same step: the limit's window counts from the send.
                        self.identify_queue.sent(self.conn)
            await conn.closed
            reached = self._reached
        finally:
            if gate is not None:
                gate.leave()
            if in_line:  # no HELLO, or closed before its grant: out of the line
                self.identify_queue.release(self.conn, ready=False)
            self._stop_heartbeat()
            if not conn.closed.done():
                conn.abort()  # an exception left it open: drop it rather than leak it
            self._conn = None
            if self._identifying:
                self._identifying = False
                self.identify_queue.release(self.conn, ready=False)
        code = conn.closed.result()
        self._after_close(code, used_resume_url=use_resume_url and resuming, reached=reached)

    async def _until_stopped(self, awaitable: Any) -> bool:
        """Await ``awaitable`` unless the shard is stopped first (then cancel it: False)."""
        if self._stopping:
            if asyncio.iscoroutine(awaitable):
                awaitable.close()
            return False
        task = asyncio.ensure_future(awaitable)
        stopper = asyncio.ensure_future(self._stop_event.wait())
        try:
            await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
        if task.done() and not task.cancelled():
            task.result()
            return True
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return False

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
            log.warning("%s: no HELLO within %.0f s, reconnecting", self.conn, timeout or 0)
            if self._why is None:
                self._why = Why.ZOMBIE
            conn.abort()
        return False, None

    def _after_close(self, code: int | None, *, used_resume_url: bool, reached: bool) -> None:
        why = self._why
        self.counters.reconnects += 1
        if why in (Why.STOP, Why.HANDOFF):
            self._stopping = True
            self.counters.reconnects -= 1
            if why is Why.STOP:
                self._forget_session()
            return
        if why is Why.RECONNECT:
            self._next_delay = 0.0  # Discord asked for it: reconnect at once
        elif why is Why.INVALID_SESSION:
            # Discord's advice for op 9: wait a random 1-5 s.
            self._next_delay = 1.0 + 4.0 * self.clock.random()
            if not self._invalid_resumable:
                self._forget_session()
        elif why in (Why.ZOMBIE, Why.STREAM_ERROR):
            self._next_delay = self._backoff.next()
        else:
            action = close_action(code)
            if action is CloseAction.FATAL:
                self._stopping = True
                self.counters.reconnects -= 1
                log.error("%s: %s", self.conn, fatal_advice(code or 0))
                raise ShardFatalError(self.conn, code or 0)
            if action is CloseAction.NEW_SESSION:
                self._forget_session()
            log.info("%s: connection closed (%s), reconnecting", self.conn, code)
            self._next_delay = self._backoff.next()
        if used_resume_url and not reached and why is not Why.INVALID_SESSION:
            self._resume_url_failed = True
        if self._up:  # once per drop of a session that was up, however many tries it takes
            self._up = False
            reason = why.value if why is not None else "closed"
            fields = {"code": code, "reason": reason, "resumable": self.session_id is not None}
            self.notify(Notice(lifecycle.DISCONNECTED, self.conn, fields))

    # -- stopping -------------------------------------------------------------------------------
    async def close(self, *, handoff: bool = False, timeout: float = 10.0) -> SessionSnapshot | None:
        """Stop the shard. With ``handoff`` close resumably and return the session for another process.

        Every event received before the close completed has reached the sink, and the snapshot's
        ``seq`` is the last of them: the process that resumes from it misses nothing.
        """
        self._stopping = True
        self._stop_why = Why.HANDOFF if handoff else Why.STOP
        self._stop_event.set()
        conn = self._conn
        if conn is not None and not conn.closed.done():
            if self._why is None or self._why in (Why.RECONNECT, Why.ZOMBIE, Why.STREAM_ERROR):
                self._why = Why.HANDOFF if handoff else Why.STOP
            self._close(conn, RESUME_CLOSE_CODE if handoff else 1000)
            with contextlib.suppress(TimeoutError):
                await wait_with_timeout(self.clock, asyncio.shield(conn.closed), timeout)
            if not conn.closed.done():
                conn.abort()
        elif not handoff:
            self._forget_session()
        return self.snapshot() if handoff else None
