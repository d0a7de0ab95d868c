"""The typed status (``shardrunner status``) and the ``endpoints`` answer.

Connections are listed by ``conn`` (``str(ConnKey)``) with ``platform``, ``shard``, ``count`` and
``generation`` beside it; the other fields are those the status had before connection keys (``id``
is the shard, ``keys`` the routing-key count (guilds on Discord): the CLI's table and scripts read them).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from shardrunner.cluster.plan import span
from shardrunner.cluster.supervisor.book import SessionBook
from shardrunner.cluster.supervisor.model import Slot, Worker, WorkerState
from shardrunner.cluster.supervisor.reshard import ReshardStatus
from shardrunner.gateway.platform import PlatformPlan
from shardrunner.protocol.keys import ConnKey

if TYPE_CHECKING:
    from shardrunner.cluster.supervisor.core import Supervisor


class SupervisorStatus(msgspec.Struct):
    pid: int
    state: str
    run_dir: str
    api_url: str
    gateway_url: str
    #: The built-in simulator's URL when the CLI started one (``--sim``), else None.
    simulator: str | None
    num_shards: int
    max_concurrency: int
    uptime_s: float
    error: str | None
    #: Per platform, what its plan describes (never a secret).
    platforms: dict[str, dict[str, Any]]


class WorkerStatus(msgspec.Struct):
    slot: int
    generation: int
    pid: int
    state: str
    ready: bool
    cpu_percent: float | None
    rss: int | None
    #: The slot's shard range for people (``0-3``), and its connections.
    shards: str
    conns: list[str]
    #: Events its controller's filter dropped before the bus, and per hook its failed calls
    #: (docs/controllers.md).
    filtered: int = 0
    hook_failures: dict[str, int] = {}
    #: Bots' messages its bus refused (docs/delivery.md, bad input).
    bus_rejected: int = 0


class ConnStatus(msgspec.Struct):
    conn: str
    platform: str
    shard: int
    count: int
    generation: int
    id: int
    worker: int
    state: str
    latency_ms: float | None
    events_per_s: float
    events: int
    keys: int
    resumes: int
    identifies: int
    crashes: int
    last_error: str | None
    last_resume_ago_s: float | None
    #: Routing keys its session announced that have not arrived yet (Discord: READY's guilds
    #: without their GUILD_CREATE), and its events held back from the bots (a reshard's new set).
    keys_pending: int = 0
    withheld: int = 0
    #: How its events reach the bots: live, hold, dedupe or mute (see docs/resharding.md).
    delivery: str = "live"
    #: What its platform shows beyond these (Twitch: role, login, channels, joining, failed).
    detail: dict[str, Any] | None = None
    #: Payloads or lines it could not read (dropped, or ended the connection; see docs/gateway.md).
    decode_errors: int = 0


class GroupStatus(msgspec.Struct):
    group: str
    members: int
    held_events: int
    held_bytes: int
    inflight: int
    dropped: int


class ClusterStatus(msgspec.Struct):
    supervisor: SupervisorStatus
    workers: list[WorkerStatus]
    shards: list[ConnStatus]
    groups: list[GroupStatus]
    #: The running reshard, or the last one (None: none since the start).
    reshard: ReshardStatus | None = None
    #: The budgets per key in use now (Twitch's JOINs and logins per account): ``[budget, key, in
    #: use, limit, waiting]`` each.
    budgets: list[tuple[str, str, int, int, int]] = []
    #: Several hosts (``--coordinator``): this host, every host, every block's lease, as this host's
    #: last beat saw them (``status --all`` prints them); None on one host.
    hosts: dict[str, Any] | None = None
    #: The controller (None: none): its class, the hooks it overrides, the supervisor's failed calls
    #: per hook (each worker's are in its own entry).
    controller: dict[str, Any] | None = None


def cluster_status(sup: Supervisor) -> ClusterStatus:
    """What ``shardrunner status`` shows of a supervisor (never the token)."""
    assert sup.reconciler is not None
    s = sup.settings
    by_index = {slot.index: slot for slot in sup.slots}
    return ClusterStatus(
        supervisor=supervisor_status(
            state=sup.state,
            run_dir=str(sup.run_dir.path),
            api_url=s.api_url,
            simulator=s.api_url.removesuffix("/api/v10") if s.sim else None,
            plans=sup.plans,
            started=sup.started,
            error=sup.error,
        ),
        workers=[worker_status(w, by_index[w.slot]) for w in sup.reconciler.live() if w.slot in by_index],
        shards=conn_statuses(sup.slots, sup.book, sup.clock.monotonic(), sup.delivery.modes),
        groups=group_statuses(sup.slots, sup.book),
        reshard=sup.resharder.status() if sup.resharder is not None else None,
        budgets=budget_usage(sup),
        hosts=sup.hosts.status() if sup.hosts is not None else None,
        controller=sup.hooks.status(),
    )


def budget_usage(sup: Supervisor) -> list[tuple[str, str, int, int, int]]:
    if sup.hosts is not None:
        return sup.hosts.budget_usage  # Redis's: read by the host agent each beat
    if sup.budgets is None:
        return []
    usage: list[tuple[str, str, int, int, int]] = getattr(sup.budgets.queue, "usage")()  # noqa: B009 - the local queue's, sync
    return usage


def worker_status(worker: Worker, slot: Slot) -> WorkerStatus:
    cpu, rss = worker.handle.usage()
    return WorkerStatus(
        slot=worker.slot,
        generation=worker.generation,
        pid=worker.pid,
        state=worker.state.value,
        ready=worker.ready,
        cpu_percent=cpu,
        rss=rss,
        shards=span(slot.desired.conns),
        conns=[str(c) for c in slot.desired.conns],
        filtered=worker.filtered,
        hook_failures=worker.hook_failures,
        bus_rejected=worker.bus_rejected,
    )


def conn_statuses(
    slots: list[Slot], book: SessionBook, now: float, delivery: Mapping[ConnKey, Any] | None = None
) -> list[ConnStatus]:
    out = []
    for slot in slots:
        if slot.desired.standby and slot.current is None:
            continue  # a finished set's slot, about to go
        for conn in slot.desired.conns:
            r = book.reports.get(conn)
            out.append(
                ConnStatus(
                    conn=str(conn),
                    platform=conn.platform,
                    shard=conn.shard,
                    count=conn.count,
                    generation=conn.generation,
                    id=conn.shard,
                    worker=slot.index,
                    state="closing" if slot.desired.standby else r.state if r else "starting",
                    latency_ms=None
                    if r is None or r.heartbeat_latency is None
                    else r.heartbeat_latency * 1000,
                    events_per_s=book.rates.get(conn, (0, 0.0, 0.0))[2],
                    events=r.events_in if r else 0,
                    keys=r.key_count if r else 0,
                    resumes=r.resumes if r else 0,
                    identifies=r.identifies if r else 0,
                    crashes=r.crashes if r else 0,
                    last_error=r.last_error if r else None,
                    last_resume_ago_s=None
                    if r is None or r.last_resume_at is None
                    else max(0.0, now - r.last_resume_at),
                    keys_pending=r.keys_pending if r else 0,
                    withheld=r.withheld if r else 0,
                    delivery=str(getattr((delivery or {}).get(conn), "value", "live")),
                    detail=r.detail if r else None,
                    decode_errors=r.decode_errors if r else 0,
                )
            )
    return out


def group_statuses(slots: list[Slot], book: SessionBook) -> list[GroupStatus]:
    live = {s.index for s in slots if s.current is not None}
    totals: dict[str, GroupStatus] = {}
    for g in book.slot_groups(live):
        t = totals.setdefault(g.name, GroupStatus(g.name, 0, 0, 0, 0, 0))
        t.members = max(t.members, g.members)
        t.held_events += g.held_events
        t.held_bytes += g.held_bytes
        t.inflight += g.inflight
        t.dropped += g.dropped
    return sorted(totals.values(), key=lambda t: t.group)


def supervisor_status(
    *,
    state: str,
    run_dir: str,
    api_url: str,
    simulator: str | None,
    plans: Mapping[str, PlatformPlan],
    started: float,
    error: str | None,
) -> SupervisorStatus:
    discord = plans.get("discord")
    return SupervisorStatus(
        pid=os.getpid(),
        state=state,
        run_dir=run_dir,
        api_url=api_url,
        gateway_url=str(getattr(discord, "gateway_url", "")),
        simulator=simulator,
        num_shards=sum(len(p.conns) for p in plans.values()),
        max_concurrency=int(getattr(discord, "max_concurrency", 1)),
        uptime_s=time.time() - started,
        error=error,
        platforms={name: p.describe() for name, p in plans.items()},
    )


def endpoints(
    slots: list[Slot], plans: Mapping[str, PlatformPlan], bus_endpoint: Callable[[int, int], str]
) -> dict[str, Any]:
    """The ``endpoints`` answer: the platforms, and per running worker its bus endpoint and connections."""
    workers = []
    for slot in slots:
        w = slot.current
        # A finishing worker (a reshard's old set) is still listed: bots take what it holds for them.
        serving = (WorkerState.RUNNING, WorkerState.FINISHING)
        if w is not None and w.state in serving and w.handle.poll() is None:
            entry = {
                "slot": slot.index,
                "generation": w.generation,
                "endpoint": bus_endpoint(w.slot, w.generation),
                "conns": [str(c) for c in slot.desired.conns],
            }
            if w.bus_tcp:
                entry["tcp"] = w.bus_tcp  # bots on other machines (CURVE)
            workers.append(entry)
    return {"platforms": {name: p.describe() for name, p in plans.items()}, "workers": workers}
