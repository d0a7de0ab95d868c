"""The session book: what the supervisor knows of every connection, keyed by ConnKey.

It holds each connection's last session (from reports and handoffs), its routing keys, the bus's
low water per connection, the latest report and an event rate; and the consumer groups the workers
know. The rewind rule is written once, in :meth:`SessionBook.resume_from`.
"""

from __future__ import annotations

import msgspec

from shardrunner.bus.protocol import GroupStats
from shardrunner.cluster import messages as m
from shardrunner.protocol.envelope import SessionSnapshot
from shardrunner.protocol.keys import ConnKey


class SessionBook:
    """Every connection's session and state, as the workers last reported them."""

    def __init__(self) -> None:
        self.snapshots: dict[ConnKey, SessionSnapshot] = {}
        self.keys: dict[ConnKey, list[int | str]] = {}
        #: Per connection, the oldest seq of its session a consumer group had not acknowledged.
        self.low_water: dict[ConnKey, int] = {}
        self.reports: dict[ConnKey, m.ConnReport] = {}
        #: Per connection: (events at the last sample, when, events per second).
        self.rates: dict[ConnKey, tuple[int, float, float]] = {}
        #: Consumer groups seen by any worker: name -> event names (None: all).
        self.groups: dict[str, list[str] | None] = {}
        #: The latest group stats per slot (reports carry changes only).
        self.group_stats: dict[int, list[GroupStats]] = {}
        #: Per slot, its worker's event-loop lag in its latest report (seconds).
        self.loop_lag: dict[int, float] = {}

    def load(self, saved: list[SessionSnapshot]) -> None:
        for snap in saved:
            self.snapshots[snap.conn] = snap
            self.keys[snap.conn] = list(snap.keys)

    def on_report(self, slot: int, report: m.Report, now: float) -> None:
        low = dict(report.low_water)
        for r in report.conns:
            if r.conn in low:
                self.low_water[r.conn] = low[r.conn]
            else:
                self.low_water.pop(r.conn, None)
        for g in report.groups:
            self.groups[g.name] = g.events
        self.group_stats[slot] = report.groups
        self.loop_lag[slot] = report.loop_lag
        for r in report.conns:
            self.reports[r.conn] = r
            if r.keys is not None:
                self.keys[r.conn] = r.keys
            snap = r.snapshot(self.keys.get(r.conn, []))
            if snap is not None:
                self.snapshots[r.conn] = snap
            elif r.state in ("identifying", "ready"):
                self.snapshots.pop(r.conn, None)  # a new session is on its way
            prev = self.rates.get(r.conn)
            if prev is None or r.events_in < prev[0]:
                self.rates[r.conn] = (r.events_in, now, 0.0)
            elif now - prev[1] >= 1.0:
                self.rates[r.conn] = (r.events_in, now, (r.events_in - prev[0]) / (now - prev[1]))

    def on_handed_off(self, snapshots: list[SessionSnapshot]) -> None:
        for snap in snapshots:
            self.snapshots[snap.conn] = snap
            self.low_water.pop(snap.conn, None)  # the handed-off seq already accounts for it
            self.keys[snap.conn] = list(snap.keys)
        self.mark([s.conn for s in snapshots], "handed_off")  # until the next holder reports

    def mark(self, conns: list[ConnKey], state: str) -> None:
        """Show ``state`` for ``conns`` until their next report (``down``: nobody runs them)."""
        for conn in conns:
            report = self.reports.get(conn)
            if report is not None:
                self.reports[conn] = msgspec.structs.replace(report, state=state)

    def forget(self, conns: list[ConnKey]) -> None:
        """Forget everything about ``conns`` (a reshard's old set once it closed, or an aborted new set)."""
        for conn in conns:
            for table in (self.snapshots, self.keys, self.low_water, self.reports, self.rates):
                table.pop(conn, None)

    def resume_from(self, conns: list[ConnKey]) -> list[SessionSnapshot]:
        """The sessions of ``conns`` to resume, each from before what no consumer group acknowledged.

        The rule: a session resumes at ``min(seq, low_water - 1)``, so that the gateway replays
        every event a durable group has not acknowledged yet (the bus drops what it already
        delivered, by session and seq).
        """
        out = []
        for conn in conns:
            snap = self.snapshots.get(conn)
            if snap is None:
                continue
            low = self.low_water.get(conn)
            if low is not None and low - 1 < snap.seq:
                snap = msgspec.structs.replace(snap, seq=low - 1)
            out.append(snap)
        return out

    def slot_groups(self, live_slots: set[int]) -> list[GroupStats]:
        """The group stats of the slots that run a worker now."""
        return [g for slot, stats in sorted(self.group_stats.items()) if slot in live_slots for g in stats]
