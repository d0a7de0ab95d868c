"""This host among the bot's hosts (``--coordinator``): leases, sessions and placement in Redis.

The agent runs beside the reconcile loop, one beat a second. Each beat it renews the leases it
holds (and tells its workers how long they may deliver: ``LeaseUntil``), publishes its host record,
reads the other hosts and the lease table, and follows :func:`~shardrunner.cluster.hosts.placement.decide`:
claim free blocks (a standby claims a dead host's), or give one block up. Then it writes the
sessions of its connections that changed (rewound to the low water), so any host can resume them.

- A block taken: its sessions come from Redis (or from this host's book, when this host held it
  right before: the epoch it gets is the next one), its connections go to a worker (:mod:`.moves`).
- A block given up: its workers close its connections resumably, their sessions go to Redis, then
  its lease is released, so the taker resumes at once instead of waiting for the TTL.
- A block lost (renewal refused: the lease ran out and another host may hold it now, or Redis was
  unreachable until the lease's local deadline): its connections stop, resumable, and nothing of
  theirs is written: the next holder's sessions stand. Redis restarted empty while the leases had
  run out: lost too (another host may have held them since, under an epoch Redis forgot), and their
  sessions go to Redis where it has none; the next claim (this host's or another's) gets a new
  epoch, above any given before (:mod:`~shardrunner.cluster.hosts.leases`), and resumes them.

Redis down: what runs keeps running until the leases' local deadline; claims, releases and
identifies wait; the status says why.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Final

from shardrunner.cluster import messages as m
from shardrunner.cluster.hosts.directory import Directory, HostInfo
from shardrunner.cluster.hosts.layout import Layout, LayoutMismatch, agree, make_layout
from shardrunner.cluster.hosts.leases import Holder, LastHolder, Leases
from shardrunner.cluster.hosts.placement import decide
from shardrunner.cluster.hosts.sessions import SessionStore
from shardrunner.cluster.supervisor import handover, hostview, moves
from shardrunner.cluster.supervisor.handover import RELEASE_TIMEOUT_S, Giving
from shardrunner.cluster.supervisor.model import Worker
from shardrunner.cluster.supervisor.queues import share_start_limits
from shardrunner.identify.coordinator import Coordinator, CoordinatorDown
from shardrunner.identify.redis_budget import RedisBudgetQueue
from shardrunner.protocol import lifecycle
from shardrunner.protocol.keys import ConnKey
from shardrunner.protocol.lifecycle import Notice
from shardrunner.settings.hosts import default_host_name

if TYPE_CHECKING:
    from shardrunner.cluster.supervisor.core import Supervisor

log = logging.getLogger("shardrunner.hosts")

BEAT_S: Final = 1.0
#: A host waits this long after its first record before claiming, so hosts started together see
#: each other first (and split the blocks instead of one taking them all).
SETTLE_S: Final = 2 * BEAT_S


def lease_margin(ttl: float) -> float:
    """How long before its lease could run out a host stops delivering (clock rates, scheduling)."""
    return max(0.5, ttl * 0.1)


class HostAgent:
    """This host's part in a bot that runs on several hosts."""

    def __init__(self, sup: Supervisor, url: str) -> None:
        s = sup.settings
        self.sup = sup
        self.name: str = s.host_name or default_host_name(s.run_dir)
        self.ttl: float = s.lease_ttl
        self.margin = lease_margin(self.ttl)
        self.coordinator = Coordinator(url, s.cluster_name)
        self.layout: Layout = make_layout(sup.conns, s.lease_blocks)
        self.directory = Directory(self.coordinator, ttl=self.ttl)
        self.leases = Leases(self.coordinator, self.name, ttl=self.ttl)
        self.store = SessionStore(self.coordinator, max_age=s.resume_window)
        self.role = "standby" if s.standby else "active"
        #: block -> the epoch of our lease on it.
        self.held: dict[int, int] = {}
        #: block -> the epoch we held it under last (to tell whether anyone held it since).
        self.last_epoch: dict[int, int] = {}
        self.giving: dict[int, Giving] = {}
        self.epochs: dict[ConnKey, int] = {}
        #: Local monotonic time our leases end at the latest (0: none held yet).
        self.until = 0.0
        self.down: str | None = None
        self.agreed = False
        self.registered_at: float | None = None
        self.hosts: list[HostInfo] = []
        self.holders: dict[int, Holder] = {}
        self.last: dict[int, LastHolder] = {}
        #: Since when every block has a holder (None: not all have).
        self.all_held_since: float | None = None
        self.started = time.time()
        self.put_cache: dict[ConnKey, tuple[str, int, str]] = {}
        #: The book's routing-key list of each connection as last written (compared by identity).
        self.keys_cache: dict[ConnKey, list[int | str] | None] = {}
        self._groups_put: dict[str, list[str] | None] = {}
        self._task: asyncio.Task[None] | None = None
        self.stopped = False
        #: The coordinator's epoch as last seen (another one: Redis lost its data), and until when
        #: claims wait after that.
        self._epoch = ""
        self.blackout_until = 0.0
        #: Workers that fenced themselves with no renewal in sight (identities).
        self.fenced: set[bytes] = set()
        #: The leases ran out unrenewed (the connections are stopped until a renewal).
        self.lapsed = False
        #: The shared budgets in use (``[budget, key, in use, limit, waiting]``), read each beat.
        self.budget_usage: list[tuple[str, str, int, int, int]] = []

    # -- what others read ---------------------------------------------------------------------
    def conns(self) -> list[ConnKey]:
        """The connections this host holds (given up ones until they are released)."""
        return self.layout.conns_of(sorted(self.held))

    def describe(self) -> str:
        """The start's log line: what this host is among the others."""
        return (
            f"host {self.name} ({self.role}) of cluster {self.sup.settings.cluster_name}: "
            f"{self.layout.conns} connections in {len(self.layout.blocks)} blocks shared with the other "
            f"hosts, {len(self.sup.slots)} workers that take the blocks this host claims"
        )

    def epoch_of(self, conn: ConnKey) -> int:
        return self.epochs.get(conn, 0)

    def gate_ready(self) -> bool:
        """The identify gate's cluster condition: every block has had a holder for a beat (so every
        host's first identifies are in line, in Redis, before the first goes)."""
        return self.all_held_since is not None and time.monotonic() - self.all_held_since >= BEAT_S

    # -- start and stop -----------------------------------------------------------------------
    async def load_groups(self) -> None:
        """The durable groups declared on any host, so this host's workers keep events for them."""
        try:
            groups = await asyncio.wait_for(self.store.groups(), 3.0)
        except (CoordinatorDown, TimeoutError):
            return
        for name, events in groups.items():
            self.sup.book.groups.setdefault(name, events)

    def start(self) -> None:
        self._task = asyncio.ensure_future(self.run())

    async def close(self) -> None:
        """The host stops (its workers have handed every session over): write the sessions, release
        the leases, leave the directory. Redis down: the sessions are in the local state file, the
        leases run out after their TTL."""
        self.stopped = True
        if self._task is not None:
            self._task.cancel()
        try:
            held = dict(self.held)
            snaps = self.sup.book.resume_from(self.layout.conns_of(sorted(held)))
            await self.store.put(snaps)
            await self.leases.release(held)
            await self.directory.leave(self.name)
            if held:
                log.info("%d sessions written to the coordinator, %d leases released", len(snaps), len(held))
        except CoordinatorDown as exc:
            log.warning("%s: the leases run out in %.0f s, the sessions are saved here only", exc, self.ttl)
        finally:
            self.held.clear()
            await self.coordinator.close()

    # -- the beat -----------------------------------------------------------------------------
    async def run(self) -> None:
        while not self.stopped:
            began = time.monotonic()
            try:
                await self.beat()
                if self.down is not None:
                    log.warning("the coordinator is back: leases, claims and identifies go on")
                    # Every holder takes its leases back at its next beat before anyone claims.
                    self.blackout_until = max(self.blackout_until, time.monotonic() + 2 * BEAT_S)
                self.down = None
            except CoordinatorDown as exc:
                if self.down is None:
                    log.warning(
                        "%s: connections keep running until their leases end; claims, takeovers and "
                        "identifies wait",
                        exc,
                    )
                self.down = str(exc)
            except LayoutMismatch as exc:
                self.sup.fail(str(exc))
                return
            except Exception:
                log.exception("hosts: a beat failed")
            self.check_deadline(time.monotonic())
            self.check_giving(time.monotonic())
            await asyncio.sleep(max(0.05, BEAT_S - (time.monotonic() - began)))

    async def beat(self) -> None:
        if not self.agreed:
            await agree(self.coordinator, self.layout)
            await share_start_limits(self.sup)
            self.agreed = True
        await self.renew()
        await self.directory.publish(self.info())
        if self.registered_at is None:
            self.registered_at = time.monotonic()
        self.hosts = await self.directory.hosts()
        self.holders, self.last = await self.leases.table(len(self.layout.blocks))
        if len(self.holders) < len(self.layout.blocks):
            self.all_held_since = None
        elif self.all_held_since is None:
            self.all_held_since = time.monotonic()
        self.check_forgotten()
        if not self.sup.stopping and time.monotonic() >= self.blackout_until:
            await self.place()
        await self.put_sessions()
        queue = self.sup.budgets.queue if self.sup.budgets is not None else None
        if isinstance(queue, RedisBudgetQueue) and queue.budgets:  # status reads them without a call
            self.budget_usage = await queue.usage()

    async def renew(self) -> None:
        await handover.renew(self)

    def set_until(self, until: float) -> None:
        self.until = until
        for slot in self.sup.slots:
            for w in slot.workers():
                if w.hello and not w.gone:
                    self.sup.link.send(w.identity, m.LeaseUntil(until))
        assert self.sup.reconciler is not None
        for identity in list(self.fenced):  # fenced before this renewal: they get theirs back
            worker = self.sup.reconciler.find(identity)
            self.fenced.discard(identity)
            if worker is not None and not worker.gone:
                handover.refence(self, worker)

    async def place(self) -> None:
        assert self.registered_at is not None
        decision = decide(
            me=self.name,
            standby=self.role == "standby",
            settled=time.monotonic() - self.registered_at >= SETTLE_S,
            blocks=len(self.layout.blocks),
            held=set(self.held),
            holders=self.holders,
            last=self.last,
            live=self.hosts,
            releasing=bool(self.giving),
        )
        claim = await self.sup.hooks.take_leases(decision.claim, self.last, self.name)
        if claim:
            got = await self.leases.claim(claim)
            if got:
                log.info("%s: took %d blocks", decision.why, len(got))
                await self.take(got)
        for block in decision.release[:1]:
            if block in self.held and block not in self.giving:
                log.info("%s", decision.why)
                self.give(block)

    # -- taking, giving, losing ----------------------------------------------------------------
    async def take(self, got: dict[int, int]) -> None:
        """Run the blocks just claimed, resuming every session there is."""
        asked = time.monotonic()
        conns = self.layout.conns_of(sorted(got))
        stored = {s.conn: s for s in await self.store.get(conns)}
        book = self.sup.book
        for block, epoch in sorted(got.items()):
            ours = self.last_epoch.get(block) == epoch - 1  # nobody held it since we did
            for conn in self.layout.blocks[block]:
                if ours and conn in book.snapshots:
                    continue
                snap = stored.get(conn)
                if snap is not None:
                    book.snapshots[conn] = snap
                    book.keys[conn] = list(snap.keys)
                else:
                    book.snapshots.pop(conn, None)
                book.low_water.pop(conn, None)  # the stored seq is rewound already
            self.held[block] = epoch
            self.last_epoch[block] = epoch
            self.sup.lifecycle.emit(Notice(lifecycle.LEASE_TAKEN, None, {"block": block, "epoch": epoch}))
            for conn in self.layout.blocks[block]:
                self.epochs[conn] = epoch
        if self.role == "standby":
            self.role = "active"
            log.info("standby host %s is active now", self.name)
        self.set_until(asked + self.ttl - self.margin)
        identify = 0
        for block in sorted(got):
            block_conns = self.layout.blocks[block]
            snaps = book.resume_from(block_conns)
            resumed = {snap.conn for snap in snaps}
            # Only the platforms with identify limits ask the gate (Twitch's connections never do).
            identify += sum(1 for c in block_conns if c not in resumed and self._identifies(c))
            slot = moves.add(
                self.sup.slots,
                block_conns,
                plans=self.sup.plans,
                snapshots=snaps,
                epochs=self.epochs,
                link=self.sup.link,
                delivery=self.sup.delivery.modes,
            )
            log.info(
                "block %d (%s, epoch %d) on worker %d: %d to resume",
                block,
                self.layout.describe(block),
                got[block],
                slot.index,
                len(snaps),
            )
        if self.sup.grants is not None:  # the first take arms the gate (later ones find it open)
            self.sup.grants.expect(identify, time.monotonic())
        self.sup.wake()

    def _identifies(self, conn: ConnKey) -> bool:
        plan = self.sup.plans.get(conn.platform)
        return plan is not None and bool(plan.limits)

    def give(self, block: int) -> None:
        """Hand ``block`` to whoever takes it next: close resumably, write its sessions, release."""
        conns = self.layout.blocks[block]
        asked = moves.remove(self.sup.slots, conns, self.sup.link)
        self.giving[block] = Giving(self.held[block], conns, time.monotonic() + RELEASE_TIMEOUT_S, set(asked))
        self.sup.wake()

    def lose(self, blocks: list[int], why: str) -> None:
        """Stop ``blocks`` at once: they are (or may be) another host's now. Nothing is written."""
        for block in blocks:
            conns = self.layout.blocks[block]
            moves.remove(self.sup.slots, conns, self.sup.link)
            self.held.pop(block, None)
            self.giving.pop(block, None)
            for conn in conns:
                self.epochs.pop(conn, None)
            self.sup.lifecycle.emit(Notice(lifecycle.LEASE_LOST, None, {"block": block, "reason": why}))
        log.warning(
            "lost %d blocks (%s): their connections stop, resumable by their next holder", len(blocks), why
        )
        self.sup.wake()

    def forgot(self) -> bool:
        """Whether Redis lost its data since the last beat read it (another epoch)."""
        return bool(self._epoch) and self.coordinator.epoch != self._epoch

    def check_forgotten(self) -> None:
        """Redis came back without its data (another epoch): write everything again, and claim
        nothing for one TTL, so that every holder takes its leases back first (their renewals do)
        instead of another host identifying sessions it does not know."""
        epoch = self.coordinator.epoch
        if self._epoch and epoch != self._epoch:
            log.warning(
                "the coordinator lost its data: hosts take their leases back; no claim for %.0f s", self.ttl
            )
            self.blackout_until = time.monotonic() + self.ttl
            self.put_cache.clear()
            self.keys_cache.clear()
            self._groups_put = {}
        self._epoch = epoch

    def check_deadline(self, now: float) -> None:
        """Leases past their local deadline without a renewal: the workers stopped their connections
        (each fenced itself at that deadline), before anyone could take the leases. The blocks stay
        this host's to renew: a renewal that takes them back (nobody took them meanwhile: Redis was
        down for everyone) gives the workers their connections again; one that finds them taken
        drops them (:meth:`renew`)."""
        lapsed = bool(self.held) and bool(self.until) and now >= self.until
        if lapsed and not self.lapsed:
            log.warning(
                "the leases of %d blocks ran out unrenewed: their connections stopped, resumable; they "
                "go on if a renewal finds them still this host's",
                len(self.held),
            )
        self.lapsed = lapsed

    # -- handovers (:mod:`.handover`) -----------------------------------------------------------
    def on_released(self, worker: Worker, message: m.Released) -> None:
        handover.on_released(self, worker, message)

    def check_giving(self, now: float) -> None:
        handover.check_giving(self, now)

    async def put_sessions(self) -> None:
        await handover.put_sessions(self)

    # -- the record and the status (:mod:`.hostview`) --------------------------------------------
    def info(self) -> HostInfo:
        return hostview.info(self)

    def status(self) -> dict[str, Any]:
        return hostview.status(self)

    def endpoints(self, local: dict[str, Any]) -> dict[str, Any]:
        return hostview.endpoints(self, local)
