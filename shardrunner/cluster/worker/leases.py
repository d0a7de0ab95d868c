"""The worker's side of the leases of several hosts: connections adopted and released one block at
a time, and the lease fence.

The supervisor holds a lease in Redis for each block of connections it runs; it adds a block to a
worker with :class:`~shardrunner.cluster.messages.Adopt`, takes one back with ``Release`` (its
sessions, rewound to what the consumer groups still hold, go to the next holder), and after each
renewal tells the worker until when the lease surely holds (``LeaseUntil``). Past that the worker
must not deliver: another host may hold the lease by then. So its bus sends no batch more, and it
closes every connection resumably and says so (``Released(fenced=True)``) without being asked.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Final

import msgspec

from shardrunner.bus import protocol as bp
from shardrunner.clock import Clock
from shardrunner.cluster import messages as m
from shardrunner.cluster.worker.conns import ConnTable
from shardrunner.cluster.worker.views import Bus, describe, drop
from shardrunner.protocol.envelope import SessionSnapshot
from shardrunner.protocol.keys import ConnKey

log = logging.getLogger("shardrunner.worker")

#: At a handoff or a release, how long the bots get to acknowledge what they were sent.
DRAIN_TIMEOUT_S: Final = 3.0


class Leases:
    """The part of :class:`~shardrunner.cluster.worker.core.Worker` that adopts, releases and fences."""

    slot: int
    clock: Clock
    outbox: asyncio.Queue[m.Message]
    conns: ConnTable
    bus: Bus | None
    delivery: dict[ConnKey, bp.Delivery]
    delivery_version: int
    _handing_off: asyncio.Task[list[SessionSnapshot]] | None
    _finishing: asyncio.Task[None] | None
    #: Releases under way (asked for, or the fence's); adoptions wait for them.
    _releasing: set[asyncio.Future[None]]
    _deferred_adopts: list[m.Adopt]
    #: The lease fence (the clock's monotonic seconds; 0: none), and whether it has passed.
    lease_until: float
    fenced: bool
    _fence_timer: asyncio.Future[None] | None

    if TYPE_CHECKING:  # the Worker's (this is its mixin)

        def _apply_delivery(
            self, modes: dict[ConnKey, bp.Delivery], version: int, window: float = 0.0
        ) -> None: ...

    def adopt(self, adopt: m.Adopt) -> None:
        """Run these connections too, resuming those with a session, in the modes the adoption
        carries (Twitch's backup readers: dedupe; the unlisted ones live, whatever was left here
        from before); the others are not disturbed."""
        modes = {c: bp.Delivery.LIVE for c in adopt.conns if c in self.delivery} | dict(adopt.delivery)
        if modes:
            self._apply_delivery(modes, self.delivery_version)
        sink = self.bus.publish if self.bus is not None else drop
        resuming = self.conns.start(adopt.parts, adopt.snapshots, sink, dict(adopt.epochs))
        log.info("worker %d: adopted %s (%d to resume)", self.slot, describe(adopt.conns), resuming)
        if self.fenced:
            self._fence()  # no lease to run them under: given back at once

    def release(self, conns: list[ConnKey]) -> asyncio.Future[None] | None:
        """Close these connections resumably and answer Released with their sessions, rewound to
        what the groups still hold; the others run on. Runs as a task (None: answered at once,
        none of them runs here, or a handoff or finish under way takes them all)."""
        mine = [c for c in conns if c in self.conns.entries]
        if not mine or self._handing_off is not None or self._finishing is not None:
            self.outbox.put_nowait(m.Released([]))
            return None
        return self._start_release(mine, fenced=False)

    def _start_release(self, conns: list[ConnKey], *, fenced: bool) -> asyncio.Future[None]:
        task = asyncio.ensure_future(self._release(conns, fenced))
        self._releasing.add(task)
        task.add_done_callback(self._released)
        return task

    async def _release(self, conns: list[ConnKey], fenced: bool) -> None:
        snapshots: list[SessionSnapshot] = []
        try:
            snapshots = await self.conns.release(conns)
            if self.bus is not None:
                if not fenced:  # fenced, the bus sends nothing more: no use waiting
                    try:
                        await self.bus.drain(DRAIN_TIMEOUT_S, conns=set(conns))
                    except Exception:
                        log.exception("worker %d: draining the released connections failed", self.slot)
                snapshots = self._rewind(snapshots)
        finally:
            self.outbox.put_nowait(m.Released(snapshots, fenced))
            log.info("worker %d: released %s%s", self.slot, describe(conns), " (fenced)" if fenced else "")

    def _released(self, task: asyncio.Future[None]) -> None:
        self._releasing.discard(task)
        self._adopt_deferred()

    def set_lease(self, until: float) -> None:
        """Move the lease fence to ``until`` (this clock's monotonic seconds; 0: no fence).

        Past it the bus sends no batch (what comes stays held, so the low water keeps it for the
        next holder's replay) and every connection is closed as a Release would, answered with
        ``Released(fenced=True)`` unasked. A later fence in the future lifts the bus's stop."""
        self.lease_until = until
        if self.bus is not None:
            self.bus.fence(until)
        if self._fence_timer is not None:
            self._fence_timer.cancel()
            self._fence_timer = None
        if until > 0:
            self._fence_timer = asyncio.ensure_future(self._fence_at(until))
        if self.fenced and (until <= 0 or until > self.clock.monotonic()):
            self.fenced = False
            log.info("worker %d: its lease was renewed: the bus delivers again", self.slot)

    async def _fence_at(self, until: float) -> None:
        delay = until - self.clock.monotonic()
        if delay > 0:
            await self.clock.sleep(delay)
        self._fence_timer = None
        self._fence()

    def _fence(self) -> None:
        if self._finishing is not None or self._handing_off is not None:
            return  # everything is closing anyway
        conns = list(self.conns)
        if self.fenced and not conns:
            return
        if conns and not self.fenced:
            log.warning(
                "worker %d: its lease ran out (the supervisor could not renew it): closing its "
                "connections resumably, without delivering what came after",
                self.slot,
            )
        self.fenced = True
        self._start_release(conns, fenced=True)

    def _rewind(self, snapshots: list[SessionSnapshot]) -> list[SessionSnapshot]:
        """Each session resumed just before the oldest event a group still holds of it."""
        assert self.bus is not None
        low = self.bus.router.low_water()
        return [
            msgspec.structs.replace(s, seq=min(s.seq, low[key] - 1))
            if (key := (s.conn, s.session_id)) in low
            else s
            for s in snapshots
        ]

    def _adopt_deferred(self) -> None:
        if self._releasing or self._handing_off is not None or self._finishing is not None:
            return
        adopts, self._deferred_adopts = self._deferred_adopts, []
        for adopt in adopts:
            self.adopt(adopt)
