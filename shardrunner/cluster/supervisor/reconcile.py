"""The reconcile loop: the only writer of worker state.

Each :meth:`Reconciler.step` reads the observations (exit statuses, hellos, pongs, handoffs) and
moves every slot one step toward its :class:`~.model.DesiredSlot`: start a worker where none runs
(after the crash backoff), assign a worker that said hello, kill the hung, and when a slot's
desired generation is newer than its worker (a reload) overlap the two: the replacement boots, the
old worker hands the sessions over, the replacement resumes them and, once ready, the old worker
retires. A replacement that does not boot, or is not ready in time, gives the sessions back. A
stop makes every slot ``standby``: each worker hands its sessions over and exits.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from typing import Final

from shardrunner.clock import Clock
from shardrunner.cluster import messages as m
from shardrunner.cluster.exitcodes import BOOT_FAILED
from shardrunner.cluster.plan import span
from shardrunner.cluster.supervisor.book import SessionBook
from shardrunner.cluster.supervisor.link import WorkerLink
from shardrunner.cluster.supervisor.model import Slot, SupervisorSettings, Worker, WorkerState
from shardrunner.cluster.supervisor.overlap import BOOT_TIMEOUT_S, STOP_TIMEOUT_S, ReloadSteps
from shardrunner.cluster.supervisor.spawner import Spawner
from shardrunner.protocol import lifecycle
from shardrunner.protocol.envelope import SessionSnapshot
from shardrunner.protocol.keys import ConnKey
from shardrunner.protocol.lifecycle import Notice

log = logging.getLogger("shardrunner.supervisor")

PING_EVERY_S: Final = 1.0
KILL_GRACE_S: Final = 5.0
MAX_BACKOFF_S: Final = 60.0
#: A worker ready this long resets its slot's backoff: the next crash waits the first delay again.
HEALTHY_AFTER_S: Final = 30.0
#: A stopping worker that exited is waited for this long more if its HandedOff is not in yet (it
#: may still be on the socket, read after the exit status).
HANDOFF_LINGER_S: Final = 1.0
#: Exited workers remembered, so that their last messages still reach the book.
EXITED_KEPT: Final = 64

S = WorkerState
#: Make the Assign of a worker: its connections and the sessions they resume.
AssignFactory = Callable[[Worker, list[ConnKey], list[SessionSnapshot]], m.Assign]


class Reconciler(ReloadSteps):
    """Steps the workers toward the desired state of every slot."""

    def __init__(
        self,
        slots: list[Slot],
        *,
        settings: SupervisorSettings,
        clock: Clock,
        spawner: Spawner,
        link: WorkerLink,
        book: SessionBook,
        make_assign: AssignFactory,
        on_gone: Callable[[Worker], None],
        on_release: Callable[[Worker], None],
        on_fail: Callable[[str], None],
    ) -> None:
        self.slots = slots
        self.settings = settings
        self.clock = clock
        self.spawner = spawner
        self.link = link
        self.book = book
        self.make_assign = make_assign
        self.on_gone = on_gone
        self.on_release = on_release
        self.on_fail = on_fail
        self.workers: dict[bytes, Worker] = {}
        self.exited: dict[bytes, Worker] = {}
        self.next_generation = 1
        self.stopping = False
        self.stopped = asyncio.Event()
        #: slot -> what a reload of it waits for: None when converged, else why it rolled back.
        self.changes: dict[int, asyncio.Future[str | None]] = {}
        self._nonce = 0
        self._last_ping = -PING_EVERY_S
        #: The supervisor's lifecycle fan-out (a worker crashed); set by it.
        self.notify: Callable[[Notice], None] = _ignore

    # -- changes of the desired state (called by reload and stop) -----------------------------
    def replace(self, index: int) -> asyncio.Future[str | None]:
        """Want a newer worker in slot ``index`` (a reload of it); the future says how it went."""
        slot = self.slot(index)
        fut: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        slot.handover = (0, 0)
        if self.stopping:
            fut.set_result("the cluster is stopping")
            return fut
        if slot.desired.standby or slot.current is None or slot.current.state is not S.RUNNING:
            fut.set_result(None)  # nothing to hand over: the slot (re)starts with a new worker anyway
            return fut
        slot.desired.generation = self.next_generation
        self.changes[index] = fut
        return fut

    def stop(self) -> None:
        """Want no worker anywhere: every one hands its sessions over and exits."""
        self.stopping = True
        for slot in self.slots:
            slot.desired.standby = True

    # -- slots coming and going (a reshard's sets) ----------------------------------------------
    def slot(self, index: int) -> Slot:
        """The slot numbered ``index`` (KeyError if there is none)."""
        for slot in self.slots:
            if slot.index == index:
                return slot
        raise KeyError(index)

    def add_slots(self, slots: list[Slot]) -> None:
        """Run these slots too (their workers start at the next step)."""
        self.slots.extend(slots)

    def finish(self, index: int, drain: float) -> None:
        """Want no worker in slot ``index`` any more: its worker ends its sessions (they are not
        resumed), keeps what durable groups have not acknowledged for up to ``drain`` seconds, and
        exits. The slot stays listed until :meth:`finished` says so."""
        slot = self.slot(index)
        slot.desired.standby = True
        self._settle_change(slot, "its shards are being retired")
        now = self.clock.monotonic()
        for w in slot.workers():
            if w.gone or w.state in (S.FINISHING, S.KILLING):
                continue
            self.on_release(w)
            if w.hello:
                self.link.send(w.identity, m.Finish(drain))
                w.state = S.FINISHING
                w.deadline = now + drain + STOP_TIMEOUT_S
            else:
                w.handle.send_signal(signal.SIGTERM)
                w.state = S.RETIRING
                w.deadline = now + STOP_TIMEOUT_S
        slot.candidate = slot.previous = slot.returning = None
        slot.handoff_asked = False

    def finished(self, index: int) -> bool:
        """No worker of slot ``index`` is left."""
        return not any(w.slot == index for w in self.workers.values())

    def remove_slot(self, index: int) -> None:
        self.slots[:] = [s for s in self.slots if s.index != index]

    # -- the step ------------------------------------------------------------------------------
    def step(self) -> None:
        now = self.clock.monotonic()
        self._reap(now)
        self._liveness(now)
        if self.stopping:
            self._step_stop(now)
            return
        for slot in self.slots:
            self._step_slot(slot, now)

    def find(self, identity: bytes) -> Worker | None:
        """The worker with ``identity``, living or lately exited."""
        return self.workers.get(identity) or self.exited.get(identity)

    def _reap(self, now: float) -> None:
        for worker in list(self.workers.values()):
            code = worker.handle.poll()
            if code is None:
                continue
            worker.exit_code = code
            worker.exited_at = now
            worker.state = S.EXITED
            del self.workers[worker.identity]
            self.exited[worker.identity] = worker
            while len(self.exited) > EXITED_KEPT:
                del self.exited[next(iter(self.exited))]
            self.on_gone(worker)

    def _liveness(self, now: float) -> None:
        ping = now - self._last_ping >= PING_EVERY_S
        if ping:
            self._last_ping = now
            self._nonce += 1
        for w in self.workers.values():
            if w.state in (S.KILLING, S.RETIRING, S.FINISHING):
                if w.deadline is not None and now >= w.deadline and not w.killed:
                    log.warning("worker %d (pid %d) did not exit in time: killing it", w.slot, w.pid)
                    w.handle.send_signal(signal.SIGKILL)
                    w.killed = True
                if w.state is not S.FINISHING or w.killed:
                    continue
            if not w.hello:
                continue
            if now - w.last_pong > self.settings.hung_after:
                log.error(
                    "worker %d (pid %d) is hung (no pong for %.0f s): killing it",
                    w.slot,
                    w.pid,
                    now - w.last_pong,
                )
                w.state = S.KILLING
                w.deadline = now + KILL_GRACE_S
                w.handle.send_signal(signal.SIGTERM)
                continue
            if ping:
                self.link.send(w.identity, m.Ping(self._nonce))

    def _spawn(self, slot: Slot, now: float) -> Worker:
        generation = self.next_generation
        self.next_generation += 1
        handle = self.spawner.spawn(slot.index, generation, self.link.endpoint)
        worker = Worker(slot.index, generation, handle, started_at=now, deadline=now + BOOT_TIMEOUT_S)
        worker.last_pong = now
        self.workers[worker.identity] = worker
        what = f"for shards {span(slot.desired.conns)}" if slot.desired.conns else "with no connection yet"
        log.info("worker %d (pid %d) starting %s", slot.index, worker.pid, what)
        return worker

    def _assign(self, slot: Slot, worker: Worker, snapshots: list[SessionSnapshot] | None = None) -> None:
        conns = slot.desired.conns
        if snapshots is None:
            snapshots = self.book.resume_from(conns)
        self.link.send(worker.identity, self.make_assign(worker, conns, snapshots))
        worker.state = S.RUNNING
        worker.ready = False
        worker.deadline = None

    def _retire(self, worker: Worker, now: float) -> None:
        if worker.gone:
            return
        self.on_release(worker)
        if worker.hello:
            worker.handed_off = None
            self.link.send(worker.identity, m.Handoff(exit=True))
        else:
            worker.handle.send_signal(signal.SIGTERM)
        worker.state = S.RETIRING
        worker.deadline = now + STOP_TIMEOUT_S

    def _step_slot(self, slot: Slot, now: float) -> None:
        if self.stopping:
            return  # an earlier slot failed the cluster: the next step stops every worker
        if slot.desired.standby:
            if slot.current is not None and slot.current.gone:
                slot.current = None  # a finished slot: nothing is restarted
            return
        if slot.candidate is not None or slot.previous is not None or slot.returning is not None:
            self._step_reload(slot, now)
            return
        w = slot.current
        if w is None:
            if now >= slot.next_start_at:
                slot.current = self._spawn(slot, now)
            return
        if w.gone:
            self._lost(slot, w, now)
            return
        if w.state is S.BOOTING:
            if w.hello:
                self._assign(slot, w)
            elif w.deadline is not None and now > w.deadline:
                self.on_fail(f"worker {slot.index} did not start within {BOOT_TIMEOUT_S:.0f} s")
            return
        if w.state is not S.RUNNING:
            return
        if w.generation < slot.desired.generation:
            slot.candidate = self._spawn(slot, now)  # a reload: overlap the old and the new
            return
        if w.ready and slot.backoff and now - w.started_at > HEALTHY_AFTER_S:
            slot.backoff = 0.0
        self._settle_change(slot, None)

    def _lost(self, slot: Slot, w: Worker, now: float) -> None:
        """The slot's worker is gone without being asked to go."""
        slot.current = None
        code = w.exit_code if w.exit_code is not None else 0
        if not w.hello or code == BOOT_FAILED:
            self.on_fail(f"worker {slot.index} failed to start: {w.handle.last_words()}")
            return
        how = f"signal {-code}" if code < 0 else f"status {code}"
        self.book.mark(slot.desired.conns, "down")  # nobody runs them until the replacement reports
        slot.backoff = min(MAX_BACKOFF_S, max(self.settings.worker_backoff, slot.backoff * 2))
        slot.next_start_at = now + slot.backoff
        log.warning(
            "worker %d (pid %d) died with %s; replacing it in %.1f s, its %d shards will resume",
            slot.index,
            w.pid,
            how,
            slot.backoff,
            len(slot.desired.conns),
        )
        conns = [str(c) for c in slot.desired.conns]
        self.notify(
            Notice(
                lifecycle.WORKER_CRASHED,
                None,
                {"slot": slot.index, "pid": w.pid, "reason": how, "conns": conns},
            )
        )

    def _settle_change(self, slot: Slot, outcome: str | None) -> None:
        fut = self.changes.pop(slot.index, None)
        if fut is not None and not fut.done():
            fut.set_result(outcome)

    def _kill(self, worker: Worker, now: float) -> None:
        if not worker.gone:
            worker.handle.send_signal(signal.SIGKILL)
            worker.killed = True
            worker.state = S.RETIRING
            worker.deadline = now

    # -- stop ----------------------------------------------------------------------------------
    def _step_stop(self, now: float) -> None:
        for slot in self.slots:
            self._settle_change(slot, "the cluster is stopping")
            slot.current = slot.candidate = slot.previous = slot.returning = None
            slot.handoff_asked = False
        for w in self.workers.values():
            if w.state is S.FINISHING:
                # Its sessions are ended already; what it still holds for absent bots goes now.
                w.deadline = min(w.deadline or now, now + STOP_TIMEOUT_S)
            elif w.state is not S.RETIRING and w.state is not S.KILLING:
                self._retire(w, now)
        # Gone, or killed and given the grace to go: a stop never waits for ever.
        waiting = [
            w for w in self.workers.values() if not (w.killed and now > (w.deadline or now) + KILL_GRACE_S)
        ]
        lingering = [
            w
            for w in self.exited.values()
            if w.hello and w.handed_off is None and not w.killed and now <= w.exited_at + HANDOFF_LINGER_S
        ]
        if not waiting and not lingering:
            self.stopped.set()

    def live(self) -> list[Worker]:
        return sorted(self.workers.values(), key=lambda w: (w.slot, w.generation))


def _ignore(notice: Notice) -> None:
    """The notify of a reconciler nobody listens to."""
