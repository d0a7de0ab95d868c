"""The supervisor: spawns workers, gives each a consecutive shard range, keeps them alive.

Its loop only reacts: signals are queued by their handlers and handled by the loop; every tick it
reaps exited workers, pings the living (a pong says alive, and ready when all its shards are), kills
the hung, and reconciles the running workers with the plan (one worker per slot). A worker that dies
at run time is replaced with backoff and its shards resume from their last reported sessions; a
worker that fails at boot stops the supervisor with the reason.

It owns the bot's identify queue (every worker asks it before every IDENTIFY), writes the session
table when it stops, and replaces workers one slot at a time on reload without re-identifying.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

import msgspec
import psutil
import zmq
import zmq.asyncio

from shardrunner.cluster import messages as m
from shardrunner.cluster import statefile
from shardrunner.cluster.control import COMMANDS, CommandError, control_endpoint
from shardrunner.cluster.plan import plan, span
from shardrunner.cluster.worker import BOOT_FAILED
from shardrunner.gateway.identify import LocalIdentifyQueue
from shardrunner.gateway.rest import GatewayBotError, fetch_gateway_bot
from shardrunner.protocol.envelope import SessionSnapshot

if TYPE_CHECKING:
    from shardrunner.cluster.settings import Settings

log = logging.getLogger("shardrunner.supervisor")

TICK_S: Final = 0.25
PING_EVERY_S: Final = 1.0
BOOT_TIMEOUT_S: Final = 30.0
KILL_GRACE_S: Final = 5.0
STOP_TIMEOUT_S: Final = 15.0
MAX_BACKOFF_S: Final = 60.0
#: The first identifies wait at most this long for every shard to ask, to start in shard order.
IDENTIFY_GATE_S: Final = 5.0


class ClusterError(RuntimeError):
    """The cluster cannot start or must stop; the message is one sentence for the user."""


@dataclass(eq=False)
class WorkerProc:
    """One worker process as the supervisor tracks it."""

    slot: int
    generation: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    started_at: float = field(default_factory=time.monotonic)
    state: str = "booting"  # booting, running, idle, retiring, killing
    hello: bool = False
    assign_on_hello: bool = True
    last_pong: float = field(default_factory=time.monotonic)
    ready: bool = False
    kill_deadline: float | None = None
    handed_off: asyncio.Future[list[SessionSnapshot]] | None = None
    ps: psutil.Process | None = None

    @property
    def identity(self) -> bytes:
        return f"{self.slot}:{self.generation}".encode()

    @property
    def pid(self) -> int:
        return self.proc.pid


@dataclass(eq=False)
class Slot:
    index: int
    shard_ids: list[int]
    worker: WorkerProc | None = None
    backoff: float = 0.0
    next_start_at: float = 0.0


def _retrieve_send_error(sent: asyncio.Future[Any]) -> None:
    if not sent.cancelled() and sent.exception() is not None:
        log.debug("a message to a worker was not sent: %s", sent.exception())


class Supervisor:
    """One cluster. ``exit_code = await Supervisor(settings).run()``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.run_dir = Path(settings.run_dir)
        self.token: str = settings.token or ""
        self.api_url: str = settings.api_url
        self.state = "starting"
        self.exit_code = 0
        self.error: str | None = None
        self.num_shards = 0
        self.gateway_url = ""
        self.max_concurrency = 1
        self.slots: list[Slot] = []
        self.workers: dict[bytes, WorkerProc] = {}
        self.snapshots: dict[int, SessionSnapshot] = {}
        self.reports: dict[int, m.ShardReport] = {}
        self.guild_ids: dict[int, list[int]] = {}
        #: Per shard, the oldest seq a consumer group had not acknowledged (from the last report).
        self.low_water: dict[int, int] = {}
        #: Consumer groups seen by any worker: name -> event names (None: all).
        self.groups: dict[str, list[str] | None] = {}
        self.group_reports: dict[
            int, list[m.GroupReport]
        ] = {}  # latest known per shard (reports carry changes only)
        self.rates: dict[int, tuple[int, float, float]] = {}  # shard -> (events, at, per second)
        self.queue: LocalIdentifyQueue | None = None
        self.pending_grants: dict[int, bytes] = {}
        self.signals: asyncio.Queue[int] = asyncio.Queue()
        self.generation = 0
        self.started = time.time()
        self._started_monotonic = time.monotonic()
        self._first_identifies = 0
        self.sim_proc: subprocess.Popen[str] | None = None
        self.sim_url: str | None = None
        self._done = asyncio.Event()
        self._reloading: asyncio.Task[str] | None = None
        self._stopping: asyncio.Task[None] | None = None
        self._nonce = 0
        self._tasks: set[asyncio.Future[Any]] = set()
        self._last_ping = 0.0
        self._ctx: zmq.asyncio.Context | None = None
        self._workers_sock: zmq.asyncio.Socket | None = None
        self._control_sock: zmq.asyncio.Socket | None = None
        self._progress = _Progress(settings.progress)

    # -- start --------------------------------------------------------------------------------
    async def run(self) -> int:
        """Run the cluster until it is stopped; return the process exit status."""
        try:
            await self._prepare()
        except ClusterError as exc:
            self.error = str(exc)
            await self._cleanup()
            return 1
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, self.signals.put_nowait, sig)  # handlers only enqueue
        for slot in self.slots:
            self._spawn(slot)
        self.state = "running"
        tasks = [
            asyncio.ensure_future(self._receive_workers()),
            asyncio.ensure_future(self._receive_control()),
            asyncio.ensure_future(self._tick_loop()),
        ]
        try:
            await self._done.wait()
        finally:
            for task in tasks:
                task.cancel()
            await self._cleanup()
        return self.exit_code

    async def _prepare(self) -> None:
        s = self.settings
        self.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._claim_run_dir()
        if s.sim:
            await self._start_simulator()
        try:
            gateway = await fetch_gateway_bot(self.api_url, self.token)
        except GatewayBotError as exc:
            raise ClusterError(str(exc)) from None
        self.gateway_url = gateway.url
        self.num_shards = gateway.shards if s.shards == "auto" else int(s.shards)
        self.max_concurrency = s.max_concurrency or gateway.session_start_limit.max_concurrency
        saved: list[SessionSnapshot]
        if s.sim:
            saved, why = [], "the built-in simulator starts with no sessions: identifying"
        else:
            saved, why = statefile.load(self.run_dir, self.num_shards, self.token, s.resume_window)
        self.snapshots = {snap.shard_id: snap for snap in saved}
        if not s.sim:
            self.groups = dict(statefile.load_groups(self.run_dir))
        for name in filter(None, (g.strip() for g in s.groups.split(","))):
            self.groups.setdefault(name, None)  # declared: every event is kept for it from the first
        self.guild_ids = {snap.shard_id: [int(k) for k in snap.keys] for snap in saved}
        log.info("%s", why)
        to_identify = self.num_shards - len(self.snapshots)
        remaining = gateway.session_start_limit.remaining
        if remaining < to_identify:
            raise ClusterError(
                f"Discord allows {remaining} more session starts today (session_start_limit.remaining) but "
                f"{to_identify} shards must identify; "
                f"wait {gateway.session_start_limit.reset_after // 1000} s "
                "for the limit to reset, or start fewer shards"
            )
        if remaining < 2 * to_identify or remaining < gateway.session_start_limit.total // 10:
            log.warning(
                "only %d session starts left today (of %d); %d shards will identify now",
                remaining,
                gateway.session_start_limit.total,
                to_identify,
            )
        # Paused until the first identifies of every shard are in, so that buckets start in shard
        # order whichever worker boots first (see _open_identify_queue).
        self.queue = LocalIdentifyQueue(self.max_concurrency, s.identify_window, paused=True)
        self._first_identifies = to_identify
        self.slots = [Slot(i, ids) for i, ids in enumerate(plan(self.num_shards, s.workers))]
        self._ctx = zmq.asyncio.Context()
        self._workers_sock = self._ctx.socket(zmq.ROUTER)
        self._workers_sock.setsockopt(zmq.LINGER, 1000)
        self._workers_sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        # No high-water mark: what goes to workers is bounded by the shard count (at 10,000 shards
        # a window's identify grants alone passed the default 1,000), and a dropped grant would
        # leave its shard waiting for ever.
        self._workers_sock.setsockopt(zmq.SNDHWM, 0)
        self._workers_sock.bind(self.workers_endpoint)
        self._control_sock = self._ctx.socket(zmq.ROUTER)
        self._control_sock.setsockopt(zmq.LINGER, 1000)
        self._control_sock.bind(control_endpoint(self.run_dir))
        log.info(
            "starting %d shards on %d workers (max_concurrency %d, %d to resume) against %s",
            self.num_shards,
            len(self.slots),
            self.max_concurrency,
            len(self.snapshots),
            self.gateway_url,
        )

    @property
    def workers_endpoint(self) -> str:
        return f"ipc://{self.run_dir / 'workers.sock'}"

    def _claim_run_dir(self) -> None:
        pid_file = self.run_dir / "supervisor.pid"
        try:
            other = int(pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            other = None
        if other is not None and other != os.getpid() and psutil.pid_exists(other):
            try:
                cmdline = " ".join(psutil.Process(other).cmdline())
            except psutil.Error:
                cmdline = ""
            if "shardrunner" in cmdline:
                raise ClusterError(
                    f"a cluster is already running in {self.run_dir} (pid {other}): "
                    "stop it with `shardrunner stop` or pass another --run-dir"
                )
        pid_file.write_text(f"{os.getpid()}\n")

    async def _start_simulator(self) -> None:
        from shardrunner.sim.discord.world import DEFAULT_BOT_ID, make_token

        s = self.settings
        shards = 4 if s.shards == "auto" else int(s.shards)
        cmd = [
            sys.executable, "-m", "shardrunner", "sim", "discord", "--port", "0",
            "--shards", str(shards), "--identify-window", str(s.identify_window),
            "--max-concurrency", str(s.max_concurrency or 1), "--rate", "20", "--log-level", "warning",
        ]  # fmt: skip
        self.sim_proc = self._popen_logged(cmd, self.run_dir / "sim.log")
        assert self.sim_proc.stdout is not None
        line = await asyncio.to_thread(self.sim_proc.stdout.readline)
        found = re.search(r"listening on (http://\S+)", line)
        if not found:
            raise ClusterError(f"the built-in simulator did not start (see {self.run_dir / 'sim.log'})")
        self.sim_url = found.group(1)
        self.api_url = self.sim_url + "/api/v10"
        if not self.token:
            self.token = make_token(DEFAULT_BOT_ID)
        log.info("running against the built-in simulator at %s", self.sim_url)

    @staticmethod
    def _popen_logged(cmd: list[str], log_path: Path) -> subprocess.Popen[str]:
        with open(log_path, "ab") as log_file:  # the child keeps its own copy of the descriptor
            return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log_file, text=True)

    # -- workers ------------------------------------------------------------------------------
    def _spawn(self, slot: Slot, *, assign_on_hello: bool = True) -> WorkerProc:
        self.generation += 1
        log_path = self.run_dir / f"worker-{slot.index}.log"
        env = {k: v for k, v in os.environ.items() if k != "SHARDRUNNER_TOKEN"}  # it comes in Assign
        with open(log_path, "ab") as log_file:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "shardrunner.cluster.worker",
                    "--endpoint",
                    self.workers_endpoint,
                    "--slot",
                    str(slot.index),
                    "--generation",
                    str(self.generation),
                    "--log-level",
                    self.settings.log_level,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                env=env,
                start_new_session=True,  # Ctrl-C reaches the supervisor only; it stops the workers
            )
        worker = WorkerProc(slot.index, self.generation, proc, log_path, assign_on_hello=assign_on_hello)
        with contextlib.suppress(psutil.Error):
            worker.ps = psutil.Process(proc.pid)
            worker.ps.cpu_percent(None)
        self.workers[worker.identity] = worker
        if assign_on_hello:
            slot.worker = worker
        log.info("worker %d (pid %d) starting for shards %s", slot.index, proc.pid, span(slot.shard_ids))
        return worker

    def _send(self, worker: WorkerProc, message: m.Message) -> bool:
        """Send now; False if the worker is not connected (yet, or any more)."""
        assert self._workers_sock is not None
        try:
            # The asyncio socket tries a non-blocking send at once and puts its error (an
            # unreachable worker, with ROUTER_MANDATORY) in the future rather than raising it.
            sent = cast(
                "asyncio.Future[Any]",
                self._workers_sock.send_multipart([worker.identity, m.encode(message)], flags=zmq.NOBLOCK),
            )
        except zmq.ZMQError:
            return False
        if sent.done():
            return sent.exception() is None
        sent.add_done_callback(_retrieve_send_error)
        return True

    def _assign(self, worker: WorkerProc, snapshots: list[SessionSnapshot]) -> None:
        slot = self.slots[worker.slot]
        s = self.settings
        self._send(
            worker,
            m.Assign(
                token=self.token,
                num_shards=self.num_shards,
                shard_ids=slot.shard_ids,
                gateway_url=self.gateway_url,
                intents=s.intents,
                compression=s.compression.value,
                large_threshold=s.large_threshold,
                snapshots=snapshots,
                bus_endpoint=self.bus_endpoint(worker),
                groups=sorted(self.groups.items()),
                queue_events=s.queue_events,
                queue_bytes=s.queue_bytes,
            ),
        )
        worker.state = "running"

    def bus_endpoint(self, worker: WorkerProc) -> str:
        return f"ipc://{self.run_dir / f'bus-{worker.slot}-{worker.generation}.sock'}"

    def endpoints(self) -> dict[str, Any]:
        """Where bots find the workers (``shardrunner.client`` asks for this every second)."""
        workers = []
        for slot in self.slots:
            worker = slot.worker
            if worker is not None and worker.state == "running" and worker.proc.poll() is None:
                workers.append(
                    {
                        "slot": slot.index,
                        "generation": worker.generation,
                        "endpoint": self.bus_endpoint(worker),
                        "shards": slot.shard_ids,
                    }
                )
        return {"num_shards": self.num_shards, "workers": workers}

    def _slot_snapshots(self, slot: Slot) -> list[SessionSnapshot]:
        """The sessions of a slot's shards, each resumed from before what no group acknowledged."""
        out = []
        for i in slot.shard_ids:
            snap = self.snapshots.get(i)
            if snap is None:
                continue
            low = self.low_water.get(i)
            if low is not None and low - 1 < snap.seq:
                snap = msgspec.structs.replace(snap, seq=low - 1)
            out.append(snap)
        return out

    async def _receive_workers(self) -> None:
        assert self._workers_sock is not None
        while True:
            identity, data = await self._workers_sock.recv_multipart()
            worker = self.workers.get(identity)
            if worker is None:
                continue
            try:
                message = m.decode(data)
            except Exception:
                log.warning("worker %s sent something undecodable", identity.decode())
                continue
            self._on_worker_message(worker, message)

    def _on_worker_message(self, worker: WorkerProc, message: m.Message) -> None:
        if isinstance(message, m.Report):
            now = time.monotonic()
            shard_ids = {r.shard_id for r in message.shards}
            for shard_id in shard_ids:
                low = message.low_water.get(shard_id)
                if low is None:
                    self.low_water.pop(shard_id, None)
                else:
                    self.low_water[shard_id] = low
            for g in message.groups:
                self.groups[g.name] = g.events
            self.group_reports[worker.slot] = message.groups
            for report in message.shards:
                self.reports[report.shard_id] = report
                if report.guild_ids is not None:
                    self.guild_ids[report.shard_id] = report.guild_ids
                snap = report.snapshot(self.num_shards, self.guild_ids.get(report.shard_id, []))
                if snap is not None:
                    self.snapshots[report.shard_id] = snap
                elif report.state in ("identifying", "ready"):
                    self.snapshots.pop(report.shard_id, None)  # a new session is on its way
                prev = self.rates.get(report.shard_id)
                if prev is None or report.events_in < prev[0]:
                    self.rates[report.shard_id] = (report.events_in, now, 0.0)
                elif now - prev[1] >= 1.0:
                    rate = (report.events_in - prev[0]) / (now - prev[1])
                    self.rates[report.shard_id] = (report.events_in, now, rate)
        elif isinstance(message, m.Pong):
            worker.last_pong = time.monotonic()
            worker.ready = message.ready
        elif isinstance(message, m.IdentifyRequest):
            if self.pending_grants.get(message.shard_id) != worker.identity:
                self.pending_grants[message.shard_id] = worker.identity
                self._background(self._grant(worker, message.shard_id))
        elif isinstance(message, m.IdentifySent):
            assert self.queue is not None
            self.queue.sent(message.shard_id)
        elif isinstance(message, m.IdentifyDone):
            assert self.queue is not None
            self.queue.release(message.shard_id, ready=message.ready)
        elif isinstance(message, m.Hello):
            worker.hello = True
            worker.last_pong = time.monotonic()
            if worker.assign_on_hello:
                self._assign(worker, self._slot_snapshots(self.slots[worker.slot]))
            else:
                worker.state = "idle"
        elif isinstance(message, m.HandedOff):
            for snap in message.snapshots:
                self.snapshots[snap.shard_id] = snap
                self.low_water.pop(snap.shard_id, None)  # the handed-off seq already accounts for it
                self.guild_ids[snap.shard_id] = [int(k) for k in snap.keys]
                self._mark(snap.shard_id, "handed_off")  # until the next holder reports
            if worker.handed_off is not None and not worker.handed_off.done():
                worker.handed_off.set_result(message.snapshots)
        elif isinstance(message, m.ShardFailed):
            self._fail(message.message)

    async def _grant(self, worker: WorkerProc, shard_id: int) -> None:
        assert self.queue is not None
        await self.queue.acquire(shard_id)
        if self.pending_grants.get(shard_id) == worker.identity:
            del self.pending_grants[shard_id]
        if worker.proc.poll() is not None or not self._send(worker, m.IdentifyGrant(shard_id)):
            self.queue.release(shard_id, ready=False)  # the asker is gone: let the next one go

    # -- the loop -----------------------------------------------------------------------------
    async def _tick_loop(self) -> None:
        while True:
            while not self.signals.empty():
                self._on_signal(self.signals.get_nowait())
            self._open_identify_queue()
            self._reap()
            self._check_liveness()
            self._reconcile()
            self._progress.update(self)
            await asyncio.sleep(TICK_S)

    def _open_identify_queue(self) -> None:
        queue = self.queue
        if queue is None or not queue.paused:
            return
        waited = time.monotonic() - self._started_monotonic
        if queue.waiting >= self._first_identifies or waited > IDENTIFY_GATE_S:
            queue.resume()

    def _on_signal(self, sig: int) -> None:
        if sig == signal.SIGHUP:
            log.info("SIGHUP: rolling reload")
            self.request_reload()
        else:
            log.info("%s: stopping", signal.Signals(sig).name)
            self.request_stop()

    def _reap(self) -> None:
        for worker in list(self.workers.values()):
            code = worker.proc.poll()
            if code is None:
                continue
            del self.workers[worker.identity]
            slot = self.slots[worker.slot]
            for shard_id, who in list(self.pending_grants.items()):
                if who == worker.identity:
                    del self.pending_grants[shard_id]
            if worker.handed_off is not None and not worker.handed_off.done():
                worker.handed_off.set_result([])
            if worker.state == "retiring" or self._stopping is not None:
                continue
            if not worker.assign_on_hello and slot.worker is not worker:
                continue  # a reload's candidate that never took over: the reload deals with it
            if not worker.hello or code == BOOT_FAILED:
                self._fail(f"worker {worker.slot} failed to start: {_last_line(worker.log_path)}")
                continue
            how = f"signal {-code}" if code < 0 else f"status {code}"
            if slot.worker is worker:
                slot.worker = None
                for shard_id in slot.shard_ids:  # nobody runs them until the replacement reports
                    self._mark(shard_id, "down")
                slot.backoff = min(MAX_BACKOFF_S, max(self.settings.worker_backoff, slot.backoff * 2))
                slot.next_start_at = time.monotonic() + slot.backoff
                log.warning(
                    "worker %d (pid %d) died with %s; replacing it in %.1f s, its %d shards will resume",
                    worker.slot,
                    worker.pid,
                    how,
                    slot.backoff,
                    len(slot.shard_ids),
                )

    def _mark(self, shard_id: int, state: str) -> None:
        report = self.reports.get(shard_id)
        if report is not None:
            self.reports[shard_id] = msgspec.structs.replace(report, state=state)

    def _check_liveness(self) -> None:
        now = time.monotonic()
        ping = now - self._last_ping >= PING_EVERY_S
        if ping:
            self._last_ping = now
            self._nonce += 1
        for worker in list(self.workers.values()):
            if worker.kill_deadline is not None:
                if now >= worker.kill_deadline:
                    _signal(worker, signal.SIGKILL)
                continue
            if not worker.hello:
                if now - worker.started_at > BOOT_TIMEOUT_S:
                    self._fail(f"worker {worker.slot} did not start within {BOOT_TIMEOUT_S:.0f} s")
                continue
            if now - worker.last_pong > self.settings.hung_after:
                log.error(
                    "worker %d (pid %d) is hung (no pong for %.0f s): killing it",
                    worker.slot,
                    worker.pid,
                    now - worker.last_pong,
                )
                worker.state = "killing"
                worker.kill_deadline = now + KILL_GRACE_S
                _signal(worker, signal.SIGTERM)
                continue
            if ping:
                self._send(worker, m.Ping(self._nonce))
            slot = self.slots[worker.slot]
            if slot.worker is worker and worker.ready and slot.backoff and now - worker.started_at > 30:
                slot.backoff = 0.0  # it has been healthy for a while: the next crash restarts at once

    def _reconcile(self) -> None:
        if self._stopping is not None:
            return
        now = time.monotonic()
        for slot in self.slots:
            if slot.worker is None and now >= slot.next_start_at:
                self._spawn(slot)

    # -- reload ---------------------------------------------------------------------------------
    def request_reload(self) -> asyncio.Task[str]:
        if self._reloading is None or self._reloading.done():
            self._reloading = asyncio.ensure_future(self._reload())
        return self._reloading

    async def _reload(self) -> str:
        self.state = "reloading"
        try:
            for slot in self.slots:
                outcome = await self._reload_slot(slot)
                if outcome:
                    log.error("reload stopped: %s", outcome)
                    return f"reload stopped at worker {slot.index}: {outcome}"
            log.info("reload done: every worker replaced, every shard resumed")
            return "reload done: every worker replaced, every shard resumed"
        finally:
            if self.state == "reloading":
                self.state = "running"

    async def _reload_slot(self, slot: Slot) -> str | None:
        old = slot.worker
        if old is None or old.state != "running":
            return None  # nothing to hand over; the reconciler (re)starts this slot
        new = self._spawn(slot, assign_on_hello=False)
        booted = await self._wait(lambda: new.hello or new.proc.poll() is not None, BOOT_TIMEOUT_S)
        if not booted or not new.hello:
            new.state = "retiring"
            _signal(new, signal.SIGKILL)
            await self._wait(lambda: new.proc.poll() is not None, KILL_GRACE_S)
            self.workers.pop(new.identity, None)
            reason = _last_line(new.log_path)
            return f"the replacement did not start ({reason}); the old worker keeps its shards"
        snapshots = await self._handoff(old, exit=False)
        self._assign(new, snapshots)
        slot.worker = new
        await self._wait(lambda: new.ready or new.proc.poll() is not None, self.settings.ready_timeout)
        if new.ready and new.proc.poll() is None:
            old.state = "retiring"
            self._send(old, m.Handoff(exit=True))
            return None
        # The replacement did not resume in time: take the sessions back to the old worker.
        back = await self._handoff(new, exit=True)
        new.state = "retiring"
        slot.worker = old
        self._assign(old, back or snapshots)
        return (
            f"the replacement's shards were not ready within {self.settings.ready_timeout:.0f} s; "
            "the old worker took them back"
        )

    async def _handoff(self, worker: WorkerProc, *, exit: bool) -> list[SessionSnapshot]:
        if worker.proc.poll() is not None:  # gone: its last reported sessions are all there is
            return self._slot_snapshots(self.slots[worker.slot])
        worker.handed_off = asyncio.get_running_loop().create_future()
        worker.state = "retiring" if exit else "idle"
        self._send(worker, m.Handoff(exit=exit))
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(asyncio.shield(worker.handed_off), STOP_TIMEOUT_S)
        slot = self.slots[worker.slot]
        return self._slot_snapshots(slot)  # fall back to the last reported sessions

    async def _wait(self, condition: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    # -- stop -----------------------------------------------------------------------------------
    def request_stop(self) -> asyncio.Task[None]:
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop())
        return self._stopping

    def _fail(self, message: str) -> None:
        if self.error is None:
            self.error = message
            self.exit_code = 1
            log.error("%s", message)
        self.request_stop()

    async def _stop(self) -> None:
        self.state = "stopping"
        self._progress.finish()
        live = [w for w in self.workers.values() if w.proc.poll() is None]
        for worker in live:
            if worker.hello:
                worker.handed_off = asyncio.get_running_loop().create_future()
                self._send(worker, m.Handoff(exit=True))
            worker.state = "retiring"
        await self._wait(lambda: all(w.proc.poll() is not None for w in live), STOP_TIMEOUT_S)
        for worker in live:
            if worker.proc.poll() is None:
                _signal(worker, signal.SIGKILL)
                worker.proc.wait(5)
        if self.num_shards and self.token:
            path = statefile.write(
                self.run_dir,
                self.num_shards,
                self.token,
                list(self.snapshots.values()),
                sorted(self.groups.items()),
            )
            log.info(
                "stopped; %d sessions saved to %s (a start within %.0f s resumes them)",
                len(self.snapshots),
                path,
                self.settings.resume_window,
            )
        self._done.set()

    async def _cleanup(self) -> None:
        for sock in (self._workers_sock, self._control_sock):
            if sock is not None:
                sock.close()
        if self._ctx is not None:
            self._ctx.term()
        if self.sim_proc is not None and self.sim_proc.poll() is None:
            self.sim_proc.terminate()
            try:
                self.sim_proc.wait(10)
            except subprocess.TimeoutExpired:
                self.sim_proc.kill()
        with contextlib.suppress(FileNotFoundError):
            pid_file = self.run_dir / "supervisor.pid"
            if pid_file.read_text().strip() == str(os.getpid()):
                pid_file.unlink()
        for name in ("workers.sock", "control.sock"):
            with contextlib.suppress(FileNotFoundError):
                (self.run_dir / name).unlink()

    # -- control --------------------------------------------------------------------------------
    async def _receive_control(self) -> None:
        assert self._control_sock is not None
        while True:
            frames = await self._control_sock.recv_multipart()
            self._background(self._answer(frames))

    def _background(self, coro: Any) -> None:
        """Run ``coro`` as a task the supervisor keeps a reference to until it is done."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, frames: list[bytes]) -> None:
        assert self._control_sock is not None
        identity, body = frames[0], frames[-1]
        try:
            request = msgspec.json.decode(body)
            name = request.get("command") if isinstance(request, dict) else None
            command = COMMANDS.get(name or "")
            if command is None:
                raise CommandError(f"unknown command {name!r}; known: {', '.join(sorted(COMMANDS))}")
            reply: dict[str, Any] = {"ok": True, "result": await command.execute(self, request)}
        except CommandError as exc:
            reply = {"ok": False, "error": str(exc)}
        except msgspec.DecodeError:
            reply = {"ok": False, "error": "the request is not JSON"}
        with contextlib.suppress(zmq.ZMQError):
            await self._control_sock.send_multipart([identity, b"", msgspec.json.encode(reply)])

    def status(self) -> dict[str, Any]:
        """What ``shardrunner status`` shows (never the token)."""
        workers = []
        for worker in sorted(self.workers.values(), key=lambda w: (w.slot, w.generation)):
            cpu = rss = None
            if worker.ps is not None:
                with contextlib.suppress(psutil.Error):
                    cpu = worker.ps.cpu_percent(None)
                    rss = worker.ps.memory_info().rss
            workers.append(
                {
                    "slot": worker.slot,
                    "generation": worker.generation,
                    "pid": worker.pid,
                    "state": worker.state,
                    "ready": worker.ready,
                    "cpu_percent": cpu,
                    "rss": rss,
                    "shards": span(self.slots[worker.slot].shard_ids),
                }
            )
        shards = []
        for slot in self.slots:
            for shard_id in slot.shard_ids:
                r = self.reports.get(shard_id)
                shards.append(
                    {
                        "id": shard_id,
                        "worker": slot.index,
                        "state": r.state if r else "starting",
                        "latency_ms": None
                        if r is None or r.heartbeat_latency is None
                        else r.heartbeat_latency * 1000,
                        "events_per_s": self.rates.get(shard_id, (0, 0.0, 0.0))[2],
                        "events": r.events_in if r else 0,
                        "guilds": r.guilds if r else 0,
                        "resumes": r.resumes if r else 0,
                        "identifies": r.identifies if r else 0,
                        "last_resume_ago_s": None
                        if r is None or r.last_resume_at is None
                        else max(0.0, time.monotonic() - r.last_resume_at),
                    }
                )
        return {
            "supervisor": {
                "pid": os.getpid(),
                "state": self.state,
                "run_dir": str(self.run_dir),
                "api_url": self.api_url,
                "gateway_url": self.gateway_url,
                "simulator": self.sim_url,
                "num_shards": self.num_shards,
                "max_concurrency": self.max_concurrency,
                "uptime_s": time.time() - self.started,
                "error": self.error,
            },
            "workers": workers,
            "shards": shards,
            "groups": self._group_status(),
        }

    def _group_status(self) -> list[dict[str, Any]]:
        totals: dict[str, dict[str, Any]] = {}
        for slot, reports in self.group_reports.items():
            if self.slots[slot].worker is None:
                continue
            for g in reports:
                t = totals.setdefault(
                    g.name,
                    {
                        "group": g.name,
                        "members": 0,
                        "held_events": 0,
                        "held_bytes": 0,
                        "inflight": 0,
                        "dropped": 0,
                    },
                )
                t["members"] = max(t["members"], g.members)
                t["held_events"] += g.held_events
                t["held_bytes"] += g.held_bytes
                t["inflight"] += g.inflight
                t["dropped"] += g.dropped
        return sorted(totals.values(), key=lambda t: str(t["group"]))


class _Progress:
    """Start-up progress: a live line on a terminal, plain log lines otherwise."""

    def __init__(self, mode: str) -> None:
        self.tty = mode == "always" or (mode == "auto" and sys.stderr.isatty())
        self.last: tuple[int, int] | None = None
        self.done = False
        self.last_log = 0.0

    def update(self, sup: Supervisor) -> None:
        if self.done or not sup.num_shards:
            return
        ready = sum(1 for r in sup.reports.values() if r.state == "ready")
        total = sup.num_shards
        waiting = total - ready
        to_identify = sum(
            1
            for i in range(total)
            if i not in sup.snapshots and (sup.reports.get(i) is None or sup.reports[i].state != "ready")
        )
        eta = math.ceil(to_identify / max(1, sup.max_concurrency)) * sup.settings.identify_window
        line = f"shards ready {ready}/{total}" + (
            f", {to_identify} to identify, ETA {eta:.0f} s" if waiting else ""
        )
        if self.tty:
            sys.stderr.write(f"\r\x1b[2K{line}")
            sys.stderr.flush()
        elif (ready, to_identify) != self.last and (time.monotonic() - self.last_log > 2 or ready == total):
            log.info("%s", line)
            self.last_log = time.monotonic()
        self.last = (ready, to_identify)
        if ready == total:
            self.finish()
            log.info("all %d shards ready", total)

    def finish(self) -> None:
        if self.tty and not self.done:
            sys.stderr.write("\n")
        self.done = True


def _signal(worker: WorkerProc, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        worker.proc.send_signal(sig)


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1].strip() if lines else f"it exited without a word (log: {path})"
