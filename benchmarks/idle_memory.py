"""Measures memory per idle shard: worker RSS with N connected, heartbeating shards and no traffic.

What: for each shard count N, a fresh `shardrunner start --workers W --shards N` (W = 2 by
default) against a live-mode simulator laid out for N shards (its own process; rate 0, one small
guild per shard, HELLO's heartbeat interval 41.25 s as Discord's, max_concurrency 64; the cluster
paces identifies with a 50 ms window, the simulator enforces none). Once every shard is ready and
a few seconds have passed, the workers' RSS (psutil, summed) is read. The baseline is the same W
workers with one shard each (a worker process with its imports and one connection), against its
own W-shard simulator; per shard = (RSS - baseline) / (N - W). USS and PSS (psutil
memory_full_info) are recorded too, and so are the simulator's RSS, the fds, and what went wrong
on the way to ready (failed connects, worker restarts, extra identifies, resumes, simulator
errors). Median of --repeat runs, each with a fresh cluster, counts interleaved. Counts: 1,000,
5,000 and 10,000 at full scale, 500 and 1,000 at quick scale. Target (issue 6): at most 64 KiB
per idle shard.

Shards connect as their identify turn nears (the cluster's identify lead, 1 s: about 20 per
bucket at a 50 ms window), and each worker lets at most 128 handshakes be in flight; before that,
every shard connected at once at start and from about 5,000 shards handshakes timed out and were
retried (benchmarks/herd.py measures the herd). Each run counts what still goes wrong; the memory
is read once every shard is ready.

Run: python -m benchmarks.idle_memory [--scale quick|full] [--shards 1000,5000] [--workers 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

import psutil

from benchmarks.harness import Result, Row, Scale, machine, median, print_result, running_cluster
from benchmarks.simproc import Sim, live_simulator
from harness.cluster import ClusterProcess

TARGET_KIB = 64.0
MIB = 1048576
#: Identify pacing: the cluster runs 64 buckets (the simulator's max_concurrency) with a 50 ms
#: window, about 1,000 identifies a second; the simulator enforces no window (0), so that jitter
#: between the two cannot turn into op 9s and retries 1-5 s later. Not 0 for the cluster: with a
#: window of 0 its queue grants every waiting shard at once when it opens, which at 10,000 shards
#: once overflowed the ZeroMQ queue to a busy worker (since fixed: the supervisor's socket has no
#: high-water mark); pacing also keeps the start-up from being one burst.
MAX_CONCURRENCY = 64
IDENTIFY_WINDOW = 0.05


def _memory(procs: Sequence[psutil.Process]) -> dict[str, float]:
    """Summed RSS, USS and PSS (bytes) and open fds of ``procs``."""
    out = {"rss": 0.0, "uss": 0.0, "pss": 0.0, "fds": 0.0}
    for p in procs:
        with contextlib.suppress(psutil.Error):
            full = p.memory_full_info()
            out["rss"] += full.rss
            out["uss"] += getattr(full, "uss", 0)
            out["pss"] += getattr(full, "pss", 0)
            out["fds"] += p.num_fds()
    return out


async def one_cluster(sim: Sim, *, shards: int, workers: int, settle: float) -> dict[str, Any]:
    """Start ``shards`` shards on ``workers`` workers, wait until all are ready, settle, measure."""
    sim_errors = sim.errors()
    async with running_cluster(
        sim.port, workers=workers, shards=shards, identify_window=IDENTIFY_WINDOW
    ) as cluster:
        # Polled every 0.25 s, not 0.05: at 5,000 shards one status call costs the supervisor about
        # 9 ms of CPU and this process as much to decode, which would take a good part of a core
        # from the start-up being timed. The figure here is memory; 0.25 s is precise enough.
        ready_s = await cluster.wait_ready(timeout=max(120.0, shards * 0.06), interval=0.25)
        await asyncio.sleep(settle)  # let allocations settle after the start-up burst
        procs = cluster.workers()
        if len(procs) != workers:
            raise SystemExit(f"expected {workers} workers, found {len(procs)}")
        mem = _memory(procs)
        sup = _memory([cluster.supervisor])
        simmem = _memory([sim.proc])
        status = await cluster.status()
        not_ready = [s for s in status["shards"] if s["state"] != "ready"]
        if not_ready:
            raise SystemExit(f"{len(not_ready)} of {shards} shards were no longer ready after settling")
        return {
            "ready_s": round(ready_s, 2),
            "rss": mem["rss"],
            "uss": mem["uss"],
            "pss": mem["pss"],
            "worker_fds": int(mem["fds"]),
            "supervisor_rss": sup["rss"],
            "sim_rss": simmem["rss"],
            "sim_fds": int(simmem["fds"]),
            **start_health(cluster, status, workers),
            "sim_errors": sim.errors() - sim_errors,
        }


def start_health(cluster: ClusterProcess, status: dict[str, Any], workers: int) -> dict[str, int]:
    """What went wrong on the way to ready: worker restarts, failed connects, crashed shards, and
    identifies and resumes beyond one identify per shard (from the status and the workers' logs)."""
    failed = crashed = 0
    for log in cluster.run_dir.glob("worker-*.log"):
        with contextlib.suppress(OSError), open(log, errors="replace") as f:
            for line in f:
                failed += "cannot connect to" in line or "handshake with" in line
                crashed += line.rstrip().endswith(" crashed")
    identifies = sum(int(s["identifies"]) for s in status["shards"])
    return {
        "worker_restarts": max((w["generation"] for w in status["workers"]), default=workers) - workers,
        "connect_failures": failed,
        "shard_crashes": crashed,
        "identifies": identifies,
        "extra_identifies": max(0, identifies - len(status["shards"])),  # a resumed shard counts 0
        "resumes": sum(int(s["resumes"]) for s in status["shards"]),
    }


HEALTH = (
    "worker_restarts",
    "connect_failures",
    "shard_crashes",
    "identifies",
    "extra_identifies",
    "resumes",
    "sim_errors",
)


def trouble(runs: Sequence[dict[str, Any]]) -> str:
    """The start-up problems of some runs (the worst run's count of each), in words; "" if none."""
    worst = {k: max(m[k] for m in runs) for k in HEALTH}
    parts = []
    if worst["worker_restarts"]:
        parts.append(f"{worst['worker_restarts']} worker restarts ({worst['shard_crashes']} shards crashed)")
    if worst["connect_failures"]:
        parts.append(f"{worst['connect_failures']:,} failed connects")
    if worst["extra_identifies"]:
        parts.append(f"{worst['extra_identifies']:,} identifies beyond one per shard")
    if worst["resumes"]:
        parts.append(f"{worst['resumes']:,} resumes")
    if worst["sim_errors"]:
        parts.append(f"{worst['sim_errors']:,} simulator errors")
    return ", ".join(parts)


def default_counts(scale: Scale) -> list[int]:
    return [500, 1000] if scale.name == "quick" else [1000, 5000, 10000]


async def run(
    scale: Scale,
    counts: Sequence[int] | None = None,
    *,
    workers: int = 2,
    settle: float = 5.0,
    verbose: bool = True,
) -> Result:
    started = time.monotonic()
    counts = sorted(counts or default_counts(scale))
    if counts[0] <= workers:
        raise SystemExit(f"every count must be above the worker count ({workers})")

    def say(text: str) -> None:
        if verbose:
            print(text, flush=True)

    # One simulator per shard count, each laid out for that count, so that every shard (the
    # baseline's too) holds exactly one small guild: a 2-shard cluster against a 10,000-shard
    # layout would hold 5,000 guilds per shard (and be closed with 4011 above 2,500).
    say(f"starting {len(counts) + 1} simulators ({', '.join(f'{n:,}' for n in [workers, *counts])} shards)")
    base_runs: list[dict[str, Any]] = []
    runs: dict[int, list[dict[str, Any]]] = {n: [] for n in counts}
    with contextlib.ExitStack() as stack:
        sims = {
            # A stopped cluster's sessions stay resumable for the resume window: 10 s, not 180, so
            # that a simulator holds only the sessions of the run it serves.
            n: stack.enter_context(
                live_simulator(
                    n,
                    max_concurrency=MAX_CONCURRENCY,
                    identify_window=0.0,
                    extra=["--resume-window", "10"],
                )
            )
            for n in [workers, *counts]
        }
        for r in range(scale.repeat):
            # Interleaved: each repeat measures the baseline and then every count, so drift over
            # the session (other load on the machine) spreads over every figure alike.
            base = await one_cluster(sims[workers], shards=workers, workers=workers, settle=settle)
            base_runs.append(base)
            say(f"run {r + 1}/{scale.repeat}: baseline {base['rss'] / workers / MIB:.1f} MiB per worker")
            for n in counts:
                m = await one_cluster(sims[n], shards=n, workers=workers, settle=settle)
                m["kib_per_shard"] = (m["rss"] - base["rss"]) / (n - workers) / 1024
                m["uss_kib_per_shard"] = (m["uss"] - base["uss"]) / (n - workers) / 1024
                m["pss_kib_per_shard"] = (m["pss"] - base["pss"]) / (n - workers) / 1024
                runs[n].append(m)
                say(
                    f"run {r + 1}/{scale.repeat}: {n:>6,} shards ready in {m['ready_s']:.1f} s, workers' RSS "
                    f"{m['rss'] / MIB:.0f} MiB, {m['kib_per_shard']:.1f} KiB per shard (USS "
                    f"{m['uss_kib_per_shard']:.1f}), simulator RSS {m['sim_rss'] / MIB:.0f} MiB, "
                    f"fds {m['worker_fds']:,} (workers) / {m['sim_fds']:,} (simulator)"
                )
                if trouble([m]):
                    say(f"  on the way to ready: {trouble([m])}")

    baseline_mib = median([b["rss"] for b in base_runs]) / workers / MIB
    result = Result(name="memory", title="Memory per idle shard")
    points = []
    for n in counts:
        rs = runs[n]
        kib = median([m["kib_per_shard"] for m in rs])
        rss_mib = median([m["rss"] for m in rs]) / MIB
        point = {
            "shards": n,
            "kib_per_shard": round(kib, 2),
            "uss_kib_per_shard": round(median([m["uss_kib_per_shard"] for m in rs]), 2),
            "pss_kib_per_shard": round(median([m["pss_kib_per_shard"] for m in rs]), 2),
            "rss_mib": round(rss_mib, 1),
            "ready_s": round(median([m["ready_s"] for m in rs]), 2),
            "sim_rss_mib": round(median([m["sim_rss"] for m in rs]) / MIB, 1),
            "trouble": trouble(rs),
            "runs": [
                {
                    "kib_per_shard": round(m["kib_per_shard"], 2),
                    "uss_kib_per_shard": round(m["uss_kib_per_shard"], 2),
                    "pss_kib_per_shard": round(m["pss_kib_per_shard"], 2),
                    "rss_mib": round(m["rss"] / MIB, 1),
                    "uss_mib": round(m["uss"] / MIB, 1),
                    "pss_mib": round(m["pss"] / MIB, 1),
                    "ready_s": m["ready_s"],
                    "supervisor_rss_mib": round(m["supervisor_rss"] / MIB, 1),
                    "sim_rss_mib": round(m["sim_rss"] / MIB, 1),
                    "worker_fds": m["worker_fds"],
                    "sim_fds": m["sim_fds"],
                    **{k: m[k] for k in HEALTH},
                }
                for m in rs
            ],
        }
        points.append(point)
        troubles = trouble(rs)
        result.rows.append(
            Row(
                f"{n:,} shards on {workers} workers",
                f"{kib:.1f} KiB per shard (workers' RSS {rss_mib:.0f} MiB)"
                + (f" [on the way to ready, at worst: {troubles}]" if troubles else ""),
                f"<= {TARGET_KIB:.0f} KiB: {kib / TARGET_KIB:.2f}x",
            )
        )
    result.data = {
        "points": points,
        "baseline_mib_per_worker": round(baseline_mib, 2),
        "baseline_runs_mib_per_worker": [round(b["rss"] / workers / MIB, 2) for b in base_runs],
        "workers": workers,
        "settle_s": settle,
        "target_kib": TARGET_KIB,
        "repeat": scale.repeat,
    }
    result.seconds = time.monotonic() - started
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--scale", choices=["quick", "full"], default="full")
    parser.add_argument("--shards", help="comma-separated shard counts (default: by scale)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, help="runs per figure (default: by scale)")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds between ready and reading")
    parser.add_argument("--json", action="store_true", help="print the result's data as JSON at the end")
    args = parser.parse_args(argv)
    scale = Scale.named(args.scale, repeat=args.repeat)
    counts = [int(n) for n in args.shards.split(",")] if args.shards else None
    m = machine()
    print(f"machine: {m['cpus']} CPUs, {m['memory_gib']} GiB, Python {m['python']}")
    result = asyncio.run(run(scale, counts, workers=args.workers, settle=args.settle))
    base = result.data["baseline_mib_per_worker"]
    print_result(result, f"medians of {scale.repeat}; baseline {base:.1f} MiB per worker", args.json)


if __name__ == "__main__":
    main()
