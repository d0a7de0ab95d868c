"""What this host tells the others (its record in Redis), ``status --all`` and the ``endpoints``
answer with every host's workers: views of the host agent, read from its last beat (no Redis call)."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from shardrunner.cluster.hosts.directory import BusWorker, HostInfo
from shardrunner.curve import advertised

if TYPE_CHECKING:
    from shardrunner.cluster.supervisor.hosts import HostAgent

RESHARD_REFUSED = (
    "resharding a bot that runs on several hosts is not supported yet: stop the hosts, start them "
    "with the new shard count"
)
CHANNELS_REFUSED = (
    "changing the channels of a bot that runs on several hosts is not supported yet: change the "
    "channel list on every host and restart them one at a time"
)


def info(agent: HostAgent) -> HostInfo:
    workers = [
        BusWorker(w["endpoint"], list(w["conns"]), int(w["slot"]), int(w["generation"]), w.get("tcp", ""))
        for w in agent.sup.local_endpoints()["workers"]
    ]
    state = "Redis down" if agent.down else agent.sup.state
    return HostInfo(
        name=agent.name,
        role=agent.role,
        capacity=agent.sup.settings.workers,
        control=control_endpoint(agent),
        local=agent.sup.run_dir.control_endpoint,
        workers=workers,
        blocks=sorted(agent.held),
        pid=os.getpid(),
        started=agent.started,
        status=state,
    )


def control_endpoint(agent: HostAgent) -> str:
    """This host's control socket on TCP as bots elsewhere reach it ("" when there is none)."""
    control = agent.sup.control
    if control is None or not control.tcp_endpoint:
        return ""
    return advertised(control.tcp_endpoint, agent.sup.settings.advertise)


def status(agent: HostAgent) -> dict[str, Any]:
    """This host and the others as the last beat saw them (no Redis call)."""
    hosts = []
    for h in agent.hosts:
        hosts.append(
            {
                "name": h.name,
                "role": h.role,
                "capacity": h.capacity,
                "status": h.status,
                "blocks": h.blocks,
                "conns": sum(len(w.conns) for w in h.workers),
                "workers": len(h.workers),
                "pid": h.pid,
                "uptime_s": max(0.0, time.time() - h.started) if h.started else None,
                "me": h.name == agent.name,
            }
        )
    leases = [
        {
            "block": b,
            "conns": agent.layout.describe(b),
            "host": (agent.holders[b].host if b in agent.holders else None),
            "epoch": (agent.holders[b].epoch if b in agent.holders else None),
            "ttl": (round(agent.holders[b].ttl, 1) if b in agent.holders else None),
        }
        for b in range(len(agent.layout.blocks))
    ]
    return {
        "name": agent.name,
        "role": agent.role,
        "coordinator": agent.coordinator.url,
        "down": agent.down,
        "blocks": len(agent.layout.blocks),
        "held": sorted(agent.held),
        "lease_ttl": agent.ttl,
        "hosts": hosts,
        "leases": leases,
    }


def endpoints(agent: HostAgent, local: dict[str, Any]) -> dict[str, Any]:
    """The ``endpoints`` answer with every host's workers (bots on any host see them all)."""
    workers = list(local["workers"])
    seen = {w["endpoint"] for w in workers}
    for h in agent.hosts:
        if h.name == agent.name:
            continue
        for w in h.workers:
            if w.endpoint not in seen:
                seen.add(w.endpoint)
                entry: dict[str, Any] = {
                    "slot": w.slot,
                    "generation": w.generation,
                    "endpoint": w.endpoint,
                    "conns": w.conns,
                    "host": h.name,
                }
                if w.tcp:
                    entry["tcp"] = w.tcp
                workers.append(entry)
    hosts = [
        {"name": h.name, "control": h.control, "local": h.local} for h in agent.hosts if h.control or h.local
    ]
    return {**local, "workers": workers, "hosts": hosts}
