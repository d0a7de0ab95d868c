"""Measures several hosts (``--coordinator``): failover, the identify schedule across hosts, and the
cost of coordination in Redis at 10,000 connections.

1. **failover**: a simulator process (``shardrunner sim discord``, live mode, heartbeats every
   41.25 s as Discord's, so sessions stay resumable; 20 dispatches/s per shard), a redis-server of
   its own, 3 hosts (``shardrunner start --coordinator ... --workers 1 --lease-ttl TTL``, each its
   own run dir) and a standby (``--standby``). Once every shard is ready and every session is in
   Redis, one host is killed whole (SIGKILL to its supervisor and its worker). Measured: from the
   kill to the last of its shards RESUMEd at the simulator (its accepted resumes, by their time),
   given as ``TTL + X``; the first resume; IDENTIFYs during the failover (must be 0); the events
   the resumes replayed. No bot runs: events lost are not counted here (tests/cluster counts them).
2. **schedule**: 3 hosts started together with N shards, max_concurrency K (1 and 4), window W in
   the simulator and the hosts. Measured: the first IDENTIFY to the last against the floor
   ``(ceil(N/K) - 1) x W``, IDENTIFYs out of shard order within a bucket (must be 0), the
   simulator's window violations and refused IDENTIFYs (must be 0).
3. **cost**: :mod:`benchmarks.hosts_redis`: 3 hosts' beats (the supervisor's ``HostAgent.beat``)
   over a 10,000-connection layout of 32 blocks, every session changing every second. Redis calls
   per second per host, bytes written, CPU of one host's beats, redis-server's CPU.

Everything is on 127.0.0.1; every process started is killed at the end, also on failure.
Figures, never pass/fail.

Run: python -m benchmarks.hosts [--only failover,schedule,cost] [--repeat 3] [--ttl 5,10] ...
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import math
import os
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import psutil
import redis.asyncio as aioredis

from benchmarks import hosts_redis
from benchmarks.coordination import _redis_server
from benchmarks.harness import TOKEN, Result, Row, Scale, median, print_result, sim_get
from benchmarks.simproc import live_simulator
from harness.cluster import ClusterProcess
from shardrunner.control import CommandError

PARTS = ("failover", "schedule", "cost")
#: The hosts' cluster name (the Redis key prefix ``shardrunner:{shardrunner}:``, the default).
SESSIONS_KEY = "shardrunner:{shardrunner}:sessions"
#: The simulator's dispatches per second per shard (the failover's resumes replay some).
RATE = 20


@contextlib.contextmanager
def redis_server() -> Iterator[tuple[str, psutil.Process]]:
    """A redis-server on a free port of 127.0.0.1 (no persistence), killed on exit: (url, process)."""
    with tempfile.TemporaryDirectory(prefix="sr-bench-redis-") as directory:
        proc, url = _redis_server(directory)
        try:
            yield url, psutil.Process(proc.pid)
        finally:
            proc.kill()
            proc.wait(10)


class Hosts:
    """The ``shardrunner start`` processes of one run; :meth:`stop_all` ends them and their workers."""

    def __init__(self, port: int, url: str, shards: int, options: list[str]) -> None:
        self.api = f"http://127.0.0.1:{port}/api/v10"
        self.url = url
        self.shards = shards
        self.options = options
        self.made: dict[str, ClusterProcess] = {}

    def start(self, name: str, *extra: str) -> ClusterProcess:
        args = ["--coordinator", self.url, "--host-name", name, "--workers", "1", *self.options, *extra]
        host = ClusterProcess(self.api, *args, token=TOKEN, shards=self.shards)
        self.made[name] = host
        return host

    async def stop_all(self) -> None:
        await asyncio.gather(*(h.stop(grace=15) for h in self.made.values()), return_exceptions=True)


@contextlib.asynccontextmanager
async def running_hosts(port: int, url: str, shards: int, options: list[str]) -> AsyncIterator[Hosts]:
    hosts = Hosts(port, url, shards, options)
    try:
        yield hosts
    finally:
        await hosts.stop_all()


async def status(host: ClusterProcess) -> dict[str, Any]:
    """The host's status, or {} while it does not answer."""
    try:
        return await host.status()
    except (CommandError, OSError):
        return {}


async def held(host: ClusterProcess) -> list[int]:
    return list(((await status(host)).get("hosts") or {}).get("held") or [])


async def until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """Poll ``check`` every 50 ms; SystemExit naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise SystemExit(f"hosts benchmark: no {what} after {timeout:.0f} s")
        await asyncio.sleep(0.05)


def accepted(stats: dict[str, Any], kind: str, after: float = 0.0) -> list[dict[str, Any]]:
    return [r for r in stats[kind] if r["accepted"] and r["time"] > after]


def kill_host(host: ClusterProcess) -> None:
    """kill -9 of a whole host: its supervisor and every worker (remembered, so stop() finds them)."""
    for proc in [*host.workers(), host.supervisor]:
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)


# -- 1. failover --------------------------------------------------------------------------------
async def failover_once(ttl: float, shards: int) -> dict[str, Any]:
    window, concurrency = 0.25, 4
    with (
        live_simulator(
            shards, max_concurrency=concurrency, identify_window=window, extra=["--rate", str(RATE)]
        ) as sim,
        redis_server() as (url, _),
    ):
        options = ["--lease-ttl", str(ttl), "--identify-window", str(window)]
        options += ["--max-concurrency", str(concurrency), "--log-level", "error"]
        async with running_hosts(sim.port, url, shards, options) as hosts:
            active = [hosts.start(n) for n in ("h1", "h2", "h3")]
            standby = hosts.start("s", "--standby")

            async def every_block_held_once() -> bool:
                blocks = [b for h in active for b in await held(h)]
                return sorted(blocks) == list(range(shards))

            await until(every_block_held_once, 90, "block held once by each of the 3 hosts")
            for h in active:
                await h.wait_ready(len(await held(h)), timeout=60)
            probe = aioredis.Redis.from_url(url)
            try:

                async def sessions_stored() -> bool:
                    return int(await probe.hlen(SESSIONS_KEY)) >= shards

                await until(sessions_stored, 30, "session of every shard in Redis")
            finally:
                await probe.aclose()

            async def standby_booted() -> bool:
                workers = (await status(standby)).get("workers") or []
                return bool(workers) and all(w.get("state") == "running" for w in workers)

            await until(standby_booted, 30, "booted worker in the standby")
            victim = active[1]
            lost = await held(victim)
            victim_shards = {int(s["shard"]) for s in (await status(victim))["shards"]}
            before = await sim_get(sim.port, "stats")
            identified = len(accepted(before, "identifies"))
            probe = aioredis.Redis.from_url(url)
            try:
                killed = time.time()
                kill_host(victim)
                # What its leases had left at the kill (server clock): the part of the TTL it had used.
                left = [await probe.pttl(f"shardrunner:{{shardrunner}}:lease:{b}") for b in lost]
            finally:
                await probe.aclose()

            async def all_resumed() -> bool:
                stats = await sim_get(sim.port, "stats")
                done = {r["shard"][0] for r in accepted(stats, "resumes", killed)}
                return victim_shards <= done

            await until(all_resumed, ttl + 60, "resume of every shard of the killed host")
            stats = await sim_get(sim.port, "stats")
            resumes = [r for r in accepted(stats, "resumes", killed) if r["shard"][0] in victim_shards]
            taken = sorted(await held(standby))
    times = sorted(r["time"] - killed for r in resumes)
    return {
        "ttl": ttl,
        "killed_blocks": sorted(lost),
        "killed_shards": sorted(victim_shards),
        "standby_took": taken,
        "first_resume_s": times[0],
        "failover_s": times[-1],
        "over_ttl_s": times[-1] - ttl,
        "lease_left_s": min(left) / 1000,
        "after_expiry_s": times[-1] - min(left) / 1000,
        "identifies_during": len(accepted(stats, "identifies", killed)),
        "identifies_before": identified,
        "replayed": sum(int(r.get("replayed", 0)) for r in resumes),
        "violations": len(stats["violations"]),
        "violation_kinds": sorted({v["kind"] for v in stats["violations"]}),
        "refused_identifies": sum(1 for r in stats["identifies"] if not r["accepted"]),
    }


# -- 2. the identify schedule -------------------------------------------------------------------
async def schedule_once(shards: int, concurrency: int, window: float) -> dict[str, Any]:
    with (
        live_simulator(shards, max_concurrency=concurrency, identify_window=window) as sim,
        redis_server() as (url, _),
    ):
        options = ["--lease-ttl", "10", "--identify-window", str(window)]
        options += ["--max-concurrency", str(concurrency), "--log-level", "error"]
        async with running_hosts(sim.port, url, shards, options) as hosts:
            launched = time.time()
            for n in ("h1", "h2", "h3"):
                hosts.start(n)

            async def all_identified() -> bool:
                stats = await sim_get(sim.port, "stats")
                return len(accepted(stats, "identifies")) >= shards

            await until(all_identified, 120 + shards * window, "IDENTIFY of every shard")
            stats = await sim_get(sim.port, "stats")
            spread = [len(await held(h)) for h in hosts.made.values()]
    done = sorted(accepted(stats, "identifies"), key=lambda r: r["time"])
    span = done[-1]["time"] - done[0]["time"]
    floor = (math.ceil(shards / concurrency) - 1) * window
    out_of_order = 0
    for bucket in range(concurrency):
        order = [r["shard"][0] for r in done if r["shard"][0] % concurrency == bucket]
        out_of_order += sum(1 for a, b in itertools.pairwise(order) if b < a)
    return {
        "shards": shards,
        "max_concurrency": concurrency,
        "window": window,
        "blocks_per_host": spread,
        "launch_to_first_s": done[0]["time"] - launched,
        "span_s": span,
        "floor_s": floor,
        "ratio": span / floor if floor else float("nan"),
        "out_of_order": out_of_order,
        "violations": len(stats["violations"]),
        "violation_kinds": sorted({v["kind"] for v in stats["violations"]}),
        "refused": sum(1 for r in stats["identifies"] if not r["accepted"]),
        "identifies": len(done),
    }


# -- the benchmark ------------------------------------------------------------------------------
async def measure(
    *,
    parts: list[str],
    repeat: int,
    ttls: list[float],
    shards: int,
    concurrencies: list[int],
    window: float,
    cost_shards: int,
    cost_seconds: float,
    cost_keys: list[int],
    cost_workers: int,
) -> Result:
    started = time.monotonic()
    result = Result("hosts", "Several hosts: failover, identify schedule, coordination cost")
    if "failover" in parts:
        by_ttl: dict[str, Any] = {}
        for ttl in ttls:
            runs = []
            for i in range(repeat):
                run = await failover_once(ttl, shards)
                print(
                    f"  failover, TTL {ttl:g} s, run {i + 1}: {run['failover_s']:.2f} s "
                    f"(TTL + {run['over_ttl_s']:.2f} s; leases left {run['lease_left_s']:.2f} s, "
                    f"resumed {run['after_expiry_s']:.2f} s after they ran out), "
                    f"first resume {run['first_resume_s']:.2f} s, "
                    f"{run['identifies_during']} identifies, {run['replayed']} replayed, "
                    f"violations {run['violation_kinds'] or 0}",
                    flush=True,
                )
                runs.append(run)
            fo = median([r["failover_s"] for r in runs])
            by_ttl[f"{ttl:g}"] = {"runs": runs, "failover_s": fo}
            result.rows.append(
                Row(
                    f"failover, TTL {ttl:g} s: kill -9 of a host to its {len(runs[0]['killed_shards'])} "
                    "shards resumed (median)",
                    f"{fo:.2f} s = TTL + {fo - ttl:.2f} s (runs "
                    + ", ".join(f"{r['failover_s']:.2f}" for r in runs)
                    + f"); first resume {median([r['first_resume_s'] for r in runs]):.2f} s; the leases "
                    f"had {median([r['lease_left_s'] for r in runs]):.2f} s left at the kill, all resumed "
                    f"{median([r['after_expiry_s'] for r in runs]):.2f} s after they ran out",
                    f"identifies during: {sum(r['identifies_during'] for r in runs)} (must be 0); "
                    f"violations {sum(r['violations'] for r in runs)} "
                    f"{sorted({k for r in runs for k in r['violation_kinds']})}; "
                    f"{fo / ttl:.2f}x the TTL",
                )
            )
        result.data["failover"] = by_ttl
    if "schedule" in parts:
        by_k: dict[str, Any] = {}
        for k in concurrencies:
            runs = []
            for i in range(repeat):
                run = await schedule_once(shards, k, window)
                print(
                    f"  schedule, {shards} shards, K {k}, run {i + 1}: first to last {run['span_s']:.3f} s, "
                    f"floor {run['floor_s']:.3f} s ({run['ratio']:.3f}x), {run['out_of_order']} out of "
                    f"order, {run['violations']} violations, blocks {run['blocks_per_host']}",
                    flush=True,
                )
                runs.append(run)
            span = median([r["span_s"] for r in runs])
            floor = runs[0]["floor_s"]
            by_k[str(k)] = {"runs": runs, "span_s": span}
            result.rows.append(
                Row(
                    f"identify schedule, 3 hosts, {shards} shards, K {k}, window {window:g} s: first to last "
                    "(median)",
                    f"{span:.3f} s (runs " + ", ".join(f"{r['span_s']:.3f}" for r in runs) + ")",
                    f"floor {floor:.2f} s: {span / floor:.3f}x; out of order "
                    f"{sum(r['out_of_order'] for r in runs)}, violations "
                    f"{sum(r['violations'] for r in runs)}, refused {sum(r['refused'] for r in runs)} "
                    "(all must be 0)",
                )
            )
        result.data["schedule"] = by_k
    if "cost" in parts:
        costs = []
        for keys in cost_keys:
            with redis_server() as (url, proc):
                cost = await hosts_redis.measure(
                    url, proc.pid, shards=cost_shards, seconds=cost_seconds, workers=cost_workers, keys=keys
                )
            costs.append(cost)
            h = cost["hosts"]
            calls = median([x["calls_per_s"] for x in h])
            per_call = median([x["calls_per_beat"] for x in h])
            written = median([x["written_bytes_per_s"] for x in h])
            per_beat = median([x["written_bytes_per_beat"] for x in h])
            cpu = median([x["cpu_s_per_s"] for x in h])
            beat = median([x["beat_ms_median"] for x in h])
            print(
                f"  cost, {cost_shards} conns, {keys} keys a session: {calls:.1f} calls/s a host, "
                f"{written / 1e6:.2f} MB/s written a host ({per_beat / 1e6:.2f} MB a beat), "
                f"{cpu:.3f} CPU-s/s a host, beat {beat:.0f} ms, redis-server "
                f"{cost['redis_cpu_s_per_s']:.3f} CPU-s/s",
                flush=True,
            )
            result.rows.append(
                Row(
                    f"coordination, {cost_shards:,} conns in {cost['blocks']} blocks on 3 hosts, every "
                    f"session changed every second, {keys} guild ids a session (median host)",
                    f"{calls:.1f} Redis calls/s a host ({per_call:.0f} a beat); "
                    f"written {written / 1e6:.2f} MB/s a host ({per_beat / 1e6:.2f} MB a beat), read "
                    f"{median([x['read_bytes_per_s'] for x in h]) / 1e6:.2f} MB/s; one host's beats "
                    f"{cpu:.3f} CPU-s/s, a beat {beat:.0f} ms",
                    f"redis-server {cost['redis_cpu_s_per_s']:.3f} CPU-s/s for the 3 hosts",
                )
            )
        result.data["cost"] = costs
    result.seconds = time.monotonic() - started
    return result


def _settings(scale: Scale) -> dict[str, Any]:
    quick = scale.name == "quick"
    return {
        "repeat": scale.repeat,
        "ttls": [5.0] if quick else [5.0, 10.0],
        "shards": 12 if quick else 24,
        "concurrencies": [4] if quick else [1, 4],
        "window": 0.5 if quick else 1.0,
        "cost_shards": 10_000,
        "cost_seconds": 5.0 if quick else 20.0,
        "cost_keys": [0] if quick else [0, 1000],
        "cost_workers": 16,
    }


async def run(scale: Scale) -> Result:
    """For ``python -m benchmarks``: quick is one failover at TTL 5 and one schedule of 12 shards
    (about 1.5 minutes); full is 3 runs of each figure (about 6 minutes on 2 cores)."""
    return await measure(parts=list(PARTS), **_settings(scale))


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.hosts", description=(__doc__ or "").split("\n\n")[0]
    )
    full = _settings(Scale.named("full"))
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(PARTS)}")
    parser.add_argument("--repeat", type=int, default=full["repeat"], help="runs per figure (default 3)")
    parser.add_argument("--ttl", default="5,10", help="lease TTLs of the failover, seconds (default 5,10)")
    parser.add_argument("--shards", type=int, default=full["shards"], help="shards of failover and schedule")
    parser.add_argument("--max-concurrency", default="1,4", help="the schedule's K values (default 1,4)")
    parser.add_argument("--window", type=float, default=full["window"], help="identify window, seconds")
    parser.add_argument("--cost-shards", type=int, default=full["cost_shards"])
    parser.add_argument("--cost-seconds", type=float, default=full["cost_seconds"])
    parser.add_argument(
        "--cost-keys", default="0,1000", help="guild ids in each session snapshot, per run (default 0,1000)"
    )
    parser.add_argument("--cost-workers", type=int, default=full["cost_workers"], help="workers a host lists")
    parser.add_argument("--json", action="store_true", help="also print every figure as JSON")
    args = parser.parse_args()
    parts = list(PARTS)
    if args.only:
        parts = [p.strip() for p in args.only.split(",") if p.strip()]
        unknown = [p for p in parts if p not in PARTS]
        if unknown:
            parser.error(f"unknown part {unknown[0]!r}; choose from {', '.join(PARTS)}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    import uvloop

    result = uvloop.run(
        measure(
            parts=parts,
            repeat=args.repeat,
            ttls=_floats(args.ttl),
            shards=args.shards,
            concurrencies=[int(x) for x in _floats(args.max_concurrency)],
            window=args.window,
            cost_shards=args.cost_shards,
            cost_seconds=args.cost_seconds,
            cost_keys=[int(x) for x in _floats(args.cost_keys)],
            cost_workers=args.cost_workers,
        )
    )
    print_result(result, as_json=args.json)


if __name__ == "__main__":
    main()
