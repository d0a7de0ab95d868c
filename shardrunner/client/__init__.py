"""What a bot process imports: events from a running cluster, commands back to its shards.

```python
from shardrunner.client import Client

async def main() -> None:
    async with Client(group="my-bot", events=["MESSAGE_CREATE"]) as client:
        async for event in client:
            print(event.shard, event.seq, event.data["content"])
```

The client finds the cluster through its run directory (like ``shardrunner status``), asks the
supervisor every second where the workers are, connects to each, and joins the consumer group
there. Events come as an async iterator or to handlers registered with :meth:`Client.on`. An event
counts as processed when the iterator is asked for the next one (or its handler returned); the
client then acknowledges it, in batches. Duplicates (possible only after a failure, e.g. a worker
crash and a replay) are dropped by ``(shard, session, seq)`` unless ``dedupe=False``. See
docs/delivery.md for the guarantees.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import msgspec
import zmq

from shardrunner.bus import protocol as p
from shardrunner.cluster.settings import resolve_run_dir
from shardrunner.control import CommandError, call
from shardrunner.protocol.envelope import Event

log = logging.getLogger("shardrunner.client")

ACK_EVERY_S: Final = 0.05
#: Batches processed on one link that are acknowledged at once rather than at the next tick: the
#: worker sends at most 4096 unacknowledged events (64 batches), so acking only every 50 ms would
#: cap a member at about 82k events/s.
ACK_AFTER_BATCHES: Final = 8
DISCOVER_EVERY_S: Final = 1.0
ALIVE_EVERY_S: Final = 1.0
#: Seqs remembered per (shard, session) to drop duplicates.
DEDUPE_WINDOW: Final = 1 << 16

_decode_json = msgspec.json.decode


class ClientError(RuntimeError):
    """A command could not be sent, or the cluster could not be reached; the message says why."""


class ClientEvent:
    """One event: where it came from, what it is, and its body (``data``: decoded on first access)."""

    __slots__ = ("_data", "guild_id", "name", "raw", "redelivered", "seq", "session", "shard")

    def __init__(self, event: Event, redelivered: bool) -> None:
        self.shard = event.shard
        self.session = event.session
        self.seq = event.seq
        self.name = event.name
        self.guild_id = event.key if isinstance(event.key, int) else None
        self.raw = event.data
        self.redelivered = redelivered
        self._data: Any = None

    @property
    def data(self) -> Any:
        """The event's ``d``, decoded (msgspec) on first access."""
        if self._data is None:
            self._data = _decode_json(self.raw)
        return self._data

    def __repr__(self) -> str:
        return f"<ClientEvent {self.name} shard={self.shard} seq={self.seq} guild={self.guild_id}>"


class Gap(msgspec.Struct):
    """Events the group's queue dropped while it was full (nobody consumed fast enough)."""

    shard: int
    session: str
    count: int
    ranges: list[tuple[int, int]]


class _Link:
    """One worker connection: a DEALER socket read from the event loop through its FD.

    ZeroMQ's FD is edge-triggered and only says "look at the socket": every message that is ready
    must be read at once, and a send may swallow the edge that announced incoming messages. So the
    link reads until nothing is left whenever the FD fires, and looks again after each send.
    """

    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str, shards: list[int],
                 on_message: Callable[[_Link, p.BusMessage], None]) -> None:  # fmt: skip
        self.endpoint = endpoint
        self.shards = shards
        self.sock: zmq.Socket[bytes] = ctx.socket(zmq.DEALER)
        # Long enough for the last Ack and Leave of close() to leave; a worker that is gone cannot
        # hold the bot up for longer.
        self.sock.setsockopt(zmq.LINGER, 500)
        self.sock.setsockopt(zmq.RCVHWM, 0)
        self.sock.connect(endpoint)
        self.acked = 0
        self.done = 0  # highest batch fully processed
        self.closed = False
        self._on_message = on_message
        self._loop = asyncio.get_running_loop()
        self._fd = int(self.sock.getsockopt(zmq.FD))
        self._check_scheduled = False
        self._loop.add_reader(self._fd, self.read)

    def send(self, message: p.BusMessage) -> None:
        if self.closed:
            return
        with contextlib.suppress(zmq.ZMQError):
            self.sock.send(p.encode(message), flags=zmq.NOBLOCK)
        if not self._check_scheduled:
            self._check_scheduled = True
            self._loop.call_soon(self.read)

    def read(self) -> None:
        """Handle every message that is ready."""
        self._check_scheduled = False
        sock = self.sock
        while not self.closed:
            try:
                data = sock.recv(flags=zmq.NOBLOCK)
            except zmq.Again:
                return
            except zmq.ZMQError:
                log.warning("the link to %s failed; it is dropped until the next discovery", self.endpoint)
                return
            try:
                self._on_message(self, p.decode(data))
            except Exception:
                log.exception("a message from %s could not be handled", self.endpoint)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._loop.remove_reader(self._fd)
            self.sock.close()


Handler = Callable[[ClientEvent], Awaitable[None]]


class Client:
    """A member of a consumer group of a running cluster."""

    def __init__(
        self,
        run_dir: str | Path | None = None,
        *,
        group: str = "default",
        events: list[str] | None = None,
        member: str | None = None,
        dedupe: bool = True,
        durable: bool = True,
        queue_events: int | None = None,
        queue_bytes: int | None = None,
    ) -> None:
        self.run_dir = resolve_run_dir(run_dir)
        self.group = group
        self.events = events
        self.member = member or f"{os.uname().nodename}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.dedupe = dedupe
        self.durable = durable
        #: This group's queue bounds on each worker (None: the cluster's defaults).
        self.queue_events = queue_events
        self.queue_bytes = queue_bytes
        self.num_shards = 0
        self.duplicates = 0
        self.gaps: list[Gap] = []
        self._ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self._links: dict[str, _Link] = {}
        self._queue: deque[tuple[ClientEvent, _Link, int, bool]] = deque()
        self._ready = asyncio.Event()
        self._seen: dict[tuple[int, str], tuple[set[int], deque[int]]] = {}
        self._handlers: dict[str, list[Handler]] = {}
        self._gap_handlers: list[Callable[[Gap], Awaitable[None]]] = []
        self._pending: dict[int, asyncio.Future[p.CommandResult]] = {}
        self._requests = itertools.count(1)
        self._tasks: list[asyncio.Future[None]] = []
        self._current: tuple[_Link, int, bool] | None = None
        self._closed = False
        self._background: set[asyncio.Future[None]] = set()

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Find the workers and join the group on each (raises ClientError if no cluster runs)."""
        await self._discover()
        self._tasks = [
            asyncio.ensure_future(self._discover_loop()),
            asyncio.ensure_future(self._ack_loop()),
        ]

    async def close(self) -> None:
        """Acknowledge what was processed, leave the group, close the sockets."""
        if self._closed:
            return
        self._closed = True
        self._mark_current_done()
        self._send_acks()
        for link in self._links.values():
            link.send(p.Leave(self.group, self.member))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for link in self._links.values():
            link.close()
        self._ctx.term()

    async def __aenter__(self) -> Client:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- discovery ------------------------------------------------------------------------------
    async def _discover(self) -> None:
        try:
            info = await call(self.run_dir, "endpoints", timeout=5)
        except CommandError as exc:
            raise ClientError(str(exc)) from None
        self.num_shards = int(info["num_shards"])
        wanted = {w["endpoint"]: w["shards"] for w in info["workers"]}
        for endpoint in list(self._links):
            if endpoint not in wanted:
                # That worker is gone (its successor replays what it held).
                self._links.pop(endpoint).close()
        for endpoint, shards in wanted.items():
            link = self._links.get(endpoint)
            if link is None:
                link = self._links[endpoint] = _Link(self._ctx, endpoint, shards, self._on_message)
                link.send(self._join())
            link.shards = shards

    async def _discover_loop(self) -> None:
        last_alive = 0.0
        while True:
            await asyncio.sleep(DISCOVER_EVERY_S)
            with contextlib.suppress(ClientError):
                await self._discover()
            now = time.monotonic()
            if now - last_alive >= ALIVE_EVERY_S:
                last_alive = now
                join = self._join()
                for link in self._links.values():
                    link.send(p.Alive(self.member, [join]))

    def _join(self) -> p.Join:
        return p.Join(self.group, self.member, self.events, self.durable, self.queue_events, self.queue_bytes)

    # -- receiving ------------------------------------------------------------------------------
    def _on_message(self, link: _Link, message: p.BusMessage) -> None:
        if isinstance(message, p.Batch):
            again = set(message.redelivered)
            last = len(message.events) - 1
            for i, event in enumerate(message.events):
                if self.dedupe and self._duplicate(event):
                    self.duplicates += 1
                    if i == last:
                        self._queue.append((_SKIP, link, message.batch, True))
                    continue
                self._queue.append((ClientEvent(event, i in again), link, message.batch, i == last))
            self._ready.set()
        elif isinstance(message, p.Gap):
            gap = Gap(message.shard, message.session, message.count, message.ranges)
            self.gaps.append(gap)
            log.warning(
                "group %s lost %d events of shard %d: %s", self.group, gap.count, gap.shard, gap.ranges
            )
            for handler in self._gap_handlers:
                task = asyncio.ensure_future(handler(gap))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
        elif isinstance(message, p.CommandResult):
            fut = self._pending.pop(message.request, None)
            if fut is not None and not fut.done():
                fut.set_result(message)

    def _duplicate(self, event: Event) -> bool:
        key = (event.shard, event.session)
        entry = self._seen.get(key)
        if entry is None:
            entry = self._seen[key] = (set(), deque())
        seen, order = entry
        if event.seq in seen:
            return True
        seen.add(event.seq)
        order.append(event.seq)
        if len(order) > DEDUPE_WINDOW:
            seen.discard(order.popleft())
        return False

    # -- consuming ------------------------------------------------------------------------------
    def __aiter__(self) -> AsyncIterator[ClientEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[ClientEvent]:
        while True:
            event = await self.next_event()
            yield event

    async def next_event(self) -> ClientEvent:
        """The next event; the previous one counts as processed."""
        self._mark_current_done()
        while True:
            while not self._queue:
                self._ready.clear()
                await self._ready.wait()
            event, link, batch, last = self._queue.popleft()
            if event is _SKIP:
                if last:
                    self._batch_done(link, batch)
                continue
            self._current = (link, batch, last)
            return event

    def _mark_current_done(self) -> None:
        if self._current is not None:
            link, batch, last = self._current
            if last:
                self._batch_done(link, batch)
            self._current = None

    def _batch_done(self, link: _Link, batch: int) -> None:
        if batch > link.done:
            link.done = batch
            if batch - link.acked >= ACK_AFTER_BATCHES:
                link.acked = batch
                link.send(p.Ack(self.group, self.member, batch))

    def on(self, name: str) -> Callable[[Handler], Handler]:
        """Register ``async def handler(event)`` for events of this name ("*" for all)."""

        def register(handler: Handler) -> Handler:
            self._handlers.setdefault(name, []).append(handler)
            return handler

        return register

    def on_gap(self, handler: Callable[[Gap], Awaitable[None]]) -> Callable[[Gap], Awaitable[None]]:
        """Register ``async def handler(gap)`` called when the group is told of dropped events."""
        self._gap_handlers.append(handler)
        return handler

    async def run(self) -> None:
        """Call the registered handlers for every event, one at a time, until cancelled."""
        async for event in self:
            for handler in (*self._handlers.get(event.name, ()), *self._handlers.get("*", ())):
                try:
                    await handler(event)
                except Exception:
                    log.exception("handler for %s raised on %r", event.name, event)

    # -- acknowledging --------------------------------------------------------------------------
    async def _ack_loop(self) -> None:
        while True:
            await asyncio.sleep(ACK_EVERY_S)
            self._send_acks()

    def _send_acks(self) -> None:
        for link in self._links.values():
            if link.done > link.acked:
                link.acked = link.done
                link.send(p.Ack(self.group, self.member, link.done))

    # -- commands -------------------------------------------------------------------------------
    async def send(
        self, op: int, d: Any, *, shard: int | None = None, guild: int | None = None, timeout: float = 30.0
    ) -> None:
        """Send a gateway command (op 3, 4, 8, ...) on a shard, or on the shard that owns ``guild``.

        Returns once the shard has sent it; raises :class:`ClientError` saying why it was not.
        """
        if (shard is None) == (guild is None):
            raise ValueError("give exactly one of shard= or guild=")
        if guild is not None:
            if not self.num_shards:
                raise ClientError("the shard count is not known yet: start() the client first")
            shard = (guild >> 22) % self.num_shards
        assert shard is not None
        if self.num_shards and not 0 <= shard < self.num_shards:
            raise ClientError(f"unknown shard {shard}: the cluster runs shards 0-{self.num_shards - 1}")
        deadline = time.monotonic() + timeout
        while True:
            link = next((link for link in self._links.values() if shard in link.shards), None)
            if link is not None:
                break
            if time.monotonic() > deadline:
                raise ClientError(f"unknown shard {shard}: the cluster runs shards 0-{self.num_shards - 1}")
            await asyncio.sleep(0.1)
        request = next(self._requests)
        fut: asyncio.Future[p.CommandResult] = asyncio.get_running_loop().create_future()
        self._pending[request] = fut
        link.send(p.Command(request, shard, op, d, timeout=max(0.1, deadline - time.monotonic())))
        try:
            result = await asyncio.wait_for(fut, max(0.1, deadline - time.monotonic()) + 1.0)
        except TimeoutError:
            self._pending.pop(request, None)
            raise ClientError(f"shard {shard} did not answer within {timeout:g} s") from None
        if not result.ok:
            raise ClientError(result.error or "the command was not sent")


_SKIP: Any = object()
