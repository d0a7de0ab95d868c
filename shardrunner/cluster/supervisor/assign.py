"""The ``Assign`` a worker gets: its connections, each platform's part config, the sessions to
resume, its bus endpoint, the consumer groups and the delivery modes of its connections."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shardrunner.cluster import messages as m
from shardrunner.cluster.supervisor.model import Worker
from shardrunner.protocol.envelope import SessionSnapshot
from shardrunner.protocol.keys import ConnKey

if TYPE_CHECKING:
    from shardrunner.cluster.supervisor.core import Supervisor


def make_assign(
    sup: Supervisor, worker: Worker, conns: list[ConnKey], snapshots: list[SessionSnapshot]
) -> m.Assign:
    s = sup.settings
    delivery, worker.delivery_version = sup.delivery.for_assign(conns)
    hosts = sup.hosts
    parts = [
        # The plan's config as it is now (Twitch: with the channels added since the start).
        m.PlatformPart(name, [c for c in conns if c.platform == name], p.part_config())
        for name, p in sup.plans.items()
        if any(c.platform == name for c in conns)
    ]
    return m.Assign(
        parts=parts,
        snapshots=snapshots,
        bus_endpoint=sup.run_dir.bus_endpoint(worker.slot, worker.generation),
        groups=sorted(sup.book.groups.items()),
        queue_events=s.queue_events,
        queue_bytes=s.queue_bytes,
        delivery=delivery,
        delivery_version=worker.delivery_version,
        dedupe_window=sup.delivery.window,
        # Several hosts: each connection's lease epoch (stamped on its events), and the fence.
        epochs=[(c, hosts.epoch_of(c)) for c in conns] if hosts is not None else [],
        lease_until=hosts.until if hosts is not None else 0.0,
    )
