"""Measures WebSocket client libraries by frames received per client CPU-second, to choose the shard's.

What: frames received per CPU-second of the client process (user + system CPU from
`resource.getrusage` deltas in that process) and per wall-clock second, for three asyncio clients, each
on uvloop:

- websockets: `websockets.asyncio.client.connect`, a loop of `await ws.recv(decode=False)`;
- aiohttp: `ClientSession.ws_connect(decode_text=False)`, a loop of `await ws.receive()`;
- picows: `ws_connect` with a `WSListener` whose `on_ws_frame` takes the payload as bytes with
  `frame.get_payload_as_bytes()`, the work any real consumer must do.

The server is the Discord simulator in its own process, in replay mode (`--mix MESSAGE_CREATE=1`, about
1 KB per event, `--rate max`), which sends `--events` dispatches on each of `--connections` connections
(shard [i, connections], no heartbeats either way). Cases:

- none: text frames; the client takes the payload bytes and decodes nothing;
- zlib-stream: binary frames, each inflated by one `zlib.decompressobj()` per connection, then the
  envelope peeked with a `msgspec.json.Decoder` of `Envelope` (`op`, `t`, `s`, `d` as `msgspec.Raw`)
  built once; for picows also with `zlib_ng.zlib_ng.decompressobj()` (case "zlib-stream/zlib-ng").

Every run starts a fresh child process for one library and one case (`--child LIB CASE PORT`), which
connects, receives HELLO, says "ready", starts its clocks on "go", sends IDENTIFY and stops them at the
last frame, then prints one JSON line: CPU accounting is clean and no library's state reaches another.
Runs are interleaved across libraries; each figure is the median of `--repeat` runs, and the ratio is to
websockets in the same case. The simulator's CPU share over the same window is printed too: near 100%
it would be the bottleneck of the wall-clock rate (not of frames per client CPU-second).

Run: python -m benchmarks.ws_libraries [--events 200000] [--connections 2] [--repeat 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec
import psutil  # type: ignore[import-untyped,unused-ignore]

from benchmarks.simproc import running_simulator
from harness.procs import REPO, cpu_of

LIBRARIES = ("websockets", "aiohttp", "picows")
#: Case name -> (the gateway's compress= parameter, the inflater it is decoded with).
CASES = {"none": "none", "zlib-stream": "zlib", "zlib-stream/zlib-ng": "zlib-ng"}
#: (library, case) pairs measured, in table order; zlib-ng only for picows.
CONFIGS = [
    (lib, case) for lib in LIBRARIES for case in CASES if lib == "picows" or case != "zlib-stream/zlib-ng"
]
ZLIB_SUFFIX = b"\x00\x00\xff\xff"


# -- the consumer: the same per-frame work whatever the library ------------------------------------


class Envelope(msgspec.Struct):
    """The gateway envelope a shard peeks before it routes the dispatch body."""

    op: int
    t: str | None
    s: int | None
    d: msgspec.Raw


DECODER = msgspec.json.Decoder(Envelope)


class Inflater(Protocol):
    def decompress(self, data: bytes, /) -> bytes: ...


class Consumer:
    """Case none: counts the frames and keeps the last payload (checked after the clocks stop)."""

    __slots__ = ("frames", "last")

    def __init__(self) -> None:
        self.frames = 0
        self.last = b""

    def feed(self, payload: bytes) -> None:
        self.frames += 1
        self.last = payload

    def last_seq(self) -> int | None:
        return DECODER.decode(self.last).s


class InflatingConsumer(Consumer):
    """Case zlib-stream: inflates each message with the connection's inflater and peeks its envelope."""

    __slots__ = ("buffer", "inflater", "seq")

    def __init__(self, inflater: Inflater) -> None:
        super().__init__()
        self.inflater = inflater
        self.buffer = bytearray()
        self.seq: int | None = None

    def feed(self, payload: bytes) -> None:
        self.frames += 1
        if self.buffer or not payload.endswith(ZLIB_SUFFIX):  # a message split over several frames
            self.buffer += payload
            if not payload.endswith(ZLIB_SUFFIX):
                return
            payload = bytes(self.buffer)
            self.buffer.clear()
        self.seq = DECODER.decode(self.inflater.decompress(payload)).s

    def last_seq(self) -> int | None:
        return self.seq


def make_consumer(case: str) -> Consumer:
    inflater = CASES[case]
    if inflater == "none":
        return Consumer()
    if inflater == "zlib":
        return InflatingConsumer(zlib.decompressobj())
    from zlib_ng import zlib_ng

    return InflatingConsumer(zlib_ng.decompressobj())


# -- one connection per library ---------------------------------------------------------------------


@dataclass
class Phases:
    """What a connection waits for and reports, so the clocks cover receiving only."""

    frames: int  # frames to receive after IDENTIFY: READY, one GUILD_CREATE, the script
    go: asyncio.Event
    release: asyncio.Event  # set once the clocks stopped: the connection may close
    ready: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    received: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


Session = Callable[[str, Consumer, bytes, Phases], Coroutine[Any, Any, None]]


async def websockets_session(url: str, consumer: Consumer, identify: bytes, ph: Phases) -> None:
    from websockets.asyncio.client import connect

    async with connect(url, compression=None, ping_interval=None, max_size=None) as ws:
        consumer.feed(await ws.recv(decode=False))  # HELLO
        ph.ready.set_result(None)
        await ph.go.wait()
        await ws.send(identify.decode())
        total = 1 + ph.frames
        while consumer.frames < total:
            consumer.feed(await ws.recv(decode=False))
        ph.received.set_result(None)
        await ph.release.wait()


async def aiohttp_session(url: str, consumer: Consumer, identify: bytes, ph: Phases) -> None:
    import aiohttp

    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(url, autoping=False, max_msg_size=0, decode_text=False) as ws,
    ):
        data_types = (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY)

        async def receive() -> bytes:
            msg = await ws.receive()
            if msg.type not in data_types:
                raise RuntimeError(f"{msg.type!r} after {consumer.frames} frames")
            return msg.data  # type: ignore[no-any-return]

        consumer.feed(await receive())  # HELLO
        ph.ready.set_result(None)
        await ph.go.wait()
        await ws.send_str(identify.decode())
        total = 1 + ph.frames
        while consumer.frames < total:
            consumer.feed(await receive())
        ph.received.set_result(None)
        await ph.release.wait()


async def picows_session(url: str, consumer: Consumer, identify: bytes, ph: Phases) -> None:
    from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

    total = 1 + ph.frames

    class Listener(WSListener):
        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type is WSMsgType.TEXT or frame.msg_type is WSMsgType.BINARY:
                consumer.feed(frame.get_payload_as_bytes())
                if consumer.frames == 1:
                    ph.ready.set_result(None)
                elif consumer.frames == total:
                    ph.received.set_result(None)
            elif frame.msg_type is WSMsgType.CLOSE:
                error = RuntimeError(f"closed after {consumer.frames} frames")
                for fut in (ph.ready, ph.received):
                    if not fut.done():
                        fut.set_exception(error)

    transport, _listener = await ws_connect(Listener, url)
    try:
        await ph.ready
        await ph.go.wait()
        transport.send(WSMsgType.TEXT, identify)
        await ph.received
        await ph.release.wait()
        transport.send_close(WSCloseCode.OK)
    finally:
        transport.disconnect()


SESSIONS: dict[str, Session] = {
    "websockets": websockets_session,
    "aiohttp": aiohttp_session,
    "picows": picows_session,
}


# -- the child: one library, one case, one run -------------------------------------------------------


def cpu_seconds() -> tuple[float, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


def identify_payload(shard: int, shards: int) -> bytes:
    from shardrunner.sim.discord.world import make_token

    d = {
        "token": make_token(1100000000000000001),
        "intents": 513,
        "properties": {"os": "linux", "browser": "ws_libraries", "device": "ws_libraries"},
        "shard": [shard, shards],
    }
    return json.dumps({"op": 2, "d": d}).encode()


async def child_run(lib: str, case: str, port: int, events: int, connections: int) -> dict[str, Any]:
    compress = "" if CASES[case] == "none" else "&compress=zlib-stream"
    url = f"ws://127.0.0.1:{port}/?v=10&encoding=json{compress}"
    go, release = asyncio.Event(), asyncio.Event()
    consumers = [make_consumer(case) for _ in range(connections)]
    phases = [Phases(2 + events, go, release) for _ in range(connections)]
    tasks = [
        asyncio.create_task(SESSIONS[lib](url, c, identify_payload(i, connections), ph))
        for i, (c, ph) in enumerate(zip(consumers, phases, strict=True))
    ]

    async def wait_all(futures: list[asyncio.Future[None]], timeout: float) -> None:
        """Wait for the futures, failing at once if a session task dies first."""
        waiter: asyncio.Future[Any] = asyncio.gather(*futures)
        watched: list[asyncio.Future[Any]] = [waiter, *tasks]
        done, _ = await asyncio.wait(watched, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:
            waiter.cancel()
            for t in done:
                t.result()  # raises the session's error
            raise TimeoutError(f"{lib} {case}: not done after {timeout} s")

    await wait_all([ph.ready for ph in phases], 60)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    user0, sys0 = cpu_seconds()
    t0 = time.perf_counter()
    go.set()
    await wait_all([ph.received for ph in phases], 600)
    seconds = time.perf_counter() - t0
    user1, sys1 = cpu_seconds()
    release.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 30)
    seqs = [c.last_seq() for c in consumers]
    if any(s != events + 2 for s in seqs):  # READY is s=1, the GUILD_CREATE s=2, then the script
        raise RuntimeError(f"{lib} {case}: last sequence numbers {seqs}, expected {events + 2}")
    return {
        "library": lib,
        "case": case,
        "frames": sum(ph.frames for ph in phases),
        "seconds": seconds,
        "user_cpu": user1 - user0,
        "system_cpu": sys1 - sys0,
    }


def child_main(lib: str, case: str, port: int, events: int, connections: int) -> None:
    import uvloop

    result = uvloop.run(child_run(lib, case, port, events, connections))
    print(json.dumps(result), flush=True)


# -- the parent: the simulator, the runs, the table ---------------------------------------------------


def run_child(
    lib: str, case: str, port: int, args: argparse.Namespace, sim: psutil.Process
) -> dict[str, Any]:
    """One run in a fresh process; adds the simulator's CPU seconds over the child's timed window."""
    cmd = [
        sys.executable, "-m", "benchmarks.ws_libraries", "--child", lib, case, str(port),
        "--events", str(args.events), "--connections", str(args.connections),
    ]  # fmt: skip
    with subprocess.Popen(cmd, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdin is not None
        assert proc.stdout is not None
        if (line := proc.stdout.readline()).strip() != "ready":
            raise SystemExit(f"{lib} {case}: the child did not get ready: {line!r}")
        sim0, t0 = cpu_of(sim), time.perf_counter()
        proc.stdin.write("go\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        sim_cpu, window = cpu_of(sim) - sim0, time.perf_counter() - t0
        if proc.wait(60) != 0 or not line:
            raise SystemExit(f"{lib} {case}: the child failed (exit {proc.returncode})")
    result: dict[str, Any] = json.loads(line)
    result["sim_cpu"] = sim_cpu
    result["sim_cpu_share"] = sim_cpu / window
    return result


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def per_cpu(r: dict[str, Any]) -> float:
        return float(r["frames"] / (r["user_cpu"] + r["system_cpu"]))

    return {
        "library": runs[0]["library"],
        "case": runs[0]["case"],
        "frames_per_run": runs[0]["frames"],
        "frames_per_cpu_s": statistics.median(per_cpu(r) for r in runs),
        "frames_per_s": statistics.median(r["frames"] / r["seconds"] for r in runs),
        "client_cpu_share": statistics.median((r["user_cpu"] + r["system_cpu"]) / r["seconds"] for r in runs),
        "system_cpu_fraction": statistics.median(
            r["system_cpu"] / (r["user_cpu"] + r["system_cpu"]) for r in runs
        ),
        "sim_cpu_share": statistics.median(r["sim_cpu_share"] for r in runs),
        "runs": runs,
    }


def cpu_model() -> str:
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def print_table(results: list[dict[str, Any]]) -> None:
    base = {r["case"]: r["frames_per_cpu_s"] for r in results if r["library"] == "websockets"}
    print(
        f"{'library':11s} {'case':20s} {'frames/CPU-s':>13s} {'frames/s wall':>14s} {'x websockets':>13s}"
        f" {'client CPU':>11s} {'sim CPU':>8s}"
    )
    for r in results:
        ref = base.get(r["case"].split("/")[0])
        ratio = f"{r['frames_per_cpu_s'] / ref:.2f}" if ref else "-"
        print(
            f"{r['library']:11s} {r['case']:20s} {r['frames_per_cpu_s']:>13,.0f} {r['frames_per_s']:>14,.0f}"
            f" {ratio:>13s} {r['client_cpu_share']:>11.0%} {r['sim_cpu_share']:>8.0%}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000, help="events per connection per run")
    parser.add_argument("--connections", type=int, default=2, help="connections (shards) in the client")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--libraries", default=",".join(LIBRARIES), help="comma-separated subset")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    parser.add_argument("--child", nargs=3, metavar=("LIB", "CASE", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        lib, case, port = args.child
        child_main(lib, case, int(port), args.events, args.connections)
        return

    libraries = args.libraries.split(",")
    configs = [(lib, case) for lib, case in CONFIGS if lib in libraries]
    versions = {lib: importlib.metadata.version(lib) for lib in (*LIBRARIES, "uvloop", "zlib-ng", "msgspec")}
    machine = {"cpus": os.cpu_count(), "cpu_model": cpu_model(), "python": platform.python_version()}
    print(f"machine: {machine['cpus']} CPUs, {machine['cpu_model']}, Python {machine['python']}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(
        f"{args.connections} connections x {args.events:,} MESSAGE_CREATE events per run, "
        f"median of {args.repeat} runs, each in a fresh child process on uvloop"
    )
    with running_simulator(
        shards=args.connections,
        events=args.events,
        compress=["none", "zlib-stream"],
        extra=["--mix", "MESSAGE_CREATE=1"],
    ) as (port, sim):
        runs: dict[tuple[str, str], list[dict[str, Any]]] = {c: [] for c in configs}
        for i in range(args.repeat):
            for lib, case in configs:  # interleaved, so drift in the machine hits every library alike
                r = run_child(lib, case, port, args, sim)
                runs[(lib, case)].append(r)
                cpu = r["user_cpu"] + r["system_cpu"]
                print(
                    f"  run {i + 1}/{args.repeat} {lib:10s} {case:20s}"
                    f" {r['frames'] / cpu:>11,.0f} frames/CPU-s {r['frames'] / r['seconds']:>11,.0f} frames/s"
                    f"  sim CPU {r['sim_cpu_share']:.0%}",
                    flush=True,
                )
    results = [summarize(runs[c]) for c in configs]
    print()
    print_table(results)
    if args.json:
        settings = {"events": args.events, "connections": args.connections, "repeat": args.repeat}
        report = {"benchmark": "ws_libraries", "machine": machine, "versions": versions, **settings}
        with open(args.json, "w") as f:
            json.dump({**report, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
