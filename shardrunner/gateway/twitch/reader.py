"""One reading connection of Twitch chat: logged in, its channels joined under the JOIN budget,
alive, and replaced make-before-break when Twitch asks it to reconnect.

The connection runs an :class:`~.session.IrcSession` per socket. It joins its channels in lines
of up to :data:`JOIN_BATCH`, each batch taken from the account's JOIN budget (shared by every
connection of the account, in every worker), and the same for a rejoin after any reconnect. It
answers PING at once; after :data:`SILENCE_S` without a line it sends its own PING, and with no
PONG within :data:`PONG_DEADLINE_S` the socket counts as dead.

On RECONNECT it opens the replacement, logs in, joins every channel (under the budget), and only
then closes the old socket. Both sockets deliver meanwhile; a message is handed on once, by its
``id`` tag (Twitch may also send one twice on its own: the same rule). A dead socket has nothing
to overlap with: the replacement comes after a jittered backoff, reset after a stable minute.

Every chat line becomes an :class:`~shardrunner.protocol.envelope.Event`: the routing key is the
channel, the name the IRC command, the body JSON (``tags``, ``prefix``, ``params``, ``raw``).
Twitch has no session to resume: ``session_id`` names the socket the event came from, ``seq``
counts that socket's events, and a handoff simply ends the connection (its successor rejoins).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from typing import Any, Final, Protocol

import msgspec

from shardrunner.clock import Clock, RealClock, wait_with_timeout
from shardrunner.gateway.backoff import Backoff
from shardrunner.gateway.connection import CommandRejected, ConnCounters, ConnFatalError, ConnState, Sink
from shardrunner.gateway.transport import Connection, PicowsTransport, Transport, TransportError
from shardrunner.gateway.twitch.session import IrcSession, LoginFailed
from shardrunner.gateway.twitch.tcp import TcpTransport
from shardrunner.protocol import irc
from shardrunner.protocol.envelope import Event, SessionSnapshot
from shardrunner.protocol.keys import ConnKey

log = logging.getLogger("shardrunner.twitch")

JOIN_BUDGET: Final = "twitch.join"
JOIN_BATCH: Final = 10
SILENCE_S: Final = 30.0
PONG_DEADLINE_S: Final = 5.0
LOGIN_TIMEOUT_S: Final = 10.0
#: How long a replacement's joins may take to be confirmed before it is given up.
JOIN_CONFIRM_S: Final = 30.0
STABLE_AFTER_S: Final = 60.0
#: Message ids remembered to hand each on once.
RECENT_IDS: Final = 8192

_encode = msgspec.json.encode


class Ticket(Protocol):
    def used(self) -> None: ...
    def cancel(self) -> None: ...


class Budgets(Protocol):
    """The account budgets (:class:`~shardrunner.identify.budget.BudgetQueue`, or its relay)."""

    async def acquire(self, name: str, key: str, n: int = 1) -> Ticket: ...


class _Socket:
    """One socket of the connection, with its login and what it has read."""

    def __init__(self, reader: TwitchReader) -> None:
        self.id = uuid.uuid4().hex[:16]
        self.session = IrcSession(reader.login, reader.token)
        self.lines = irc.LineBuffer()
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.conn: Connection | None = None
        self.seq = 0
        self.last_read = 0.0
        self.pong: asyncio.Event = asyncio.Event()
        #: Set whenever no JOIN of this socket waits for its confirmation.
        self.settled: asyncio.Event = asyncio.Event()


class TwitchReader:
    """One reading connection (a :class:`~shardrunner.gateway.connection.GatewayConnection`)."""

    def __init__(
        self,
        conn: ConnKey,
        *,
        login: str,
        token: str | None,
        channels: list[str],
        url: str,
        sink: Sink,
        budgets: Budgets,
        transport: Transport | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.conn = conn
        self.login = login
        self.token = token
        self.url = url
        self.sink = sink
        self.budgets = budgets
        self.clock = clock or RealClock()
        self.transport = transport or (TcpTransport() if url.startswith("irc") else PicowsTransport())
        self.wanted: list[str] = list(channels)
        self.state = ConnState.IDLE
        self.counters = ConnCounters()
        self.session_id: str | None = None
        self.seq = 0
        self.resume_url: str | None = None
        self.failed: dict[str, str] = {}
        self._socket: _Socket | None = None
        self._seen: set[str] = set()
        self._seen_order: deque[str] = deque()
        self._stop = asyncio.Event()
        self._reconnect = asyncio.Event()
        self._backoff = Backoff(self.clock.random, 1.0, 60.0)

    def __repr__(self) -> str:  # never the token
        return f"TwitchReader({self.conn}, {self.login}, {len(self.wanted)} channels)"

    # -- the life of the connection -----------------------------------------------------------------
    async def run(self) -> None:
        while not self._stop.is_set():
            started = self.clock.monotonic()
            try:
                sock = await self._open()
                await self._join(sock, self.wanted)
                self.state = ConnState.READY
                await self._serve(sock)
            except LoginFailed as exc:
                self.state = ConnState.FATAL
                raise ConnFatalError(self.conn, 4004, str(exc)) from None
            except (TransportError, TimeoutError) as exc:
                log.warning("%s: %s", self.conn, exc)
            if self._stop.is_set():
                break
            self.state = ConnState.RECONNECTING
            self.counters.reconnects += 1
            if self.clock.monotonic() - started >= STABLE_AFTER_S:
                self._backoff.reset()
            with contextlib.suppress(TimeoutError):
                await wait_with_timeout(self.clock, self._stop.wait(), self._backoff.next())
        self.state = ConnState.STOPPED

    async def _open(self) -> _Socket:
        sock = _Socket(self)
        self.state = ConnState.CONNECTING
        sock.conn = await self.transport.connect(
            self.url, lambda data: self._on_data(sock, data), timeout=LOGIN_TIMEOUT_S
        )
        sock.last_read = self.clock.monotonic()
        for line in sock.session.hello():
            sock.conn.send_text(line)
        self.state = ConnState.IDENTIFYING
        await wait_with_timeout(self.clock, asyncio.shield(sock.ready), LOGIN_TIMEOUT_S)
        return sock

    async def _join(self, sock: _Socket, channels: list[str]) -> None:
        """Join ``channels`` on ``sock`` in batches, each under the account's JOIN budget."""
        assert sock.conn is not None
        todo = [c for c in channels if c not in self.failed]
        for i in range(0, len(todo), JOIN_BATCH):
            batch = todo[i : i + JOIN_BATCH]
            ticket = await self.budgets.acquire(JOIN_BUDGET, self.login, len(batch))
            if sock.conn.closed.done():
                ticket.cancel()
                return
            sock.conn.send_text(sock.session.join(batch))
            ticket.used()  # the window counts from the write
        self.counters.keys_pending = len(sock.session.joining)

    async def _serve(self, sock: _Socket) -> None:
        """Read ``sock`` until it dies, a stop, or a RECONNECT (then make before break)."""
        self._socket = sock
        self.session_id = sock.id
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
                sock = await self._replace(sock)
                self._socket, self.session_id = sock, sock.id
                continue
            return  # the liveness check found it dead

    async def _replace(self, old: _Socket) -> _Socket:
        """Make the replacement, join its channels, then break the old socket."""
        log.info("%s: Twitch asked to reconnect; opening the replacement first", self.conn)
        try:
            new = await self._open()
            await self._join(new, self.wanted)
            # Joined means confirmed (ROOMSTATE), not asked: only then may the old socket go.
            await wait_with_timeout(self.clock, new.settled.wait(), JOIN_CONFIRM_S)
        except (TransportError, TimeoutError) as exc:
            log.warning("%s: the replacement failed (%s); keeping the old socket", self.conn, exc)
            return old
        if old.conn is not None:
            old.conn.close(1000)
        self.counters.reconnects += 1
        return new

    async def _liveness(self, sock: _Socket) -> None:
        """Return when ``sock`` is dead: silent for SILENCE_S, and no PONG to our PING in time."""
        assert sock.conn is not None
        while True:
            idle = self.clock.monotonic() - sock.last_read
            if idle < SILENCE_S:
                await self.clock.sleep(SILENCE_S - idle)
                continue
            sock.pong.clear()
            sock.conn.send_text(irc.format("PING", ["shardrunner"], trailing=True))
            try:
                await wait_with_timeout(self.clock, sock.pong.wait(), PONG_DEADLINE_S)
            except TimeoutError:
                log.warning("%s: no PONG within %.0f s: the connection is dead", self.conn, PONG_DEADLINE_S)
                sock.conn.abort()
                return

    # -- reading ----------------------------------------------------------------------------------
    def _on_data(self, sock: _Socket, data: bytes) -> None:
        self.counters.bytes_in += len(data)
        sock.last_read = self.clock.monotonic()
        for line in sock.lines.feed(data):
            try:
                message = irc.parse(line)
            except irc.IrcError as exc:
                log.warning("%s: an unreadable line (%s)", self.conn, exc)
                continue
            try:
                outcome = sock.session.feed(message)
            except LoginFailed as exc:
                if not sock.ready.done():
                    sock.ready.set_exception(exc)
                return
            assert sock.conn is not None
            for reply in outcome.send:
                sock.conn.send_text(reply)
            if outcome.ready and not sock.ready.done():
                sock.ready.set_result(None)
            if outcome.pong:
                sock.pong.set()
            if outcome.reconnect and sock is self._socket:
                self._reconnect.set()
            for channel, why in outcome.failed:
                self.failed[channel] = why
                log.warning("%s: #%s cannot be read (%s)", self.conn, channel, why)
            if outcome.joined or outcome.failed or outcome.parted:
                self.counters.set_keys(sock.session.channels)
                self.counters.keys_pending = len(sock.session.joining)
                if not sock.session.joining:
                    sock.settled.set()
            for event in outcome.events:
                self._publish(sock, event, line)

    def _publish(self, sock: _Socket, message: irc.Message, raw: bytes) -> None:
        msg_id = message.tags.get("id")
        if msg_id is not None:
            if msg_id in self._seen:
                self.counters.duplicates += 1
                return
            self._seen.add(msg_id)
            self._seen_order.append(msg_id)
            if len(self._seen_order) > RECENT_IDS:
                self._seen.discard(self._seen_order.popleft())
        channel = message.channel
        body: dict[str, Any] = {
            "tags": message.tags,
            "prefix": message.prefix,
            "params": message.params,
            "raw": raw.decode("utf-8", "replace"),
        }
        sock.seq += 1
        self.seq = sock.seq
        self.counters.events_in += 1
        try:
            self.sink(Event(self.conn, sock.id, sock.seq, message.command, channel[1:] if channel else None,
                            _encode(body)))  # fmt: skip
        except Exception:
            self.counters.sink_errors += 1
            log.exception("%s: the event sink raised on %s", self.conn, message.command)

    # -- the GatewayConnection protocol -------------------------------------------------------------
    async def close(self, *, handoff: bool = False, timeout: float = 10.0) -> SessionSnapshot | None:
        """Leave: Twitch has nothing to resume, so a handoff's successor rejoins."""
        self._stop.set()
        sock = self._socket
        if sock is not None and sock.conn is not None and not sock.conn.closed.done():
            sock.conn.close(1000)
            with contextlib.suppress(TimeoutError):
                await wait_with_timeout(self.clock, asyncio.shield(sock.conn.closed), timeout)
        return None

    async def send_command(self, body: Any, *, timeout: float = 30.0) -> None:
        raise CommandRejected(
            "a reading connection does not send: sends go to the account's sending connection"
        )

    def snapshot(self) -> SessionSnapshot | None:
        return None
