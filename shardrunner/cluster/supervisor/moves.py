"""Connections moving in and out of this host's workers while they run (several hosts).

A block taken over (its lease claimed) goes to the worker slot with the fewest connections: the
slot's desired connections grow, and a running worker gets them with ``Adopt`` (the others on it are
not disturbed); a worker still starting gets them in its ``Assign``. A block given up or lost leaves
its slot the same way: ``Release`` closes just those connections resumably and the worker answers
``Released`` with their sessions. The reconcile loop reads the slots' desired connections as
always, so a worker that crashes meanwhile is replaced with what its slot holds now.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from shardrunner.bus.protocol import Delivery
from shardrunner.cluster import messages as m
from shardrunner.cluster.supervisor.link import WorkerLink
from shardrunner.cluster.supervisor.model import Slot, Worker, WorkerState
from shardrunner.gateway.platform import PlatformPlan
from shardrunner.protocol.envelope import SessionSnapshot
from shardrunner.protocol.keys import ConnKey

log = logging.getLogger("shardrunner.supervisor")


def steady(slot: Slot) -> Worker | None:
    """The slot's worker if it runs and no reload is under way (a worker that can take an
    ``Adopt`` or a ``Release`` now), else None."""
    w = slot.current
    if slot.candidate is not None or slot.previous is not None or slot.returning is not None:
        return None
    if w is None or not w.hello or w.gone or w.state is not WorkerState.RUNNING:
        return None
    return w


def least_loaded(slots: Iterable[Slot]) -> Slot:
    """The running slot with the fewest connections (steady ones first, then by index)."""
    live = [s for s in slots if not s.desired.standby]
    return min(live, key=lambda s: (steady(s) is None, len(s.desired.conns), s.index))


def parts_of(plans: Mapping[str, PlatformPlan], conns: list[ConnKey]) -> list[m.PlatformPart]:
    """``conns`` as the per-platform parts of an ``Assign`` or ``Adopt``."""
    return [
        m.PlatformPart(name, [c for c in conns if c.platform == name], p.part_config())
        for name, p in plans.items()
        if any(c.platform == name for c in conns)
    ]


def add(
    slots: list[Slot],
    conns: list[ConnKey],
    *,
    plans: Mapping[str, PlatformPlan],
    snapshots: list[SessionSnapshot],
    epochs: Mapping[ConnKey, int],
    link: WorkerLink,
    delivery: Mapping[ConnKey, Delivery] | None = None,
) -> Slot:
    """Run ``conns`` (one block) on the least loaded slot, in their ``delivery`` modes (those not
    listed: live); returns it."""
    slot = least_loaded(slots)
    slot.desired.conns = sorted(set(slot.desired.conns) | set(conns))
    worker = steady(slot)
    if worker is not None:
        mine = set(conns)
        link.send(
            worker.identity,
            m.Adopt(
                parts_of(plans, conns),
                [s for s in snapshots if s.conn in mine],
                [(c, epochs.get(c, 0)) for c in conns],
                modes_of(delivery or {}, conns),
            ),
        )
    return slot


def remove(slots: list[Slot], conns: list[ConnKey], link: WorkerLink) -> list[bytes]:
    """Stop running ``conns`` here: out of their slots' desired connections, and a ``Release`` to
    every worker that runs some of them. Returns the identities asked (their ``Released`` answers)."""
    gone = set(conns)
    asked = []
    for slot in slots:
        mine = [c for c in slot.desired.conns if c in gone]
        if not mine:
            continue
        slot.desired.conns = [c for c in slot.desired.conns if c not in gone]
        for worker in slot.workers():
            if worker.hello and not worker.gone:
                link.send(worker.identity, m.Release(mine))
                asked.append(worker.identity)
    return asked


def modes_of(
    delivery: Mapping[ConnKey, Delivery], conns: Iterable[ConnKey]
) -> list[tuple[ConnKey, Delivery]]:
    """The modes an ``Adopt`` of ``conns`` carries: theirs that are not live (backup readers: dedupe)."""
    return [(c, delivery[c]) for c in conns if c in delivery]
