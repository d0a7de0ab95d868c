"""Two real processes (hosts) sharing one Redis identify queue: every bucket in shard order across
both and spaced by its window, never two identifies of a bucket within a window, and a host that
stalls (SIGSTOP) past its grant's hold is refused when it tries to send."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

from tests.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
WINDOW, HOLD, BUCKETS = 0.3, 1.0, 2

HOST = f"""
import asyncio, json, sys, time
from shardrunner.identify.protocol import StartLimit
from shardrunner.identify.redis_queue import RedisIdentifyQueue, StaleGrant
from shardrunner.protocol.keys import ConnKey

url, cluster, host, shards, stall, paused = sys.argv[1:7]

def say(**fields):
    print(json.dumps(fields), flush=True)

async def main():
    limits = [StartLimit("discord.identify", {BUCKETS}, {WINDOW})]
    q = RedisIdentifyQueue(url, cluster, limits, lambda c: ("discord.identify", c.shard % {BUCKETS}),
                           host=host, hold={HOLD}, margin=0.0, paused=paused == "1")

    async def one(conn):
        grant = await q.grant(conn)
        say(shard=conn.shard, granted=time.time(), token=grant.token)
        await asyncio.sleep(float(stall))
        try:
            say(shard=conn.shard, sent=await q.stamp(conn))  # the server's clock
        except StaleGrant:
            say(shard=conn.shard, stale=time.time())
        await asyncio.sleep(0.05)
        q.release(conn, ready=True)

    tasks = [asyncio.ensure_future(one(ConnKey("discord", 0, int(s), 16))) for s in shards.split(",")]
    if paused == "1":  # the test says go once every host's requests are in line
        while not await q.coordinator.client.exists(q.coordinator.key("go")):
            await asyncio.sleep(0.01)
        q.resume()
    await asyncio.wait_for(asyncio.gather(*tasks), 30)
    await q.close()

asyncio.run(main())
"""

_clusters = itertools.count()


def start_host(
    server: RedisServer, cluster: str, host: str, shards: list[int], stall: float, paused: bool
) -> Any:
    args = [server.url, cluster, host, ",".join(map(str, shards)), str(stall), "1" if paused else "0"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", HOST, *args], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT
    )


def lines(process: Any) -> list[dict[str, Any]]:
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0, out
    return [json.loads(line) for line in out.splitlines()]


def test_redis_queue_when_two_processes_share_it_buckets_go_in_order_and_spaced(
    redis_server: RedisServer,
) -> None:
    cluster = f"procs{next(_clusters)}"
    client = redis.Redis(port=redis_server.port)
    hosts = [
        start_host(redis_server, cluster, "a", [7, 2, 5, 0], 0.0, paused=True),
        start_host(redis_server, cluster, "b", [3, 6, 1, 4], 0.0, paused=True),
    ]
    waiters = [f"shardrunner:{{{cluster}}}:idq:discord.identify:{b}:waiters" for b in range(BUCKETS)]
    deadline = time.monotonic() + 20
    while sum(int(client.zcard(w)) for w in waiters) < 8:
        assert time.monotonic() < deadline, "both hosts' requests in line"
        time.sleep(0.01)
    client.set(f"shardrunner:{{{cluster}}}:go", 1)
    events = [e for h in hosts for e in lines(h)]
    client.close()
    for bucket in range(BUCKETS):
        granted = sorted(
            (e["granted"], e["shard"]) for e in events if "granted" in e and e["shard"] % 2 == bucket
        )
        sent = sorted((e["sent"], e["shard"]) for e in events if "sent" in e and e["shard"] % 2 == bucket)
        assert [s for _, s in granted] == sorted(s for _, s in granted), f"bucket {bucket} in shard order"
        assert len(sent) == 4
        gaps = [b[0] - a[0] for a, b in itertools.pairwise(sent)]
        assert all(gap >= WINDOW - 0.01 for gap in gaps), f"bucket {bucket} over its limit: {gaps}"
        assert all(gap < WINDOW + 0.3 for gap in gaps), f"bucket {bucket} slow: {gaps}"


def test_redis_queue_when_a_process_stalls_past_its_hold_its_send_is_refused(
    redis_server: RedisServer,
) -> None:
    cluster = f"procs{next(_clusters)}"
    stalled = start_host(redis_server, cluster, "a", [8], 0.3, paused=False)
    assert stalled.stdout is not None
    first = json.loads(stalled.stdout.readline())
    os.kill(stalled.pid, signal.SIGSTOP)  # the host stalls holding its grant
    try:
        other = start_host(redis_server, cluster, "b", [10], 0.0, paused=False)
        second = lines(other)
    finally:
        os.kill(stalled.pid, signal.SIGCONT)
    rest = lines(stalled)
    assert second[0]["granted"] - first["granted"] >= HOLD - 0.01, "the next one goes once the hold ran out"
    assert int(second[0]["token"]) > int(first["token"])
    assert "sent" in second[1]
    assert "stale" in rest[0], "the stalled host must not identify"
