"""Measures end-to-end throughput with a stepped offered rate: simulator -> shards -> workers -> bus
-> a bot using `shardrunner.client`.

What: the simulator (its own process, replay mode, zlib-stream, the default realistic dispatch mix)
holds its scripts until `shardrunner start --workers W` has every shard ready and the bot (this
process, iterating over `Client`) has joined. Then the offered rate goes up in steps (each held for
--duration seconds, total over all shards); after each step the stream stops and the bot catches up
before the next. A step passes when the bot got at least 99% of the offered events within the step
(plus 0.25 s). Printed per step: offered, sent by the simulator, delivered, and CPU microseconds per
event of the workers, the supervisor and the bot. Figures: the highest rate fully delivered, and
events per worker CPU-second (target: at least 115,000), for each worker count (median of --repeat
runs). The simulator's own send rate and CPU are printed beside, to show it is not the limit.

Run: python -m benchmarks.throughput [--workers 1,2] [--duration 5] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import psutil

from benchmarks.harness import (
    Result,
    Row,
    Scale,
    median,
    print_result,
    running_cluster,
    sim_config,
    sim_sent,
)
from benchmarks.simproc import running_simulator
from harness.cluster import ClusterProcess
from harness.procs import cpu_of, own_cpu
from shardrunner.client import Client

#: Offered rates (events per second over all shards), tried in order until one fails.
STEPS = (25_000, 50_000, 75_000, 100_000, 125_000, 150_000, 175_000, 200_000, 250_000)
DELIVERED_ENOUGH = 0.99
GRACE_S = 0.25
TARGET_PER_WORKER_CPU_S = 115_000


class Bot:
    """The consuming bot: counts events and bytes; with ``record``, keeps (shard, seq, arrival)."""

    def __init__(self, client: Client, record: bool = False) -> None:
        self.client = client
        self.count = 0
        self.bytes = 0
        self.record = record
        self.arrivals: dict[int, tuple[list[int], list[int]]] = {}
        self.task: asyncio.Future[None] | None = None

    async def _consume(self) -> None:
        clock = time.monotonic_ns
        arrivals = self.arrivals
        async for event in self.client:
            self.count += 1
            self.bytes += len(event.raw)
            if self.record:
                entry = arrivals.get(event.shard)
                if entry is None:
                    entry = arrivals[event.shard] = ([], [])
                entry[0].append(event.seq)
                entry[1].append(clock())

    def start(self) -> None:
        self.task = asyncio.ensure_future(self._consume())

    async def wait_count(self, n: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.count < n:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True


@dataclass
class Rig:
    """The simulator, a cluster and the bot, ready, with the stream held."""

    port: int
    sim: psutil.Process
    cluster: ClusterProcess
    bot: Bot
    shards: int

    def snapshot(self) -> dict[str, float]:
        procs = self.cluster.cpu()
        workers = sum(v for k, v in procs.items() if k != self.cluster.supervisor.pid)
        return {
            "t": time.perf_counter(),
            "workers": workers,
            "supervisor": procs.get(self.cluster.supervisor.pid, 0.0),
            "bot": own_cpu(),
            "sim": cpu_of(self.sim),
            "delivered": float(self.bot.count),
        }


@contextlib.contextmanager
def simulator(
    *, shards: int, events_per_shard: int, mix: str = "", tick: float = 0.01, record: bool = False
) -> Iterator[tuple[int, psutil.Process]]:
    """The simulator with its scripts held; each new cluster's sessions get the whole script."""
    extra = ["--tick", str(tick)]
    if mix:
        extra += ["--mix", mix]
    if record:
        extra.append("--record-sends")
    with running_simulator(
        shards=shards, events=events_per_shard, compress=["zlib-stream"], extra=extra, rate="0"
    ) as (port, sim):
        yield port, sim


@contextlib.asynccontextmanager
async def rig(
    sim: tuple[int, psutil.Process], *, workers: int, shards: int, record: bool = False
) -> AsyncIterator[Rig]:
    port, sim_proc = sim
    # Queues big enough that nothing is dropped while the bot catches up after a step.
    queues = ["--queue-events", str(10_000_000), "--queue-bytes", str(8 << 30)]
    async with running_cluster(
        port, workers=workers, shards=shards, extra=["--groups", "bench", *queues]
    ) as c:
        await c.wait_ready(timeout=120)
        client = Client(c.run_dir, group="bench")
        await client.start()
        bot = Bot(client, record=record)
        bot.start()
        try:
            before = await sim_sent(port)
            # READY and the GUILD_CREATEs of every shard came before the stream.
            if not await bot.wait_count(before, 30):
                raise SystemExit(f"the bot got {bot.count} of the {before} events sent before the stream")
            bot.count = bot.bytes = 0
            bot.arrivals.clear()
            yield Rig(port, sim_proc, c, bot, shards)
        finally:
            if bot.task:
                bot.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await bot.task
            await client.close()


async def step(r: Rig, rate: float, duration: float) -> dict[str, Any]:
    """Offer ``rate`` events/s (over all shards) for ``duration`` s; wait until the bot caught up."""
    sent0 = await sim_sent(r.port)
    delivered0 = r.bot.count
    a = r.snapshot()
    await sim_config(r.port, rate=rate / r.shards)
    await asyncio.sleep(duration)
    await sim_config(r.port, rate=0)
    stopped = r.snapshot()
    await asyncio.sleep(GRACE_S)
    in_time = r.bot.count - delivered0
    sent = await sim_sent(r.port) - sent0
    # Then everything sent must arrive: nothing may be lost, only late.
    caught_up = await r.bot.wait_count(delivered0 + sent, timeout=120)
    b = r.snapshot()
    total = r.bot.count - delivered0
    offered = rate * duration
    seconds = stopped["t"] - a["t"]
    per_event = {
        k: (b[k] - a[k]) / total * 1e6 if total else float("nan") for k in ("workers", "supervisor", "bot")
    }
    return {
        "offered_per_s": rate,
        "sent_per_s": sent / seconds,
        # Delivered within the step (and its grace), per second of the step.
        "delivered_per_s": in_time / seconds,
        "delivered_fraction": in_time / offered,
        "passed": in_time >= DELIVERED_ENOUGH * offered,
        "lost": sent - total if caught_up else None,
        "workers_us": per_event["workers"],
        "supervisor_us": per_event["supervisor"],
        "bot_us": per_event["bot"],
        "sim_cpu_share": (stopped["sim"] - a["sim"]) / seconds,
        "per_worker_cpu_s": total / (b["workers"] - a["workers"]) if b["workers"] > a["workers"] else None,
        "mean_event_bytes": r.bot.bytes / r.bot.count if r.bot.count else None,
    }


def budget(steps: Sequence[float], duration: float, shards: int) -> int:
    """Events per shard the script needs for every step (plus a margin)."""
    return int(sum(steps) * duration * 1.1 / shards) + 1000


async def one_run(
    sim: tuple[int, psutil.Process], workers: int, shards: int, duration: float, steps: Sequence[float]
) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    async with rig(sim, workers=workers, shards=shards) as r:
        for rate in steps:
            res = await step(r, rate, duration)
            results.append(res)
            print(
                f"  offered {rate:>9,.0f}/s  sent {res['sent_per_s']:>9,.0f}/s  delivered "
                f"{res['delivered_per_s']:>9,.0f}/s ({res['delivered_fraction']:6.1%})  per event: workers "
                f"{res['workers_us']:.2f} us, supervisor {res['supervisor_us']:.2f} us, bot "
                f"{res['bot_us']:.2f} us; simulator {res['sim_cpu_share']:.0%} of a core",
                flush=True,
            )
            if res["lost"]:
                raise SystemExit(f"{res['lost']} events never reached the bot at {rate:,.0f}/s")
            if not res["passed"]:
                break
    passed = [x for x in results if x["passed"]]
    best = max(passed, key=lambda x: x["offered_per_s"]) if passed else None
    return {
        "steps": results,
        "max_rate": best["offered_per_s"] if best else 0.0,
        "max_delivered_per_s": best["delivered_per_s"] if best else 0.0,
        # CPU per event at the highest passed step, where fixed costs weigh least.
        "workers_us": best["workers_us"] if best else None,
        "supervisor_us": best["supervisor_us"] if best else None,
        "bot_us": best["bot_us"] if best else None,
        "per_worker_cpu_s": best["per_worker_cpu_s"] if best else None,
        "mean_event_bytes": best["mean_event_bytes"] if best else None,
    }


async def run(scale: Scale, workers: Sequence[int] = (1, 2), shards: int = 4) -> Result:
    started = time.monotonic()
    result = Result("throughput", "End-to-end throughput, offered rate stepped up (zlib-stream, default mix)")
    by_workers: dict[int, list[dict[str, Any]]] = {}
    figures: dict[int, dict[str, Any]] = {}
    with simulator(shards=shards, events_per_shard=budget(STEPS, scale.duration, shards)) as sim:
        for w in workers:
            runs = []
            for i in range(scale.repeat):
                print(f"throughput: {w} worker(s), {shards} shards, run {i + 1}/{scale.repeat}", flush=True)
                runs.append(await one_run(sim, w, shards, scale.duration, STEPS))
            by_workers[w] = runs
    for w, runs in by_workers.items():
        fig = {
            k: median([r[k] for r in runs if r[k] is not None])
            for k in ("max_rate", "max_delivered_per_s", "workers_us", "supervisor_us", "bot_us")
        }
        fig["per_worker_cpu_s"] = median([r["per_worker_cpu_s"] for r in runs if r["per_worker_cpu_s"]])
        fig["mean_event_bytes"] = median([r["mean_event_bytes"] for r in runs if r["mean_event_bytes"]])
        figures[w] = {**fig, "runs": runs}
        shardrunner_us = fig["workers_us"] + fig["supervisor_us"]
        result.rows.append(
            Row(
                f"{w} worker(s), {shards} shards, 1 bot: highest rate fully delivered",
                f"{fig['max_rate']:,.0f} events/s (runs: {_list(r['max_rate'] for r in runs)})",
                "",
            )
        )
        result.rows.append(
            Row(
                f"{w} worker(s): CPU per event at that rate",
                f"workers {fig['workers_us']:.2f} µs + supervisor {fig['supervisor_us']:.2f} µs "
                f"= {shardrunner_us:.2f} µs; bot (shardrunner.client) {fig['bot_us']:.2f} µs",
                "",
            )
        )
        result.rows.append(
            Row(
                f"{w} worker(s): events per worker CPU-second",
                f"{fig['per_worker_cpu_s']:,.0f}",
                f">= 115,000: {fig['per_worker_cpu_s'] / TARGET_PER_WORKER_CPU_S:.2f}x",
            )
        )
    result.data = {
        "shards": shards,
        "duration_s": scale.duration,
        "steps": list(STEPS),
        "pass_if_delivered": DELIVERED_ENOUGH,
        "by_workers": {str(k): v for k, v in figures.items()},
    }
    result.seconds = time.monotonic() - started
    return result


def _list(values: Iterable[float]) -> str:
    return ", ".join(f"{v:,.0f}" for v in values)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--scale", choices=["quick", "full"], default="full")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--duration", type=float, help="seconds per step")
    parser.add_argument("--repeat", type=int)
    args = parser.parse_args(argv)
    scale = Scale.named(args.scale, repeat=args.repeat, duration=args.duration)
    import uvloop

    result = uvloop.run(run(scale, [int(w) for w in args.workers.split(",")], args.shards))
    print_result(result)


if __name__ == "__main__":
    main()
