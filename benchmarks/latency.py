"""Measures latency from the simulator's send to the bot's handler, at 25%, 50% and 75% of the
highest rate the cluster fully delivers.

What: the same set-up as benchmarks/throughput.py (simulator in replay mode in its own process,
zlib-stream, the default dispatch mix, `shardrunner start`, a bot in this process iterating over
`shardrunner.client.Client`), with the simulator recording when it wrote each batch of dispatches
(`--record-sends`, read back from `GET /_sim/sends`) and ticking every millisecond so that it sends
small, even bursts. The bot notes when each event reaches it. Both read CLOCK_MONOTONIC
(`time.monotonic_ns()`), which every process on the machine shares, so latency = arrival - write
time of the write that carried the event's seq. Printed for each level: p50, p99, p999 and max, in
milliseconds, over every event of the step (median of --repeat runs). Target (issue 6): p99 under
5 ms at 50%.

The bot (this process) freezes its objects out of the garbage collector once the rig is up
(`gc.freeze()`, as docs/delivery.md advises a bot that cares about its tail), unless --bot-gc
default: a full collection here walks every object of the process (numpy's included) and took
27-36 ms of CPU, about once per 3 s step at 75%, which alone delays about 1% of the step's events,
the p99 (docs/performance.md, decision 13).

The maximum rate comes from --max-rate, or from a stepped run of benchmarks/throughput.py.

Run: python -m benchmarks.latency [--max-rate 75000] [--duration 3] [--repeat 3] [--bot-gc freeze|default]
"""

from __future__ import annotations

import argparse
import bisect
import gc
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmarks import throughput
from benchmarks.harness import Result, Row, Scale, median, print_result, sim_config, sim_get

FRACTIONS = (0.25, 0.5, 0.75)
TICK_S = 0.001
TARGET_P99_MS = 5.0


def latencies(sends: dict[str, Any], arrivals: dict[int, tuple[list[int], list[int]]]) -> np.ndarray:
    """Milliseconds from the write that carried each event to its arrival at the bot."""
    by_shard: dict[int, tuple[list[int], list[int]]] = {}
    for s in sends["sessions"]:
        by_shard[int(s["shard"])] = (s["last_seq"], s["t_ns"])
    out: list[int] = []
    for shard, (seqs, arrived) in arrivals.items():
        last_seqs, written = by_shard.get(shard, ([], []))
        for seq, t in zip(seqs, arrived, strict=True):
            i = bisect.bisect_left(last_seqs, seq)
            if i < len(written):
                out.append(t - written[i])
    return np.array(out, dtype=np.float64) / 1e6


async def one_level(r: throughput.Rig, rate: float, duration: float) -> dict[str, Any]:
    await sim_config(r.port, record_sends=True)
    await sim_get(r.port, "sends", method="DELETE")
    for entry in r.bot.arrivals.values():
        entry[0].clear()
        entry[1].clear()
    res = await throughput.step(r, rate, duration)
    await sim_config(r.port, record_sends=False)
    sends = await sim_get(r.port, "sends")
    lat = latencies(sends, r.bot.arrivals)
    if not len(lat):
        raise SystemExit("no latency samples: the bot recorded no arrivals")
    p50, p99, p999 = np.percentile(lat, [50, 99, 99.9])
    return {
        "rate": rate,
        "samples": len(lat),
        "p50_ms": float(p50),
        "p99_ms": float(p99),
        "p999_ms": float(p999),
        "max_ms": float(lat.max()),
        "delivered_fraction": res["delivered_fraction"],
    }


async def run(
    scale: Scale,
    max_rate: float | None = None,
    workers: int = 1,
    shards: int = 4,
    fractions: Sequence[float] = FRACTIONS,
    bot_gc: str = "freeze",
) -> Result:
    started = time.monotonic()
    if max_rate is None:
        print("latency: finding the highest fully delivered rate first", flush=True)
        found = await throughput.run(Scale(scale.name, 1, scale.duration), [workers], shards)
        max_rate = float(found.data["by_workers"][str(workers)]["max_rate"])
    levels = [f * max_rate for f in fractions]
    events = throughput.budget(levels, scale.duration, shards)
    runs: list[list[dict[str, Any]]] = []
    try:
        with throughput.simulator(shards=shards, events_per_shard=events, tick=TICK_S, record=True) as sim:
            for i in range(scale.repeat):
                print(
                    f"latency: run {i + 1}/{scale.repeat}, {workers} worker(s), {shards} shards", flush=True
                )
                async with throughput.rig(sim, workers=workers, shards=shards, record=True) as r:
                    if bot_gc == "freeze":
                        gc.collect()
                        gc.freeze()  # what a bot does after its start-up (docs/delivery.md)
                    this = []
                    for f, rate in zip(fractions, levels, strict=True):
                        level = await one_level(r, rate, scale.duration)
                        level["fraction"] = f
                        this.append(level)
                        print(
                            f"  {f:.0%} of {max_rate:,.0f}/s = {rate:,.0f}/s: p50 {level['p50_ms']:.2f} ms, "
                            f"p99 {level['p99_ms']:.2f} ms, p999 {level['p999_ms']:.2f} ms, "
                            f"max {level['max_ms']:.1f} ms ({level['samples']:,} events)",
                            flush=True,
                        )
                    runs.append(this)
    finally:
        gc.unfreeze()  # the suite's next benchmarks run in this process with its collector as it was
    result = Result("latency", "Latency from the simulator's send to the bot's handler")
    summary = []
    for j, f in enumerate(fractions):
        level = {
            k: median([run[j][k] for run in runs]) for k in ("rate", "p50_ms", "p99_ms", "p999_ms", "max_ms")
        }
        level["fraction"] = f
        level["runs"] = [run[j] for run in runs]
        summary.append(level)
        target = f"p99 < 5 ms: {level['p99_ms'] / TARGET_P99_MS:.2f}x" if f == 0.5 else ""
        result.rows.append(
            Row(
                f"{f:.0%} of the highest rate ({level['rate']:,.0f} events/s)",
                f"p50 {level['p50_ms']:.2f} ms, p99 {level['p99_ms']:.2f} ms, p999 {level['p999_ms']:.2f} ms",
                target,
            )
        )
    result.data = {
        "max_rate": max_rate,
        "workers": workers,
        "shards": shards,
        "tick_s": TICK_S,
        "bot_gc": bot_gc,
        "duration_s": scale.duration,
        "levels": summary,
    }
    result.seconds = time.monotonic() - started
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--scale", choices=["quick", "full"], default="full")
    parser.add_argument("--max-rate", type=float, help="the highest fully delivered rate (events/s)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--duration", type=float, help="seconds per level")
    parser.add_argument("--repeat", type=int)
    parser.add_argument("--bot-gc", choices=["freeze", "default"], default="freeze")
    args = parser.parse_args(argv)
    scale = Scale.named(args.scale, repeat=args.repeat, duration=args.duration)
    import uvloop

    result = uvloop.run(run(scale, args.max_rate, args.workers, args.shards, bot_gc=args.bot_gc))
    print_result(result)


if __name__ == "__main__":
    main()
