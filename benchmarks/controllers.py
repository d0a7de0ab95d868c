"""Measures what a controller costs on the worker's hot path: receive -> router, CPU per event.

What: one process, one `DiscordShard` fed pre-made zlib-stream frames straight into its receive
callback (no socket, so the figure is the worker's own work: inflate, envelope peek, routing key,
`Event`), its sink the worker's router as `WorkerHooks.make_router` builds it (what
`BusServer.publish` calls), one consumer group with one member, flushed (batches encoded) and
acknowledged every 256 events, as the worker flushes once per loop turn. Half the events are
TYPING_START (~0.2 KB), half MESSAGE_CREATE (~1 KB), interleaved, every one with a guild id.

Cases, each run in turn within a round so that drift hits them alike:
- none: no controller (the plain router);
- empty: a `Controller` subclass that overrides nothing (the worker installs nothing: the same
  plain router, so any difference is noise);
- accept-all: a filter that keeps every event (the cost of calling a contained hook per event);
- drop-half: a filter dropping TYPING_START (half the events reach the router's groups).

Figures: events per second of wall time and CPU microseconds per event (process time), the
median and the lowest of --repeat rounds, and each case's ratio to "none" (the lowest is the
steadier figure on a machine that other work shares); then one filter call alone, bare and
contained, in nanoseconds (best of five million-call loops); and the router alone on ready-made
events (no receive path: the hooks' share of the router's own work). Nothing passes or fails.

Run: python -m benchmarks.controllers [--events 20000] [--repeat 25]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from typing import Any

import msgspec

from shardrunner.bus import protocol as p
from shardrunner.bus.router import Limits, Router
from shardrunner.cluster.worker.hooks import WorkerHooks
from shardrunner.controller import Controller
from shardrunner.gateway.discord import DiscordShard, ShardOptions
from shardrunner.protocol.compression import Compression, new_compressor
from shardrunner.protocol.envelope import Event, RoutingKey
from shardrunner.protocol.keys import ConnKey

CONN = ConnKey("discord", 0, 0, 1)
FLUSH_EVERY = 256
GUILDS = 1000


class Empty(Controller):
    """Overrides nothing."""


class AcceptAll(Controller):
    def accept(self, platform: str, name: str, key: RoutingKey) -> bool:
        return True


class DropHalf(Controller):
    def accept(self, platform: str, name: str, key: RoutingKey) -> bool:
        return name != "TYPING_START"


CASES: dict[str, Controller | None] = {
    "none": None,
    "empty": Empty(),
    "accept-all": AcceptAll(),
    "drop-half": DropHalf(),
}


def frames(events: int) -> list[bytes]:
    """The zlib-stream frames of ``events`` dispatches (one compressor: one stream)."""
    compressor = new_compressor(Compression.ZLIB_STREAM)
    out = []
    for seq in range(1, events + 1):
        guild = str(81384788765712384 + seq % GUILDS)
        user = {"id": "80351110224678912", "username": "x"}
        d: dict[str, Any] = {"guild_id": guild, "channel_id": "41771983423143937"}
        if seq % 2:
            name = "TYPING_START"
            d.update(user_id=user["id"], timestamp=1700000000 + seq, member={"user": user})
        else:
            name = "MESSAGE_CREATE"
            d.update(id=str(10**17 + seq), content="lorem ipsum " * 70, author=user)
        out.append(compressor.compress(msgspec.json.encode({"op": 0, "t": name, "s": seq, "d": d})))
    return out


def one_run(data: list[bytes], controller: Controller | None) -> dict[str, float]:
    router: Router = WorkerHooks(controller).make_router(Limits(max_events=10**7, max_bytes=1 << 34))
    router.join(b"m", p.Join("bench", "m"), 0.0)
    options = ShardOptions(token="bench.token.x", intents=513, compression=Compression.ZLIB_STREAM)
    shard = DiscordShard(CONN, options, router.publish, gateway_url="ws://unused")
    receive = shard._on_message
    member = router.groups["bench"].members["m"]
    delivered = 0
    gc.collect()
    cpu0, t0 = time.process_time(), time.perf_counter()
    for i, frame in enumerate(data, 1):
        receive(frame)
        if i % FLUSH_EVERY == 0:
            router.flush()  # the batches, encoded (the bot's side, decoding them, is not measured)
            delivered += member.inflight_events
            router.ack(p.Ack("bench", "m", member.next_batch - 1), 0.0)
    router.flush()
    delivered += member.inflight_events
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {"per_s": len(data) / seconds, "cpu_us": cpu / len(data) * 1e6, "delivered": delivered}


def router_alone_ns(events: int, rounds: int) -> dict[str, float]:
    """Nanoseconds of CPU per event of the router alone (publish, and a flush and an ack every 256
    events), for each case, on ready-made events: the shard's receive path, the same in every case,
    is left out, so the hooks' share shows. The lowest of ``rounds`` interleaved rounds."""
    made = [
        Event(CONN, "s", seq, "TYPING_START" if seq % 2 else "MESSAGE_CREATE", seq % GUILDS, b"x" * 600)
        for seq in range(1, events + 1)
    ]
    best = {name: float("inf") for name in CASES}
    for _ in range(rounds):
        for name, controller in CASES.items():
            router = WorkerHooks(controller).make_router(Limits(max_events=10**7, max_bytes=1 << 34))
            router.join(b"m", p.Join("bench", "m"), 0.0)
            member = router.groups["bench"].members["m"]
            publish = router.publish
            gc.collect()
            cpu0 = time.process_time()
            for i, event in enumerate(made, 1):
                publish(event)
                if i % FLUSH_EVERY == 0:
                    router.flush()
                    router.ack(p.Ack("bench", "m", member.next_batch - 1), 0.0)
            best[name] = min(best[name], (time.process_time() - cpu0) / events * 1e9)
    return best


def hook_call_ns(calls: int) -> dict[str, float]:
    """Nanoseconds of one call of the filter alone: the bare method, and contained as the worker
    installs it (the guard's wrapper: a counter, a try, one call in 64 timed)."""
    controller = DropHalf()
    contained = WorkerHooks(controller).guard
    assert contained is not None
    wrapped = contained.accept(lambda: None)
    out = {}
    for name, fn in (("bare", controller.accept), ("contained", wrapped)):
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            for i in range(calls):
                fn("discord", "TYPING_START", i)
            best = min(best, (time.perf_counter() - t0) / calls * 1e9)
        out[name] = best
    return out


def bench(events: int, repeat: int) -> list[dict[str, Any]]:
    data = frames(events)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in CASES}
    one_run(data[: events // 10], None)  # warm-up
    for _ in range(repeat):
        for name, controller in CASES.items():
            runs[name].append(one_run(data, controller))
    base_cpu = statistics.median(r["cpu_us"] for r in runs["none"])
    base_min = min(r["cpu_us"] for r in runs["none"])
    base_rate = statistics.median(r["per_s"] for r in runs["none"])
    results = []
    for name, rs in runs.items():
        cpu = statistics.median(r["cpu_us"] for r in rs)
        low = min(r["cpu_us"] for r in rs)
        rate = statistics.median(r["per_s"] for r in rs)
        results.append(
            {
                "benchmark": "controllers",
                "case": name,
                "events_per_run": events,
                "repeat": repeat,
                "events_per_s": rate,
                "cpu_us_per_event": cpu,
                "cpu_us_per_event_min": low,
                "cpu_ratio": cpu / base_cpu,
                "cpu_ratio_min": low / base_min,
                "rate_ratio": rate / base_rate,
                "delivered": rs[0]["delivered"],
                "runs_cpu_us": [round(r["cpu_us"], 3) for r in rs],
            }
        )
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="events per run")
    parser.add_argument("--repeat", type=int, default=25, help="rounds (each runs every case once)")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    results = bench(args.events, args.repeat)
    print(
        f"{'case':12s} {'events/s':>10s} {'CPU us/event':>13s} {'vs none':>8s} "
        f"{'min us/event':>13s} {'vs none':>8s} {'delivered':>10s}"
    )
    for r in results:
        print(
            f"{r['case']:12s} {r['events_per_s']:>10,.0f} {r['cpu_us_per_event']:>13.3f} "
            f"{r['cpu_ratio']:>7.3f}x {r['cpu_us_per_event_min']:>13.3f} {r['cpu_ratio_min']:>7.3f}x "
            f"{r['delivered']:>10,}"
        )
    alone = router_alone_ns(100_000, 9)
    print("the router alone, CPU ns per event (lowest of 9 rounds of 100,000 events):")
    for name, ns in alone.items():
        print(f"  {name:12s} {ns:>8.0f} ns  {ns / alone['none']:.3f}x")
    results.append({"benchmark": "controllers", "case": "router-alone-ns", **alone})
    calls = hook_call_ns(1_000_000)
    print(f"one filter call alone: {calls['bare']:.0f} ns bare, {calls['contained']:.0f} ns contained")
    results.append({"benchmark": "controllers", "case": "hook-call-ns", **calls})
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
