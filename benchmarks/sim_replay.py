"""Measures the Discord simulator's send rate in replay mode.

What: dispatches per second and per simulator CPU-second that `shardrunner sim discord --replay N
--rate max` sends to S shard connections, for zlib-stream, zstd-stream and no compression. The
simulator runs in its own process; the readers are picows clients in this process that count
frames without decompressing them, so they are not the bottleneck (their CPU time is printed too).
Each figure is the median of --repeat runs. The target (issue 2) is at least 200,000 events per
simulator CPU-second.

Run: python -m benchmarks.sim_replay [--shards 4] [--events 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass

import psutil
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from benchmarks.simproc import running_simulator
from harness.procs import cpu_of, own_cpu
from shardrunner.sim.discord.world import make_token


class Counter(WSListener):  # type: ignore[misc]
    """Counts frames; done once `expected` frames arrived."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.frames = 0
        self.bytes = 0
        self.done = asyncio.get_running_loop().create_future()
        self.first_at = 0.0

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type in (WSMsgType.TEXT, WSMsgType.BINARY):
            self.frames += 1
            self.bytes += frame.payload_size
            if self.frames == self.expected and not self.done.done():
                self.done.set_result(time.perf_counter())
        elif frame.msg_type is WSMsgType.CLOSE and not self.done.done():
            self.done.set_exception(RuntimeError(f"closed after {self.frames} frames"))


@dataclass
class Run:
    mode: str
    seconds: float
    sim_cpu: float
    reader_cpu: float
    events: int
    wire_bytes: int

    @property
    def per_second(self) -> float:
        return self.events / self.seconds

    @property
    def per_cpu_second(self) -> float:
        return self.events / self.sim_cpu if self.sim_cpu else float("inf")


async def one_run(port: int, mode: str, shards: int, events: int, sim: psutil.Process) -> Run:
    query = "v=10&encoding=json" + ("" if mode == "none" else f"&compress={mode}")
    token = make_token(1100000000000000001)
    # HELLO + READY + one GUILD_CREATE + the script.
    expected = 3 + events
    conns = []
    for shard in range(shards):
        transport, listener = await ws_connect(lambda: Counter(expected), f"ws://127.0.0.1:{port}/?{query}")
        conns.append((transport, listener, shard))
    cpu0, own0, t0 = cpu_of(sim), own_cpu(), time.perf_counter()
    for transport, _listener, shard in conns:
        identify = {
            "op": 2,
            "d": {"token": token, "intents": 513, "properties": {}, "shard": [shard, shards]},
        }
        transport.send(WSMsgType.TEXT, json.dumps(identify).encode())
    ends = [await asyncio.wait_for(listener.done, 300) for _t, listener, _s in conns]
    seconds = max(ends) - t0
    sim_cpu, reader_cpu = cpu_of(sim) - cpu0, own_cpu() - own0
    wire = sum(listener.bytes for _t, listener, _s in conns)
    for transport, _listener, _shard in conns:
        transport.send_close(1000)
        transport.disconnect()
    return Run(mode, seconds, sim_cpu, reader_cpu, events * shards, wire)


async def bench(args: argparse.Namespace) -> list[dict[str, object]]:
    modes = args.modes.split(",")
    with running_simulator(shards=args.shards, events=args.events, compress=modes) as (port, sim):
        results = []
        for mode in modes:
            runs = [await one_run(port, mode, args.shards, args.events, sim) for _ in range(args.repeat)]
            med: dict[str, object] = {
                "benchmark": "sim_replay",
                "mode": mode,
                "shards": args.shards,
                "events": runs[0].events,
                "repeat": args.repeat,
                "events_per_s": statistics.median(r.per_second for r in runs),
                "events_per_sim_cpu_s": statistics.median(r.per_cpu_second for r in runs),
                "reader_cpu_share": statistics.median(r.reader_cpu / r.seconds for r in runs),
                "sim_cpu_share": statistics.median(r.sim_cpu / r.seconds for r in runs),
                "wire_bytes_per_event": runs[0].wire_bytes / runs[0].events,
            }
            if float(med["reader_cpu_share"]) > 0.9:  # type: ignore[arg-type]
                med["note"] = "the reader saturated its core: the simulator can send faster than measured"
            results.append(med)
            print(
                f"{mode:12s} {med['events_per_s']:>10,.0f} events/s  "
                f"{med['events_per_sim_cpu_s']:>10,.0f} events/sim-CPU-s  "
                f"sim CPU {med['sim_cpu_share']:.0%}  reader CPU {med['reader_cpu_share']:.0%}  "
                f"{med['wire_bytes_per_event']:.0f} B/event on the wire"
            )
            if "note" in med:
                print(f"{'':12s} note: {med['note']}")
        return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--events", type=int, default=250_000, help="events per shard per run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--modes", default="zlib-stream,zstd-stream,none")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    results = asyncio.run(bench(args))
    target = 200_000
    for r in results:
        ratio = float(r["events_per_sim_cpu_s"]) / target  # type: ignore[arg-type]
        if ratio == float("inf"):
            print(f"{r['mode']}: the simulator's CPU time was too small to measure; raise --events")
        else:
            print(f"{r['mode']}: {ratio:.2f} x the 200,000 events/sim-CPU-s target")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
