"""Measures the cost of the Redis identify queue: Redis calls per second per host, and the identify
schedule of 3 hosts against the ideal.

What: 3 queue objects (hosts) in one process share one bot's buckets (K buckets of W seconds) in a
redis-server of their own (started here in a temporary directory, or --url); N shards, spread over
the hosts round-robin, all ask at once (paused until every request is in line, as the supervisor's
identify gate does), each "identifies" at once (stamp) and "is ready" 50 ms later (release).
Measured: the span from the first grant to the last, against the floor (ceil(N/K) - 1) x W; the
gaps between the sends of one bucket (the smallest must not be under W); Redis calls per second
per host while identifying, and while idle (no connection waiting) for --idle seconds.
Figures, never pass/fail.

Run: python -m benchmarks.coordination [--shards 96] [--buckets 4] [--window 0.25] [--poll 0.05]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import shutil
import socket
import subprocess
import tempfile
import time

from shardrunner.identify.protocol import StartLimit
from shardrunner.identify.redis_queue import RedisIdentifyQueue
from shardrunner.protocol.keys import ConnKey


def _redis_server(directory: str) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed: run .ci/redis (or the README's test command)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen([*args, "--dir", directory], stdout=subprocess.DEVNULL)
    for _ in range(500):
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2) as c:
                c.sendall(b"PING\r\n")
                if c.recv(8).startswith(b"+PONG"):
                    break
        except OSError:
            time.sleep(0.01)
    return process, f"redis://127.0.0.1:{port}/0"


async def run(url: str, shards: int, buckets: int, window: float, poll: float, idle: float) -> None:
    limits = [StartLimit("discord.identify", buckets, window)]
    hosts = [
        RedisIdentifyQueue(
            url,
            "bench",
            limits,
            lambda c: ("discord.identify", c.shard % buckets),
            host=f"h{i}",
            margin=0.0,
            poll=poll,
            paused=True,
        )
        for i in range(3)
    ]
    sends: list[tuple[float, int]] = []

    async def one(conn: ConnKey) -> None:
        q = hosts[conn.shard % 3]
        await q.grant(conn)
        sends.append((await q.stamp(conn), conn.shard))  # the server's clock
        await asyncio.sleep(0.05)
        q.release(conn, ready=True)

    tasks = [asyncio.ensure_future(one(ConnKey("discord", 0, s, shards))) for s in range(shards)]
    client = hosts[0].coordinator.client
    keys = [hosts[0]._keys(("discord.identify", b))[1] for b in range(buckets)]
    while sum([await client.zcard(k) for k in keys]) < shards:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    before = [h.coordinator.calls for h in hosts]
    started = time.monotonic()
    for h in hosts:
        h.resume()
    await asyncio.gather(*tasks)
    for h in hosts:
        await h.flush()
    took = time.monotonic() - started
    calls = [h.coordinator.calls - b for h, b in zip(hosts, before, strict=True)]
    times = sorted(t for t, _ in sends)
    gaps = []
    for b in range(buckets):
        mine = sorted(t for t, s in sends if s % buckets == b)
        gaps += [y - x for x, y in itertools.pairwise(mine)]
    floor = (math.ceil(shards / buckets) - 1) * window
    print(f"{shards} shards on 3 hosts, {buckets} buckets of {window} s, poll {poll} s")
    print(
        f"  span first to last send {times[-1] - times[0]:.3f} s; floor {floor:.3f} s "
        f"({(times[-1] - times[0]) / floor:.3f}x)"
    )
    print(
        f"  bucket gaps (server clock): min {min(gaps):.3f} s, median {sorted(gaps)[len(gaps) // 2]:.3f} s,"
        f" max {max(gaps):.3f} s"
    )
    per_host = [c / took for c in calls]
    print(
        f"  identifying: Redis calls/s per host {', '.join(f'{c:.0f}' for c in per_host)} "
        f"({sum(calls) / shards:.1f} calls per identify, all hosts)"
    )
    before = [h.coordinator.calls for h in hosts]
    await asyncio.sleep(idle)
    idle_calls = [(h.coordinator.calls - b) / idle for h, b in zip(hosts, before, strict=True)]
    print(
        f"  idle ({idle} s, nobody waiting): Redis calls/s per host"
        f" {', '.join(f'{c:.1f}' for c in idle_calls)}"
    )
    for h in hosts:
        await h.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="a Redis to use (default: start a redis-server here)")
    parser.add_argument("--shards", type=int, default=96)
    parser.add_argument("--buckets", type=int, default=4)
    parser.add_argument("--window", type=float, default=0.25)
    parser.add_argument("--poll", type=float, default=0.05)
    parser.add_argument("--idle", type=float, default=2.0)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        process = None
        url = opts.url
        if url is None:
            process, url = _redis_server(directory)
        try:
            asyncio.run(run(url, opts.shards, opts.buckets, opts.window, opts.poll, opts.idle))
        finally:
            if process is not None:
                process.kill()
                process.wait()


if __name__ == "__main__":
    main()
