"""The supervisor's start, in steps that need no loop running yet: the sessions to resume, the
identify queue with the slots (on one host, or through the coordinator on several), the sockets."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import zmq

from shardrunner.cluster import statefile
from shardrunner.cluster.plan import plan_platforms
from shardrunner.cluster.supervisor.channels import save_channel_state
from shardrunner.cluster.supervisor.commands import ControlServer
from shardrunner.cluster.supervisor.hosts import HostAgent
from shardrunner.cluster.supervisor.model import DesiredSlot, Slot
from shardrunner.cluster.supervisor.queues import local_queues, shared_queues
from shardrunner.cluster.supervisor.resizing import save_state
from shardrunner.curve import CurveError, CurveServer
from shardrunner.gateway.platform import PlatformError
from shardrunner.protocol.envelope import SessionSnapshot
from shardrunner.protocol.keys import ConnKey
from shardrunner.settings.hosts import coordinator_url

if TYPE_CHECKING:
    from shardrunner.cluster.supervisor.core import Supervisor

log = logging.getLogger("shardrunner.supervisor")


class StartError(RuntimeError):
    """The start cannot go on; one sentence for the user."""


def load_sessions(sup: Supervisor) -> set[ConnKey]:
    """The saved sessions into the book (none after ``--sim``), the declared groups; returns the
    connections that will resume."""
    s = sup.settings
    saved: list[SessionSnapshot]
    if s.sim:
        saved, why = [], "the built-in simulator starts with no sessions: identifying"
    else:
        saved, why = statefile.load(sup.run_dir.path, sup.conns, sup.token, s.resume_window)
        sup.book.groups = dict(statefile.load_groups(sup.run_dir.path))
    sup.book.load(saved)
    for name in filter(None, (g.strip() for g in s.groups.split(","))):
        sup.book.groups.setdefault(name, None)  # declared: every event is kept for it from the first
    log.info("%s", why)
    return {snap.conn for snap in saved}


def plan_host(sup: Supervisor, resumable: set[ConnKey]) -> None:
    """The identify queue, the budgets and the slots. One host: the session-start check, and every
    connection on a slot. Several hosts (``--coordinator``): both queues in Redis and slots that
    start empty, filled by the host agent with the blocks it claims."""
    s = sup.settings
    url = coordinator_url(s)
    limits = [limit for p in sup.plans.values() for limit in p.limits]
    if url is None:
        for p in sup.plans.values():
            try:
                p.check_starts(sum(1 for c in p.conns if c not in resumable))
            except PlatformError as exc:
                raise StartError(str(exc)) from None
        local_queues(sup, limits, resumable)
        sup.slots = [Slot(i, DesiredSlot(c)) for i, c in enumerate(plan_platforms(sup.conns, s.workers))]
        return
    sup.hosts = HostAgent(sup, url)
    shared_queues(sup, url, limits)
    sup.slots = [Slot(i, DesiredSlot([])) for i in range(s.workers)]


def open_sockets(sup: Supervisor, ctx: zmq.asyncio.Context) -> ControlServer:
    """Bind the worker link and the control socket (also on TCP with CURVE: ``--control-bind``)."""
    s = sup.settings
    curve = None
    if s.control_bind:
        try:
            curve = CurveServer.load(s.curve_server_key or "", s.curve_clients or "")
        except CurveError as exc:
            raise StartError(str(exc)) from None
    try:
        sup.link.bind()
        control = ControlServer(ctx, sup.run_dir.control_endpoint, sup, tcp=s.control_bind, curve=curve)
        control.bind()
    except zmq.ZMQError as exc:
        raise StartError(f"cannot open the sockets in {sup.run_dir.path}: {exc}") from None
    return control


def log_start(sup: Supervisor, resumable: set[ConnKey]) -> None:
    described = "; ".join(f"{n}: {p.describe()}" for n, p in sup.plans.items())
    if sup.hosts is not None:
        log.info("%s: %s", sup.hosts.describe(), described)
    else:
        counts = (len(sup.conns), len(sup.slots), len(resumable))
        log.info("starting %d connections on %d workers (%d to resume): %s", *counts, described)


def save_on_stop(sup: Supervisor) -> None:
    """At a stop: the channel table and the state file (the sessions a start within the resume
    window resumes), and a line saying what the next start will do."""
    save_channel_state(sup)
    path = save_state(sup)
    if path is None:
        return
    if sup.settings.sim:
        log.info("stopped; the built-in simulator starts empty, so the next start identifies")
    else:
        count, window = len(sup.book.resume_from(sup.local_conns())), sup.settings.resume_window
        log.info("stopped; %d sessions saved to %s (a start within %.0f s resumes them)", count, path, window)
