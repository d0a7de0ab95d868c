"""Measures start-up time against the identify limit: N shards to READY, compared with ceil(N/K) windows.

What: a live-mode simulator (its own process, rate 0) that enforces one identify per bucket
(shard_id % K) per window of W seconds (--max-concurrency K --identify-window W; a too-early
IDENTIFY gets op 9), and `shardrunner start --workers 2 --shards N --identify-window W`, which
takes K from the simulator's /gateway/bot. Measured per run, with a fresh simulator and cluster:
- launch to all READY: from starting `shardrunner start` until its status command (polled every
  50 ms) shows every shard ready;
- the identify span: from the simulator's first accepted IDENTIFY to its last (GET /_sim/stats,
  "identifies"); the simulator writes READY on the next turn of its loop after accepting, so
  this is also first IDENTIFY to last READY sent, to within milliseconds;
- op 9s / refused identifies (the simulator's "identify rate limit" refusals) and the gaps between
  consecutive identifies of one bucket.
Compared with: the ideal ceil(N/K) x W (the figure the issue's "within 2 % of ideal" refers to;
launch to all READY is set against it), and the floor (ceil(N/K) - 1) x W that the identify span
cannot beat (the first window's identifies go at once; each later one waits a full window).
Median of --repeat runs. Configurations: full scale 32 shards, K 4, W 5 s (8 windows, 40 s) and
16 shards, K 1, W 2 s (16 windows, 32 s); quick scale 8 shards, K 2, W 1 s (4 windows, 4 s).

Run: python -m benchmarks.startup [--scale quick|full] [--repeat 3] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.harness import Result, Row, Scale, machine, median, print_result, running_cluster, sim_get
from benchmarks.simproc import live_simulator

#: The issue's target: launch to all READY within 2 % of ceil(N/K) windows.
TARGET_RATIO = 1.02


@dataclass(frozen=True)
class Config:
    shards: int
    max_concurrency: int
    window: float  # seconds

    @property
    def windows(self) -> int:
        return math.ceil(self.shards / self.max_concurrency)

    @property
    def ideal(self) -> float:
        return self.windows * self.window

    @property
    def floor(self) -> float:
        return (self.windows - 1) * self.window

    def label(self) -> str:
        return f"{self.shards} shards, max_concurrency {self.max_concurrency}, {self.window:g} s window"


def default_configs(scale: Scale) -> list[Config]:
    if scale.name == "quick":
        return [Config(8, 2, 1.0)]
    return [Config(32, 4, 5.0), Config(16, 1, 2.0)]


async def one_run(cfg: Config, workers: int) -> dict[str, Any]:
    """One fresh simulator and one fresh cluster: the timings of one start-up."""
    with live_simulator(cfg.shards, max_concurrency=cfg.max_concurrency, identify_window=cfg.window) as sim:
        launched = time.time()
        async with running_cluster(
            sim.port, workers=min(workers, cfg.shards), shards=cfg.shards, identify_window=cfg.window
        ) as cluster:
            ready_s = await cluster.wait_ready(timeout=cfg.ideal * 3 + 60)
            status = await cluster.status()
            stats = await sim_get(sim.port, "stats")
    identifies = stats["identifies"]
    accepted = sorted((r for r in identifies if r["accepted"]), key=lambda r: r["time"])
    refused = [r for r in identifies if not r["accepted"]]
    rate_refused = [r for r in refused if r["reason"] == "identify rate limit"]
    violations = [v for v in stats["violations"] if v["kind"] == "identify_rate"]
    if status["supervisor"]["max_concurrency"] != cfg.max_concurrency:
        raise SystemExit(
            f"the cluster ran {status['supervisor']['max_concurrency']} buckets, not the simulator's "
            f"{cfg.max_concurrency}"
        )
    if len(accepted) < cfg.shards:
        raise SystemExit(f"the simulator accepted {len(accepted)} identifies for {cfg.shards} shards")
    first, last = accepted[0]["time"], accepted[-1]["time"]
    gaps: list[float] = []
    by_bucket: dict[int, list[float]] = {}
    for r in accepted:
        by_bucket.setdefault(r["bucket"], []).append(r["time"])
    for times in by_bucket.values():
        gaps += [b - a for a, b in itertools.pairwise(times)]
    span = last - first
    return {
        "ready_s": round(ready_s, 3),
        "identify_span_s": round(span, 3),
        "first_identify_s": round(first - launched, 3),  # launch to the first accepted IDENTIFY
        "ready_after_last_identify_s": round(ready_s - (last - launched), 3),
        "accepted": len(accepted),
        "refused": len(refused),
        "rate_limited": len(rate_refused),  # op 9 for a too-early IDENTIFY
        "identify_rate_violations": len(violations),
        "gap_min_s": round(min(gaps), 4) if gaps else None,
        "gap_median_s": round(median(gaps), 4) if gaps else None,
        "gap_max_s": round(max(gaps), 4) if gaps else None,
        "cluster_identifies": sum(int(s["identifies"]) for s in status["shards"]),
        "cluster_max_concurrency": status["supervisor"]["max_concurrency"],
    }


async def run(
    scale: Scale, configs: Sequence[Config] | None = None, *, workers: int = 2, verbose: bool = True
) -> Result:
    started = time.monotonic()
    configs = list(configs or default_configs(scale))
    result = Result(name="startup", title="Start-up time against the identify limit")
    out = []
    for cfg in configs:
        runs = []
        for r in range(scale.repeat):
            m = await one_run(cfg, workers)
            runs.append(m)
            if verbose:
                print(
                    f"{cfg.label()}, run {r + 1}/{scale.repeat}: all READY {m['ready_s']:.2f} s after "
                    f"launch (first IDENTIFY at {m['first_identify_s']:.2f} s, identify span "
                    f"{m['identify_span_s']:.2f} s, status saw the last READY "
                    f"{m['ready_after_last_identify_s']:.2f} s later); bucket gaps "
                    f"{m['gap_min_s']}-{m['gap_max_s']} s; {m['rate_limited']} op 9 (rate limit), "
                    f"{m['refused']} refused",
                    flush=True,
                )
        ready = median([m["ready_s"] for m in runs])
        span = median([m["identify_span_s"] for m in runs])
        rate_limited = sum(m["rate_limited"] for m in runs)
        entry = {
            "shards": cfg.shards,
            "max_concurrency": cfg.max_concurrency,
            "window_s": cfg.window,
            "windows": cfg.windows,
            "workers": min(workers, cfg.shards),
            "ideal_s": cfg.ideal,
            "floor_s": cfg.floor,
            "ready_s": round(ready, 3),
            "ready_vs_ideal": round(ready / cfg.ideal, 4),
            "ready_vs_floor": round(ready / cfg.floor, 4) if cfg.floor else None,
            "identify_span_s": round(span, 3),
            "identify_span_vs_floor": round(span / cfg.floor, 4) if cfg.floor else None,
            "first_identify_s": round(median([m["first_identify_s"] for m in runs]), 3),
            "ready_after_last_identify_s": round(median([m["ready_after_last_identify_s"] for m in runs]), 3),
            "gap_median_s": median([m["gap_median_s"] for m in runs if m["gap_median_s"] is not None]),
            "rate_limited": rate_limited,
            "identify_rate_violations": sum(m["identify_rate_violations"] for m in runs),
            "refused": sum(m["refused"] for m in runs),
            "runs": runs,
        }
        out.append(entry)
        floor_part = (
            f"; floor {cfg.floor:g} s: {ready / cfg.floor:.2f}x (identify span {span / cfg.floor:.3f}x)"
            if cfg.floor
            else ""
        )
        result.rows.append(
            Row(
                cfg.label(),
                f"{ready:.2f} s to all READY (identify span {span:.2f} s; {rate_limited} op 9)",
                f"ideal {cfg.ideal:g} s: {ready / cfg.ideal:.3f}x{floor_part}",
            )
        )
    result.data = {"configs": out, "target_ratio": TARGET_RATIO, "repeat": scale.repeat}
    result.seconds = time.monotonic() - started
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--scale", choices=["quick", "full"], default="full")
    parser.add_argument("--repeat", type=int, help="runs per configuration (default: by scale)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--config",
        action="append",
        metavar="N,K,W",
        help="shards, max_concurrency, window seconds (repeatable; default: by scale)",
    )
    parser.add_argument("--json", action="store_true", help="print the result's data as JSON at the end")
    args = parser.parse_args(argv)
    scale = Scale.named(args.scale, repeat=args.repeat)
    configs = None
    if args.config:
        configs = []
        for text in args.config:
            n, k, w = text.split(",")
            configs.append(Config(int(n), int(k), float(w)))
    m = machine()
    print(f"machine: {m['cpus']} CPUs, {m['memory_gib']} GiB, Python {m['python']}")
    result = asyncio.run(run(scale, configs, workers=args.workers))
    print_result(result, f"medians of {scale.repeat}", args.json)


if __name__ == "__main__":
    main()
