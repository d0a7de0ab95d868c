"""Fakes: a virtual clock, a scripted transport, identify queues, and a platform with its connections."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from shardrunner.gateway.connection import ConnCounters, ConnState, GatewayConnection, Notify, Sink, no_notice
from shardrunner.gateway.transport import OnMessage, TransportError
from shardrunner.identify.protocol import IdentifyQueue
from shardrunner.protocol import routing
from shardrunner.protocol.envelope import RoutingKey, SessionSnapshot
from shardrunner.protocol.keys import ConnKey


class FakeTimer:
    """What :meth:`FakeClock.call_later` returns: fires once when the clock passes its time."""

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback: Callable[[], None] | None = callback

    def cancel(self) -> None:
        self.callback = None

    def fire(self) -> None:
        callback, self.callback = self.callback, None
        if callback is not None:
            callback()


class FakeClock:
    """Time stands still until :meth:`advance` moves it; sleepers wake in order of their deadline."""

    def __init__(self, seed: int = 0, fixed_random: float | None = None) -> None:
        self.now = 1000.0
        self._rng = random.Random(seed)
        self.fixed_random = fixed_random
        self._sleepers: list[tuple[float, int, asyncio.Future[None] | FakeTimer]] = []
        self._order = itertools.count()
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def random(self) -> float:
        return self.fixed_random if self.fixed_random is not None else self._rng.random()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(0.0, seconds), next(self._order), fut))
        await fut

    def call_later(self, seconds: float, callback: Callable[[], None]) -> FakeTimer:
        self.sleeps.append(seconds)
        timer = FakeTimer(callback)
        heapq.heappush(self._sleepers, (self.now + max(0.0, seconds), next(self._order), timer))
        return timer

    async def settle(self) -> None:
        """Let every runnable task run until nothing changes."""
        for _ in range(50):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        target = self.now + seconds
        await self.settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            when, _, fut = heapq.heappop(self._sleepers)
            self.now = max(self.now, when)
            if isinstance(fut, FakeTimer):
                fut.fire()
            elif not fut.done():
                fut.set_result(None)
            await self.settle()
        self.now = target
        await self.settle()


class FakeConnection:
    """The gateway side of one connection: what the shard sent, and buttons to play the server."""

    def __init__(self, url: str, on_message: OnMessage) -> None:
        self.url = url
        self.on_message = on_message
        self.sent: list[dict[str, Any]] = []
        self.client_close_code: int | None = None
        self.aborted = False
        #: False: the gateway does not answer a close frame until the test calls server_close.
        self.echo_close = True
        self.closed: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()

    # what the shard calls
    def send_text(self, data: bytes) -> None:
        assert not self.closed.done(), "sent on a closed connection"
        self.sent.append(msgspec.json.decode(data))

    def close(self, code: int) -> None:
        if self.client_close_code is None:
            self.client_close_code = code
        if self.echo_close and not self.closed.done():
            self.closed.set_result(code)  # the gateway echoes the client's code

    def abort(self) -> None:
        self.aborted = True
        if not self.closed.done():
            self.closed.set_result(None)

    # what the test does, as the gateway
    def deliver(self, payload: dict[str, Any]) -> None:
        self.on_message(msgspec.json.encode(payload))

    def hello(self, interval_ms: int = 40000) -> None:
        self.deliver({"op": 10, "d": {"heartbeat_interval": interval_ms}, "s": None, "t": None})

    def dispatch(self, seq: int, name: str, d: dict[str, Any]) -> None:
        self.deliver({"op": 0, "s": seq, "t": name, "d": d})

    def ready(
        self,
        session_id: str = "sess-1",
        resume_url: str = "ws://resume.test",
        guilds: list[int] | None = None,
        seq: int = 1,
    ) -> None:
        self.dispatch(
            seq,
            "READY",
            {
                "v": 10,
                "session_id": session_id,
                "resume_gateway_url": resume_url,
                "guilds": [{"id": str(g), "unavailable": True} for g in (guilds or [])],
                "user": {"id": "1"},
                "shard": [0, 1],
            },
        )

    def server_close(self, code: int | None) -> None:
        if not self.closed.done():
            self.closed.set_result(code)

    def ops(self) -> list[int]:
        return [p["op"] for p in self.sent]


class FakeTransport:
    """Hands out FakeConnections; URLs listed in ``refuse`` fail to connect."""

    def __init__(self) -> None:
        self.connections: list[FakeConnection] = []
        self.refuse: set[str] = set()
        self.attempts: list[str] = []
        self.connected = asyncio.Event()

    async def connect(self, url: str, on_message: OnMessage, *, timeout: float) -> FakeConnection:
        self.attempts.append(url)
        base = url.split("/?", 1)[0]
        if base in self.refuse:
            raise TransportError(f"cannot connect to {base}: refused")
        conn = FakeConnection(url, on_message)
        self.connections.append(conn)
        self.connected.set()
        return conn

    @property
    def last(self) -> FakeConnection:
        return self.connections[-1]


class GrantAll:
    """An identify queue that lets everyone through and records what the shard told it."""

    def __init__(self) -> None:
        self.acquired: list[ConnKey] = []
        #: Every ``near()`` call: the connections that stood in line before connecting.
        self.nears: list[ConnKey] = []
        #: Every ``sent()`` call: the IDENTIFYs the shard says went out.
        self.sends: list[ConnKey] = []
        self.released: list[tuple[ConnKey, bool]] = []

    async def near(self, conn: ConnKey) -> None:
        self.nears.append(conn)

    async def acquire(self, conn: ConnKey) -> None:
        self.acquired.append(conn)

    def sent(self, conn: ConnKey) -> None:
        self.sends.append(conn)

    def release(self, conn: ConnKey, *, ready: bool) -> None:
        self.released.append((conn, ready))


class FakeGatewayConnection:
    """A :class:`~shardrunner.gateway.connection.GatewayConnection` of no platform in particular.

    It is READY as soon as it runs; the test makes it crash (:meth:`crash`), fail fatally, or hold
    its close (``close_gate``) to see what the worker does meanwhile.
    """

    def __init__(self, conn: ConnKey, snapshot: SessionSnapshot | None) -> None:
        self.conn = conn
        self.state = ConnState.IDLE
        self.counters = ConnCounters()
        self.epoch = 0
        #: Set by the worker's table; a test calls it to play the connection's lifecycle.
        self.notify: Notify = no_notice
        self.session_id: str | None = snapshot.session_id if snapshot else None
        self.seq = snapshot.seq if snapshot else 0
        self.resume_url: str | None = snapshot.resume_url if snapshot else None
        self.resumed_from = snapshot
        self.commands: list[Any] = []
        self.refuse: Exception | None = None
        self.close_gate: asyncio.Event | None = None
        self.closed_with: list[bool] = []
        self._end: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def run(self) -> None:
        self.state = ConnState.READY
        if self.session_id is None:
            self.session_id, self.resume_url = f"session-{self.conn}", "wss://resume.test"
        try:
            await self._end
        finally:
            if self.state is ConnState.READY:
                self.state = ConnState.STOPPED

    def crash(self, exc: BaseException) -> None:
        self._end.set_exception(exc)

    async def close(self, *, handoff: bool = False, timeout: float = 10.0) -> SessionSnapshot | None:
        self.closed_with.append(handoff)
        if self.close_gate is not None:
            await self.close_gate.wait()
        if not self._end.done():
            self._end.set_result(None)
        return self.snapshot() if handoff else None

    async def send_command(self, body: Any, *, timeout: float = 30.0) -> None:
        if self.refuse is not None:
            raise self.refuse
        self.commands.append(body)

    def snapshot(self) -> SessionSnapshot | None:
        if self.session_id is None or self.resume_url is None:
            return None
        return SessionSnapshot(
            conn=self.conn, session_id=self.session_id, seq=self.seq, resume_url=self.resume_url
        )


class FakePlatform:
    """A platform whose connections are :class:`FakeGatewayConnection`; it routes keys as Discord."""

    def __init__(self, name: str = "discord") -> None:
        self.name = name
        self.built: dict[ConnKey, list[FakeGatewayConnection]] = {}
        self.configs: list[bytes] = []

    def build(
        self,
        conns: list[ConnKey],
        config: bytes,
        snapshots: Mapping[ConnKey, SessionSnapshot],
        sink: Sink,
        identify: IdentifyQueue,
        budgets: object = None,
    ) -> list[GatewayConnection]:
        self.configs.append(config)
        out: list[GatewayConnection] = []
        for conn in conns:
            fake = FakeGatewayConnection(conn, snapshots.get(conn))
            self.built.setdefault(conn, []).append(fake)
            out.append(fake)
        return out

    def owner(self, key: RoutingKey, conns: list[ConnKey]) -> ConnKey | None:
        return routing.owner(self.name, key, conns)

    def latest(self, conn: ConnKey) -> FakeGatewayConnection:
        return self.built[conn][-1]
