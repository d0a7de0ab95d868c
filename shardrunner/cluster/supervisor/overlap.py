"""The reload's part of the reconcile loop: overlap, handover, rollback.

A slot whose desired generation is newer than its worker gets a replacement; the old worker hands
its sessions over once the replacement said hello; the replacement resumes them and, once ready,
the old worker retires. A replacement that does not boot, or is not ready in time, gives the
sessions back. Mixed into :class:`~.reconcile.Reconciler`, the only writer of worker state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from shardrunner.cluster import messages as m
from shardrunner.cluster.supervisor.book import SessionBook
from shardrunner.cluster.supervisor.link import WorkerLink
from shardrunner.cluster.supervisor.model import Slot, SupervisorSettings, Worker, WorkerState
from shardrunner.protocol.envelope import SessionSnapshot

log = logging.getLogger("shardrunner.supervisor")

S = WorkerState
BOOT_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


class ReloadSteps:
    """The reload's steps of one slot (see the module)."""

    settings: SupervisorSettings
    link: WorkerLink
    book: SessionBook
    on_release: Callable[[Worker], None]

    if TYPE_CHECKING:  # the Reconciler's, which these steps use

        def _assign(
            self, slot: Slot, worker: Worker, snapshots: list[SessionSnapshot] | None = None
        ) -> None: ...

        def _retire(self, worker: Worker, now: float) -> None: ...

        def _kill(self, worker: Worker, now: float) -> None: ...

        def _settle_change(self, slot: Slot, outcome: str | None) -> None: ...

    def _step_reload(self, slot: Slot, now: float) -> None:
        if slot.candidate is not None:
            self._step_candidate(slot, slot.candidate, now)
        elif slot.returning is not None:
            self._step_returning(slot, slot.returning, now)
        else:
            self._step_overlap(slot, now)

    def _step_candidate(self, slot: Slot, new: Worker, now: float) -> None:
        """Before the handover: the replacement boots, then the old worker hands its sessions over."""
        old = slot.current
        assert old is not None
        if not slot.handoff_asked:
            if old.gone:
                # The old worker died before the handover: the replacement simply takes the slot.
                slot.current, slot.candidate = new, None
                return
            if new.hello and not new.gone:
                new.state = S.STANDBY
                new.deadline = None
                old.handed_off = None
                old.state = S.HANDING_OFF
                old.deadline = now + STOP_TIMEOUT_S
                slot.handoff_asked = True
                self.on_release(old)
                self.link.send(old.identity, m.Handoff(exit=False))
            elif new.gone or (new.deadline is not None and now > new.deadline):
                why = new.handle.last_words() if new.gone else f"no hello within {BOOT_TIMEOUT_S:.0f} s"
                self._kill(new, now)
                slot.candidate = None
                self._roll_back(
                    slot, old, f"the replacement did not start ({why}); the old worker keeps its shards"
                )
            return
        if old.handed_off is None and not old.gone and now <= (old.deadline or now):
            return  # waiting for the sessions
        slot.handoff_asked = False
        slot.candidate = None
        if new.gone:  # died on standby: the old worker takes its sessions back
            slot.current = None
            self._take_back(slot, old, now, "the replacement exited before it took the shards")
            return
        # From the handoff, or (the old worker gone or late) from its last reports.
        snapshots = self.book.resume_from(slot.desired.conns)
        slot.handover = (len(snapshots), len(slot.desired.conns) - len(snapshots))
        self._assign(slot, new, snapshots)
        slot.current, slot.previous = new, old
        if not old.gone:
            old.state = S.IDLE
            old.deadline = None
        slot.ready_deadline = now + self.settings.ready_timeout

    def _step_overlap(self, slot: Slot, now: float) -> None:
        """The replacement runs; the old worker idles until it is ready, and retires then. A slot
        left with no connection (several hosts: this host lost their blocks, before or during the
        reload) has nothing to be ready for: the old worker retires at once."""
        new, old = slot.current, slot.previous
        assert new is not None
        assert old is not None
        if not new.gone and (new.ready or not slot.desired.conns):
            self._retire(old, now)
            slot.previous = None
            self._settle_change(slot, None)
        elif new.gone or now > slot.ready_deadline:
            self._retire(new, now)  # it hands the sessions back, and exits
            slot.current, slot.returning = None, new

    def _step_returning(self, slot: Slot, back: Worker, now: float) -> None:
        """The replacement was not ready in time: once it handed the sessions back, the old worker
        takes them."""
        if back.handed_off is None and not back.gone and now <= (back.deadline or now):
            return
        old = slot.previous
        assert old is not None
        slot.returning = slot.previous = None
        why = f"the replacement's shards were not ready within {self.settings.ready_timeout:.0f} s"
        self._take_back(slot, old, now, why)

    def _take_back(self, slot: Slot, old: Worker, now: float, why: str) -> None:
        if old.gone:
            slot.current = None  # nobody is left: the slot restarts as after a crash
            slot.next_start_at = now
            self._roll_back(slot, old, f"{why}, and the old worker is gone too")
            return
        slot.current = old
        self._assign(slot, old)
        self._roll_back(slot, old, f"{why}; the old worker took them back")

    def _roll_back(self, slot: Slot, old: Worker, why: str) -> None:
        slot.desired.generation = old.generation  # the change is given up, not retried
        log.error("reload of worker %d rolled back: %s", slot.index, why)
        self._settle_change(slot, why)
