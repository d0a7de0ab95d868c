"""Measures the connect herd and the reconnect storm: N shards started at once, then all dropped at once.

What: a live-mode simulator (its own process, rate 0) laid out for N shards that enforces one
identify per bucket (shard_id % K) per W seconds, and `shardrunner start --workers 2 --shards N
--identify-window W` against it. Measured in one run:
- the herd: launch to the last accepted IDENTIFY (the simulator's clock) against the ideal
  ceil(N/K) x W; failed handshakes (the workers' "cannot connect to" / "handshake with" lines,
  the simulator's errors); op 9s for a too-early IDENTIFY and the simulator's identify-rate
  violations; the most shards connected and waiting for their identify at one time (the status's
  "identifying" state, polled every second); the CPU seconds of the cluster and the simulator;
- the storm: `POST /_sim/fault {"kind": "drop"}` aborts every connection at once; then the time
  until every shard is ready again, the identifies and resumes it took (the simulator's lists),
  failed handshakes and violations.

Run: python -m benchmarks.herd [--shards 10000] [--max-concurrency 64] [--window 0.25] [--workers 2]
[--hung-after SECONDS] (the cluster's: on a loaded machine its supervisor can fall more than the
default 10 s behind on the workers' reports at 10,000 shards, and kill them as hung)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import time
from collections.abc import Sequence
from typing import Any

import psutil

from benchmarks.harness import Result, Row, machine, median, print_result, running_cluster, sim_get
from benchmarks.idle_memory import start_health
from benchmarks.simproc import Sim, live_simulator
from harness.cluster import ClusterProcess


def _cpu(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system
    return total


async def _watch(cluster: ClusterProcess, shards: int, timeout: float) -> tuple[float, int]:
    """Poll the status every second until all ``shards`` are ready: (seconds from now, the most
    shards seen connected and waiting for their identify at once)."""
    started = time.monotonic()
    deadline = started + timeout
    most_waiting = 0
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            status = await cluster.status()
            states = [s["state"] for s in status["shards"]]
            most_waiting = max(most_waiting, states.count("identifying"))
            if states.count("ready") == shards == len(states):
                return time.monotonic() - started, most_waiting
        await asyncio.sleep(1.0)
    raise SystemExit(f"not every shard was ready within {timeout:.0f} s")


async def _back(
    cluster: ClusterProcess, sim: Sim, shards: int, since: tuple[int, int], timeout: float
) -> float:
    """Seconds until the simulator accepted a RESUME or IDENTIFY of every shard after ``since``
    (its list lengths at the drop), and the status shows every shard ready."""
    started = time.monotonic()
    deadline = started + timeout
    back = False
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if not back:
                stats = await sim_get(sim.port, "stats")
                ids = [r for r in stats["identifies"][since[0] :] if r["accepted"]]
                res = [r for r in stats["resumes"][since[1] :] if r["accepted"]]
                back = len(ids) + len(res) >= shards
            if back:
                status = await cluster.status()
                if sum(s["state"] == "ready" for s in status["shards"]) == shards:
                    return time.monotonic() - started
        await asyncio.sleep(0.25)
    raise SystemExit(f"not every shard was back within {timeout:.0f} s")


async def _fault(port: int, body: dict[str, Any]) -> int:
    """POST /_sim/fault: how many connections it hit."""
    import aiohttp

    async with (
        aiohttp.ClientSession() as http,
        http.post(f"http://127.0.0.1:{port}/_sim/fault", json=body) as r,
    ):
        r.raise_for_status()
        return len((await r.json())["applied"])


def _refused_gaps(identifies: list[dict[str, Any]]) -> list[float]:
    """For each IDENTIFY refused as too early: seconds since its bucket's last accepted one."""
    last: dict[int, float] = {}
    gaps = []
    for r in sorted(identifies, key=lambda r: r["time"]):
        if r["accepted"]:
            last[r["bucket"]] = r["time"]
        elif r.get("reason") == "identify rate limit" and r["bucket"] in last:
            gaps.append(r["time"] - last[r["bucket"]])
    return sorted(gaps)


def failure_kinds(cluster: ClusterProcess) -> dict[str, int]:
    """The workers' failed connects by what went wrong (the text after the URL)."""
    kinds: dict[str, int] = {}
    for log in cluster.run_dir.glob("worker-*.log"):
        with contextlib.suppress(OSError), open(log, errors="replace") as f:
            for line in f:
                if "cannot connect to" in line or "handshake with" in line:
                    why = line.rsplit(": ", 1)[-1].strip()[:80]
                    kinds[why] = kinds.get(why, 0) + 1
    return kinds


def _failed(cluster: ClusterProcess, sim: Sim, status: dict[str, Any], workers: int) -> dict[str, int]:
    health = start_health(cluster, status, workers)
    return {
        "connect_failures": health["connect_failures"],
        "worker_restarts": health["worker_restarts"],
        "sim_errors": sim.errors(),
    }


async def run(shards: int, k: int, window: float, workers: int, extra: Sequence[str] = ()) -> Result:
    started = time.monotonic()
    ideal = math.ceil(shards / k) * window
    result = Result(name="herd", title=f"The connect herd and the reconnect storm at {shards:,} shards")
    with live_simulator(shards, max_concurrency=k, identify_window=window) as sim:
        launched = time.time()
        async with running_cluster(
            sim.port, workers=workers, shards=shards, identify_window=window, extra=extra
        ) as cluster:
            ready_s, most_waiting = await _watch(cluster, shards, ideal * 3 + 120)
            procs = [cluster.supervisor, *cluster.workers()]
            cpu_start = _cpu(procs) + _cpu([sim.proc])
            stats = await sim_get(sim.port, "stats")
            status = await cluster.status()
            herd_failed = _failed(cluster, sim, status, workers)
            accepted = sorted(r["time"] for r in stats["identifies"] if r["accepted"])
            gaps = _refused_gaps(stats["identifies"])
            herd = {
                "ready_s": round(ready_s, 2),
                "last_identify_s": round(accepted[-1] - launched, 3),
                "ideal_s": ideal,
                "vs_ideal": round((accepted[-1] - launched) / ideal, 4),
                "first_identify_s": round(accepted[0] - launched, 3),
                # The first window's identifies go at once: the span cannot beat (ceil(N/K) - 1) x W.
                "identify_span_s": round(accepted[-1] - accepted[0], 3),
                "span_vs_floor": round((accepted[-1] - accepted[0]) / (ideal - window), 4),
                "identifies": len(accepted),
                "rate_limited": sum(r.get("reason") == "identify rate limit" for r in stats["identifies"]),
                "violations": len(stats["violations"]),
                "refused_gap_median_s": round(median(gaps), 4) if gaps else None,
                "most_waiting": most_waiting,
                "cpu_s": round(cpu_start, 1),
                **herd_failed,
            }
            print(f"herd: {herd}", flush=True)
            # The storm: every connection dropped at once.
            before_ids, before_res = len(stats["identifies"]), len(stats["resumes"])
            before_violations = len(stats["violations"])
            dropped_at = time.monotonic()
            dropped = await _fault(sim.port, {"kind": "drop"})
            await _back(cluster, sim, shards, (before_ids, before_res), 300)
            back_s = time.monotonic() - dropped_at
            stats = await sim_get(sim.port, "stats")
            status = await cluster.status()
            resumes = [r for r in stats["resumes"][before_res:] if r["accepted"]]
            storm_failed = _failed(cluster, sim, status, workers)
            storm = {
                "dropped": dropped,
                "all_ready_s": round(back_s, 2),
                "identifies": len(stats["identifies"]) - before_ids,
                "resumes": len(resumes),
                "violations": len(stats["violations"]) - before_violations,
                "cpu_s": round(
                    _cpu([cluster.supervisor, *cluster.workers()]) + _cpu([sim.proc]) - cpu_start, 1
                ),
                **{key: storm_failed[key] - herd_failed[key] for key in storm_failed},
            }
            print(f"storm: {storm}", flush=True)
            if storm["connect_failures"] or herd["connect_failures"]:
                print(f"failed connects, by kind: {failure_kinds(cluster)}", flush=True)
    result.rows.append(
        Row(
            f"herd: {shards:,} shards, K {k}, W {window:g} s",
            f"last IDENTIFY {herd['last_identify_s']:.2f} s after launch; {herd['connect_failures']} "
            f"failed handshakes; at most {herd['most_waiting']:,} connected and waiting",
            f"ideal {ideal:g} s: {herd['vs_ideal']:.3f}x (identify span {herd['identify_span_s']:.2f} s: "
            f"{herd['span_vs_floor']:.3f}x the floor); {herd['rate_limited']} op 9, "
            f"{herd['violations']} violations",
        )
    )
    result.rows.append(
        Row(
            "storm: every connection dropped",
            f"all ready again {storm['all_ready_s']:.2f} s later; {storm['resumes']:,} resumes, "
            f"{storm['identifies']} identifies",
            f"{storm['connect_failures']} failed handshakes, {storm['violations']} violations",
        )
    )
    result.data = {"herd": herd, "storm": storm, "shards": shards, "max_concurrency": k, "window_s": window}
    result.seconds = time.monotonic() - started
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--shards", type=int, default=10000)
    parser.add_argument("--max-concurrency", type=int, default=64)
    parser.add_argument("--window", type=float, default=0.25)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--hung-after", type=float, help="the cluster's --hung-after (default: its own)")
    parser.add_argument("--json", action="store_true", help="print the result's data as JSON at the end")
    args = parser.parse_args(argv)
    m = machine()
    print(f"machine: {m['cpus']} CPUs, {m['memory_gib']} GiB, Python {m['python']}")
    extra = ["--hung-after", str(args.hung_after)] if args.hung_after else []
    result = asyncio.run(run(args.shards, args.max_concurrency, args.window, args.workers, extra))
    print_result(result, "one run", args.json)


if __name__ == "__main__":
    main()
