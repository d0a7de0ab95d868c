"""What every Twitch chat connection does, reading or sending: open a socket and log in under the
account's login budget, stay alive, come back after a loss, and hand chat lines on as events.

:class:`TwitchLink` is the part of :class:`~.reader.TwitchReader` and :class:`~.sender.TwitchSender`
that does not depend on the role. A connection runs one :class:`Socket` at a time, and briefly two
while a replacement is made before the break. Each socket has its own
:class:`~.session.IrcSession`. Its login takes one use of the account's login budget (20 per 10 s,
shared by every connection of the account in every worker). The use is stamped at the write of
PASS and NICK, and given back when nothing was written.

Liveness: PING is answered at once (the session does it). After :data:`SILENCE_S` without a line
the connection sends its own PING, and with no PONG within :data:`PONG_DEADLINE_S` the socket
counts as dead. A dead or lost socket is replaced after a jittered backoff, reset once a socket
stayed up for :data:`STABLE_AFTER_S`. A refused login is fatal
(:class:`~shardrunner.gateway.connection.ConnFatalError`), in one sentence, with no retry loop.

Every chat line becomes an :class:`~shardrunner.protocol.envelope.Event`: the routing key is the
channel without ``#``, the name is the IRC command, and the body is JSON (``tags``, ``prefix``,
``params``, ``raw``). Twitch has no session to resume: ``session_id`` names the socket the event
came from and ``seq`` counts that socket's events. A message is handed on once by its ``id`` tag,
whether both sockets of a replacement carried it or Twitch sent it twice on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import Coroutine
from typing import Any, Final

from shardrunner.clock import Clock, RealClock, wait_with_timeout
from shardrunner.gateway.backoff import Backoff
from shardrunner.gateway.connection import (
    ConnCounters,
    ConnFatalError,
    ConnState,
    Notify,
    Sink,
    StartHook,
    no_notice,
)
from shardrunner.gateway.transport import Connection, PicowsTransport, Transport, TransportError
from shardrunner.gateway.twitch.session import IrcSession, LoginFailed, Outcome
from shardrunner.gateway.twitch.session import State as SessionState
from shardrunner.gateway.twitch.tcp import TcpTransport
from shardrunner.identify.budget import Budgets
from shardrunner.protocol import irc, lifecycle
from shardrunner.protocol import twitch as tw
from shardrunner.protocol.envelope import Event, SessionSnapshot
from shardrunner.protocol.keys import ConnKey
from shardrunner.protocol.lifecycle import Notice

log = logging.getLogger("shardrunner.twitch")

LOGIN_BUDGET: Final = "twitch.login"
SILENCE_S: Final = 30.0
PONG_DEADLINE_S: Final = 5.0
LOGIN_TIMEOUT_S: Final = 10.0
STABLE_AFTER_S: Final = 60.0
#: Message ids remembered to hand each on once.
RECENT_IDS: Final = 8192


class Socket:
    """One socket of a connection: its login, what it has read, and the tasks that live with it."""

    def __init__(self, link: TwitchLink) -> None:
        self.id = uuid.uuid4().hex[:16]
        self.session = IrcSession(link.login, link.token)
        self.lines = irc.LineBuffer(drop_long=True)
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.conn: Connection | None = None
        self.seq = 0
        self.last_read = 0.0
        self.pong = asyncio.Event()
        #: Something changed for the tasks of this socket (a channel to join, a message to write).
        self.wake = asyncio.Event()
        #: Set once every channel this socket should be in is confirmed (the reader's business);
        #: ``scope`` is the one channel of a socket that only carries a channel while it moves.
        self.settled = asyncio.Event()
        self.scope: str | None = None
        #: Writes waiting for Twitch's answer, per channel, oldest first (the sender's business).
        self.pending: dict[str, deque[Any]] = {}
        #: channel -> when its JOIN was written and not yet answered (the reader's business).
        self.asked: dict[str, float] = {}
        self.tasks: set[asyncio.Task[Any]] = set()

    @property
    def alive(self) -> bool:
        return self.conn is not None and not self.conn.closed.done()

    def write(self, line: bytes) -> None:
        assert self.conn is not None
        self.conn.send_text(line)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task


class TwitchLink:
    """The role-neutral part of a Twitch connection (see the module); subclasses fill the hooks."""

    #: Hand on only lines that name a channel (the sender: its USERSTATEs and NOTICEs).
    channel_events_only = False
    #: A controller's change of the capabilities each login requests (set by the platform).
    start_hook: StartHook | None = None

    def __init__(
        self,
        conn: ConnKey,
        *,
        login: str,
        token: str | None,
        url: str,
        sink: Sink,
        budgets: Budgets,
        login_budget: str,
        transport: Transport | None,
        clock: Clock | None,
    ) -> None:
        self.conn = conn
        self.login = login.lower()
        self.token = token
        self.url = url
        self.sink = sink
        self.budgets = budgets
        self.login_budget = login_budget
        self.clock = clock or RealClock()
        self.transport = transport or (TcpTransport() if url.startswith("irc") else PicowsTransport())
        self.state = ConnState.IDLE
        self.counters = ConnCounters()
        #: The lease epoch of this host's hold on the connection (set by the worker), on every event.
        self.epoch = 0
        self.notify: Notify = no_notice
        #: The ready notice went out since the last disconnected one (the next loss is one).
        self._up = False
        self.session_id: str | None = None
        self.seq = 0
        self.resume_url: str | None = None
        #: The socket that serves now; every socket open, including a replacement being made.
        self._socket: Socket | None = None
        self._sockets: set[Socket] = set()
        self._seen: set[str] = set()
        self._seen_order: deque[str] = deque()
        #: Chat lines (those with an id) per channel since the last rate was taken.
        self.lines: dict[str, int] = {}
        self._stop = asyncio.Event()
        self._reconnect = asyncio.Event()
        self._backoff = Backoff(self.clock.random, 1.0, 60.0)

    # -- hooks ------------------------------------------------------------------------------------
    async def _needed(self) -> bool:
        """Wait until a socket is wanted; False once the connection stops."""
        return not self._stop.is_set()

    async def _connected(self) -> None:
        """Open a socket and serve it until it is gone (TransportError, TimeoutError, LoginFailed)."""
        raise NotImplementedError

    async def _replace(self, old: Socket) -> Socket:
        """Twitch asked to reconnect: make the replacement and break ``old`` (or keep it)."""
        raise NotImplementedError

    def _outcome(self, sock: Socket, message: irc.Message, outcome: Outcome) -> None:
        """React to one line (after the session did)."""

    def _on_reconnect(self, sock: Socket, channel: str | None) -> None:
        self._reconnect.set()

    def _lost(self, sock: Socket) -> None:
        """``sock`` is closed for good: settle what waited on it."""

    # -- the life of the connection ---------------------------------------------------------------
    async def run(self) -> None:
        while await self._needed():
            started = self.clock.monotonic()
            why = "closed"
            try:
                await self._connected()
            except LoginFailed as exc:
                self.state = ConnState.FATAL
                raise ConnFatalError(self.conn, 4004, str(exc)) from None
            except (TransportError, TimeoutError) as exc:
                log.warning("%s: %s", self.conn, exc)
                why = str(exc) or type(exc).__name__
            finally:
                for sock in list(self._sockets):
                    self._discard(sock)
            if self._stop.is_set():
                break
            if self._up:  # once per loss of a ready connection, however many tries it takes
                self._up = False
                # Twitch has no session to resume: the next one logs in and joins again.
                fields = {"code": None, "reason": why, "resumable": False}
                self.notify(Notice(lifecycle.DISCONNECTED, self.conn, fields))
            self.state = ConnState.RECONNECTING
            self.counters.reconnects += 1
            if self.clock.monotonic() - started >= STABLE_AFTER_S:
                self._backoff.reset()
            with contextlib.suppress(TimeoutError):
                await wait_with_timeout(self.clock, self._stop.wait(), self._backoff.next())
        self.state = ConnState.STOPPED

    def _became_ready(self) -> None:
        """The connection serves (logged in; a reader: every channel joined or failed)."""
        if not self._up:
            self._up = True
            self.notify(Notice(lifecycle.READY, self.conn, {"session": self.session_id}))

    async def _open(self, *, replacing: bool = False) -> Socket:
        """A new socket, logged in under the login budget (the use stamped at PASS and NICK)."""
        sock = Socket(self)
        if not replacing:
            self.state = ConnState.CONNECTING
        caps = await self._caps()  # before the budget: a controller's hook never holds a use
        ticket = await self.budgets.acquire(self.login_budget, self.login, 1)
        try:
            if self._stop.is_set():
                raise TransportError("the connection is closing")
            sock.conn = await self.transport.connect(
                self.url, lambda data: self._on_data(sock, data), timeout=LOGIN_TIMEOUT_S
            )
        except BaseException:
            ticket.cancel()  # nothing was written
            raise
        self._sockets.add(sock)
        sock.last_read = self.clock.monotonic()
        for line in sock.session.hello(caps):
            sock.write(line)
        ticket.used()  # the window counts from the write
        self.counters.identifies += 1
        if not replacing:
            self.state = ConnState.IDENTIFYING
        try:
            await wait_with_timeout(self.clock, asyncio.shield(sock.ready), LOGIN_TIMEOUT_S)
        except BaseException:
            self._discard(sock)
            raise
        return sock

    async def _caps(self) -> list[str]:
        """The capabilities to request: all of them, or those the start hook keeps (tags and
        commands always: the session needs ROOMSTATE and the tags)."""
        if self.start_hook is None:
            return list(tw.CAPS)
        answer = await self.start_hook(self.conn, {"nick": self.login, "caps": list(tw.CAPS)})
        wanted = set(answer.get("caps", tw.CAPS)) | {tw.CAP_TAGS, tw.CAP_COMMANDS}
        return [c for c in tw.CAPS if c in wanted]

    def _discard(self, sock: Socket, *, abort: bool = False) -> None:
        """Close ``sock`` (if open), end its tasks, settle what waited on it."""
        if sock not in self._sockets:
            return
        self._sockets.discard(sock)
        for task in list(sock.tasks):
            task.cancel()
        if sock.alive:
            assert sock.conn is not None
            if abort:
                sock.conn.abort()
            else:
                sock.conn.close(1000)
        self._lost(sock)

    async def _serve(self, sock: Socket) -> None:
        """Read ``sock`` until it dies, a stop, or a RECONNECT (then make before break)."""
        self._socket, self.session_id = sock, sock.id
        while True:
            assert sock.conn is not None
            closed: asyncio.Future[Any] = asyncio.ensure_future(asyncio.shield(sock.conn.closed))
            waits: set[asyncio.Future[Any]] = {
                asyncio.ensure_future(self._stop.wait()),
                asyncio.ensure_future(self._reconnect.wait()),
                asyncio.ensure_future(self._liveness(sock)),
                closed,
            }
            done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            if closed in done or self._stop.is_set():
                return
            if self._reconnect.is_set():
                self._reconnect.clear()
                log.info("%s: Twitch asked to reconnect; opening the replacement first", self.conn)
                sock = await self._replace(sock)
                self._socket, self.session_id = sock, sock.id
                continue
            return  # the liveness check found it dead

    async def _liveness(self, sock: Socket) -> None:
        """Return when ``sock`` is dead: silent for SILENCE_S, and no PONG to our PING in time."""
        while True:
            idle = self.clock.monotonic() - sock.last_read
            if idle < SILENCE_S:
                await self.clock.sleep(SILENCE_S - idle)
                continue
            sock.pong.clear()
            sock.write(irc.format("PING", ["shardrunner"], trailing=True))
            try:
                await wait_with_timeout(self.clock, sock.pong.wait(), PONG_DEADLINE_S)
            except TimeoutError:
                log.warning("%s: no PONG within %.0f s: the connection is dead", self.conn, PONG_DEADLINE_S)
                self._discard(sock, abort=True)
                return

    # -- reading ----------------------------------------------------------------------------------
    def _on_data(self, sock: Socket, data: bytes) -> None:
        self.counters.bytes_in += len(data)
        sock.last_read = self.clock.monotonic()
        buffer, dropped = sock.lines, sock.lines.dropped
        lines = buffer.feed(data)
        if buffer.dropped != dropped:
            self._unreadable(f"a line over {buffer.limit} bytes", buffer.dropped - dropped)
        ready = sock.session.state is SessionState.READY
        for line in lines:
            chat = irc.peek_chat(line) if ready else None
            if chat is not None:  # the hot path: a chat line, handed on unparsed
                self._publish_line(sock, chat[0], chat[1], chat[2], line)
                continue
            try:
                message = irc.parse(line)
            except irc.IrcError as exc:
                self._unreadable(str(exc))
                continue
            try:
                outcome = sock.session.feed(message)
            except LoginFailed as exc:
                if not sock.ready.done():
                    sock.ready.set_exception(exc)
                return
            for reply in outcome.send:
                sock.write(reply)
            if outcome.ready and not sock.ready.done():
                sock.ready.set_result(None)
            if outcome.pong:
                sock.pong.set()
            if outcome.reconnect and sock is self._socket:
                self._on_reconnect(sock, outcome.reconnect_channel)
            self._outcome(sock, message, outcome)
            for event in outcome.events:
                self._publish(sock, event, line)

    def _unreadable(self, why: str, lines: int = 1) -> None:
        if self.counters.decode_error(lines):  # logged at the 1st, 2nd, 4th...
            log.warning("%s: unreadable line dropped (%s)", self.conn, why)

    def _publish(self, sock: Socket, message: irc.Message, raw: bytes) -> None:
        channel = message.channel
        if channel is None and self.channel_events_only:
            return
        msg_id = message.tags.get("id") or None  # "" is none, as peek_chat says (else all but one go)
        self._publish_line(sock, message.command, channel[1:] if channel else None, msg_id, raw)

    def _publish_line(
        self, sock: Socket, command: str, channel: str | None, msg_id: str | None, raw: bytes
    ) -> None:
        """Hand one line on as an Event: its body is the line as Twitch sent it (the client parses
        it when the bot reads ``event.data``); once per ``id``."""
        if msg_id is not None:
            if msg_id in self._seen:
                self.counters.duplicates += 1
                return
            self._seen.add(msg_id)
            self._seen_order.append(msg_id)
            if len(self._seen_order) > RECENT_IDS:
                self._seen.discard(self._seen_order.popleft())
            if channel is not None:
                lines = self.lines
                lines[channel] = lines.get(channel, 0) + 1
        sock.seq += 1
        self.seq = sock.seq
        self.counters.events_in += 1
        try:
            self.sink(Event(self.conn, sock.id, sock.seq, command, channel, bytes(raw), self.epoch))
        except Exception:
            self.counters.sink_errors += 1
            log.exception("%s: the event sink raised on %s", self.conn, command)

    # -- the GatewayConnection protocol -----------------------------------------------------------
    async def close(self, *, handoff: bool = False, timeout: float = 10.0) -> SessionSnapshot | None:
        """Leave: Twitch has nothing to resume, so a handoff's successor logs in again."""
        self._stop.set()
        socks = [s for s in self._sockets if s.alive]
        for sock in socks:
            assert sock.conn is not None
            sock.conn.close(1000)
        for sock in socks:
            assert sock.conn is not None
            with contextlib.suppress(TimeoutError):
                await wait_with_timeout(self.clock, asyncio.shield(sock.conn.closed), timeout)
        return None

    def snapshot(self) -> SessionSnapshot | None:
        return None
