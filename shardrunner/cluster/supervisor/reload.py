"""The rolling reload: a new desired generation for one slot after the other.

The reconcile loop converges each slot (replacement boots, sessions handed over, replacement
ready, old worker retires) or rolls it back; the reload stops at the first slot rolled back and
says why. What it says at the end comes from the handovers: how many connections had a session to
resume and how many had none yet (a reload during start-up) and identify, and which workers had no
connection (several hosts: only the blocks this host holds now count; a slot whose blocks were lost
before or during its reload is replaced without waiting for them).
"""

from __future__ import annotations

import logging

from shardrunner.cluster.supervisor.reconcile import Reconciler

log = logging.getLogger("shardrunner.supervisor")


async def rolling_reload(reconciler: Reconciler) -> str:
    """Replace every slot's worker, one slot at a time; the sentence for the user."""
    resumed = identify = 0
    empty: list[int] = []
    for slot in reconciler.slots:
        outcome = await reconciler.replace(slot.index)
        if outcome:
            log.error("reload stopped: %s", outcome)
            return f"reload stopped at worker {slot.index}: {outcome}"
        resumed, identify = resumed + slot.handover[0], identify + slot.handover[1]
        if not slot.desired.conns:
            empty.append(slot.index)
    message = "reload done: every worker replaced, " + (
        "every shard resumed"
        if not identify
        else f"{resumed} shards resumed, {identify} had no session yet and identify"
    )
    if empty:
        message += (
            f"; worker{'s' if len(empty) > 1 else ''} {', '.join(map(str, empty))} had no shard "
            "(not held here now, another host's): nothing to wait for"
        )
    log.info("%s", message)
    return message
