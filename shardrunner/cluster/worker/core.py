"""The worker's life, without its sockets: what it does with each message of the supervisor.

:class:`Worker` is driven by :mod:`.process` (the ZeroMQ link and the event loop) and, in the unit
tests, by hand. Everything it says to the supervisor goes into :attr:`Worker.outbox`. It never waits
inside :meth:`Worker.handle`: a handoff, a release or a finish runs as a task, so pings are answered
while it drains.

Several hosts: the supervisor adds connections (:class:`~shardrunner.cluster.messages.Adopt`) and
takes some back (``Release``) as its leases come and go, and tells the worker until when it may
deliver (``LeaseUntil``); past that the bus sends nothing more and every connection is closed
resumably (the lease fence, :meth:`Worker.set_lease`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from shardrunner.bus import protocol as bp
from shardrunner.clock import Clock, RealClock
from shardrunner.cluster import messages as m
from shardrunner.cluster.lifecycle import Fanout
from shardrunner.cluster.worker.conns import ConnTable
from shardrunner.cluster.worker.leases import DRAIN_TIMEOUT_S, Leases
from shardrunner.cluster.worker.lifecycle import LifecycleEvents
from shardrunner.cluster.worker.views import (
    BudgetLink,
    Bus,
    RouterView,
    SupervisorLink,
    describe,
    describe_modes,
    drop,
)
from shardrunner.controller.base import FatalAction
from shardrunner.gateway.platform import Platform, load_platform
from shardrunner.identify.relay import RelayBudgets, RelayIdentifyQueue
from shardrunner.protocol import lifecycle
from shardrunner.protocol.envelope import SessionSnapshot
from shardrunner.protocol.keys import ConnKey
from shardrunner.protocol.lifecycle import Notice

__all__ = ["DRAIN_TIMEOUT_S", "Bus", "RouterView", "Worker", "describe", "describe_modes"]

log = logging.getLogger("shardrunner.worker")

REPORT_INTERVAL_S: Final = 0.5
#: With no ping from the supervisor for this long, the worker hands its connections off and exits.
ORPHAN_AFTER_S: Final = 30.0


class Worker(Leases):
    """One worker process's life: run the assigned connections, report them, hand them off."""

    def __init__(
        self,
        slot: int,
        generation: int,
        *,
        make_bus: Callable[[m.Assign, ConnTable], Bus] | None = None,
        load: Callable[[str], Platform] = load_platform,
        clock: Clock | None = None,
        on_fatal: Callable[[ConnKey, int], Awaitable[FatalAction]] | None = None,
        hook_failures: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        self.slot = slot
        self.generation = generation
        self.clock: Clock = clock or RealClock()
        self.outbox: asyncio.Queue[m.Message] = asyncio.Queue()
        self.stopped = asyncio.Event()
        self.exit_code = 0
        self.queue = RelayIdentifyQueue(SupervisorLink(self.outbox.put_nowait))
        #: The cluster's budgets (Twitch's JOINs and logins per account), held by the supervisor.
        self.budgets = RelayBudgets(BudgetLink(self.outbox.put_nowait))
        self.lifecycle = Fanout(f"worker {slot}")
        #: Called with every lifecycle notice of the worker's connections (a plain list: append to
        #: it); each is also published on the bus (:meth:`notice`).
        self.lifecycle_listeners = self.lifecycle.listeners
        self.lifecycle_events = LifecycleEvents()
        self.conns = ConnTable(
            load=load,
            identify=self.queue,
            on_failed=self.outbox.put_nowait,
            clock=self.clock,
            name=f"worker {slot}",
            budgets=self.budgets,
            notify=self.notice,
            on_fatal=on_fatal,
        )
        self.bus: Bus | None = None
        self._make_bus = make_bus
        #: The controller's failed calls per hook (its guard's count), for the reports.
        self._hook_failures = hook_failures
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
        self._releasing: set[asyncio.Future[None]] = set()
        self._deferred_adopts: list[m.Adopt] = []
        self.lease_until = 0.0
        self.fenced = False
        self._fence_timer: asyncio.Future[None] | None = None

    # -- messages from the supervisor -----------------------------------------------------------
    def handle(self, message: m.Message) -> None:
        """React to one message at once; what takes time runs as a task."""
        if isinstance(message, m.Ping):
            self.last_ping = self.clock.monotonic()
            ready = self._handing_off is None and self._finishing is None and self.conns.all_ready()
            self.outbox.put_nowait(m.Pong(message.nonce, ready))
        elif isinstance(message, m.IdentifyGrant):
            self.queue.granted(message.conn)
        elif isinstance(message, m.IdentifyNear):
            self.queue.nearby(message.conn)
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
        elif isinstance(message, m.LeaseUntil):
            self.set_lease(message.until)
        elif isinstance(message, m.Release):
            self.release(message.conns)
        elif isinstance(message, m.Adopt):
            if self._finishing is not None:
                log.warning("worker %d: an adoption while finishing is ignored", self.slot)
            elif self._handing_off is not None or self._releasing:
                self._deferred_adopts.append(message)  # once what closes now is closed
            else:
                self.adopt(message)
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
        """Run the assignment's connections (and the bus, even with none: a standby is hot)."""
        if self.bus is None and assign.bus_endpoint and self._make_bus is not None:
            self.bus = self._make_bus(assign, self.conns)
            self.bus.fence(self.lease_until)
            self._bus_task = asyncio.ensure_future(self.bus.run())
        if assign.lease_until:
            self.set_lease(assign.lease_until)
        if assign.delivery_version >= self.delivery_version:
            # The assignment's modes, for its connections (the unlisted ones live), before any of
            # them can publish. A SetDelivery newer than the assignment (it came before) stands.
            modes = {c: bp.Delivery.LIVE for c in assign.conns} | dict(assign.delivery)
            self._apply_delivery(modes, assign.delivery_version, assign.dedupe_window)
        elif self.bus is not None:
            self.bus.router.set_delivery(self.delivery, self.dedupe_window or None)  # kept from before
        sink = self.bus.publish if self.bus is not None else drop
        resuming = self.conns.start(assign.parts, assign.snapshots, sink, dict(assign.epochs))
        log.info("worker %d: running %s (%d to resume)", self.slot, describe(assign.conns), resuming)

    # -- lifecycle -----------------------------------------------------------------------------
    def notice(self, notice: Notice, epoch: int = 0) -> None:
        """One lifecycle notice: a connection's onto the bus (as an event of the worker's pseudo
        session, with ``epoch``, the lease epoch of the connection's holder), then to every listener."""
        if notice.conn is not None and self.bus is not None:
            self.bus.publish(self.lifecycle_events.event(notice, epoch))
        self.lifecycle.emit(notice)

    # -- delivery modes (a reshard) -----------------------------------------------------------
    def set_delivery(self, message: m.SetDelivery) -> None:
        """Apply a change of delivery modes (the connections not named keep theirs) and say so.

        A reshard's switch (``message.switch``): each connection of it that runs here and now
        delivers alone says ``shardrunner.switched``."""
        self._apply_delivery(dict(message.delivery), message.version, message.dedupe_window)
        self.outbox.put_nowait(m.DeliverySet(message.version))
        if message.switch:
            for conn, mode in message.delivery:
                entry = self.conns.entries.get(conn)
                if mode is bp.Delivery.LIVE and entry is not None:
                    self.notice(Notice(lifecycle.SWITCHED, conn, {}), entry.epoch)

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
            return
        if self._deferred is not None and self._handing_off is None and not self.conns:
            assign, self._deferred = self._deferred, None
            self.start(assign)
        self._adopt_deferred()

    async def _hand_off(self) -> list[SessionSnapshot]:
        try:
            snapshots = await self.conns.close_all()
            if self.bus is not None:
                # Give the bots a moment to acknowledge what they have; what stays unacknowledged
                # is resumed from, so the gateway replays it to the next worker (bots drop
                # duplicates).
                await self.bus.drain(DRAIN_TIMEOUT_S)
                snapshots = self._rewind(snapshots)
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
        low = self.conns.low_water(router.low_water())
        failures = self._hook_failures() if self._hook_failures is not None else {}
        return m.Report(
            reports,
            low,
            router.group_stats(),
            filtered=router.filtered,
            hook_failures=failures,
            bus_rejected=router.rejected,
        )

    async def report_loop(self) -> None:
        lag = 0.0
        while True:
            report = self.report()
            if report is not None:
                report.loop_lag = lag
                self.outbox.put_nowait(report)
            if self.clock.monotonic() - self.last_ping > ORPHAN_AFTER_S:
                log.error(
                    "worker %d: no word from the supervisor for %.0f s, handing off",
                    self.slot,
                    ORPHAN_AFTER_S,
                )
                await self.handoff(exit=True)
                return
            # The loop's lag: how late this sleep ends (a loop busy elsewhere wakes it late).
            woke_at = self.clock.monotonic() + REPORT_INTERVAL_S
            await self.clock.sleep(REPORT_INTERVAL_S)
            lag = max(0.0, self.clock.monotonic() - woke_at)

    def close(self) -> None:
        for task in (self._bus_task, self._fence_timer, *self._tasks, *self._releasing):
            if task is not None:
                task.cancel()
        if self.bus is not None:
            self.bus.close()
