"""The client: a member of a consumer group of a running cluster (see ``shardrunner.client``)."""

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

import zmq

from shardrunner.bus import protocol as p
from shardrunner.client.dedupe import STALE, CrossDedupe, Dedupe, Epochs
from shardrunner.client.discord import DiscordCommands
from shardrunner.client.errors import ClientError
from shardrunner.client.events import ClientEvent, Gap
from shardrunner.client.identity import cross_duplicate
from shardrunner.client.lifecycle import LifecycleHandlers
from shardrunner.client.link import Link
from shardrunner.client.remote import Discovery
from shardrunner.client.state import StateRequests, _Answer
from shardrunner.client.twitch import TwitchCommands
from shardrunner.protocol.envelope import RoutingKey
from shardrunner.protocol.keys import ConnKey
from shardrunner.protocol.routing import owner
from shardrunner.rundir import resolve_run_dir

log = logging.getLogger("shardrunner.client")

ACK_EVERY_S: Final = 0.05
#: Batches processed on one link that are acknowledged at once rather than at the next tick: the
#: worker sends at most 4096 unacknowledged events (64 batches), so acking only every 50 ms would
#: cap a member at about 82k events/s.
ACK_AFTER_BATCHES: Final = 8
DISCOVER_EVERY_S: Final = 1.0
ALIVE_EVERY_S: Final = 1.0

Handler = Callable[[ClientEvent], Awaitable[None]]


class Client(DiscordCommands, TwitchCommands, StateRequests, LifecycleHandlers):
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
        control: str | list[str] | None = None,
        server_key: str | None = None,
        key: str | None = None,
    ) -> None:
        """``control``: the TCP control endpoints of hosts elsewhere (else $SHARDRUNNER_CONTROL,
        comma separated; None: the local run dir's), with ``server_key`` (the server's public key
        file, else $SHARDRUNNER_SERVER_KEY) and ``key`` (this bot's secret key file, else
        $SHARDRUNNER_BOT_KEY) for CURVE."""
        self.run_dir = resolve_run_dir(run_dir)
        self.discovery = Discovery(self.run_dir, control, server_key, key)
        self.group = group
        self.events = list(events) if events is not None else None  # lifecycle handlers add to it
        self.lifecycle: list[str] = []
        self.member = member or f"{os.uname().nodename}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.dedupe = dedupe
        self.durable = durable
        #: This group's queue bounds on each worker (None: the cluster's defaults).
        self.queue_events = queue_events
        self.queue_bytes = queue_bytes
        #: The connections the running workers serve, as of the last discovery, and each
        #: platform's description (the ``endpoints`` answer).
        self.conns: list[ConnKey] = []
        self.platforms: dict[str, Any] = {}
        self.discovered = False
        self.duplicates = 0
        #: Events the worker marked that were the other connection set's copy of one delivered.
        self.cross_duplicates = 0
        #: Events of a connection's superseded holder (a lower lease epoch than one seen), dropped.
        self.stale_dropped = 0
        self.gaps: list[Gap] = []
        self._ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self._links: dict[str, Link] = {}
        self._link_of: dict[ConnKey, Link] = {}
        self._queue: deque[tuple[ClientEvent, Link, int, bool]] = deque()
        self._ready = asyncio.Event()
        self._dedupe = Dedupe()
        self._epochs = Epochs()
        self._cross = CrossDedupe()
        self._now: Callable[[], float] = time.monotonic
        self._handlers: dict[str, list[Handler]] = {}
        self._gap_handlers: list[Callable[[Gap], Awaitable[None]]] = []
        self._pending: dict[int, asyncio.Future[p.CommandResult]] = {}
        self._requests = itertools.count(1)
        self._tasks: list[asyncio.Future[None]] = []
        self._current: tuple[Link, int, bool] | None = None
        self._closed = False
        self._background: set[asyncio.Future[None]] = set()
        self._state_answers: dict[int, _Answer] = {}
        #: Per connection, the ``(session, seq)`` the last :meth:`fetch_state` reflected.
        self.state_marks: dict[ConnKey, tuple[str, int]] = {}

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
        discovery = self.discovery
        info = await discovery.ask("endpoints", timeout=5)
        self.platforms = dict(info.get("platforms") or {})
        wanted: dict[str, list[str]] = {}
        for w in info["workers"]:
            endpoint = discovery.worker_endpoint(w)
            if endpoint is not None:
                wanted[endpoint] = list(w["conns"])
        changed = False
        for endpoint in list(self._links):
            if endpoint not in wanted:
                # That worker is gone (its successor replays what it held).
                self._links.pop(endpoint).close()
                changed = True
        for endpoint, names in wanted.items():
            link = self._links.get(endpoint)
            if link is None:
                conns = [ConnKey.parse(name) for name in names]
                link = Link(self._ctx, endpoint, conns, self._on_message, curve=discovery.curve)
                self._links[endpoint] = link
                link.send(self._join())
                changed = True
            elif link.conn_names != names:
                link.conns, link.conn_names = [ConnKey.parse(name) for name in names], names
                changed = True
        if changed:
            self._link_of = {conn: link for link in self._links.values() for conn in link.conns}
            self.conns = sorted(self._link_of)
        self.discovered = True

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
        # Every platform event and some lifecycle events: "*" stands for the former.
        events = ["*", *self.lifecycle] if self.events is None and self.lifecycle else self.events
        return p.Join(self.group, self.member, events, self.durable, self.queue_events, self.queue_bytes)

    # -- receiving ------------------------------------------------------------------------------
    def _on_message(self, link: Link, message: p.BusMessage) -> None:
        if isinstance(message, p.Batch):
            if message.batch <= link.received:
                self._renumbered(link)
            link.received = message.batch
            if message.dedupe and self.dedupe:
                self._on_marked_batch(link, message)
                return
            again = set(message.redelivered)
            last = len(message.events) - 1
            check = self._dedupe.check if self.dedupe else self._epochs.check
            for i, event in enumerate(message.events):
                verdict = check(event)
                if not verdict:
                    self._queue.append((ClientEvent(event, i in again), link, message.batch, i == last))
                    continue
                if verdict == STALE:
                    self.stale_dropped += 1
                else:
                    self.duplicates += 1
                if i == last:
                    self._queue.append((_SKIP, link, message.batch, True))
            self._ready.set()
        elif isinstance(message, p.Gap):
            gap = Gap(message.conn, message.session, message.count, message.ranges)
            self.gaps.append(gap)
            log.warning("group %s lost %d events of %s: %s", self.group, gap.count, gap.conn, gap.ranges)
            for handler in self._gap_handlers:
                task = asyncio.ensure_future(handler(gap))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
        elif isinstance(message, p.CommandResult):
            fut = self._pending.pop(message.request, None)
            if fut is not None and not fut.done():
                fut.set_result(message)
        elif isinstance(message, p.State):
            self._on_state(message)
        elif isinstance(message, p.Rejected):
            log.warning("the worker at %s refused a message of this bot: %s", link.endpoint, message.reason)

    def _renumbered(self, link: Link) -> None:
        """A new worker at an endpoint this client knew (a supervisor started again in the same run
        dir): its batch numbers start afresh, and what the old one sent (replayed by the new one, the
        dedupe drops repeats) must not acknowledge them."""
        log.info("the worker at %s is a new one: its batches are counted afresh", link.endpoint)
        link.done = link.acked = 0
        self._queue = deque((e, lk, 0 if lk is link else b, last) for e, lk, b, last in self._queue)
        if self._current is not None and self._current[0] is link:
            self._current = (link, 0, self._current[2])

    def _on_marked_batch(self, link: Link, message: p.Batch) -> None:
        """A batch with events to check across connection sets: during a reshard's switch only, so
        the usual batch does not pay for it."""
        again = set(message.redelivered)
        marked = dict(zip(message.dedupe, message.stamps or [0] * len(message.dedupe), strict=True))
        window = message.window
        last = len(message.events) - 1
        now = self._now()
        for i, event in enumerate(message.events):
            verdict = self._dedupe.check(event)
            if verdict == STALE:
                self.stale_dropped += 1
            elif verdict:
                self.duplicates += 1
            elif i in marked and cross_duplicate(self._cross, event, now, marked[i], window):
                self.cross_duplicates += 1
            else:
                self._queue.append((ClientEvent(event, i in again), link, message.batch, i == last))
                continue
            if i == last:
                self._queue.append((_SKIP, link, message.batch, True))
        self._ready.set()

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

    def _batch_done(self, link: Link, batch: int) -> None:
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
    async def command(
        self,
        platform: str,
        body: Any,
        *,
        conn: ConnKey | None = None,
        key: RoutingKey = None,
        timeout: float = 30.0,
    ) -> Any:
        """Send a platform command (``body`` as the platform defines it) on connection ``conn``,
        or on the connection that owns routing key ``key`` (the platform's formula decides).

        Returns once the connection has sent it, with what the connection answered (None for most;
        Twitch: the sent message); raises :class:`ClientError` saying why it was not sent.
        """
        if conn is None and key is None:
            raise ValueError("give conn= or key=")
        deadline = time.monotonic() + timeout
        while True:
            target = conn if conn is not None else owner(platform, key, self.conns)
            link = self._link_of.get(target) if target is not None else None
            if link is not None and not link.closed:
                break
            if time.monotonic() > deadline:
                what = str(conn) if conn is not None else f"the {platform} connection of key {key!r}"
                raise ClientError(f"no running worker has {what} (waited {timeout:g} s)")
            await asyncio.sleep(0.1)
        request = next(self._requests)
        fut: asyncio.Future[p.CommandResult] = asyncio.get_running_loop().create_future()
        self._pending[request] = fut
        left = max(0.1, deadline - time.monotonic())
        link.send(p.Command(request, platform, body, conn=target, key=key, timeout=left))
        try:
            result = await asyncio.wait_for(fut, max(0.1, deadline - time.monotonic()) + 1.0)
        except TimeoutError:
            self._pending.pop(request, None)
            raise ClientError(f"{target} did not answer within {timeout:g} s") from None
        if not result.ok:
            raise ClientError(result.error or "the command was not sent")
        return result.result


_SKIP: Any = object()
