"""Measures the whole path: simulator -> shards -> worker -> event bus -> a bot using shardrunner.client.

What: a replay-mode simulator (its own process) sends each of S shards N ~1 KB MESSAGE_CREATEs
(zlib-stream) as fast as the sockets take them; `shardrunner start` runs the shards on W workers; a
bot in this process iterates over the events with `shardrunner.client`. Printed: events delivered
per second, CPU microseconds per event for the workers (psutil, user + system), for the
supervisor, and for the bot, and events per worker CPU-second. Median of --repeat runs, each with a
fresh cluster. The simulator holds the replay until the cluster is ready and the bot has joined,
then sends it at full speed; the window runs from that release to the bot's last event. This is the
first cut of the suite's end-to-end benchmark: the offered rate is not stepped yet.

Run: python -m benchmarks.end_to_end [--workers 1] [--shards 4] [--events 50000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from benchmarks.simproc import cpu_of, own_cpu, running_simulator
from shardrunner.client import Client
from shardrunner.cluster.control import CommandError, call
from shardrunner.sim.discord.world import make_token


async def wait_ready(run_dir: Path, shards: int, timeout: float = 120) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = await call(run_dir, "status", timeout=5)
            if [s["state"] for s in status["shards"]].count("ready") == shards:
                return status  # type: ignore[no-any-return]
        except CommandError:
            pass
        await asyncio.sleep(0.2)
    raise SystemExit("the cluster did not become ready")


async def release(port: int) -> None:
    """Start the held replay: every shard's script at full speed."""
    import aiohttp

    async with (
        aiohttp.ClientSession() as http,
        http.post(f"http://127.0.0.1:{port}/_sim/config", json={"rate": "max"}) as r,
    ):
        r.raise_for_status()


async def one_run(port: int, args: argparse.Namespace) -> dict[str, float]:
    run_dir = Path(tempfile.mkdtemp(prefix="sr-bench-"))
    cmd = [
        sys.executable, "-m", "shardrunner", "start", "--api-url", f"http://127.0.0.1:{port}/api/v10",
        "--run-dir", str(run_dir), "--workers", str(args.workers), "--shards", str(args.shards),
        "--identify-window", "0", "--progress", "never", "--log-level", "warning",
        "--queue-events", str(args.shards * args.events + 1000), "--groups", "bench",
    ]  # fmt: skip
    env = {**os.environ, "SHARDRUNNER_TOKEN": make_token(1100000000000000001)}
    sup = subprocess.Popen(cmd, env=env)  # noqa: ASYNC220 - started before anything is timed
    try:
        await wait_ready(run_dir, args.shards)
        client = Client(run_dir, group="bench")
        await client.start()
        # READY and GUILD_CREATE of every shard came before the release.
        for _ in range(2 * args.shards):
            await client.next_event()
        supervisor = psutil.Process(sup.pid)
        procs = [p for p in supervisor.children() if "shardrunner.cluster.worker" in " ".join(p.cmdline())]
        cpu0 = {p.pid: cpu_of(p) for p in procs}
        sup0, own0, t0 = cpu_of(supervisor), own_cpu(), time.perf_counter()
        await release(port)
        expected = args.shards * args.events
        count = 0
        async for _event in client:
            count += 1
            if count >= expected:
                break
        seconds = time.perf_counter() - t0
        worker_cpu = sum(cpu_of(p) - cpu0[p.pid] for p in procs)
        sup_cpu = cpu_of(supervisor) - sup0
        bot_cpu = own_cpu() - own0
        await client.close()
        return {
            "events": count,
            "per_s": count / seconds,
            "worker_us": worker_cpu / count * 1e6,
            "supervisor_us": sup_cpu / count * 1e6,
            "bot_us": bot_cpu / count * 1e6,
            "per_worker_cpu_s": count / worker_cpu if worker_cpu else float("inf"),
        }
    finally:
        sup.terminate()
        try:
            sup.wait(30)
        except subprocess.TimeoutExpired:
            sup.kill()


async def bench(args: argparse.Namespace) -> None:
    with running_simulator(
        shards=args.shards,
        events=args.events,
        compress=["zlib-stream"],
        extra=["--mix", "MESSAGE_CREATE=1"],
        rate="0",  # held until the cluster is ready and the bot has joined
    ) as (port, _sim):
        runs = [await one_run(port, args) for _ in range(args.repeat)]
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(
        f"workers {args.workers}, shards {args.shards}: {med['per_s']:,.0f} events/s delivered to the bot; "
        f"per event: workers {med['worker_us']:.2f} us, supervisor {med['supervisor_us']:.2f} us, "
        f"bot {med['bot_us']:.2f} us; {med['per_worker_cpu_s']:,.0f} events per worker CPU-second"
    )
    print(f"runs (events/s): {[round(r['per_s']) for r in runs]}")
    ratio = med["per_worker_cpu_s"] / 115_000
    print(f"{ratio:.2f} x the 115,000 events per worker CPU-second target of the benchmark suite")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--events", type=int, default=50_000, help="events per shard")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    import uvloop

    uvloop.run(bench(args))


if __name__ == "__main__":
    main()
