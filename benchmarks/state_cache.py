"""Measures the Discord state cache (``state_cache``): memory per guild, and what it costs per event.

What: the simulator's guilds (its GUILD_CREATE bodies, members up to a large_threshold of 250, as
a session's start gets them) fed as one session (READY, one GUILD_CREATE per guild) into a
:class:`~shardrunner.gateway.discord.state.StateCache`, then ``--updates`` structural events
(GUILD_MEMBER_UPDATE, CHANNEL_UPDATE, GUILD_ROLE_UPDATE in turn) spread over the guilds. Memory is
Python's own allocations (tracemalloc) held by the cache once the events went through, divided by
the guild count, beside the mean size of a GUILD_CREATE body; the time is per ``observe`` (the
worker's hot path pays it after the bus took the event) and per fold (a guild's log reaching
``state_cache_log``). No pass or fail: figures only.

Run: python -m benchmarks.state_cache [--guilds 2000] [--updates 20000] [--log 64]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc

import msgspec

from shardrunner.gateway.discord.state import StateCache, fold
from shardrunner.protocol.envelope import Event
from shardrunner.protocol.keys import ConnKey
from shardrunner.sim.discord.config import SimConfig
from shardrunner.sim.discord.world import World

CONN = ConnKey("discord", 0, 0, 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--guilds", type=int, default=2000)
    parser.add_argument("--updates", type=int, default=20000)
    parser.add_argument("--log", type=int, default=64, help="state_cache_log")
    args = parser.parse_args()
    world = World(SimConfig(shards=1, guilds_per_shard=args.guilds))
    ids = world.guild_ids
    creates = [world.guild_create(g, 250) for g in ids]
    ready = msgspec.json.encode({"guilds": [{"id": str(g), "unavailable": True} for g in ids]})
    updates = []
    for i in range(args.updates):
        gid = ids[i % len(ids)]
        body = msgspec.json.decode(creates[i % len(ids)])
        kind = i % 3
        if kind == 0 and body["members"]:
            m = body["members"][0]
            d = {"guild_id": str(gid), "user": m["user"], "roles": m["roles"], "nick": f"n{i}"}
            updates.append(("GUILD_MEMBER_UPDATE", gid, msgspec.json.encode(d)))
        elif kind == 1:
            updates.append(
                ("CHANNEL_UPDATE", gid, msgspec.json.encode({**body["channels"][0], "name": f"c{i}"}))
            )
        else:
            role = {**body["roles"][0], "name": f"r{i}"}
            updates.append(
                ("GUILD_ROLE_UPDATE", gid, msgspec.json.encode({"guild_id": str(gid), "role": role}))
            )
    events = [Event(CONN, "s", 1, "READY", None, ready)]
    events += [
        Event(CONN, "s", 2 + i, "GUILD_CREATE", g, c)
        for i, (g, c) in enumerate(zip(ids, creates, strict=True))
    ]
    base = len(events) + 1
    events += [Event(CONN, "s", base + i, n, g, d) for i, (n, g, d) in enumerate(updates)]

    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    cache = StateCache(CONN, args.log)
    for e in events:
        cache.observe(e)
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    timed = StateCache(CONN, args.log)  # timed apart: tracemalloc slows every allocation
    started = time.perf_counter()
    for e in events[:base]:
        timed.observe(e)
    start_part = time.perf_counter() - started
    started = time.perf_counter()
    for e in events[base:]:
        timed.observe(e)
    elapsed = time.perf_counter() - started
    # Events are shared with the caller (as with the bus): what the cache adds is its own
    # structures and any folded GUILD_CREATE it made; the bodies it keeps are counted below.
    kept = cache.size()
    sizes = [len(c) for c in creates]
    print(f"guilds {len(ids)}, structural events {len(updates)}, state_cache_log {args.log}")
    print(f"GUILD_CREATE body: mean {statistics.mean(sizes) / 1024:.1f} KiB, max {max(sizes) / 1024:.1f} KiB")
    print(f"bodies kept: {kept / len(ids) / 1024:.1f} KiB per guild ({kept / 2**20:.1f} MiB in all)")
    print(f"cache's own allocations beyond the shared events: {held / len(ids) / 1024:.2f} KiB per guild")
    print(f"observe, READY and GUILD_CREATEs: {start_part / base * 1e6:.2f} us per event")
    print(
        f"observe, structural events: {elapsed / len(updates) * 1e6:.2f} us per event (folds: {cache.folds})"
    )
    big = max(range(len(ids)), key=lambda i: sizes[i])
    log = [Event(CONN, "s", base + i, n, g, d) for i, (n, g, d) in enumerate(updates) if g == ids[big]][
        : args.log
    ]
    create = Event(CONN, "s", 2, "GUILD_CREATE", ids[big], creates[big])
    started = time.perf_counter()
    for _ in range(20):
        fold(create, log)
    per_fold = (time.perf_counter() - started) / 20
    print(
        f"fold of the largest guild ({sizes[big] / 1024:.0f} KiB, {len(log)} events): {per_fold * 1e3:.2f} ms"
    )


if __name__ == "__main__":
    main()
