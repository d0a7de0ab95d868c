"""The worker's life, without its sockets: what it does with each message of the supervisor.

:class:`Worker` is driven by :mod:`.process` (the ZeroMQ link and the event loop) and, in the unit
tests, by hand. Everything it says to the supervisor goes into :attr:`Worker.outbox`. It never waits
inside :meth:`Worker.handle`: a handoff or a finish runs as a task, so pings are answered while it
drains.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Final, Protocol

import msgspec

from shardrunner.bus import protocol as bp
from shardrunner.clock import Clock, RealClock
from shardrunner.cluster import messages as m
from shardrunner.cluster.worker.conns import ConnTable
from shardrunner.gateway.platform import Platform, load_platform
from shardrunner.identify.relay import RelayBudgets, RelayIdentifyQueue
from shardrunner.protocol.envelope import Event, SessionSnapshot
from shardrunner.protocol.keys import ConnKey

log = logging.getLogger("shardrunner.worker")

REPORT_INTERVAL_S: Final = 0.5
#: With no ping from the supervisor for this long, the worker hands its connections off and exits.
ORPHAN_AFTER_S: Final = 30.0
#: At a handoff, how long the bots get to acknowledge what they were sent.
DRAIN_TIMEOUT_S: Final = 3.0


class RouterView(Protocol):
    """What the worker asks of the bus router, instead of reading its insides."""

    @property
    def withheld(self) -> Mapping[ConnKey, int]: ...

    def low_water(self) -> dict[tuple[ConnKey, str], int]: ...

    def group_stats(self) -> list[bp.GroupStats]: ...

    def set_delivery(self, modes: Mapping[ConnKey, bp.Delivery], window: float | None = None) -> None: ...

    def undelivered(self) -> int: ...


class Bus(Protocol):
    """The worker's bus endpoint (:class:`~shardrunner.bus.server.BusServer`)."""

    @property
    def router(self) -> RouterView: ...

    def publish(self, event: Event) -> None: ...

    async def drain(self, timeout: float, *, absent: bool = False) -> bool: ...

    async def run(self) -> None: ...

    def close(self) -> None: ...


class _Link:
    """The relay's view of the supervisor link: identify messages into the outbox."""

    __slots__ = ("_post",)

    def __init__(self, post: Callable[[m.Message], None]) -> None:
        self._post = post

    def request(self, conn: ConnKey) -> None:
        self._post(m.IdentifyRequest(conn))

    def sent(self, conn: ConnKey) -> None:
        self._post(m.IdentifySent(conn))

    def done(self, conn: ConnKey, *, ready: bool) -> None:
        self._post(m.IdentifyDone(conn, ready))


class _BudgetLink:
    """The budget relay's view of the supervisor link: budget messages into the outbox."""

    __slots__ = ("_post",)

    def __init__(self, post: Callable[[m.Message], None]) -> None:
        self._post = post

    def request(self, request: int, name: str, key: str, n: int) -> None:
        self._post(m.BudgetRequest(request, name, key, n))

    def used(self, request: int) -> None:
        self._post(m.BudgetUsed(request))

    def cancel(self, request: int) -> None:
        self._post(m.BudgetCancel(request))


class Worker:
    """One worker process's life: run the assigned connections, report them, hand them off."""

    def __init__(
        self,
        slot: int,
        generation: int,
        *,
        make_bus: Callable[[m.Assign, ConnTable], Bus] | None = None,
        load: Callable[[str], Platform] = load_platform,
        clock: Clock | None = None,
    ) -> None:
        self.slot = slot
        self.generation = generation
        self.clock: Clock = clock or RealClock()
        self.outbox: asyncio.Queue[m.Message] = asyncio.Queue()
        self.stopped = asyncio.Event()
        self.exit_code = 0
        self.queue = RelayIdentifyQueue(_Link(self.outbox.put_nowait))
        #: The cluster's budgets (Twitch's JOINs and logins per account), held by the supervisor.
        self.budgets = RelayBudgets(_BudgetLink(self.outbox.put_nowait))
        self.conns = ConnTable(
            load=load,
            identify=self.queue,
            on_failed=self.outbox.put_nowait,
            clock=self.clock,
            name=f"worker {slot}",
            budgets=self.budgets,
        )
        self.bus: Bus | None = None
        self._make_bus = make_bus
        self._bus_task: asyncio.Future[None] | None = None
        self._handing_off: asyncio.Task[list[SessionSnapshot]] | None = None
        self._deferred: m.Assign | None = None
        self._tasks: set[asyncio.Future[None]] = set()
        #: The bus's delivery modes as the supervisor set them (live ones are not kept), and the
        #: version of the last change applied.
        self.delivery: dict[ConnKey, bp.Delivery] = {}
        self.delivery_version = 0
        self.dedupe_window = 0.0
        self._finishing: asyncio.Task[None] | None = None
        #: What to say once the finish is done: a Finished per Finish, a HandedOff per handoff.
        self._after_finish: list[type[m.Finished] | type[m.HandedOff]] = []
        self._undelivered = 0
        self.last_ping = self.clock.monotonic()

    # -- messages from the supervisor -----------------------------------------------------------
    def handle(self, message: m.Message) -> None:
        """React to one message at once; what takes time runs as a task."""
        if isinstance(message, m.Ping):
            self.last_ping = self.clock.monotonic()
            ready = self._handing_off is None and self._finishing is None and self.conns.all_ready()
            self.outbox.put_nowait(m.Pong(message.nonce, ready))
        elif isinstance(message, m.IdentifyGrant):
            self.queue.granted(message.conn)
        elif isinstance(message, m.BudgetGrant):
            self.budgets.granted(message.request, message.refused)
        elif isinstance(message, m.SetDelivery):
            self.set_delivery(message)
        elif isinstance(message, m.Reconfigure):
            if not self.conns.reconfigure(message.platform, message.config):
                log.warning("worker %d: %s cannot change while running", self.slot, message.platform)
        elif isinstance(message, m.Handoff):
            self.handoff(exit=message.exit)
        elif isinstance(message, m.Finish):
            self.finish(message.drain_timeout)
        elif isinstance(message, m.Assign):
            if self._finishing is not None:
                log.warning("worker %d: an assignment while finishing is ignored", self.slot)
            elif self._handing_off is not None:
                self._deferred = message  # started once the handoff under way has answered
            elif not self.conns:
                self.start(message)  # sessions handed back after an aborted reload
            else:
                log.warning("worker %d: an assignment while running is ignored", self.slot)

    def start(self, assign: m.Assign) -> None:
        if self.bus is None and assign.bus_endpoint and self._make_bus is not None:
            self.bus = self._make_bus(assign, self.conns)
            self._bus_task = asyncio.ensure_future(self.bus.run())
        if assign.delivery_version >= self.delivery_version:
            # The assignment's modes, for its connections (the unlisted ones live), before any of
            # them can publish. A SetDelivery newer than the assignment (it came before) stands.
            modes = {c: bp.Delivery.LIVE for c in assign.conns} | dict(assign.delivery)
            self._apply_delivery(modes, assign.delivery_version, assign.dedupe_window)
        elif self.bus is not None:
            self.bus.router.set_delivery(self.delivery, self.dedupe_window or None)  # kept from before
        sink = self.bus.publish if self.bus is not None else _drop
        resuming = self.conns.start(assign.parts, assign.snapshots, sink)
        log.info("worker %d: running %s (%d to resume)", self.slot, describe(assign.conns), resuming)

    # -- delivery modes (a reshard) -----------------------------------------------------------
    def set_delivery(self, message: m.SetDelivery) -> None:
        """Apply a change of delivery modes (the connections not named keep theirs) and say so."""
        self._apply_delivery(dict(message.delivery), message.version, message.dedupe_window)
        self.outbox.put_nowait(m.DeliverySet(message.version))

    def _apply_delivery(self, modes: dict[ConnKey, bp.Delivery], version: int, window: float = 0.0) -> None:
        had_modes = bool(self.delivery)
        for conn, mode in modes.items():
            if mode is bp.Delivery.LIVE:
                self.delivery.pop(conn, None)
            else:
                self.delivery[conn] = mode
        self.delivery_version = version
        if window:
            self.dedupe_window = window
        if self.bus is not None:
            self.bus.router.set_delivery(modes, self.dedupe_window or None)
        if had_modes or self.delivery:
            log.info("worker %d: delivery %s (version %d)", self.slot, describe_modes(modes), version)

    # -- finish (the end of a connection set) ----------------------------------------------------
    def finish(self, drain_timeout: float) -> asyncio.Task[None]:
        """End every session (close code 1000), give the bots up to ``drain_timeout`` s to take
        what the durable groups are owed, answer Finished and stop.

        Runs as a task: the worker keeps answering pings meanwhile. A Finish asked for while one
        runs shares it (each is answered).
        """
        if self._finishing is None:
            self._finishing = asyncio.ensure_future(self._finish(drain_timeout))
        if self._finishing.done():
            self.outbox.put_nowait(m.Finished(self._undelivered))
        else:
            self._after_finish.append(m.Finished)
        return self._finishing

    async def _finish(self, drain_timeout: float) -> None:
        try:
            if self._handing_off is not None:
                await asyncio.shield(self._handing_off)  # its connections are gone with it
            await self.conns.close_all(handoff=False)
            self.conns.clear()
            if self.bus is not None:
                if not await self.bus.drain(drain_timeout, absent=True):
                    log.warning("worker %d: finishing, the bots did not take everything", self.slot)
                self._undelivered = self.bus.router.undelivered()
        except Exception:
            log.exception("worker %d: the finish failed; answering and exiting anyway", self.slot)
            self.exit_code = 1
        finally:
            # Answered and stopped whatever happened: the supervisor waits for it.
            answers, self._after_finish = self._after_finish, []
            for answer in answers:
                self.outbox.put_nowait(
                    m.Finished(self._undelivered) if answer is m.Finished else m.HandedOff([])
                )
            log.info("worker %d: finished (%d events undelivered)", self.slot, self._undelivered)
            self.stopped.set()

    async def _after_finishing(self, finishing: asyncio.Task[None]) -> None:
        await asyncio.shield(finishing)

    # -- handoff --------------------------------------------------------------------------------
    def handoff(self, *, exit: bool) -> asyncio.Task[None]:
        """Close every connection resumably and send the sessions back (then stop, with ``exit``).

        Runs as a task: the worker keeps answering pings meanwhile. A handoff asked for while one
        runs shares it. During a finish there is nothing to hand off: it waits for the finish and
        answers with no session.
        """
        if self._finishing is not None:
            if self._finishing.done():
                self.outbox.put_nowait(m.HandedOff([]))
            else:
                self._after_finish.append(m.HandedOff)
            task = asyncio.ensure_future(self._after_finishing(self._finishing))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return task
        if self._handing_off is None:
            self._handing_off = asyncio.ensure_future(self._hand_off())
        task = asyncio.ensure_future(self._answer(self._handing_off, exit))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _answer(self, handing_off: asyncio.Task[list[SessionSnapshot]], exit: bool) -> None:
        snapshots = await handing_off
        self.outbox.put_nowait(m.HandedOff(snapshots))
        if exit:
            self.stopped.set()
        elif self._deferred is not None and self._handing_off is None and not self.conns:
            assign, self._deferred = self._deferred, None
            self.start(assign)

    async def _hand_off(self) -> list[SessionSnapshot]:
        try:
            snapshots = await self.conns.close_all()
            if self.bus is not None:
                # Give the bots a moment to acknowledge what they have; what stays unacknowledged
                # is resumed from, so the gateway replays it to the next worker (bots drop
                # duplicates).
                await self.bus.drain(DRAIN_TIMEOUT_S)
                low = self.bus.router.low_water()
                snapshots = [
                    msgspec.structs.replace(s, seq=min(s.seq, low[key] - 1))
                    if (key := (s.conn, s.session_id)) in low
                    else s
                    for s in snapshots
                ]
            self.conns.clear()
            return snapshots
        finally:
            self._handing_off = None

    # -- reports --------------------------------------------------------------------------------
    def report(self) -> m.Report | None:
        """Every connection's state and the bus's, or None with nothing to report.

        From a Finish on there are no connections to report (their sessions are over), but the
        groups still are, while the bots take what they are owed."""
        if self._finishing is not None:
            return None if self.bus is None else m.Report([], groups=self.bus.router.group_stats())
        if not self.conns:
            return None
        if self.bus is None:
            return m.Report(self.conns.reports())
        router = self.bus.router
        reports = self.conns.reports(router.withheld)
        return m.Report(reports, self.conns.low_water(router.low_water()), router.group_stats())

    async def report_loop(self) -> None:
        while True:
            report = self.report()
            if report is not None:
                self.outbox.put_nowait(report)
            if self.clock.monotonic() - self.last_ping > ORPHAN_AFTER_S:
                log.error(
                    "worker %d: no word from the supervisor for %.0f s, handing off",
                    self.slot,
                    ORPHAN_AFTER_S,
                )
                await self.handoff(exit=True)
                return
            await self.clock.sleep(REPORT_INTERVAL_S)

    def close(self) -> None:
        for task in (self._bus_task, *self._tasks):
            if task is not None:
                task.cancel()
        if self.bus is not None:
            self.bus.close()


def describe(conns: list[ConnKey]) -> str:
    """The connections for people: ``discord:0-3/8, discord:0-1/4@1``."""
    sets: dict[tuple[str, int, int], list[int]] = {}
    for c in sorted(conns):
        sets.setdefault((c.platform, c.generation, c.count), []).append(c.shard)
    parts = []
    for (platform, generation, count), shards in sets.items():
        span = f"{shards[0]}-{shards[-1]}" if len(shards) > 1 else str(shards[0])
        parts.append(f"{platform}:{span}/{count}" + (f"@{generation}" if generation else ""))
    return ", ".join(parts) or "nothing"


def describe_modes(modes: Mapping[ConnKey, bp.Delivery]) -> str:
    """Delivery modes for people: ``hold discord:0-7/8@1; live discord:0-3/4``."""
    by_mode: dict[bp.Delivery, list[ConnKey]] = {}
    for conn, mode in modes.items():
        by_mode.setdefault(bp.Delivery(mode), []).append(conn)
    return "; ".join(f"{mode.value} {describe(conns)}" for mode, conns in sorted(by_mode.items()))


def _drop(event: Event) -> None:
    """The sink of a worker without a bus (tests): events go nowhere."""
