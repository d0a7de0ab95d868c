"""The supervisor's Prometheus endpoint (``--metrics-port``): ``GET /metrics`` on its own loop.

Why an aiohttp handler on the supervisor's loop rather than prometheus_client's HTTP server (a
thread): the supervisor's state (the session book, the slots, the grants) is written by the loop
alone, and a thread reading it while the loop changes it could see a dict change size mid-scrape.
So a scrape takes its :class:`~.collector.MetricsView` on the loop, which only copies references
(about 2 ms for 10,000 connections, see docs/metrics.md), and renders the text in a thread
(``asyncio.to_thread``): the reconcile loop keeps its ticks while the text is formatted. One scrape
renders at a time; another one waits for it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Final

from aiohttp import web
from prometheus_client import generate_latest

from shardrunner.cluster.supervisor.collector import MetricsView, WorkerView, registry_of
from shardrunner.cluster.supervisor.status import budget_usage

if TYPE_CHECKING:
    from shardrunner.cluster.supervisor.core import Supervisor

log = logging.getLogger("shardrunner.supervisor")

#: The classic text format, which every Prometheus reads (the names here need no escaping).
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"


class MetricsError(RuntimeError):
    """The endpoint cannot be served; the message is one sentence for the user."""


def snapshot(sup: Supervisor) -> MetricsView:
    """What a scrape shows of ``sup`` now (runs on its loop: references only, no formatting)."""
    book = sup.book
    reports = book.reports
    conns = []
    for slot in sup.slots:
        if slot.desired.standby and slot.current is None:
            continue  # a finished set's slot, about to go
        for conn in slot.desired.conns:
            r = reports.get(conn)
            state = "closing" if slot.desired.standby else r.state if r is not None else "starting"
            conns.append((slot.index, conn, state, r))
    live = {s.index for s in sup.slots if s.current is not None}
    workers = []
    if sup.reconciler is not None:
        for w in sup.reconciler.live():
            if w.slot in live:
                cpu, rss = w.handle.usage()
                view = WorkerView(w.slot, w.ready, cpu, rss, book.loop_lag.get(w.slot), w.bus_rejected)
                workers.append(view)
    grants = sup.grants
    starts = {}
    for name, plan in sup.plans.items():
        described = plan.describe()
        left, total = described.get("session_starts_remaining"), described.get("session_starts_total")
        if isinstance(left, int) and isinstance(total, int):
            starts[name] = (left, total)
    return MetricsView(
        conns=conns,
        workers=workers,
        groups=[(slot, g) for slot, stats in sorted(book.group_stats.items()) if slot in live for g in stats],
        identify_waiting=grants.queue.waiting if grants is not None else 0,
        identify_waits={k: v.copy() for k, v in grants.waits.items()} if grants is not None else {},
        start_limits=starts,
        budgets=budget_usage(sup),
        host=sup.hosts.name if sup.hosts is not None else "",
    )


def render(view: MetricsView) -> bytes:
    """The exposition text of ``view`` (pure: runs in a thread)."""
    return generate_latest(registry_of(view))


class MetricsServer:
    """``GET /metrics`` on ``bind:port``, served on the supervisor's loop."""

    def __init__(self, sup: Supervisor, bind: str, port: int) -> None:
        self.sup = sup
        self.bind = bind
        self.port = port
        self._lock = asyncio.Lock()
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/", self._index)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.bind, self.port)
        try:
            await site.start()
        except asyncio.CancelledError:  # stopped during the start: leave no socket behind
            await self._runner.cleanup()
            raise
        except OSError as exc:
            await self._runner.cleanup()
            raise MetricsError(
                f"cannot serve metrics on {self.bind}:{self.port} ({exc.strerror or exc}): "
                "choose another --metrics-port, or 0 for none"
            ) from None
        log.info("metrics on http://%s:%d/metrics", self.bind, self.port)

    async def close(self) -> None:
        await self._runner.cleanup()

    async def _metrics(self, request: web.Request) -> web.Response:
        async with self._lock:
            view = snapshot(self.sup)
            body = await asyncio.to_thread(render, view)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(text="shardrunner: the metrics are at /metrics\n")


async def serve_metrics(sup: Supervisor) -> MetricsServer | None:
    """Start the endpoint if ``metrics_port`` asks for one (None otherwise)."""
    port = sup.settings.metrics_port
    if not port:
        return None
    server = MetricsServer(sup, sup.settings.metrics_bind, port)
    await server.start()
    return server
