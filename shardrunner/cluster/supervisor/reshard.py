"""A reshard while the cluster runs: a new connection set beside the old one, then one switch.

The new set (the next generation of :class:`~shardrunner.protocol.keys.ConnKey`) runs on slots of
its own (new worker processes), identifies through the cluster's one identify queue (behind any
identify of the old set: the queue grants the lowest generation first, and resumes never wait for
it) and is *held*: its events reach no bot. Once every new connection is ready and has all its
routing keys (Discord: the GUILD_CREATE of every guild its READY listed), the switch runs in four
steps, each acknowledged by the workers it concerns and each lasting ``overlap`` seconds:

1. the old set's events are marked for the client's cross-set dedupe;
2. the new set delivers, marked too; bots' commands go to the new set from here on;
3. the old set stops delivering (its connections stay up);
4. the new set's events are no longer marked; the old set's workers end its sessions (1000), keep
   what durable groups have not acknowledged for up to ``drain`` seconds, and exit.

An event reaches a bot from the old set, the new set, or both (then the client drops the second
copy): it is lost only if the old set received it more than ``overlap`` after the new set, and
delivered twice only if one set lagged the other by more than ``overlap``. Each step waits while a
connection of either set is not ready (a resume's replay is delivered in the step's mode) and while
a reload runs. Until step 2 the reshard can be aborted (a fatal close or refused identifies in the
new set, the timeout, a stop, ``reshard --abort``): the new set's sessions end, the old set delivers
as before. From step 2 on it completes. See docs/resharding.md.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import msgspec

from shardrunner.bus.protocol import Delivery
from shardrunner.clock import Clock
from shardrunner.cluster.plan import plan
from shardrunner.cluster.supervisor.book import SessionBook
from shardrunner.cluster.supervisor.delivery import DeliveryTable
from shardrunner.cluster.supervisor.link import WorkerLink
from shardrunner.cluster.supervisor.model import DesiredSlot, Slot
from shardrunner.cluster.supervisor.reconcile import Reconciler
from shardrunner.gateway.platform import ResizablePlan, Resize
from shardrunner.protocol import lifecycle
from shardrunner.protocol.keys import ConnKey
from shardrunner.protocol.lifecycle import Notice

log = logging.getLogger("shardrunner.supervisor")

#: Added to twice the start limit's ideal time, when ``timeout`` is 0.
TIMEOUT_SLACK_S: Final = 300.0


class Phase(enum.Enum):
    WARMING = "warming"
    SWITCHING = "switching"
    DRAINING = "draining"
    DONE = "done"
    ABORTED = "aborted"


#: The switch: which set changes to which mode, and what that means, in order.
STEPS: Final = (
    ("old", Delivery.DEDUPE, "the old shards mark their events for the bots' dedupe"),
    ("new", Delivery.DEDUPE, "the new shards deliver beside the old ones; sends go to the new shards"),
    ("old", Delivery.MUTE, "the old shards stop delivering"),
    ("new", Delivery.LIVE, "the new shards deliver alone; the old shards close"),
)


class ReshardStatus(msgspec.Struct):
    """What ``status`` shows of the running (or the last) reshard."""

    platform: str
    phase: str
    current: int
    count: int
    generation: int
    #: New connections ready with all their routing keys, of ``count``.
    ready: int
    keys_pending: int
    #: Events of the new set held back from the bots so far (while it warms up).
    withheld: int
    step: int
    step_text: str
    elapsed_s: float
    #: Seconds the start limit needs at best for the new set.
    ideal_s: float
    reason: str
    outcome: str | None


@dataclass(eq=False)
class Run:
    """One reshard."""

    resize: Resize
    old: ResizablePlan
    new: ResizablePlan
    old_slots: list[int]
    new_slots: list[int]
    started: float
    deadline: float
    phase: Phase = Phase.WARMING
    #: Index in :data:`STEPS` of the last step sent (-1: none yet), its version, when it was applied.
    step: int = -1
    version: int = 0
    applied_at: float | None = None
    outcome: str | None = None
    #: When it ended (done or aborted): the elapsed time stops there.
    ended: float | None = None
    withheld: dict[ConnKey, int] = field(default_factory=dict)

    def conns(self, which: str) -> list[ConnKey]:
        return self.old.conns if which == "old" else self.new.conns

    def slots(self, which: str) -> list[int]:
        return self.old_slots if which == "old" else self.new_slots


class Resharder:
    """Runs at most one reshard at a time, one :meth:`step` per turn of the supervisor's loop."""

    def __init__(
        self,
        *,
        reconciler: Reconciler,
        book: SessionBook,
        delivery: DeliveryTable,
        link: WorkerLink,
        clock: Clock,
        workers: int,
        busy: Callable[[], bool],
        on_switch: Callable[[ResizablePlan, ResizablePlan], None],
        on_done: Callable[[ResizablePlan, ResizablePlan], None],
    ) -> None:
        self.reconciler = reconciler
        self.book = book
        self.delivery = delivery
        self.link = link
        self.clock = clock
        self.workers = workers
        self._busy = busy
        self._on_switch = on_switch
        self._on_done = on_done
        self.run: Run | None = None
        #: The supervisor's lifecycle fan-out (reshard started, switched, aborted); set by it.
        self.notify: Callable[[Notice], None] = _ignore
        #: Set while no switch runs (a reload waits for it: it follows a switch, never cuts into one).
        self.calm = asyncio.Event()
        self.calm.set()

    @property
    def active(self) -> bool:
        """A reshard is under way (warming, switching or draining its old set)."""
        return self.run is not None and self.run.phase in (Phase.WARMING, Phase.SWITCHING, Phase.DRAINING)

    @property
    def switched(self) -> bool:
        """The new set delivers (step 2 sent): the reshard can only complete."""
        return self.run is not None and self.run.step >= 1 and self.run.phase is not Phase.ABORTED

    # -- start --------------------------------------------------------------------------------
    def start(self, old: ResizablePlan, resize: Resize) -> str:
        """Start the reshard ``resize`` of ``old`` (checked already); the sentence for the user."""
        if self.active:
            raise RuntimeError("a reshard is under way")
        new = old.resize(resize.count)
        now = self.clock.monotonic()
        timeout = old.policy.timeout or 2 * resize.seconds + TIMEOUT_SLACK_S
        base = max((s.index for s in self.reconciler.slots), default=-1) + 1
        slots = [
            Slot(base + i, DesiredSlot(conns))
            for i, conns in enumerate(plan(new.conns, min(self.workers, len(new.conns))))
        ]
        old_slots = [s.index for s in self.reconciler.slots if set(s.desired.conns) & set(old.conns)]
        self.run = Run(resize, old, new, old_slots, [s.index for s in slots], now, now + timeout)
        # Two copies of one event are received by the two sets within the lag between them: within
        # half a step, or the switch's guarantees do not hold anyway (see the module).
        self.delivery.window = old.policy.overlap / 2
        # Held from their first event: set before their workers are assigned.
        self.delivery.change({c: Delivery.HOLD for c in new.conns}, (), self.link)
        self.reconciler.add_slots(slots)
        message = (
            f"resharding {old.name} from {resize.current} to {resize.count} shards ({resize.reason}); "
            f"{resize.count} identifies, at best {resize.seconds:.0f} s"
        )
        log.info("%s", message)
        self._notice(lifecycle.RESHARD_STARTED, run=self.run, reason=resize.reason)
        return message

    def _notice(self, kind: str, *, run: Run | None, **more: object) -> None:
        if run is None:
            return
        fields = {"platform": run.old.name, "from": run.resize.current, "to": run.resize.count}
        self.notify(Notice(kind, None, fields | {"generation": run.new.generation, **more}))

    # -- the step -----------------------------------------------------------------------------
    def step(self) -> None:
        run = self.run
        if run is None:
            return
        now = self.clock.monotonic()
        self._count_withheld(run)
        if run.phase is Phase.WARMING:
            if now > run.deadline:
                self.abort(
                    f"the new shards were not ready within {run.deadline - run.started:.0f} s "
                    f"({self._ready_count(run)}/{len(run.new.conns)} ready)"
                )
            elif (
                self._ready(run.new.conns, keys=True)
                and self._ready(run.old.conns)
                and self._members_joined(run)
                and not self._busy()
            ):
                run.phase = Phase.SWITCHING
                self.calm.clear()
                log.info("reshard: every new shard is ready with all its guilds; switching")
                self._send_step(run, 0)
        elif run.phase is Phase.SWITCHING:
            self._step_switch(run, now)
        elif run.phase is Phase.DRAINING and all(self.reconciler.finished(i) for i in run.old_slots):
            self._drop_slots(run.old_slots, run.old.conns)
            run.phase = Phase.DONE
            run.ended = now
            run.outcome = (
                f"resharded {run.old.name} from {run.resize.current} to {run.resize.count} shards "
                f"in {now - run.started:.0f} s"
            )
            log.info("%s", run.outcome)
        elif (
            run.phase is Phase.ABORTED
            and run.new_slots
            and all(self.reconciler.finished(i) for i in run.new_slots)
        ):
            self._drop_slots(run.new_slots, run.new.conns)
            run.new_slots = []

    def _step_switch(self, run: Run, now: float) -> None:
        which = STEPS[run.step][0]
        slots = [self.reconciler.slot(i) for i in run.slots(which)]
        if run.applied_at is None:
            if not self.delivery.applied(slots, run.version):
                return
            run.applied_at = now
        if run.step == len(STEPS) - 1:
            self._finish_old(run)
            return
        if now - run.applied_at < run.old.policy.overlap:
            return
        if not (self._ready(run.new.conns) and self._ready(run.old.conns)) or self._busy():
            return  # a resume's replay is delivered in this step's mode first
        self._send_step(run, run.step + 1)

    def _send_step(self, run: Run, index: int) -> None:
        which, mode, text = STEPS[index]
        run.step, run.applied_at = index, None
        slots = [self.reconciler.slot(i) for i in run.slots(which)]
        last = index == len(STEPS) - 1  # the new set delivers alone: each connection says so
        run.version = self.delivery.change({c: mode for c in run.conns(which)}, slots, self.link, switch=last)
        log.info("reshard step %d/%d: %s", index + 1, len(STEPS), text)
        if index == 1:
            self._on_switch(run.old, run.new)
            self._notice(lifecycle.RESHARD_SWITCHED, run=run)

    def complete_now(self) -> None:
        """Finish a switch that has passed step 2 at once (the cluster is stopping)."""
        run = self.run
        if run is not None and run.phase is Phase.SWITCHING and self.switched:
            self._finish_old(run)

    def _finish_old(self, run: Run) -> None:
        self._on_done(run.old, run.new)
        self.delivery.forget(run.old.conns)
        for index in run.old_slots:
            self.reconciler.finish(index, run.old.policy.drain)
        run.phase = Phase.DRAINING
        self.calm.set()
        log.info("reshard switched: the old shards close; their workers drain, then exit")

    def _drop_slots(self, indexes: list[int], conns: list[ConnKey]) -> None:
        for index in indexes:
            self.reconciler.remove_slot(index)
            self.book.group_stats.pop(index, None)
        self.book.forget(conns)
        self.delivery.forget(conns)

    # -- abort --------------------------------------------------------------------------------
    def abort(self, why: str) -> str:
        """Give the reshard up (before the switch): the new set's sessions end, the old set goes on."""
        run = self.run
        if run is None or run.phase not in (Phase.WARMING, Phase.SWITCHING):
            raise RuntimeError("no reshard to abort")
        if self.switched:
            raise RuntimeError("the new shards deliver already: the reshard completes")
        if run.step == 0:
            old_slots = [self.reconciler.slot(i) for i in run.old_slots]
            self.delivery.change({c: Delivery.LIVE for c in run.old.conns}, old_slots, self.link)
        self.delivery.forget(run.new.conns)
        for index in run.new_slots:
            self.reconciler.finish(index, 0.0)
        run.phase = Phase.ABORTED
        run.ended = self.clock.monotonic()
        self.calm.set()
        run.outcome = f"reshard aborted: {why}; the {run.resize.current} old shards go on"
        log.error("%s", run.outcome)
        self._notice(lifecycle.RESHARD_ABORTED, run=run, reason=why)
        return run.outcome

    def on_failed(self, conn: ConnKey) -> bool:
        """A connection closed fatally: True if that aborts the reshard (a new one before the switch)."""
        run = self.run
        return (
            run is not None
            and run.phase in (Phase.WARMING, Phase.SWITCHING)
            and not self.switched
            and conn in set(run.new.conns)
        )

    # -- what it knows ------------------------------------------------------------------------
    def _ready(self, conns: list[ConnKey], *, keys: bool = False) -> bool:
        reports = self.book.reports
        for conn in conns:
            r = reports.get(conn)
            if r is None or r.state != "ready" or (keys and r.keys_pending):
                return False
        return True

    def _members_joined(self, run: Run) -> bool:
        """Every consumer group's members on the old workers are members on the new ones too: the
        two copies of an event must reach the same member (one process dedupes them), and a
        member's keys are chosen among the members each worker knows."""
        stats = self.book.group_stats
        old: dict[str, int] = {}
        for index in run.old_slots:
            for g in stats.get(index, ()):
                old[g.name] = max(old.get(g.name, 0), g.members)
        for index in run.new_slots:
            new = {g.name: g.members for g in stats.get(index, ())}
            if any(new.get(name, 0) < members for name, members in old.items()):
                return False
        return True

    def _ready_count(self, run: Run) -> int:
        reports = self.book.reports
        return sum(
            1
            for c in run.new.conns
            if (r := reports.get(c)) is not None and r.state == "ready" and not r.keys_pending
        )

    def _count_withheld(self, run: Run) -> None:
        for conn in run.new.conns:
            r = self.book.reports.get(conn)
            if r is not None:
                run.withheld[conn] = max(run.withheld.get(conn, 0), r.withheld)

    def status(self) -> ReshardStatus | None:
        run = self.run
        if run is None:
            return None
        reports = self.book.reports
        pending = sum(r.keys_pending for c in run.new.conns if (r := reports.get(c)) is not None)
        step_text = STEPS[run.step][2] if run.step >= 0 else ""
        return ReshardStatus(
            platform=run.old.name,
            phase=run.phase.value,
            current=run.resize.current,
            count=run.resize.count,
            generation=run.new.generation,
            ready=self._ready_count(run) if run.phase is Phase.WARMING else len(run.new.conns),
            keys_pending=pending,
            withheld=sum(run.withheld.values()),
            step=run.step + 1,
            step_text=step_text,
            elapsed_s=(run.ended if run.ended is not None else self.clock.monotonic()) - run.started,
            ideal_s=run.resize.seconds,
            reason=run.resize.reason,
            outcome=run.outcome,
        )


def _ignore(notice: Notice) -> None:
    """The notify of a resharder nobody listens to."""
