"""What one Prometheus scrape of a big supervisor costs: 10,000 Discord shards (and Twitch beside).

What: a fake supervisor state (the reports a supervisor holds, no processes) of ``--shards`` Discord
connections on ``--workers`` workers, ``--twitch`` Twitch connections (half reading, half sending),
``--groups`` durable consumer groups on every worker and a few Twitch budgets. It times the two
steps of a scrape (docs/metrics.md): the view taken on the supervisor's loop (references only, the
part that holds the loop) and the rendering of the text (done in a thread), and prints the series
count and the size of the answer. Figures, never a pass or fail.

Run: python -m benchmarks.metrics_scrape [--shards 10000] [--workers 64] [--twitch 200] [--groups 4]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from types import SimpleNamespace
from typing import Any

from shardrunner.bus.protocol import GroupStats
from shardrunner.cluster.messages import ConnReport
from shardrunner.cluster.supervisor.book import SessionBook
from shardrunner.cluster.supervisor.collector import MetricsView
from shardrunner.cluster.supervisor.metrics import render, snapshot
from shardrunner.cluster.supervisor.waits import WaitHistogram
from shardrunner.protocol.keys import ConnKey


def _report(conn: ConnKey, i: int, detail: dict[str, Any] | None) -> ConnReport:
    return ConnReport(
        conn, "ready", 10_000 + i, f"session-{i}", "wss://resume", 10_000 + i, 0.042, 2500, 1, 1,
        None, detail=detail, bytes_in=12_000_000 + i, reconnects=1,
    )  # fmt: skip


def fake_supervisor(shards: int, workers: int, twitch: int, groups: int) -> Any:
    """The attributes :func:`snapshot` reads, as a supervisor of that size would hold them."""
    conns = [ConnKey("discord", 0, s, shards) for s in range(shards)]
    conns += [ConnKey("twitch", 0, s, twitch) for s in range(twitch)]
    book = SessionBook()
    for i, conn in enumerate(conns):
        detail = None
        if conn.platform == "twitch" and conn.shard % 2 == 0:
            detail = {
                "role": "read",
                "joined": 49,
                "joining": 1,
                "failed": {"#gone": "msg_channel_suspended"},
            }
        elif conn.platform == "twitch":
            detail = {"role": "send", "login": f"bot{conn.shard}", "queued": 3, "window": "5/20"}
        book.reports[conn] = _report(conn, i, detail)
    per = -(-len(conns) // workers)
    slots = [
        SimpleNamespace(
            index=w,
            current=object(),
            desired=SimpleNamespace(standby=False, conns=conns[w * per : (w + 1) * per]),
        )
        for w in range(workers)
    ]
    for w in range(workers):
        book.group_stats[w] = [
            GroupStats(f"group{g}", None, 2, 100, 100_000, 64, 0, 1_000_000, 10, 0.02) for g in range(groups)
        ]
        book.loop_lag[w] = 0.001
    handles = [
        SimpleNamespace(slot=w, ready=True, handle=SimpleNamespace(usage=lambda: (35.0, 300_000_000)))
        for w in range(workers)
    ]
    waits = WaitHistogram()
    for i in range(shards):
        waits.observe(i * 5 / 16)
    plan = SimpleNamespace(describe=lambda: {"session_starts_remaining": 990, "session_starts_total": 1000})
    return SimpleNamespace(
        book=book,
        slots=slots,
        reconciler=SimpleNamespace(live=lambda: handles),
        grants=SimpleNamespace(queue=SimpleNamespace(waiting=0), waits={"discord": waits}),
        plans={"discord": plan},
        budgets=SimpleNamespace(
            queue=SimpleNamespace(usage=lambda: [("twitch.join", f"bot{i}", 20, 20, 10) for i in range(10)])
        ),
        hosts=None,
        settings=SimpleNamespace(host_name=""),
    )


async def loop_lag_during_render(view: MetricsView, tick: float = 0.01) -> float:
    """The worst lateness of a ``tick``-second timer on the loop while a render runs in a thread
    (the supervisor's case: the GIL is shared, the loop is not held)."""
    rendering = asyncio.ensure_future(asyncio.to_thread(render, view))
    worst = 0.0
    while not rendering.done():
        due = time.perf_counter() + tick
        await asyncio.sleep(tick)
        worst = max(worst, time.perf_counter() - due)
    await rendering
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--twitch", type=int, default=200)
    parser.add_argument("--groups", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    sup = fake_supervisor(args.shards, args.workers, args.twitch, args.groups)
    views: list[float] = []
    renders: list[float] = []
    body = b""
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        view: MetricsView = snapshot(sup)
        t1 = time.perf_counter()
        body = render(view)
        t2 = time.perf_counter()
        views.append(t1 - t0)
        renders.append(t2 - t1)
    series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    print(
        f"{args.shards} Discord + {args.twitch} Twitch connections, {args.workers} workers, "
        f"{args.groups} groups: {series} series, {len(body) / 1e6:.2f} MB"
    )
    print(f"view on the loop: median {statistics.median(views) * 1e3:.1f} ms (min {min(views) * 1e3:.1f})")
    print(
        f"render (thread):  median {statistics.median(renders) * 1e3:.0f} ms (min {min(renders) * 1e3:.0f})"
    )
    lag = asyncio.run(loop_lag_during_render(snapshot(sup)))
    print(f"worst lateness of a 10 ms timer on the loop during a render: {lag * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
