"""``python -m benchmarks.chaos``: see the package's docstring."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.chaos import __doc__ as DOC
from benchmarks.chaos.actions import KINDS, Chaos, schedule
from benchmarks.chaos.count import account, crashes
from benchmarks.chaos.world import CHANNELS, GROUPS, REDIS_PASSWORD, SHARDS, Memory, World, http
from benchmarks.harness import TOKEN
from harness.procs import REPO
from harness.secrets import Secret, collect_run_outputs, scan

#: Seconds without a new event at any bot after which the Twitch count is final.
QUIET_S = 3.0


class Clock:
    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.t0:7.1f} s] {text}", flush=True)


async def until(check: Any, timeout: float, what: str, every: float = 0.25) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise SystemExit(f"chaos: no {what} after {timeout:.0f} s")
        await asyncio.sleep(every)


async def held_blocks(world: World) -> list[int]:
    out: list[int] = []
    for h in world.live_hosts():
        with contextlib.suppress(Exception):
            out += list(((await h.cluster.status()).get("hosts") or {}).get("held") or [])
    return sorted(out)


async def dstats(world: World) -> dict[str, Any]:
    return (await http(world.dsim_port, "GET", "stats", timeout=30))[1]  # type: ignore[no-any-return]


async def tstats(world: World) -> dict[str, Any]:
    return (await http(world.tsim_port, "GET", "stats", timeout=30))[1]  # type: ignore[no-any-return]


class Sessions:
    """Samples the Discord simulator's sessions every 2 s: the highest ``last_sent_seq`` of each
    (the stats forget a session 10 minutes after it ended; the count needs them all)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.sent: dict[str, int] = {}
        self._task: asyncio.Future[None] | None = None

    async def sample(self) -> dict[str, Any]:
        stats = await dstats(self.world)
        for s in stats["sessions"]:
            self.sent[s["session_id"]] = max(self.sent.get(s["session_id"], 0), int(s["last_sent_seq"]))
        return stats

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                await self.sample()
            await asyncio.sleep(2)

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def boot(world: World, clock: Clock) -> None:
    await world.start_simulators()
    await world.start_redis()
    redis_port = world.redis.port if world.redis else 0
    clock.say(
        f"simulators on ports {world.dsim_port} (Discord), {world.tsim_port} (Twitch); redis on {redis_port}"
    )
    world.start_host(standby=False)
    world.start_host(standby=False)
    world.start_host(standby=True)

    async def held_once() -> bool:
        return await held_blocks(world) == list(range(len(await held_blocks(world)))) and bool(
            await held_blocks(world)
        )

    async def identified() -> bool:
        stats = await dstats(world)
        live = {tuple(s["shard"]) for s in stats["sessions"] if s["connected"] and s["ended"] is None}
        return len(live) == SHARDS

    async def joined() -> bool:
        stats = await tstats(world)
        return all(ch["members"] > 0 for ch in stats["channels"].values())

    await until(held_once, 120, "block held by the hosts")
    await until(identified, 120, "connected session for every shard")
    await until(joined, 120, "reader in every Twitch channel")
    clock.say(f"3 hosts up: {SHARDS} shards connected, {CHANNELS} channels joined")
    hosts = world.hosts
    bots = [world.start_bot("a", GROUPS[0], hosts[0]), world.start_bot("b1", GROUPS[1], hosts[1]),
            world.start_bot("b2", GROUPS[1], hosts[2])]  # fmt: skip
    for b in bots:
        await world.wait_bot(b)
    clock.say("3 bots joined")


async def drained(world: World, sessions: Sessions, chaos: Chaos, timeout: float, clock: Clock) -> float:
    """Seconds until every shard has a connected live session that wrote all it has, and each
    group's bots hold every Discord id they should and every Twitch id, or have received nothing
    for QUIET_S (a Twitch line lost stays lost: there is no replay to wait for); or the deadline."""
    started = time.monotonic()
    deadline = started + timeout
    sizes: list[int] = []
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        try:
            stats = await sessions.sample()
            dispatches = (await http(world.dsim_port, "GET", "dispatches", timeout=30))[1]
            tw = await tstats(world)
        except Exception:
            continue
        live = [s for s in stats["sessions"] if s["connected"] and s["ended"] is None]
        if len({tuple(s["shard"]) for s in live}) < SHARDS or any(
            s["last_sent_seq"] < s["last_seq"] for s in live
        ):
            continue
        result = account(bots=world.incarnations, dstats=stats, dispatches=dispatches, sent_max=sessions.sent,
                         tstats=tw, window=(0, 1), started_wall=0)  # fmt: skip
        size = sum(b.out.stat().st_size for b in world.incarnations if b.out.exists())
        if not sizes or size != sizes[-1]:
            quiet_since = time.monotonic()
        sizes.append(size)
        discord_lost = sum(g["discord_lost"] for g in result["groups"].values())
        if result["lost"] == 0 or (discord_lost == 0 and time.monotonic() - quiet_since >= QUIET_S):
            return time.monotonic() - started
    clock.say(f"delivery did not settle within {timeout:.0f} s: counting what there is")
    return time.monotonic() - started


async def collect(world: World) -> None:
    """The status command's JSON and a metrics scrape of every live host, into OUT."""
    import aiohttp

    for h in world.live_hosts():
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "shardrunner", "status", "--json", "--run-dir", str(h.run_dir),
            cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        with contextlib.suppress(TimeoutError):
            out, _ = await asyncio.wait_for(proc.communicate(), 30)
            (world.out / f"status-{h.name}.json").write_bytes(out)
        with contextlib.suppress(Exception):
            async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{h.metrics_port}/metrics") as r:
                (world.out / f"metrics-{h.name}.txt").write_text(await r.text())


async def run(args: argparse.Namespace) -> dict[str, Any]:
    clock = Clock()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="sr-chaos-"))
    if out.exists() and any(out.iterdir()):
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    seconds = args.seconds if args.seconds is not None else args.minutes * 60
    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip()) if args.kinds else KINDS
    interval = args.interval if args.interval else max(0.5, min(4.0, seconds / len(kinds)))
    plan = schedule(args.seed, seconds, interval, kinds)
    (out / "schedule.json").write_text(json.dumps(plan))
    clock.say(
        f"seed {args.seed}: {len(plan)} actions over {seconds:g} s, one every {interval:g} s; out dir {out}"
    )
    world = World(out, args.seed, args.ttl, args.discord_rate, args.twitch_rate)
    memory = Memory(world)
    sessions = Sessions(world)
    chaos = Chaos(world, args.seed, out / "actions.jsonl", clock.say)
    unexpected: list[str] = []
    try:
        await boot(world, clock)
        memory.start()
        sessions.start()
        await http(world.dsim_port, "POST", "config", {"rate": args.discord_rate})
        await http(world.tsim_port, "POST", "config", {"rate": args.twitch_rate})
        t_start = time.time()
        clock.say(f"traffic: {args.discord_rate:g} dispatches/s a shard, {args.twitch_rate:g} Twitch lines/s")
        m0 = time.monotonic()
        for offset, kind in plan:
            await asyncio.sleep(max(0.0, m0 + offset - time.monotonic()))
            await chaos.act(kind)
            last = chaos.done[-1]
            clock.say(
                f"{kind}: {last.get('outcome', '')} "
                + " ".join(
                    f"{k}={v}" for k, v in last.items() if k not in ("time", "kind", "outcome", "output")
                )
            )
            unexpected += exits(world, chaos)
        await asyncio.sleep(max(0.0, m0 + seconds - time.monotonic()))
        clock.say("schedule over: waiting for its restarts")
        await chaos.settle()
        await asyncio.sleep(1.0)
        unexpected += exits(world, chaos)
        await http(world.dsim_port, "POST", "config", {"rate": 0})
        await http(world.tsim_port, "POST", "config", {"rate": 0})
        t_stop = time.time()
        clock.say("traffic stopped: waiting for delivery to settle")
        settle = await drained(world, sessions, chaos, args.settle_timeout, clock)
        await asyncio.sleep(1.0)  # a late second copy would come now
        unexpected += exits(world, chaos)
        final_d = await sessions.sample()
        dispatches = (await http(world.dsim_port, "GET", "dispatches", timeout=60))[1]
        final_t = await tstats(world)
        await collect(world)
        (out / "sim-discord-stats.json").write_text(json.dumps(final_d))
        (out / "sim-twitch-stats.json").write_text(json.dumps(final_t))
        (out / "sim-discord-dispatches.json").write_text(json.dumps(dispatches))
    finally:
        await sessions.stop()
        await memory.stop()
        await chaos.settle()
        await world.stop()
    counted = account(bots=world.incarnations, dstats=final_d, dispatches=dispatches, sent_max=sessions.sent,
                      tstats=final_t, window=(t_start, t_stop), started_wall=t_start)  # fmt: skip
    crash = crashes(out / "logs", chaos.killed_pids, unexpected)
    guarded = [Secret.discord_token("the Discord token", TOKEN), Secret("the Redis password", REDIS_PASSWORD)]
    leaks = [str(leak) for leak in scan(guarded, files=collect_run_outputs(out))]
    did: dict[str, int] = {}
    skipped: dict[str, int] = {}
    for a in chaos.done:
        if a["kind"] in KINDS:
            target = did if a.get("outcome") in ("done", "started") else skipped
            target[a["kind"]] = target.get(a["kind"], 0) + 1
    result = {
        "seed": args.seed,
        "seconds": seconds,
        "interval": interval,
        "kinds": list(kinds),
        "ttl": args.ttl,
        "rates": {"discord_per_shard": args.discord_rate, "twitch": args.twitch_rate},
        "settle_s": round(settle, 2),
        "actions": did,
        "skipped": skipped,
        "reloads": [{k: r[k] for k in ("host", "code")} for r in chaos.reloads],
        **counted,
        "crashes": crash["count"],
        "crash_detail": crash,
        "memory_mb": {k: round(v / 2**20, 1) for k, v in sorted(memory.by_role.items())},
        "memory_mb_by_process": {k: round(v / 2**20, 1) for k, v in sorted(memory.by_name.items())},
        "secrets_found": leaks,
        "load_avg": os.getloadavg(),
        "out": str(out),
    }
    result["ok"] = (
        all(
            result[k] == 0
            for k in ("lost", "duplicates", "identify_violations", "join_violations", "crashes")
        )
        and not leaks
    )
    (out / "result.json").write_text(json.dumps(result, indent=1))
    return result


def exits(world: World, chaos: Chaos) -> list[str]:
    """Processes that exited without the schedule killing them (each reported once)."""
    found = []
    for name, proc in world.procs.items():
        if proc.poll() is not None and name not in chaos.busy:
            found.append(f"{name} exited with {proc.returncode}")
            chaos.busy.add(name)
    for h in world.hosts:
        if not h.killed and h.cluster.proc.poll() is not None and f"exit:{h.name}" not in chaos.busy:
            found.append(f"host {h.name} exited with {h.cluster.proc.returncode}")
            chaos.busy.add(f"exit:{h.name}")
    for b in world.incarnations:
        if not b.killed and b.proc.poll() is not None and f"exit:{b.out}" not in chaos.busy:
            found.append(f"bot {b.name}.{b.incarnation} exited with {b.proc.returncode}")
            chaos.busy.add(f"exit:{b.out}")
    return found


def table(r: dict[str, Any]) -> str:
    crash_detail = {k: v for k, v in r["crash_detail"].items() if v and k != "count"}
    rows = [
        (
            "run",
            f"{r['seconds']:g} s, seed {r['seed']}, one action every {r['interval']:g} s, TTL {r['ttl']:g} s",
        ),
        ("actions taken", ", ".join(f"{k} {v}" for k, v in sorted(r["actions"].items()))),
        ("actions skipped", ", ".join(f"{k} {v}" for k, v in sorted(r["skipped"].items())) or "none"),
    ]
    for g, c in r["groups"].items():
        rows.append((
            f"{g} ({', '.join(c['bots'])})",
            f"Discord lost {c['discord_lost']} of {c['discord_expected']}, dup {c['discord_duplicates']}, "
            f"copies across processes {c['discord_redelivered_copies']}; Twitch lost {c['twitch_lost']} of "
            f"{c['twitch_expected']}, dup {c['twitch_duplicates']}, copies {c['twitch_redelivered_copies']}; "
            f"longest gap {c['gap_whole_s']:.2f} s whole, {c['gap_discord_shard_s']:.2f} s a Discord "
            f"shard, {c['gap_stream_s']:.2f} s worst stream ({c['gap_stream']})",
        ))  # fmt: skip
    rows += [
        ("lost / duplicates (must be 0)", f"{r['lost']} / {r['duplicates']}"),
        ("identify / join violations (must be 0)", f"{r['identify_violations']} / {r['join_violations']} "
         f"(all kinds: Discord {r['discord_violations'] or 0}, Twitch {r['twitch_violations'] or 0})"),
        ("identifies / resumes / wasted identifies",
         f"{r['identifies']} / {r['resumes']} / {r['wasted_identifies']}"),
        ("crashes (must be 0)", f"{r['crashes']} {json.dumps(crash_detail)}"),
        ("memory high-water, MB by role", ", ".join(f"{k} {v}" for k, v in r["memory_mb"].items())),
        ("secrets in the outputs (must be none)", ", ".join(r["secrets_found"]) or "none"),
        ("settle after the traffic stopped", f"{r['settle_s']:.1f} s"),
        ("load average (1, 5, 15 min) at the end", ", ".join(f"{x:.2f}" for x in r["load_avg"])),
    ]  # fmt: skip
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.chaos",
        description=DOC,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--minutes", type=float, default=10.0, help="length of the schedule (default 10)")
    length.add_argument(
        "--seconds", type=float, help="length of the schedule in seconds (the test's short run)"
    )
    parser.add_argument("--seed", type=int, default=1, help="fixes the schedule and the targets (default 1)")
    parser.add_argument(
        "--out", help="directory of every output (emptied first; default: a new temporary one)"
    )
    parser.add_argument("--interval", type=float, help="seconds between actions (default: the run's length / "
                        f"{len(KINDS)}, from 0.5 to 4)")  # fmt: skip
    parser.add_argument(
        "--kinds", help=f"comma-separated subset of the action kinds (default all: {', '.join(KINDS)})"
    )
    parser.add_argument("--ttl", type=float, default=5.0, help="the hosts' --lease-ttl (default 5)")
    parser.add_argument(
        "--discord-rate", type=float, default=25.0, help="dispatches per second per shard (default 25)"
    )
    parser.add_argument(
        "--twitch-rate", type=float, default=50.0, help="chat lines per second in all (default 50)"
    )
    parser.add_argument(
        "--settle-timeout", type=float, default=90.0, help="longest wait for delivery at the end"
    )
    parser.add_argument("--json", action="store_true", help="print the whole result as JSON too")
    args = parser.parse_args(argv)
    unknown = [k for k in (args.kinds or "").split(",") if k.strip() and k.strip() not in KINDS]
    if unknown:
        parser.error(f"unknown action kind {unknown[0]!r}")
    import uvloop

    loop = uvloop.new_event_loop()
    task = loop.create_task(run(args))
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        result = loop.run_until_complete(task)
    except (KeyboardInterrupt, asyncio.CancelledError):
        task.cancel()
        with contextlib.suppress(BaseException):
            loop.run_until_complete(task)
        raise SystemExit(130) from None
    finally:
        loop.close()
    print(table(result), flush=True)
    if args.json:
        print(json.dumps(result, indent=1))
    raise SystemExit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
