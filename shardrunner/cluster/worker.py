"""A worker process: runs the shards the supervisor assigns it, on uvloop.

Started by the supervisor as ``python -m shardrunner.cluster.worker --endpoint E --slot N
--generation G`` (spawned, never forked). It connects a DEALER socket to the supervisor, says
:class:`~shardrunner.cluster.messages.Hello`, and waits for an
:class:`~shardrunner.cluster.messages.Assign` with the token, its shard ids and the sessions to
resume. From then on it reports every shard twice a second (the supervisor keeps the latest
sessions, so a replacement can resume them after a crash), answers pings, asks the supervisor's
identify queue before every IDENTIFY, and hands its sessions back on request.

Exit codes: 0 after a clean stop or handoff, :data:`BOOT_FAILED` when it could not start (the
supervisor then stops with the reason instead of restarting it forever), 1 on a crash.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import logging
import os
import signal
import sys
import time
from typing import Final

import msgspec
import zmq
import zmq.asyncio

from shardrunner.bus import protocol as bp
from shardrunner.bus.router import Limits, Router
from shardrunner.bus.server import BusServer
from shardrunner.cluster import messages as m
from shardrunner.cluster.plan import span
from shardrunner.gateway.discord import (
    DiscordShard,
    PayloadTooLarge,
    ShardFatalError,
    ShardNotReady,
    ShardOptions,
    ShardState,
)
from shardrunner.protocol.compression import Compression
from shardrunner.protocol.envelope import Event, SessionSnapshot

log = logging.getLogger("shardrunner.worker")

BOOT_FAILED: Final = 3
ASSIGN_TIMEOUT_S: Final = 30.0
REPORT_INTERVAL_S: Final = 0.5
#: With no ping from the supervisor for this long, the worker hands its shards off and exits.
ORPHAN_AFTER_S: Final = 30.0
#: At a handoff, how long the bots get to acknowledge what they were sent.
DRAIN_TIMEOUT_S: Final = 3.0


class RemoteIdentifyQueue:
    """The supervisor's identify queue, seen from a worker: one request and one grant per identify."""

    def __init__(self, send: object) -> None:
        self._send = send
        self._waiting: dict[int, asyncio.Future[None]] = {}

    async def acquire(self, shard_id: int) -> None:
        fut = self._waiting.get(shard_id)
        if fut is None or fut.done():
            fut = asyncio.get_running_loop().create_future()
            self._waiting[shard_id] = fut
            self._post(m.IdentifyRequest(shard_id))
        # A cancelled wait leaves the request standing: the grant it gets is handed back at once.
        await asyncio.shield(fut)
        # The shard sends IDENTIFY in the same step as this returns: the window starts now.
        self._post(m.IdentifySent(shard_id))

    def granted(self, shard_id: int) -> None:
        fut = self._waiting.pop(shard_id, None)
        if fut is not None and not fut.done():
            fut.set_result(None)
        else:
            self._post(m.IdentifyDone(shard_id, ready=False))  # nobody waits for it any more

    def release(self, shard_id: int, *, ready: bool) -> None:
        self._post(m.IdentifyDone(shard_id, ready=ready))

    def _post(self, message: m.Message) -> None:
        self._send(message)  # type: ignore[operator]


class Worker:
    """One worker process's life: boot, run the assigned shards, hand them off, exit."""

    def __init__(self, endpoint: str, slot: int, generation: int) -> None:
        self.endpoint = endpoint
        self.slot = slot
        self.generation = generation
        self.shards: dict[int, DiscordShard] = {}
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.num_shards = 0
        self._outbox: asyncio.Queue[m.Message] = asyncio.Queue()
        self._stop = asyncio.Event()
        self._exit_code = 0
        self._last_ping = time.monotonic()
        self._exiting: asyncio.Future[None] | None = None
        self._bus_tasks: list[asyncio.Future[None]] = []
        self._guilds_sent: dict[int, int] = {}
        self.bus: BusServer | None = None
        self._ctx: zmq.asyncio.Context | None = None
        self.queue = RemoteIdentifyQueue(self._outbox.put_nowait)

    async def run(self) -> int:
        ctx = self._ctx = zmq.asyncio.Context()
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.IDENTITY, f"{self.slot}:{self.generation}".encode())
        sock.setsockopt(zmq.LINGER, 2000)
        try:
            sock.connect(self.endpoint)
            await sock.send(m.encode(m.Hello(self.slot, self.generation, os.getpid())))
            # A reload's replacement waits for its sessions while the old worker hands them off:
            # meanwhile it answers pings (alive, not ready).
            deadline = time.monotonic() + ASSIGN_TIMEOUT_S
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not await sock.poll(int(left * 1000)):
                    log.error("worker %d: no assignment within %.0f s", self.slot, ASSIGN_TIMEOUT_S)
                    return BOOT_FAILED
                first = m.decode(await sock.recv())
                if isinstance(first, m.Assign):
                    break
                if isinstance(first, m.Ping):
                    await sock.send(m.encode(m.Pong(first.nonce, ready=False)))
            self._start(first)
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGTERM, self._on_sigterm)
            sender = asyncio.ensure_future(self._send_loop(sock))
            receiver = asyncio.ensure_future(self._receive_loop(sock))
            reporter = asyncio.ensure_future(self._report_loop())
            await self._stop.wait()
            await self._outbox.join()  # everything said before exiting reaches the supervisor
            for task in (receiver, reporter, sender, *self._bus_tasks):
                task.cancel()
            return self._exit_code
        finally:
            if self.bus is not None:
                self.bus.close()
            sock.close()
            ctx.term()

    # -- shards -----------------------------------------------------------------------------
    def _start(self, assign: m.Assign) -> None:
        self.num_shards = assign.num_shards
        self._guilds_sent.clear()
        if self.bus is None and assign.bus_endpoint and self._ctx is not None:
            limits = Limits(max_events=assign.queue_events, max_bytes=assign.queue_bytes)
            router = Router(limits)
            for name, events in assign.groups:
                router.declare(name, events)
            self.bus = BusServer(self._ctx, assign.bus_endpoint, router, self._run_command)
            self.bus.bind()
            self._bus_tasks.append(asyncio.ensure_future(self.bus.run()))
        options = ShardOptions(
            token=assign.token,
            intents=assign.intents,
            compression=Compression(assign.compression),
            large_threshold=assign.large_threshold,
        )
        snapshots = {s.shard_id: s for s in assign.snapshots if s.num_shards == assign.num_shards}
        for shard_id in assign.shard_ids:
            shard = DiscordShard(
                shard_id,
                assign.num_shards,
                options,
                self._sink,
                gateway_url=assign.gateway_url,
                identify_queue=self.queue,
                snapshot=snapshots.get(shard_id),
            )
            self.shards[shard_id] = shard
            self.tasks[shard_id] = asyncio.ensure_future(self._run_shard(shard))
        log.info(
            "worker %d: running shards %s (%d to resume)",
            self.slot,
            span(assign.shard_ids),
            sum(1 for s in assign.shard_ids if s in snapshots),
        )

    def _sink(self, event: Event) -> None:
        if self.bus is not None:
            self.bus.publish(event)

    async def _run_command(self, command: bp.Command) -> str | None:
        shard = self.shards.get(command.shard)
        if shard is None:
            return f"shard {command.shard} is not on this worker (it may be moving: retry)"
        try:
            await shard.send(command.op, command.d, timeout=command.timeout)
        except (PayloadTooLarge, ShardNotReady, ValueError) as exc:
            return str(exc)
        return None

    async def _run_shard(self, shard: DiscordShard) -> None:
        try:
            await shard.run()
        except ShardFatalError as exc:
            self._outbox.put_nowait(m.ShardFailed(shard.shard_id, exc.code, str(exc)))
        except Exception:
            log.exception("worker %d: shard %d crashed", self.slot, shard.shard_id)
            self._exit_code = 1
            self._stop.set()

    async def _handoff(self) -> list[SessionSnapshot]:
        results = await asyncio.gather(
            *(shard.close(handoff=True) for shard in self.shards.values()), return_exceptions=True
        )
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        snapshots = [r for r in results if isinstance(r, SessionSnapshot)]
        if self.bus is not None:
            # Give the bots a moment to acknowledge what they have; what stays unacknowledged is
            # resumed from, so the gateway replays it to the next worker (bots drop duplicates).
            await self.bus.drain(DRAIN_TIMEOUT_S)
            low = self.bus.router.low_water()
            snapshots = [
                msgspec.structs.replace(s, seq=min(s.seq, low[key] - 1))
                if (key := (s.shard_id, s.session_id)) in low
                else s
                for s in snapshots
            ]
        self.shards.clear()
        self.tasks.clear()
        return snapshots

    def _on_sigterm(self) -> None:
        # Stopped from outside (the supervisor died, or a service manager): keep the sessions
        # resumable, say so if anyone listens, and exit.
        self._exiting = asyncio.ensure_future(self._handoff_and_exit())

    async def _handoff_and_exit(self) -> None:
        snapshots = await self._handoff()
        self._outbox.put_nowait(m.HandedOff(snapshots))
        self._stop.set()

    # -- the supervisor link --------------------------------------------------------------------
    async def _send_loop(self, sock: zmq.asyncio.Socket) -> None:
        while True:
            message = await self._outbox.get()
            try:
                await sock.send(m.encode(message))
            finally:
                self._outbox.task_done()

    async def _receive_loop(self, sock: zmq.asyncio.Socket) -> None:
        while True:
            message = m.decode(await sock.recv())
            if isinstance(message, m.Ping):
                self._last_ping = time.monotonic()
                shards = self.shards.values()
                ready = bool(shards) and all(s.state is ShardState.READY for s in shards)
                self._outbox.put_nowait(m.Pong(message.nonce, ready))
            elif isinstance(message, m.IdentifyGrant):
                self.queue.granted(message.shard_id)
            elif isinstance(message, m.Handoff):
                snapshots = await self._handoff()
                self._outbox.put_nowait(m.HandedOff(snapshots))
                if message.exit:
                    self._stop.set()
            elif isinstance(message, m.Assign) and not self.shards:
                self._start(message)  # sessions handed back after an aborted reload

    async def _report_loop(self) -> None:
        while True:
            if self.shards:
                low = self._low_water()
                groups = self._group_reports()
                self._outbox.put_nowait(
                    m.Report([self._report(s) for s in self.shards.values()], low, groups)
                )
            if time.monotonic() - self._last_ping > ORPHAN_AFTER_S:
                log.error(
                    "worker %d: no word from the supervisor for %.0f s, handing off",
                    self.slot,
                    ORPHAN_AFTER_S,
                )
                await self._handoff_and_exit()
                return
            await asyncio.sleep(REPORT_INTERVAL_S)

    def _low_water(self) -> dict[int, int]:
        """Per shard, the oldest seq of its current session that a group has not acknowledged."""
        if self.bus is None:
            return {}
        held = self.bus.router.low_water()
        out = {}
        for shard in self.shards.values():
            seq = held.get((shard.shard_id, shard.session_id or ""))
            if seq is not None:
                out[shard.shard_id] = seq
        return out

    def _group_reports(self) -> list[m.GroupReport]:
        if self.bus is None:
            return []
        return [
            m.GroupReport(
                name=g.name,
                events=None if g.events is None else sorted(g.events),
                members=len(g.members),
                held_events=g.held_events,
                held_bytes=g.held_bytes,
                inflight=sum(x.inflight_events for x in g.members.values()),
                dropped=g.dropped_total,
            )
            for g in self.bus.router.groups.values()
            if g.durable  # ephemeral groups (tail) are not the cluster's to remember
        ]

    def _report(self, shard: DiscordShard) -> m.ShardReport:
        c = shard.counters
        changed = self._guilds_sent.get(shard.shard_id) != c.guilds_version
        self._guilds_sent[shard.shard_id] = c.guilds_version
        return _report(shard, sorted(c.guilds) if changed else None)


def _report(shard: DiscordShard, guild_ids: list[int] | None) -> m.ShardReport:
    c = shard.counters
    return m.ShardReport(
        shard_id=shard.shard_id,
        state=shard.state.value,
        seq=shard.seq,
        session_id=shard.session_id,
        resume_url=shard.resume_url,
        events_in=c.events_in,
        heartbeat_latency=c.heartbeat_latency,
        guilds=c.guild_count,
        resumes=c.resumes,
        identifies=c.identifies,
        last_resume_at=c.last_resume_at,
        guild_ids=guild_ids,
    )


def _die_with_parent() -> None:
    """Ask Linux to send SIGTERM when the supervisor dies, so no worker outlives it unnoticed."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A shardrunner worker (started by the supervisor).")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--slot", type=int, required=True)
    parser.add_argument("--generation", type=int, required=True)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format=f"%(asctime)s %(levelname)s worker {args.slot}.{args.generation}: %(message)s",
    )
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the supervisor's to handle
    try:
        preload = os.environ.get("SHARDRUNNER_WORKER_PRELOAD")
        if preload:
            for module in preload.split(","):
                __import__(module.strip())
        import uvloop
    except Exception as exc:
        log.error("worker %d cannot start: %s: %s", args.slot, type(exc).__name__, exc)
        sys.exit(BOOT_FAILED)
    worker = Worker(args.endpoint, args.slot, args.generation)
    # Everything imported so far lives as long as the process: keep it out of the cyclic garbage
    # collector's full passes, which otherwise walk it again and again under load
    # (docs/performance.md, decision 9).
    gc.freeze()
    sys.exit(uvloop.run(worker.run()))


if __name__ == "__main__":
    main()
