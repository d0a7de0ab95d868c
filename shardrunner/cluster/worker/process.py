"""The worker process: its command line, its link to the supervisor, its event loop (uvloop).

Started by the supervisor as ``python -m shardrunner.cluster.worker --endpoint E --slot N
--generation G --log-level L`` (spawned, never forked), with ``--bus-bind tcp://ADDR
--curve-server-key PATH --curve-clients DIR`` when bots on other machines reach its bus: it then
also binds a CURVE bus on TCP and says where in :class:`~shardrunner.cluster.messages.BusBound`;
with ``--controller SPEC`` it loads that controller at boot and installs the hooks it overrides
(:mod:`.hooks`).
It connects a DEALER socket to the supervisor, says :class:`~shardrunner.cluster.messages.Hello`,
and waits for an :class:`~shardrunner.cluster.messages.Assign` with its platform parts and the
sessions to resume.
From then on :class:`~shardrunner.cluster.worker.core.Worker` runs them.

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
from collections.abc import Callable
from typing import Final

import zmq
import zmq.asyncio

from shardrunner.bus.router import Limits, Router
from shardrunner.bus.server import BusServer
from shardrunner.cluster import logs
from shardrunner.cluster import messages as m
from shardrunner.cluster.exitcodes import BOOT_FAILED
from shardrunner.cluster.worker.conns import ConnTable
from shardrunner.cluster.worker.core import Bus, Worker
from shardrunner.cluster.worker.hooks import WorkerHooks
from shardrunner.controller.load import ControllerError, load_controller
from shardrunner.curve import CurveError, CurveServer
from shardrunner.gateway.platform import import_platforms

log = logging.getLogger("shardrunner.worker")

ASSIGN_TIMEOUT_S: Final = 30.0


def make_bus_maker(
    ctx: zmq.asyncio.Context,
    *,
    tcp: str = "",
    curve: CurveServer | None = None,
    post: Callable[[m.Message], None] | None = None,
    make_router: Callable[[Limits], Router] = Router,
) -> Callable[[m.Assign, ConnTable], Bus]:
    """The worker's ``make_bus``: its ipc bus, and with ``tcp`` a CURVE bus on TCP too (the port
    the OS picked goes to ``post`` as :class:`~shardrunner.cluster.messages.BusBound`); the router
    from ``make_router`` (a controller's hooked one)."""

    def make_bus(assign: m.Assign, conns: ConnTable) -> Bus:
        router = make_router(Limits(max_events=assign.queue_events, max_bytes=assign.queue_bytes))
        for name, events in assign.groups:
            router.declare(name, events)
        server = BusServer(
            ctx, assign.bus_endpoint, router, conns.command, tcp=tcp, curve=curve, state=conns.state
        )
        server.bind()
        if server.tcp_endpoint:
            log.info("bus also on %s (CURVE)", server.tcp_endpoint)
            if post is not None:
                post(m.BusBound(server.tcp_endpoint))
        return server

    return make_bus


async def run(
    endpoint: str,
    slot: int,
    generation: int,
    *,
    bus_bind: str = "",
    curve_server_key: str | None = None,
    curve_clients: str | None = None,
    hooks: WorkerHooks | None = None,
) -> int:
    """The worker's whole life; returns its exit code."""
    hooks = hooks or WorkerHooks()
    curve = None
    if bus_bind:
        try:
            curve = CurveServer.load(curve_server_key or "", curve_clients or "")
        except CurveError as exc:
            log.error("worker %d cannot bind its bus on TCP: %s", slot, exc)
            return BOOT_FAILED
    ctx = zmq.asyncio.Context()
    auth = curve.authenticator(ctx) if curve is not None else None
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.IDENTITY, f"{slot}:{generation}".encode())
    sock.setsockopt(zmq.LINGER, 2000)

    def post(message: m.Message) -> None:
        worker.outbox.put_nowait(message)

    make_bus = make_bus_maker(ctx, tcp=bus_bind, curve=curve, post=post, make_router=hooks.make_router)
    worker = Worker(
        slot, generation, make_bus=make_bus, load=hooks.load, on_fatal=hooks.on_fatal_close,
        hook_failures=hooks.failures,
    )  # fmt: skip
    hooks.attach(worker.lifecycle_listeners)
    try:
        sock.connect(endpoint)
        await sock.send(m.encode(m.Hello(slot, generation, os.getpid())))
        # A reload's replacement waits for its sessions while the old worker hands them off:
        # meanwhile it answers pings (alive, not ready).
        deadline = time.monotonic() + ASSIGN_TIMEOUT_S
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not await sock.poll(int(left * 1000)):
                log.error("worker %d: no assignment within %.0f s", slot, ASSIGN_TIMEOUT_S)
                return BOOT_FAILED
            first = m.decode(await sock.recv())
            if isinstance(first, m.Assign):
                break
            if isinstance(first, m.Ping):
                await sock.send(m.encode(m.Pong(first.nonce, ready=False)))
            elif isinstance(first, m.SetDelivery | m.LeaseUntil | m.Release):
                # Kept for the connections to come (a delivery mode, unless the assignment is
                # newer; the lease fence); a Release has nothing to release yet. Answered now.
                worker.handle(first)
                while not worker.outbox.empty():
                    await sock.send(m.encode(worker.outbox.get_nowait()))
                    worker.outbox.task_done()
            elif isinstance(first, m.Adopt):
                log.warning("worker %d: an adoption before the assignment is ignored", slot)
        worker.start(first)
        # Stopped from outside (the supervisor died, or a service manager): keep the sessions
        # resumable, say so if anyone listens, and exit.
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, lambda: worker.handoff(exit=True))
        tasks = [
            asyncio.ensure_future(_send_loop(sock, worker.outbox)),
            asyncio.ensure_future(_receive_loop(sock, worker)),
            asyncio.ensure_future(worker.report_loop()),
        ]
        await worker.stopped.wait()
        await worker.outbox.join()  # everything said before exiting reaches the supervisor
        for task in tasks:
            task.cancel()
        return worker.exit_code
    finally:
        worker.close()
        sock.close()
        if auth is not None:
            auth.stop()
        ctx.term()


async def _send_loop(sock: zmq.asyncio.Socket, outbox: asyncio.Queue[m.Message]) -> None:
    while True:
        message = await outbox.get()
        try:
            await sock.send(m.encode(message))
        finally:
            outbox.task_done()


async def _receive_loop(sock: zmq.asyncio.Socket, worker: Worker) -> None:
    while True:
        worker.handle(m.decode(await sock.recv()))


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
    parser.add_argument("--log-format", default="text", choices=logs.FORMATS)
    parser.add_argument("--bus-bind", default="")
    parser.add_argument("--curve-server-key", default=None)
    parser.add_argument("--curve-clients", default=None)
    parser.add_argument("--controller", default="")
    args = parser.parse_args(argv)
    logs.configure(
        args.log_level,
        args.log_format,
        process=f"worker {args.slot}.{args.generation}",
        text=f"%(asctime)s %(levelname)s worker {args.slot}.{args.generation}: %(message)s",
    )
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the supervisor's to handle
    try:
        preload = os.environ.get("SHARDRUNNER_WORKER_PRELOAD")
        if preload:
            for module in preload.split(","):
                __import__(module.strip())
        import uvloop

        import_platforms()
        controller = load_controller(args.controller) if args.controller else None
    except ControllerError as exc:
        log.error("worker %d cannot start: %s", args.slot, exc)
        sys.exit(BOOT_FAILED)
    except Exception as exc:
        log.error("worker %d cannot start: %s: %s", args.slot, type(exc).__name__, exc)
        sys.exit(BOOT_FAILED)
    # Everything imported so far lives as long as the process: keep it out of the cyclic garbage
    # collector's full passes, which otherwise walk it again and again under load
    # (docs/performance.md, decision 9).
    gc.freeze()
    tcp = {
        "bus_bind": args.bus_bind,
        "curve_server_key": args.curve_server_key,
        "curve_clients": args.curve_clients,
    }
    hooks = WorkerHooks(controller)
    if controller is not None:
        installed = ", ".join(sorted(hooks.overridden)) or "none"
        log.info("worker %d: controller %s, installed: %s", args.slot, args.controller, installed)
    sys.exit(uvloop.run(run(args.endpoint, args.slot, args.generation, **tcp, hooks=hooks)))
