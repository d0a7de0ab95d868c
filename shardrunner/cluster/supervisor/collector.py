"""The Prometheus families of one supervisor, built from a :class:`MetricsView` at scrape time.

The view is what the supervisor already knows (the workers' reports, the identify grants, the
budgets, the plans), copied by reference on the event loop (:func:`.metrics.snapshot`); this module
turns it into families, off the loop, so a report costs nothing more than it did. The families,
their labels and their cardinality are documented in docs/metrics.md; :data:`FAMILIES` lists every
name this collector can export (the dashboard's test checks its queries against it).

Counters are the workers' own (a connection's events since its worker started, a group's
deliveries since its worker started): a replaced worker starts them at 0 again, which Prometheus'
``rate()`` and ``increase()`` take as a counter reset, the standard way. Nothing here reads a
platform's config, so no token can reach a scrape.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from shardrunner.bus.protocol import GroupStats
from shardrunner.cluster.messages import ConnReport
from shardrunner.cluster.supervisor.waits import WaitHistogram
from shardrunner.gateway.connection import ConnState
from shardrunner.gateway.platform import detail_metrics
from shardrunner.protocol.keys import ConnKey

P: Final = "shardrunner_"
#: The states a connection can be shown in: its own, and the supervisor's words for one nobody
#: reports yet (starting), one a finished set still runs (closing), one between two holders.
STATES: Final = (*(s.value for s in ConnState), "starting", "closing", "handed_off", "down")
CONN_LABELS: Final = ("platform", "generation", "shard")


@dataclass(slots=True)
class WorkerView:
    slot: int
    ready: bool
    cpu_percent: float | None
    rss: int | None
    loop_lag: float | None
    #: Bots' messages its bus refused (its latest report).
    bus_rejected: int = 0


@dataclass
class MetricsView:
    """What one scrape shows: references to the supervisor's state, taken on its loop."""

    #: Every connection this host runs: its slot, key, state, latest report (None: none yet).
    conns: list[tuple[int, ConnKey, str, ConnReport | None]] = field(default_factory=list)
    workers: list[WorkerView] = field(default_factory=list)
    #: The durable groups of each running worker: (slot, stats).
    groups: list[tuple[int, GroupStats]] = field(default_factory=list)
    identify_waiting: int = 0
    identify_waits: dict[str, WaitHistogram] = field(default_factory=dict)
    #: Per platform, its daily session starts (remaining, limit), as its API last said them.
    start_limits: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: ``(budget, key, in use, limit, waiting)`` of each budget key in use now.
    budgets: list[tuple[str, str, int, int, int]] = field(default_factory=list)
    #: This host's name among several (``--coordinator``), else "".
    host: str = ""


def _gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(P + name, doc, labels=list(labels))


def _counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> CounterMetricFamily:
    return CounterMetricFamily(P + name, doc, labels=list(labels))


class SupervisorCollector(Collector):
    """The families of one :class:`MetricsView` (a collector made per scrape)."""

    def __init__(self, view: MetricsView) -> None:
        self.view = view

    def describe(self) -> list[Metric]:
        return []  # registered for one scrape only: no names to check up front

    def collect(self) -> Iterator[Metric]:
        yield from self._connections()
        yield from self._identify()
        yield from self._groups()
        yield from self._workers()
        yield from self._budgets()
        info = _gauge("host_info", "this host's name among the bot's hosts (--coordinator only)", ("host",))
        if self.view.host:
            info.add_metric([self.view.host], 1)
        yield info

    def _connections(self) -> Iterator[Metric]:
        by_state = _gauge("connections", "connections by state", ("platform", "generation", "state"))
        ready = _gauge("connection_ready", "1 when the connection is ready", CONN_LABELS)
        events = _counter("connection_events", "events received", CONN_LABELS)
        latency = _gauge("connection_heartbeat_latency_seconds", "last heartbeat's round trip", CONN_LABELS)
        details = detail_metrics()  # a platform's own families (Twitch: joins, message windows)
        counts: dict[tuple[str, str], dict[str, int]] = {}
        # Summed per worker and platform (10,000 shards would make 40,000 more series): a worker's
        # connections are fixed for its life on one host, so each sum only grows until it restarts.
        sums: dict[tuple[str, str], list[int]] = {}
        for slot, conn, state, r in self.view.conns:
            generation = str(conn.generation)
            per_state = counts.get((conn.platform, generation))
            if per_state is None:
                per_state = counts[(conn.platform, generation)] = dict.fromkeys(STATES, 0)
            per_state[state] = per_state.get(state, 0) + 1
            labels = [conn.platform, generation, str(conn.shard)]
            ready.add_metric(labels, 1 if state == "ready" else 0)
            if r is None:
                continue
            events.add_metric(labels, r.events_in)
            if r.heartbeat_latency is not None:
                latency.add_metric(labels, r.heartbeat_latency)
            total = sums.get((conn.platform, str(slot)))
            if total is None:
                total = sums[(conn.platform, str(slot))] = [0, 0, 0, 0, 0]
            total[0] += r.bytes_in
            total[1] += r.reconnects
            total[2] += r.resumes
            total[3] += r.identifies
            total[4] += r.decode_errors
            if r.detail is not None and conn.platform in details:
                details[conn.platform].add(labels[1:], r.detail)
        for (platform, generation), per_state in sorted(counts.items()):
            for state, n in per_state.items():
                by_state.add_metric([platform, generation, state], n)
        yield from (by_state, ready, events, latency)
        yield from _worker_sums(sums)
        for platform in sorted(details):
            yield from details[platform].families()

    def _identify(self) -> Iterator[Metric]:
        waiting = _gauge("identify_queue_waiting", "connections waiting for an identify grant now")
        waiting.add_metric([], self.view.identify_waiting)
        wait = HistogramMetricFamily(
            P + "identify_queue_wait_seconds",
            "time from an identify request to its grant",
            labels=["platform"],
        )
        for platform, hist in sorted(self.view.identify_waits.items()):
            wait.add_metric([platform], hist.cumulative(), hist.sum)
        remaining = _gauge(
            "identify_session_starts_remaining",
            "session starts left today (Discord's session_start_limit.remaining), as the API last said",
            ("platform",),
        )
        limit = _gauge("identify_session_starts_limit", "session starts a day", ("platform",))
        for platform, (left, total) in sorted(self.view.start_limits.items()):
            remaining.add_metric([platform], left)
            limit.add_metric([platform], total)
        yield from (waiting, wait, remaining, limit)

    def _groups(self) -> Iterator[Metric]:
        labels = ("group", "worker")
        members = _gauge("group_members", "members of the group connected to the worker", labels)
        queued = _gauge("group_queued_events", "events held for the group, not sent yet", labels)
        queued_bytes = _gauge("group_queued_bytes", "bytes of the events held for the group", labels)
        inflight = _gauge("group_inflight_events", "events sent and not acknowledged", labels)
        delivered = _counter("group_delivered_events", "events acknowledged by a member", labels)
        dropped = _counter("group_dropped_events", "events dropped past the queue's bounds", labels)
        redelivered = _counter(
            "group_redelivered_events", "events sent again after their member left", labels
        )
        lag = _gauge("group_ack_lag_seconds", "age of the oldest batch not acknowledged (0: none)", labels)
        for slot, g in self.view.groups:
            values = [g.name, str(slot)]
            members.add_metric(values, g.members)
            queued.add_metric(values, g.held_events)
            queued_bytes.add_metric(values, g.held_bytes)
            inflight.add_metric(values, g.inflight)
            delivered.add_metric(values, g.delivered)
            dropped.add_metric(values, g.dropped)
            redelivered.add_metric(values, g.redelivered)
            lag.add_metric(values, g.ack_lag)
        yield from (members, queued, queued_bytes, inflight, delivered, dropped, redelivered, lag)

    def _workers(self) -> Iterator[Metric]:
        ready = _gauge("worker_ready", "1 when every connection of the worker is ready", ("worker",))
        cpu = _gauge(
            "worker_cpu_usage_ratio", "CPU time per second of the worker process (1: one core)", ("worker",)
        )
        rss = _gauge("worker_resident_memory_bytes", "resident memory of the worker", ("worker",))
        lag = _gauge(
            "worker_event_loop_lag_seconds", "how late the worker's loop woke, last report", ("worker",)
        )
        rejected = _counter("worker_bus_rejected_messages", "bots' messages its bus refused", ("worker",))
        for w in self.view.workers:
            slot = [str(w.slot)]
            ready.add_metric(slot, 1 if w.ready else 0)
            rejected.add_metric(slot, w.bus_rejected)
            if w.cpu_percent is not None:
                cpu.add_metric(slot, w.cpu_percent / 100)
            if w.rss is not None:
                rss.add_metric(slot, w.rss)
            if w.loop_lag is not None:
                lag.add_metric(slot, w.loop_lag)
        yield from (ready, cpu, rss, lag, rejected)

    def _budgets(self) -> Iterator[Metric]:
        labels = ("budget", "key")
        used = _gauge("budget_in_use", "uses in the budget's window now (Twitch: JOINs, logins)", labels)
        limit = _gauge("budget_limit", "uses the budget allows per window", labels)
        waiting = _gauge("budget_waiting", "uses waiting for room in the window", labels)
        for name, key, in_use, cap, waits in self.view.budgets:
            used.add_metric([name, key], in_use)
            limit.add_metric([name, key], cap)
            waiting.add_metric([name, key], waits)
        yield from (used, limit, waiting)


def _worker_sums(sums: dict[tuple[str, str], list[int]]) -> Iterator[Metric]:
    labels = ("platform", "worker")
    families = (
        _counter("worker_received_bytes", "bytes of frames its connections received", labels),
        _counter("worker_reconnects", "reconnections of its connections", labels),
        _counter("worker_resumes", "sessions its connections resumed", labels),
        _counter("worker_identifies", "sessions its connections identified", labels),
        _counter("worker_decode_errors", "payloads or lines its connections could not read", labels),
    )
    for (platform, slot), values in sorted(sums.items()):
        for family, value in zip(families, values, strict=True):
            family.add_metric([platform, slot], value)
    yield from families


def registry_of(view: MetricsView) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SupervisorCollector(view))
    return registry


def _names() -> tuple[str, ...]:
    out: list[str] = []
    for family in SupervisorCollector(MetricsView()).collect():
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
        out.extend(family.name + s for s in suffixes.get(family.type, ("",)))
    return tuple(out)


#: Every sample name the collector can export (counters with ``_total``, the histogram's parts).
FAMILIES: Final = _names()
