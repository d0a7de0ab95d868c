"""A worker's bus endpoint: one ZeroMQ ROUTER that bot processes connect to.

Events reach it synchronously from the connections' receive path (:meth:`BusServer.publish` is
their sink); they are batched and sent once per turn of the event loop, so a burst of frames read
in one ``data_received`` leaves in a few messages. Input is read from the event loop through the
socket's FD, draining everything ready at once. ZeroMQ's FD is edge-triggered and a send may swallow
the edge that announced incoming messages, so the socket is looked at again after every flush.

With ``tcp`` (``--bus-bind``) a second ROUTER, a CURVE server, also binds on TCP for bots on other
machines; its members' identities carry a one-byte tag inside the router, so a reply goes back on
the socket it came from. Without it nothing of that runs.

The lease fence (several hosts, :meth:`BusServer.fence`): past the time the worker's lease surely
holds, a flush sends no batch (the events stay held, so the next holder's replay covers them); it is
checked once per flush, not per event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any, Final

import zmq
import zmq.asyncio

from shardrunner.bus import checks
from shardrunner.bus import protocol as p
from shardrunner.bus.router import Router
from shardrunner.curve import CurveServer, restrict_ipc, tcp_bind
from shardrunner.protocol.envelope import Event
from shardrunner.protocol.keys import ConnKey

log = logging.getLogger("shardrunner.bus")

#: Executes a command on the connection it is addressed to (by ``conn`` or by routing key); returns
#: None when sent, or the reason it was not (one sentence for the bot).
#: Runs a bot's command: (None, the connection's answer) when sent, else (the reason, None).
CommandRunner = Callable[[p.Command], Awaitable[tuple[str | None, Any]]]
#: What rebuilds a consumer's view of the worker's connections of a platform: their events in
#: order, and what those reflect of each connection (``StatefulPlatform``).
StateRunner = Callable[[str], tuple[list[Event], list[p.StateMark]]]
#: A state answer goes in messages of about this many bytes of event bodies at most.
STATE_CHUNK_BYTES: Final = 4 << 20
EXPIRE_EVERY_S: Final = 1.0
#: The first byte of a TCP member's identity in the router (ZeroMQ's own identities start with 0).
TCP_TAG: Final = b"\x01"


class BusServer:
    """The bus endpoint of one worker: reads members' messages into the :class:`Router`, sends
    what it returns, and runs commands through the worker's ``commands``."""

    def __init__(
        self,
        ctx: zmq.asyncio.Context,
        endpoint: str,
        router: Router,
        commands: CommandRunner,
        *,
        tcp: str = "",
        curve: CurveServer | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        state: StateRunner | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.router = router
        self._commands = commands
        self._state = state
        #: The clock of the fence (the worker's; CLOCK_MONOTONIC, as the supervisor's).
        self._monotonic = monotonic
        #: Past this (``monotonic`` seconds) no batch is sent; 0: no fence.
        self._fence = 0.0
        # Plain (not asyncio) sockets of the worker's context: read through their FDs from the
        # event loop and sent on without a future per message.
        plain: zmq.Context[zmq.Socket[bytes]] = zmq.Context.shadow(ctx.underlying)
        self._sock: zmq.Socket[bytes] = _router_socket(plain)
        self._tcp: zmq.Socket[bytes] | None = None
        self._tcp_bind = tcp
        #: The TCP endpoint as bound (``tcp://ADDR:PORT``), once :meth:`bind` ran with ``tcp``.
        self.tcp_endpoint = ""
        if tcp:
            if curve is None:
                raise ValueError("a TCP bus needs CURVE keys")
            self._tcp = _router_socket(plain)
            curve.apply(self._tcp)
        self._peers = checks.Peers()
        self._flush_scheduled = False
        self._check_scheduled = False
        self._tasks: set[asyncio.Future[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self) -> None:
        self._sock.bind(self.endpoint)
        restrict_ipc(self.endpoint)
        if self._tcp is not None:
            self._tcp.bind(tcp_bind(self._tcp_bind))
            self.tcp_endpoint = self._tcp.getsockopt_string(zmq.LAST_ENDPOINT)

    async def run(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        fds = [int(s.getsockopt(zmq.FD)) for s in (self._sock, self._tcp) if s is not None]
        for fd in fds:
            loop.add_reader(fd, self._read)
        try:
            await self._expire_loop()
        finally:
            for fd in fds:
                loop.remove_reader(fd)

    def _read(self) -> None:
        """Handle every message that is ready, then send what they caused."""
        self._check_scheduled = False
        now = time.monotonic()
        got = self._drain(self._sock, b"", now)
        if self._tcp is not None and self._drain(self._tcp, TCP_TAG, now):
            got = True
        if got:
            self.flush()

    def _drain(self, sock: zmq.Socket[bytes], tag: bytes, now: float) -> bool:
        got = False
        while True:
            try:
                frames = sock.recv_multipart(flags=zmq.NOBLOCK)
            except zmq.Again:
                return got
            except zmq.ZMQError:
                return got  # closed
            got = True
            identity = tag + frames[0] if tag else frames[0]
            if len(frames) != 2:
                self._reject(identity, checks.frames(len(frames) - 1), now)
                continue
            try:
                self._on_message(identity, frames[1], now)
            except Exception:  # a bug of ours, not the peer's: the loop and the other members go on
                log.exception("a bus message from %r could not be handled", identity)
                self._reject(identity, "the worker failed to handle this message", now)

    def close(self) -> None:
        self._sock.close()
        if self._tcp is not None:
            self._tcp.close()

    # -- events in ------------------------------------------------------------------------------
    def publish(self, event: Event) -> None:
        """The connections' sink (the hot path: the router's publish, a flush once per loop turn)."""
        self.router.publish(event)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop = self._loop or asyncio.get_running_loop()
            loop.call_soon(self.flush)

    def fence(self, until: float) -> None:
        """Send no batch past ``until`` (this clock's monotonic seconds; 0: no fence). Moved
        later, what waited goes out at once."""
        self._fence = until
        if self._loop is not None and not self.fenced() and not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self.flush)

    def fenced(self) -> bool:
        return bool(self._fence) and self._monotonic() >= self._fence

    def flush(self) -> None:
        self._flush_scheduled = False
        sent = False
        tcp = self._tcp
        fence = self._fence
        batches = not fence or self._monotonic() < fence
        for identity, data in self.router.flush(batches=batches):
            with contextlib.suppress(zmq.ZMQError):
                if tcp is not None and identity[:1] == TCP_TAG:
                    tcp.send_multipart([identity[1:], data], flags=zmq.NOBLOCK)
                else:
                    self._sock.send_multipart([identity, data], flags=zmq.NOBLOCK)
            sent = True
        if sent and not self._check_scheduled and self._loop is not None:
            self._check_scheduled = True
            self._loop.call_soon(self._read)

    # -- bots in --------------------------------------------------------------------------------
    def _on_message(self, identity: bytes, data: bytes, now: float) -> None:
        try:
            message = p.decode(data)
        except Exception as exc:  # msgspec's DecodeError, or anything it meets in garbage
            self._reject(identity, checks.undecodable(exc), now)
            return
        refused: str | None = None
        if isinstance(message, p.Ack):
            refused = self.router.ack(message, now, identity)
        elif isinstance(message, p.Alive):
            refused = self.router.alive(identity, message, now)
        elif isinstance(message, p.Join):
            refused = checks.join(message, self.router.groups)
            if refused is None:
                log.info("member %s joined group %s", message.member, message.group)
                self.router.join(identity, message, now)
        elif isinstance(message, p.Leave):
            refused = self.router.leave(message.group, message.member, identity)
        elif isinstance(message, p.Command):
            refused = checks.command(message)
            if refused is not None:
                self.router.send_to(identity, p.CommandResult(message.request, False, refused))
            else:
                task = asyncio.ensure_future(self._command(identity, message))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        elif isinstance(message, p.StateRequest):
            if self._peers.state_allowed(identity, now):
                self._answer_state(identity, message)
            else:
                refused = checks.state_refusal()
        else:
            refused = checks.unexpected(message)
        if refused is not None:
            self._reject(identity, refused, now)

    def _reject(self, identity: bytes, reason: str, now: float) -> None:
        """Count a refused message; tell its peer (and log) at most once a second per peer."""
        self.router.rejected += 1
        if self._peers.tell(identity, now):
            log.warning(
                "refused a bus message from %r: %s (%d refused so far)",
                identity,
                reason,
                self.router.rejected,
            )
            self.router.send_to(identity, p.Rejected(reason))

    def _answer_state(self, identity: bytes, request: p.StateRequest) -> None:
        """The state, at once (it is in memory), in messages of at most about
        :data:`STATE_CHUNK_BYTES`; the marks ride on the last."""
        events, marks = self._state(request.platform) if self._state is not None else ([], [])
        chunk: list[Event] = []
        size = 0
        for event in events:
            if chunk and size + len(event.data) > STATE_CHUNK_BYTES:
                self.router.send_to(identity, p.State(request.request, chunk, last=False))
                chunk, size = [], 0
            chunk.append(event)
            size += len(event.data)
        self.router.send_to(identity, p.State(request.request, chunk, marks, last=True))
        self.flush()

    async def _command(self, identity: bytes, command: p.Command) -> None:
        result: Any = None
        try:
            error, result = await self._commands(command)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        self.router.send_to(identity, p.CommandResult(command.request, error is None, error, result))
        self.flush()

    async def _expire_loop(self) -> None:
        while True:
            await asyncio.sleep(EXPIRE_EVERY_S)
            gone = self.router.expire(time.monotonic())
            if gone:
                log.info("members gone silent: %s; their events go to the others", ", ".join(gone))
            self.flush()  # also the gap reports that waited for their second (GAP_EVERY_S)

    async def drain(
        self, timeout: float, *, absent: bool = False, conns: Collection[ConnKey] | None = None
    ) -> bool:
        """Wait until every member acknowledged everything held; False on timeout.

        A handoff waits only for the groups that have members (the next worker resumes from what
        stays held). With ``absent``, what a finishing worker waits for (its sessions are over, so
        nothing is replayed), durable groups without members count too: their backlog waits for a
        member to come back and take it. With ``conns`` (a release), only their events count.
        """
        deadline = time.monotonic() + timeout
        owed = self._owed if conns is None else lambda absent: self._owed_of(conns)
        while owed(absent):
            if time.monotonic() > deadline:
                return False
            self.flush()
            await asyncio.sleep(0.02)
        return True

    def _owed(self, absent: bool) -> bool:
        for g in self.router.groups.values():
            if g.members:
                if g.held_events or any(m.inflight for m in g.members.values()):
                    return True
            elif absent and g.durable and g.held_events:
                return True
        return False

    def _owed_of(self, conns: Collection[ConnKey]) -> bool:
        for g in self.router.groups.values():
            for member in g.members.values():
                if any(e.conn in conns for e, _ in member.waiting):
                    return True
                if any(e.conn in conns for _, items in member.inflight for e, _ in items):
                    return True
        return False


def _router_socket(ctx: zmq.Context[zmq.Socket[bytes]]) -> zmq.Socket[bytes]:
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 0)  # bounded by the router's in-flight windows instead
    sock.setsockopt(zmq.RCVHWM, 0)
    sock.setsockopt(zmq.MAXMSGSIZE, checks.MAX_MESSAGE_BYTES)
    return sock
