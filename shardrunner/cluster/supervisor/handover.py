"""What the next holder of a block needs: the renewals (and what a refused one loses), the sessions
written every beat (their routing keys only when those changed); and blocks leaving this host: the
workers' ``Released`` answers, the sessions written and the lease released once every worker answered
(or its time is up), and a worker that fenced itself while the host had renewed after all (it gets
its connections back)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from shardrunner.cluster import messages as m
from shardrunner.cluster.supervisor import moves
from shardrunner.cluster.supervisor.model import Worker
from shardrunner.identify.coordinator import CoordinatorDown
from shardrunner.protocol.envelope import SessionSnapshot
from shardrunner.protocol.keys import ConnKey

if TYPE_CHECKING:
    from shardrunner.cluster.supervisor.hosts import HostAgent

log = logging.getLogger("shardrunner.hosts")

#: A worker that does not answer a Release within this long: its last reports stand for it.
RELEASE_TIMEOUT_S: Final = 15.0


async def renew(agent: HostAgent) -> None:
    """Renew the leases held; the blocks refused are lost. A renewal past the leases' local deadline
    does not take back those Redis forgot (it restarted empty): another host may have held them
    since. Their sessions go to Redis where it has none, so that their next holder resumes them."""
    if not agent.held:
        return
    asked = time.monotonic()
    lapsed = bool(agent.until) and asked >= agent.until
    kept = await agent.leases.renew(dict(agent.held), lapsed=lapsed)
    lost = sorted(set(agent.held) - kept)
    if lost and agent.forgot():
        snaps = agent.sup.book.resume_from(agent.layout.conns_of(lost))
        await agent.store.put(snaps, only_new=True)
        agent.lose(lost, "the coordinator lost its data while its lease had run out")
    elif lost:
        agent.lose(lost, "its lease was taken by another host (it ran out unrenewed)")
    if agent.held:
        agent.set_until(asked + agent.ttl - agent.margin)


@dataclass(eq=False)
class Giving:
    epoch: int
    conns: list[ConnKey]
    deadline: float
    #: Workers asked for a Released that has not come yet.
    asked: set[bytes] = field(default_factory=set)
    #: Its sessions are being written and its lease released.
    writing: bool = False


def on_released(agent: HostAgent, worker: Worker, message: m.Released) -> None:
    """A worker answered a Release (or fenced itself): the sessions go to the book, and a block
    given up whose workers all answered is written and released."""
    agent.sup.book.on_handed_off(message.snapshots)
    for giving in agent.giving.values():
        giving.asked.discard(worker.identity)
    if message.fenced:
        refence(agent, worker)
    check_giving(agent, time.monotonic())


def refence(agent: HostAgent, worker: Worker) -> None:
    """A worker fenced itself (its lease deadline passed before a renewal reached it) and closed
    its connections. If the host renewed after all, the worker gets them back (resumed from the
    sessions it just answered with); if not, :meth:`check_deadline` drops them."""
    slot = next((s for s in agent.sup.slots if s.current is worker), None)
    if slot is None:
        return
    if time.monotonic() >= agent.until:
        # Not renewed (yet): if a renewal comes before the leases are dropped, it gets them back then.
        log.warning("worker %d stopped delivering: its lease ran out", worker.slot)
        agent.fenced.add(worker.identity)
        return
    agent.fenced.discard(worker.identity)
    held = set(agent.layout.conns_of(sorted(agent.held)))
    conns = [c for c in slot.desired.conns if c in held]
    log.warning(
        "worker %d fenced itself but the lease was renewed: it takes its %d back", worker.slot, len(conns)
    )
    agent.sup.link.send(worker.identity, m.LeaseUntil(agent.until))
    if conns:
        snaps = agent.sup.book.resume_from(conns)
        epochs = [(c, agent.epochs.get(c, 0)) for c in conns]
        modes = moves.modes_of(agent.sup.delivery.modes, conns)
        agent.sup.link.send(
            worker.identity, m.Adopt(moves.parts_of(agent.sup.plans, conns), snaps, epochs, modes)
        )


def check_giving(agent: HostAgent, now: float) -> None:
    for block, giving in list(agent.giving.items()):
        if giving.writing or (giving.asked and now < giving.deadline):
            continue
        giving.writing = True
        task = asyncio.ensure_future(_released(agent, block, giving))
        task.add_done_callback(_log_failure)


async def _released(agent: HostAgent, block: int, giving: Giving) -> None:
    snaps = agent.sup.book.resume_from(giving.conns)
    for _ in range(30):
        try:
            await agent.store.put(snaps)
            await agent.leases.release({block: giving.epoch})
            break
        except CoordinatorDown:
            await asyncio.sleep(1.0)  # the lease runs out meanwhile; the taker waits for it
    agent.held.pop(block, None)
    agent.giving.pop(block, None)
    for conn in giving.conns:
        agent.epochs.pop(conn, None)
        agent.put_cache.pop(conn, None)
        agent.keys_cache.pop(conn, None)
    log.info(
        "block %d (%s) given up: %d sessions written for its next holder",
        block,
        agent.layout.describe(block),
        len(snaps),
    )


async def put_sessions(agent: HostAgent) -> None:
    """Write the sessions that changed; their routing keys only when those changed (the
    book's list of them is replaced when a report brings new ones)."""
    mine = [c for b in sorted(agent.held) if b not in agent.giving for c in agent.layout.blocks[b]]
    book = agent.sup.book
    changed: list[SessionSnapshot] = []
    rekeyed: set[ConnKey] = set()
    for snap in book.resume_from(mine):
        value = (snap.session_id, snap.seq, snap.resume_url)
        keys = book.keys.get(snap.conn)
        if agent.put_cache.get(snap.conn) != value or agent.keys_cache.get(snap.conn) is not keys:
            changed.append(snap)
        if agent.keys_cache.get(snap.conn) is not keys:
            rekeyed.add(snap.conn)
    if changed:
        await agent.store.put(changed, keys_of=rekeyed)
        for snap in changed:
            agent.put_cache[snap.conn] = (snap.session_id, snap.seq, snap.resume_url)
            agent.keys_cache[snap.conn] = book.keys.get(snap.conn)
    groups = dict(agent.sup.book.groups)
    if groups != agent._groups_put:
        await agent.store.put_groups(groups)
        agent._groups_put = groups


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("hosts: giving a block up failed", exc_info=task.exception())
