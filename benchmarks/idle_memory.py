"""Measures memory per idle shard: worker RSS with N connected, heartbeating shards and no traffic.

What: the simulator (its own process, live mode, rate 0, one small guild per shard) and
`shardrunner start --workers W --shards N` with the identify window at 0; once every shard is
ready, the workers' RSS (psutil) is read, and compared with the RSS of the same workers running
no shards (the baseline: a worker process with its imports). Printed: KiB per shard for each N.
Target (issue 6): at most 64 KiB per idle shard.

Run: python -m benchmarks.idle_memory [--shards 1000,5000] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from benchmarks.simproc import free_port
from shardrunner.cluster.control import CommandError, call
from shardrunner.sim.discord.world import make_token


async def cluster_rss(api_port: int, shards: int, workers: int) -> tuple[float, float]:
    """(seconds to ready, total worker RSS in bytes) for a cluster of ``shards`` shards."""
    run_dir = Path(tempfile.mkdtemp(prefix="sr-mem-"))
    cmd = [
        sys.executable, "-m", "shardrunner", "start", "--api-url", f"http://127.0.0.1:{api_port}/api/v10",
        "--run-dir", str(run_dir), "--workers", str(workers), "--shards", str(shards),
        "--identify-window", "0", "--max-concurrency", "64", "--progress", "never", "--log-level", "warning",
    ]  # fmt: skip
    env = {**os.environ, "SHARDRUNNER_TOKEN": make_token(1100000000000000001)}
    sup = subprocess.Popen(cmd, env=env)  # noqa: ASYNC220 - nothing is timed yet
    started = time.monotonic()
    try:
        while True:
            await asyncio.sleep(0.5)
            if sup.poll() is not None:
                raise SystemExit(f"the cluster stopped with status {sup.returncode}")
            try:
                status = await call(run_dir, "status", timeout=10)
            except CommandError:
                continue
            ready = [s["state"] for s in status["shards"]].count("ready")
            if ready == shards:
                break
            if time.monotonic() - started > 600:
                raise SystemExit(f"only {ready}/{shards} shards ready after 600 s")
        seconds = time.monotonic() - started
        await asyncio.sleep(3)  # let allocations settle after the start-up burst
        procs = [
            p
            for p in psutil.Process(sup.pid).children()
            if "shardrunner.cluster.worker" in " ".join(p.cmdline())
        ]
        return seconds, float(sum(p.memory_info().rss for p in procs))
    finally:
        sup.terminate()
        try:
            sup.wait(60)
        except subprocess.TimeoutExpired:
            sup.kill()


async def bench(args: argparse.Namespace) -> None:
    counts = [int(n) for n in args.shards.split(",")]
    port = free_port()
    cmd = [
        sys.executable, "-m", "shardrunner", "sim", "discord", "--port", str(port),
        "--shards", str(max(counts)), "--guilds-per-shard", "1", "--min-members", "2", "--max-members", "5",
        "--rate", "0", "--identify-window", "0", "--max-concurrency", "64",
        "--heartbeat-interval", "41250", "--heartbeat-request-interval", "0",
        "--session-start-total", "1000000", "--log-level", "warning",
    ]  # fmt: skip
    sim = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)  # noqa: ASYNC220 - before anything is measured
    try:
        assert sim.stdout is not None
        if "listening" not in sim.stdout.readline():
            raise SystemExit("the simulator did not start")
        # Baseline: the same workers with one shard each (imports, sockets, no real load).
        _, base = await cluster_rss(port, args.workers, args.workers)
        base_per_worker = base / args.workers
        print(f"baseline: {base_per_worker / 1048576:.1f} MiB per worker process with one shard")
        for n in counts:
            seconds, rss = await cluster_rss(port, n, args.workers)
            per_shard = (rss - base) / max(1, n - args.workers)
            print(
                f"{n:>6} shards on {args.workers} workers: ready in {seconds:.1f} s, workers' RSS "
                f"{rss / 1048576:.0f} MiB, {per_shard / 1024:.1f} KiB per idle shard "
                f"({per_shard / 1024 / 64:.2f} x the 64 KiB target)"
            )
    finally:
        sim.terminate()
        sim.wait(30)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--shards", default="1000", help="comma-separated shard counts")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
