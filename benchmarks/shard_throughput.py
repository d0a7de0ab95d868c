"""Measures the Discord shard's hot path: events per CPU-second from compressed bytes to envelope.

What: one process runs N `DiscordShard`s (picows transport, uvloop) against the simulator's replay
mode (a separate process), with a sink that only counts. Every event goes through the shard's
whole receive path: WebSocket frame, inflate (zlib-stream / zstd-stream / none), envelope decode
(`op`, `t`, `s`, `d` kept raw), routing-key peek (guild id), an `Event` handed to the sink. The
figure is events per CPU-second of the shard process (user + system, getrusage), median of
--repeat runs, for each compression. Events are ~1 KB MESSAGE_CREATEs by default (--mix).

Target (issue 3): at least 140,000 events per CPU-second with zlib-stream on mixed ~1 KB events;
a tight receive + inflate + peek prototype reached about 156k here with the standard zlib.

Run: python -m benchmarks.shard_throughput [--shards 4] [--events 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time

from benchmarks.simproc import running_simulator
from harness.procs import own_cpu
from shardrunner.gateway.discord import DiscordShard, ShardOptions
from shardrunner.identify.local import LocalIdentifyQueue
from shardrunner.identify.protocol import StartLimit
from shardrunner.protocol.compression import Compression
from shardrunner.protocol.envelope import Event
from shardrunner.protocol.keys import ConnKey
from shardrunner.sim.discord.world import make_token


class Counter:
    __slots__ = ("bytes", "count")

    def __init__(self) -> None:
        self.count = 0
        self.bytes = 0

    def __call__(self, event: Event) -> None:
        self.count += 1
        self.bytes += len(event.data)


async def one_run(gateway: str, mode: Compression, shards: int, expected: int) -> dict[str, float]:
    sink = Counter()
    queue = LocalIdentifyQueue(
        [StartLimit("discord.identify", shards, 0.0)], lambda c: ("discord.identify", c.shard), margin=0.0
    )
    options = ShardOptions(token=make_token(1100000000000000001), intents=513, compression=mode)
    fleet = [
        DiscordShard(
            ConnKey("discord", 0, i, shards), options, sink, gateway_url=gateway, identify_queue=queue
        )
        for i in range(shards)
    ]
    cpu0, t0 = own_cpu(), time.perf_counter()
    tasks = [asyncio.ensure_future(s.run()) for s in fleet]
    total = expected * shards
    while sink.count < total:
        await asyncio.sleep(0.005)
        if any(t.done() for t in tasks):
            raise SystemExit(f"a shard stopped: {[t.exception() for t in tasks if t.done()]}")
    seconds, used = time.perf_counter() - t0, own_cpu() - cpu0
    wire = sum(s.counters.bytes_in for s in fleet)
    for s in fleet:
        await s.close()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "events": total,
        "seconds": seconds,
        "cpu": used,
        "per_cpu_s": total / used,
        "per_s": total / seconds,
        "wire_bytes_per_event": wire / total,
        "d_bytes_per_event": sink.bytes / total,
    }


async def bench(args: argparse.Namespace) -> list[dict[str, object]]:
    modes = [Compression(m) for m in args.modes.split(",")]
    compress = [m.value for m in modes]
    with running_simulator(
        shards=args.shards, events=args.events, compress=compress, extra=["--mix", args.mix]
    ) as (port, _sim):
        gateway = f"ws://127.0.0.1:{port}"
        expected = 2 + args.events  # READY, one GUILD_CREATE, the script
        results: list[dict[str, object]] = []
        for mode in modes:
            runs = [await one_run(gateway, mode, args.shards, expected) for _ in range(args.repeat)]
            med: dict[str, object] = {
                "benchmark": "shard_throughput",
                "mode": mode.value,
                "shards": args.shards,
                "events_per_run": runs[0]["events"],
                "repeat": args.repeat,
                "events_per_cpu_s": statistics.median(r["per_cpu_s"] for r in runs),
                "events_per_s": statistics.median(r["per_s"] for r in runs),
                "cpu_share": statistics.median(r["cpu"] / r["seconds"] for r in runs),
                "wire_bytes_per_event": runs[0]["wire_bytes_per_event"],
                "d_bytes_per_event": runs[0]["d_bytes_per_event"],
                "runs_events_per_cpu_s": [round(r["per_cpu_s"]) for r in runs],
            }
            results.append(med)
            print(
                f"{mode.value:12s} {med['events_per_cpu_s']:>10,.0f} events/CPU-s  "
                f"{med['events_per_s']:>10,.0f} events/s  shard CPU {med['cpu_share']:.0%}  "
                f"d {med['d_bytes_per_event']:.0f} B/event, {med['wire_bytes_per_event']:.0f} B on the wire  "
                f"runs {med['runs_events_per_cpu_s']}"
            )
        return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--events", type=int, default=100_000, help="events per shard per run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--modes", default="zlib-stream,zstd-stream,none")
    parser.add_argument(
        "--mix", default="MESSAGE_CREATE=1", help="dispatch mix (see `shardrunner sim discord`)"
    )
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    import uvloop

    results = uvloop.run(bench(args))
    for r in results:
        ratio = float(r["events_per_cpu_s"]) / 140_000  # type: ignore[arg-type]
        print(f"{r['mode']}: {ratio:.2f} x the 140,000 events/CPU-s target")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
