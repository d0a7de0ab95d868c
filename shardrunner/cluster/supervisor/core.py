"""The supervisor: one cluster, wired from its parts.

It discovers each platform's plan, loads the saved sessions, owns the identify queue, binds the
worker link, the control socket and the metrics endpoint (:mod:`.metrics`), and runs the reconcile
loop (:mod:`.reconcile`, the only writer of worker state). Signal handlers only enqueue; reload and
stop change the desired state and wait for the loop. Messages from workers are observations: they
go to the session book, the identify grants, or the worker's record, and wake the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from typing import Any, Final

import zmq.asyncio

from shardrunner.clock import Clock, RealClock, wait_with_timeout
from shardrunner.cluster import messages as m
from shardrunner.cluster.lifecycle import Fanout
from shardrunner.cluster.supervisor import hostview, startup
from shardrunner.cluster.supervisor import status as st
from shardrunner.cluster.supervisor.assign import make_assign
from shardrunner.cluster.supervisor.book import SessionBook
from shardrunner.cluster.supervisor.budgets import BudgetGrants
from shardrunner.cluster.supervisor.channels import change_channels, restore_channels
from shardrunner.cluster.supervisor.claim import RunDirTaken, claim, release
from shardrunner.cluster.supervisor.commands import ControlServer
from shardrunner.cluster.supervisor.decisions import SupervisorHooks
from shardrunner.cluster.supervisor.delivery import DeliveryTable
from shardrunner.cluster.supervisor.grants import IdentifyGrants
from shardrunner.cluster.supervisor.hosts import HostAgent
from shardrunner.cluster.supervisor.inbox import on_worker_message
from shardrunner.cluster.supervisor.link import WorkerLink, ZmqWorkerLink
from shardrunner.cluster.supervisor.metrics import MetricsError, MetricsServer, serve_metrics
from shardrunner.cluster.supervisor.model import Slot, SupervisorSettings, Worker
from shardrunner.cluster.supervisor.platforms import Discover, discover_platforms
from shardrunner.cluster.supervisor.progress import Progress
from shardrunner.cluster.supervisor.queues import close_shared_queues
from shardrunner.cluster.supervisor.reconcile import Reconciler
from shardrunner.cluster.supervisor.reload import rolling_reload
from shardrunner.cluster.supervisor.reshard import Resharder
from shardrunner.cluster.supervisor.resizing import (
    AutoReshard,
    prefer_saved_sets,
    reshard_command,
    resharded,
    settle_on_stop,
    sleep_while_switching,
    switched,
)
from shardrunner.cluster.supervisor.signals import unless_stopped
from shardrunner.cluster.supervisor.spawner import Spawner, process_spawner
from shardrunner.control import CommandError
from shardrunner.controller import Controller, ControllerError
from shardrunner.gateway.platform import PlatformError, PlatformPlan
from shardrunner.protocol.envelope import SessionSnapshot
from shardrunner.protocol.keys import ConnKey
from shardrunner.rundir import RunDir

log = logging.getLogger("shardrunner.supervisor")

TICK_S: Final = 0.25


class ClusterError(RuntimeError):
    """The cluster cannot start or must stop; the message is one sentence for the user."""


class Supervisor:
    """One cluster. ``exit_code = await Supervisor(settings).run()``.

    The seams, for tests: ``discover`` makes the platform plans (default: each platform's
    discovery), ``spawner`` starts worker processes, ``link`` carries messages to and from them,
    ``clock`` is time; ``handle_signals=False`` leaves the process's signal handlers alone;
    ``controller`` is used instead of the one the settings name.
    """

    def __init__(
        self,
        settings: SupervisorSettings,
        *,
        discover: Discover | None = None,
        spawner: Spawner | None = None,
        link: WorkerLink | None = None,
        clock: Clock | None = None,
        handle_signals: bool = True,
        controller: Controller | None = None,
    ) -> None:
        self.settings = settings
        self.run_dir = RunDir(settings.run_dir)
        self.token: str = settings.token or ""
        self.clock = clock or RealClock()
        self._discover = discover or discover_platforms
        self._ctx = zmq.asyncio.Context()
        self.link = link or ZmqWorkerLink(self._ctx, self.run_dir.workers_endpoint)
        self.spawner = spawner or process_spawner(self.run_dir, settings)
        #: The controller's decisions (its hooks that the supervisor asks).
        self.hooks = SupervisorHooks(controller)
        self._handle_signals = handle_signals
        self.state = "starting"
        self.exit_code = 0
        self.error: str | None = None
        self.plans: dict[str, PlatformPlan] = {}
        self.conns: list[ConnKey] = []
        self.book = SessionBook()
        self.slots: list[Slot] = []
        self.reconciler: Reconciler | None = None
        self.resharder: Resharder | None = None
        self.delivery = DeliveryTable()
        self.grants: IdentifyGrants | None = None
        self.budgets: BudgetGrants | None = None
        self.control: ControlServer | None = None
        #: This host among the bot's hosts (``--coordinator``), else None.
        self.hosts: HostAgent | None = None
        self.metrics: MetricsServer | None = None  # --metrics-port
        self.signals: asyncio.Queue[int] = asyncio.Queue()
        self.started = time.time()
        self._claimed = False
        self._wake = asyncio.Event()
        self._reloading: asyncio.Future[str] | None = None
        self._progress = Progress(settings.progress)
        self.lifecycle = Fanout("supervisor")  # reshard, worker crashed, leases (protocol/lifecycle.py)
        self.lifecycle_listeners = self.lifecycle.listeners  # a plain list: append listeners

    @property
    def stopping(self) -> bool:
        return self.reconciler is not None and self.reconciler.stopping

    # -- start --------------------------------------------------------------------------------
    async def run(self) -> int:
        """Run the cluster until it is stopped; return the process exit status."""
        loop = asyncio.get_running_loop()
        if self._handle_signals:
            # From the first moment: a SIGTERM during discovery (a container stopped while it
            # starts) must stop the start, not be lost or kill the process without its clean-up.
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                loop.add_signal_handler(sig, self.signals.put_nowait, sig)  # handlers only enqueue
        try:
            return await self._run()
        finally:
            if self._handle_signals:
                for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                    loop.remove_signal_handler(sig)

    async def _run(self) -> int:
        try:
            if not await unless_stopped(self._prepare(), self.signals):
                log.info("stopped during start-up")
                self._cleanup()
                return self.exit_code
        except ClusterError as exc:
            self.error = str(exc)
            self.exit_code = 1
            self._cleanup()
            return 1
        assert self.reconciler is not None
        assert self.control is not None
        self.state = "running"
        tasks = [
            asyncio.ensure_future(self._receive_workers()),
            asyncio.ensure_future(self.control.serve()),
        ]
        if self.hosts is None:
            tasks.append(asyncio.ensure_future(AutoReshard(self).run()))
        else:
            self.hosts.start()
        try:
            await self._loop()
            startup.save_on_stop(self)
        finally:
            if self.hosts is not None:
                await self.hosts.close()
                await close_shared_queues(self)
            if self.metrics is not None:
                await self.metrics.close()
            for task in tasks:
                task.cancel()
            self._cleanup()
        return self.exit_code

    async def _prepare(self) -> None:
        s = self.settings
        try:
            self.hooks.load(s.controller, self.lifecycle_listeners)  # first: a wrong one changes nothing
            claim(self.run_dir)
        except (ControllerError, RunDirTaken) as exc:
            raise ClusterError(str(exc)) from None
        self._claimed = True
        try:
            self.plans = {p.name: p for p in await self._discover(s)}
        except PlatformError as exc:
            raise ClusterError(str(exc)) from None
        if not s.sim:
            self.plans = prefer_saved_sets(self.plans, self.run_dir.path, self.token, s.resume_window)
        try:
            restore_channels(self.plans, self.run_dir.channels_file, self.delivery)
        except PlatformError as exc:
            raise ClusterError(str(exc)) from None
        self.conns = [c for p in self.plans.values() for c in p.conns]
        try:
            resumable = startup.load_sessions(self)
            startup.plan_host(self, resumable)
        except startup.StartError as exc:
            raise ClusterError(str(exc)) from None
        if self.hosts is not None:
            await self.hosts.load_groups()
        self.reconciler = Reconciler(
            self.slots,
            settings=s,
            clock=self.clock,
            spawner=self.spawner,
            link=self.link,
            book=self.book,
            make_assign=self._make_assign,
            on_gone=self._on_gone,
            on_release=self._on_release,
            on_fail=self.fail,
        )
        self.resharder = Resharder(
            reconciler=self.reconciler,
            book=self.book,
            delivery=self.delivery,
            link=self.link,
            clock=self.clock,
            workers=s.workers,
            busy=lambda: self.state == "reloading",  # not while a reload waits for a switch to end
            on_switch=lambda old, new: switched(self, new),
            on_done=lambda old, new: resharded(self, old, new),
        )
        self.reconciler.notify = self.resharder.notify = self.lifecycle.emit
        try:
            self.control = startup.open_sockets(self, self._ctx)
            self.metrics = await serve_metrics(self)
        except (startup.StartError, MetricsError) as exc:
            raise ClusterError(str(exc)) from None
        startup.log_start(self, resumable)

    def local_conns(self) -> list[ConnKey]:
        """The connections this host runs: all of them, or with several hosts those it holds."""
        return self.conns if self.hosts is None else self.hosts.conns()

    def bucket_of(self, conn: ConnKey) -> tuple[str, int]:
        return self.plans[conn.platform].bucket_of(conn)

    # -- the loop -----------------------------------------------------------------------------
    async def _loop(self) -> None:
        reconciler = self.reconciler
        assert reconciler is not None
        assert self.grants is not None
        while not reconciler.stopped.is_set():
            while not self.signals.empty():
                self._on_signal(self.signals.get_nowait())
            self.grants.open_gate(self.clock.monotonic())
            self._wake.clear()
            reconciler.step()
            if self.resharder is not None and not self.stopping:
                self.resharder.step()
            self._update_progress()
            if reconciler.stopped.is_set():
                break
            with contextlib.suppress(TimeoutError):
                await wait_with_timeout(self.clock, self._wake.wait(), TICK_S)

    def wake(self) -> None:
        self._wake.set()

    def _on_signal(self, sig: int) -> None:
        if sig == signal.SIGHUP:
            log.info("SIGHUP: rolling reload")
            self.request_reload()
        else:
            log.info("%s: stopping", signal.Signals(sig).name)
            self.request_stop()

    def _update_progress(self) -> None:
        # The ETA follows the narrowest start limit of the plans (Discord: max_concurrency buckets).
        limit = min((x for p in self.plans.values() for x in p.limits), key=lambda x: x.buckets, default=None)
        buckets, window = (limit.buckets, limit.window) if limit is not None else (1, 0.0)
        self._progress.update_from(self.book, self.local_conns(), buckets, window, self.clock.monotonic())

    # -- the worker link ----------------------------------------------------------------------
    def _make_assign(
        self, worker: Worker, conns: list[ConnKey], snapshots: list[SessionSnapshot]
    ) -> m.Assign:
        return make_assign(self, worker, conns, snapshots)

    def _on_release(self, worker: Worker) -> None:
        """A worker gives its connections up: what it waits for goes to nobody (grants, budgets)."""
        assert self.grants is not None
        assert self.budgets is not None
        self.grants.forget(worker.identity)
        self.budgets.forget(worker.identity)

    def _on_gone(self, worker: Worker) -> None:
        """A worker process is gone: forget its grants, remove its bus socket."""
        self._on_release(worker)
        with contextlib.suppress(OSError):
            self.run_dir.bus_sock(worker.slot, worker.generation).unlink()

    async def _receive_workers(self) -> None:
        while True:
            identity, message = await self.link.recv()
            self.on_worker_message(identity, message)

    def on_worker_message(self, identity: bytes, message: m.Message) -> None:
        on_worker_message(self, identity, message)

    # -- reload and stop: changes of the desired state ------------------------------------------
    def request_reload(self) -> asyncio.Future[str]:
        if self._reloading is None or self._reloading.done():
            self._reloading = asyncio.ensure_future(self._reload())
        return self._reloading

    async def _reload(self) -> str:
        assert self.reconciler is not None
        await sleep_while_switching(self.resharder)
        self.state = "reloading"
        try:
            return await rolling_reload(self.reconciler)
        finally:
            if self.state == "reloading":
                self.state = "running"

    def request_stop(self) -> str:
        """Start stopping (the loop hands every session over, then the state file is written)."""
        if self.reconciler is not None and not self.reconciler.stopping:
            if self.resharder is not None:
                settle_on_stop(self.resharder)
            self.state = "stopping"
            self._update_progress()  # the line ends on the latest state, not the last tick's
            self._progress.finish()
            self.reconciler.stop()
            self.wake()
        if self.settings.sim:
            return (
                "stopping: the built-in simulator stops too and starts empty, "
                "so the next start identifies every shard"
            )
        return (
            "stopping: the sessions will be saved; a start within "
            f"{self.settings.resume_window:.0f} s resumes them"
        )

    # -- resharding ------------------------------------------------------------------------------
    async def reshard(self, shards: int | None, *, dry_run: bool, abort: bool) -> dict[str, Any]:
        if self.hosts is not None:
            raise CommandError(hostview.RESHARD_REFUSED)
        return await reshard_command(self, shards=shards, dry_run=dry_run, abort=abort)

    def channels(self, action: str, names: list[str]) -> dict[str, Any]:
        if self.hosts is not None and action != "list":
            raise CommandError(hostview.CHANNELS_REFUSED)
        return change_channels(self, action, names)

    def fail(self, message: str) -> None:
        if self.error is None:
            self.error = message
            self.exit_code = 1
            log.error("%s", message)
        self.request_stop()

    def _cleanup(self) -> None:
        if self.grants is not None:
            self.grants.close()
        if self.budgets is not None:
            self.budgets.close()
        self.link.close()
        if self.control is not None:
            self.control.close()
        self._ctx.term()
        if self._claimed:  # a refused start touches nothing: the run dir is another cluster's
            release(self.run_dir)

    # -- what the control commands ask --------------------------------------------------------
    def status(self) -> st.ClusterStatus:
        """What ``shardrunner status`` shows (never the token)."""
        return st.cluster_status(self)

    def local_endpoints(self) -> dict[str, Any]:
        """This host's workers, for the ``endpoints`` answer and the host record."""
        return st.endpoints(self.slots, self.plans, self.run_dir.bus_endpoint)

    def endpoints(self) -> dict[str, Any]:
        """Where bots find the workers (the client asks every second); several hosts: every host's."""
        local = self.local_endpoints()
        return local if self.hosts is None else self.hosts.endpoints(local)
