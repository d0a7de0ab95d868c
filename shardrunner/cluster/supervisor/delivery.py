"""The delivery mode of every connection that is not simply live, and which worker runs which version.

A reshard changes modes (:class:`~shardrunner.bus.protocol.Delivery`) set by set. Each change gets
a version; it goes to the workers that run the changed connections now (``SetDelivery``, answered
by ``DeliverySet``), and every later ``Assign`` carries the modes and version of its connections, so
a worker that replaces a crashed one (or a reload's replacement) starts in the mode its
connections are in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from shardrunner.bus.protocol import Delivery
from shardrunner.cluster import messages as m
from shardrunner.cluster.supervisor.link import WorkerLink
from shardrunner.cluster.supervisor.model import Slot, WorkerState
from shardrunner.protocol.keys import ConnKey


class DeliveryTable:
    """Modes by connection (live ones are not listed), and the version of the latest change."""

    def __init__(self) -> None:
        self.modes: dict[ConnKey, Delivery] = {}
        self.version = 0
        #: Seconds within which the two sets of a reshard receive one event (half the overlap):
        #: the client matches only copies received that close together.
        self.window = 0.0

    def of(self, conn: ConnKey) -> Delivery:
        return self.modes.get(conn, Delivery.LIVE)

    def for_assign(self, conns: Iterable[ConnKey]) -> tuple[list[tuple[ConnKey, Delivery]], int]:
        """The modes an ``Assign`` of ``conns`` carries, and the version they are."""
        modes = self.modes
        return [(c, modes[c]) for c in conns if c in modes], self.version

    def change(
        self,
        changes: Mapping[ConnKey, Delivery],
        slots: Iterable[Slot],
        link: WorkerLink,
        *,
        switch: bool = False,
    ) -> int:
        """Set the modes and tell the running workers of the slots holding them; the new version.

        ``switch``: this is a reshard's switch (its connections deliver alone from now on)."""
        self.version += 1
        for conn, mode in changes.items():
            if mode is Delivery.LIVE:
                self.modes.pop(conn, None)
            else:
                self.modes[conn] = mode
        for slot in slots:
            mine = [(c, changes[c]) for c in slot.desired.conns if c in changes]
            if not mine:
                continue
            for w in (slot.current, slot.previous):
                # The running worker, and a reload's old worker that may take the sessions back.
                if w is not None and not w.gone and w.hello and w.state is not WorkerState.BOOTING:
                    link.send(w.identity, m.SetDelivery(self.version, mine, self.window, switch))
        return self.version

    def forget(self, conns: Iterable[ConnKey]) -> None:
        for conn in conns:
            self.modes.pop(conn, None)

    @staticmethod
    def applied(slots: Iterable[Slot], version: int) -> bool:
        """Whether every slot's worker runs ``version`` or later (and runs at all)."""
        for slot in slots:
            w = slot.current
            if w is None or w.gone or w.state is not WorkerState.RUNNING or w.delivery_version < version:
                return False
        return True
