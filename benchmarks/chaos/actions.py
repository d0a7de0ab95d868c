"""The seeded schedule of a chaos run and the actions it takes, each logged as one JSON line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import psutil

from benchmarks.chaos.world import CHANNELS, SHARDS, Host, World, http
from harness.procs import REPO

T = TypeVar("T")

#: Every kind of action; a schedule is rounds of these, each round shuffled by the seed.
KINDS = (
    "kill_worker", "kill_bot", "kill_supervisor", "kill_redis", "kill_redis_empty",
    "stop_worker_short", "stop_worker_long", "stop_supervisor_short", "stop_supervisor_long",
    "reload",
    "discord_reconnect", "discord_invalid_resumable", "discord_invalid_not_resumable", "discord_drop",
    "discord_close", "discord_zombie", "discord_stall", "discord_garbage",
    "twitch_reconnect", "twitch_drop", "twitch_stall", "twitch_no_pong", "twitch_server_change",
)  # fmt: skip

#: The sim fault of each Discord kind: the body of POST /_sim/fault (a shard is added).
DISCORD_FAULTS: dict[str, dict[str, Any]] = {
    "discord_reconnect": {"kind": "reconnect"},
    "discord_invalid_resumable": {"kind": "invalid_session", "resumable": True},
    "discord_invalid_not_resumable": {"kind": "invalid_session", "resumable": False},
    "discord_drop": {"kind": "drop"},
    "discord_close": {"kind": "close", "code": 4000},
    "discord_zombie": {"kind": "zombie", "duration": 25.0},
    "discord_stall": {"kind": "stall", "duration": 3.0},
    "discord_garbage": {"kind": "garbage"},
}


#: How long a fault waits for a target (a connected session, a reader in a channel) before it is
#: skipped: a takeover leaves every connection of a platform down for a moment.
TARGET_WAIT_S = 10.0
#: How long the end of a run waits for a reload command still running.
RELOAD_WAIT_S = 15.0


def schedule(
    seed: int, seconds: float, interval: float, kinds: tuple[str, ...] = KINDS
) -> list[tuple[float, str]]:
    """(offset in seconds, kind): rounds of every one of ``kinds``, shuffled per round, one every
    ``interval`` seconds until ``seconds``."""
    rng = random.Random(seed)
    out: list[tuple[float, str]] = []
    t = 0.0
    while t < seconds:
        order = list(kinds)
        rng.shuffle(order)
        for k in order:
            if t >= seconds:
                break
            out.append((round(t, 3), k))
            t += interval
    return out


class Chaos:
    """Takes the actions of a schedule against a :class:`World`; every one is logged to
    ``actions.jsonl`` with its wall time, the target and what came of it."""

    def __init__(self, world: World, seed: int, log: Path, say: Callable[[str], None]) -> None:
        self.world = world
        self.rng = random.Random(seed + 1)
        self.log = log
        self.say = say
        self.done: list[dict[str, Any]] = []
        #: pids (and names) the schedule killed or is acting on; not picked again meanwhile.
        self.busy: set[str] = set()
        self.killed_pids: set[int] = set()
        self.tasks: list[asyncio.Future[None]] = []
        self.reloads: list[dict[str, Any]] = []
        self.reload_tasks: list[asyncio.Future[None]] = []

    def record(self, kind: str, **what: Any) -> dict[str, Any]:
        entry = {"time": round(time.time(), 3), "kind": kind, **what}
        self.done.append(entry)
        with open(self.log, "a") as f:
            f.write(json.dumps(entry) + "\n")
        return entry

    def later(self, coro: Awaitable[None]) -> None:
        self.tasks.append(asyncio.ensure_future(coro))

    async def settle(self, reload_wait: float = RELOAD_WAIT_S) -> None:
        """Wait for the pending restarts and SIGCONTs, and up to ``reload_wait`` seconds for the
        reload commands still running (then they are killed, recorded as unfinished: a replacement
        whose shards never get ready waits out its 60 s ready timeout)."""
        others = [t for t in self.tasks if t not in self.reload_tasks]
        if others:
            await asyncio.gather(*others, return_exceptions=True)
        pending = [t for t in self.reload_tasks if not t.done()]
        if pending:
            _, late = await asyncio.wait(pending, timeout=reload_wait)
            for t in late:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    # -- targets -------------------------------------------------------------------------------
    def _hosts(self, *, holding: bool) -> list[Host]:
        live = [h for h in self.world.live_hosts() if h.name not in self.busy]
        if holding:
            live = [h for h in live if h.cluster.workers() and not h.standby] or live
        return live

    async def _wait(self, pick: Callable[[], T]) -> T:
        """``pick()`` until it finds a target (every one may be busy a moment: paused, reloading,
        restarting), at most TARGET_WAIT_S seconds; its last answer."""
        deadline = time.monotonic() + TARGET_WAIT_S
        while True:
            found = pick()
            if found or time.monotonic() >= deadline:
                return found
            await asyncio.sleep(0.2)

    def _worker(self) -> tuple[Host, psutil.Process] | None:
        choices = [
            (h, w)
            for h in self._hosts(holding=True)
            for w in h.cluster.workers()
            if str(w.pid) not in self.busy
        ]
        return self.rng.choice(choices) if choices else None

    async def act(self, kind: str) -> None:
        try:
            await getattr(self, "_" + kind)()
        except Exception as e:
            self.record(kind, outcome="error", error=repr(e))

    # -- processes -----------------------------------------------------------------------------
    async def _kill_worker(self) -> None:
        found = await self._wait(self._worker)
        if found is None:
            self.record("kill_worker", outcome="skipped", reason="no worker")
            return
        host, w = found
        self.killed_pids.add(w.pid)
        os.kill(w.pid, signal.SIGKILL)
        self.record("kill_worker", outcome="done", host=host.name, pid=w.pid)

    async def _kill_bot(self) -> None:
        bots = [b for b in self.world.bots.values() if b.proc.poll() is None and b.name not in self.busy]
        if not bots:
            self.record("kill_bot", outcome="skipped", reason="no bot")
            return
        bot = self.rng.choice(bots)
        down = round(self.rng.uniform(1.0, 4.0), 2)
        self.busy.add(bot.name)
        bot.killed = True
        bot.proc.send_signal(signal.SIGKILL)
        bot.proc.wait(5)
        self.record("kill_bot", outcome="done", bot=f"{bot.name}.{bot.incarnation}", down_s=down)

        async def back() -> None:
            await asyncio.sleep(down)
            # A host that answers now: not paused by the schedule, its control socket bound.
            deadline = time.monotonic() + 30
            while True:
                hosts = [h for h in self._hosts(holding=False) if (h.run_dir / "control.sock").exists()]
                if hosts or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            new = self.world.start_bot(bot.name, bot.group, self.rng.choice(hosts or self.world.live_hosts()))
            self.record("bot_restarted", bot=f"{new.name}.{new.incarnation}")
            self.busy.discard(bot.name)

        self.later(back())

    async def _kill_supervisor(self) -> None:
        def candidates() -> list[Host]:
            if len(self.world.live_hosts()) < 3:
                return []
            return [h for h in self._hosts(holding=True) if not h.standby]

        holding = await self._wait(candidates)
        live = self.world.live_hosts()
        if len(live) < 3 or not holding:
            self.record("kill_supervisor", outcome="skipped", reason=f"{len(live)} live hosts")
            return
        host = self.rng.choice(holding)
        host.cluster.remember()
        host.killed = True
        self.killed_pids.add(host.cluster.pid)
        os.kill(host.cluster.pid, signal.SIGKILL)
        self.record("kill_supervisor", outcome="done", host=host.name, pid=host.cluster.pid)
        # The standbys that may take over are active from now on (for the next pick).
        for h in live:
            h.standby = False

        async def new_standby() -> None:
            await asyncio.sleep(self.world.ttl + 1)
            new = self.world.start_host(standby=True)
            self.record("host_started", host=new.name, standby=True)

        self.later(new_standby())

    async def _kill_redis(self, empty: bool = False) -> None:
        redis = self.world.redis
        assert redis is not None
        if "redis" in self.busy:
            self.record(
                "kill_redis_empty" if empty else "kill_redis", outcome="skipped", reason="down already"
            )
            return
        # Below the lease TTL minus its margin: an outage the hosts ride out (docs/hosts.md).
        down = round(self.rng.uniform(1.0, min(2.5, self.world.ttl - 2.0)), 2)
        self.busy.add("redis")
        redis.kill()
        kind = "kill_redis_empty" if empty else "kill_redis"
        self.record(kind, outcome="done", down_s=down)

        async def back() -> None:
            await asyncio.sleep(down)
            await redis.start(empty=empty)
            self.record("redis_restarted", empty=empty)
            self.busy.discard("redis")

        self.later(back())

    async def _kill_redis_empty(self) -> None:
        await self._kill_redis(empty=True)

    async def _pause(self, kind: str, proc: psutil.Process, name: str, seconds: float, **what: Any) -> None:
        self.busy.add(name)
        proc.suspend()
        self.record(kind, outcome="done", pid=proc.pid, seconds=seconds, **what)

        async def wake() -> None:
            await asyncio.sleep(seconds)
            with contextlib.suppress(psutil.Error):
                proc.resume()
            self.record("sigcont", pid=proc.pid, after=kind)
            self.busy.discard(name)

        self.later(wake())

    def _pause_for(self, long: bool) -> float:
        ttl = self.world.ttl
        return round(self.rng.uniform(ttl + 1.0, ttl + 3.0) if long else self.rng.uniform(0.3, ttl / 2), 2)

    async def _stop_worker(self, long: bool) -> None:
        kind = "stop_worker_long" if long else "stop_worker_short"
        found = await self._wait(self._worker)
        if found is None:
            self.record(kind, outcome="skipped", reason="no worker")
            return
        host, w = found
        await self._pause(kind, w, str(w.pid), self._pause_for(long), host=host.name)

    async def _stop_worker_short(self) -> None:
        await self._stop_worker(False)

    async def _stop_worker_long(self) -> None:
        await self._stop_worker(True)

    async def _stop_supervisor(self, long: bool) -> None:
        kind = "stop_supervisor_long" if long else "stop_supervisor_short"
        hosts = await self._wait(lambda: self._hosts(holding=True))
        if not hosts:
            self.record(kind, outcome="skipped", reason="no host")
            return
        host = self.rng.choice(hosts)
        await self._pause(kind, host.cluster.supervisor, host.name, self._pause_for(long), host=host.name)

    async def _stop_supervisor_short(self) -> None:
        await self._stop_supervisor(False)

    async def _stop_supervisor_long(self) -> None:
        await self._stop_supervisor(True)

    async def _reload(self) -> None:
        hosts = await self._wait(lambda: self._hosts(holding=True))
        if not hosts:
            self.record("reload", outcome="skipped", reason="no host")
            return
        host = self.rng.choice(hosts)
        self.busy.add(host.name)
        entry = self.record("reload", outcome="started", host=host.name)

        async def run() -> None:
            try:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "shardrunner", "reload", "--run-dir", str(host.run_dir),
                    cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                )  # fmt: skip
                try:
                    out, _ = await asyncio.wait_for(proc.communicate(), 90)
                except TimeoutError:
                    proc.kill()
                    out = b"(timed out after 90 s)"
                except asyncio.CancelledError:
                    proc.kill()
                    await proc.wait()
                    done: dict[str, Any] = {
                        "host": host.name,
                        "code": None,
                        "output": "(unfinished at the end)",
                    }
                    self.reloads.append(done)
                    self.record("reload_done", **done, started=entry["time"])
                    raise
                done = {
                    "host": host.name,
                    "code": proc.returncode,
                    "output": out.decode(errors="replace")[-500:],
                }
                self.reloads.append(done)
                self.record("reload_done", **done, started=entry["time"])
            finally:
                self.busy.discard(host.name)

        task = asyncio.ensure_future(run())
        self.tasks.append(task)
        self.reload_tasks.append(task)

    # -- simulator faults ----------------------------------------------------------------------
    async def _discord(self, kind: str) -> None:
        shards = list(range(SHARDS))
        self.rng.shuffle(shards)
        deadline = time.monotonic() + TARGET_WAIT_S
        while True:  # every shard may be between connections a moment (a takeover): wait for one
            for shard in shards:
                body = {**DISCORD_FAULTS[kind], "shard": shard}
                status, answer = await http(self.world.dsim_port, "POST", "fault", body)
                if status == 200:
                    self.record(kind, outcome="done", shard=shard, applied=answer.get("applied"))
                    return
            if time.monotonic() > deadline:
                self.record(kind, outcome="skipped", reason="no connected session")
                return
            await asyncio.sleep(0.2)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_discord_"):
            return lambda: self._discord(name[1:])
        if name.startswith("_twitch_"):
            return lambda: self._twitch(name[len("_twitch_") :])
        raise AttributeError(name)

    async def _twitch(self, fault: str) -> None:
        kind = f"twitch_{fault}"
        if fault == "server_change":
            channel = f"chan{self.rng.randrange(CHANNELS)}"
            status, answer = await http(
                self.world.tsim_port, "POST", "fault", {"kind": fault, "channel": channel}
            )
            ok = status == 200 and answer.get("applied")
            self.record(
                kind, outcome="done" if ok else "skipped", channel=channel, applied=answer.get("applied")
            )
            return
        deadline = time.monotonic() + TARGET_WAIT_S
        while True:
            _, stats = await http(self.world.tsim_port, "GET", "stats")
            conns = [c for c in stats["connections"] if c.get("channels")]
            if conns:
                break
            if time.monotonic() > deadline:
                self.record(kind, outcome="skipped", reason="no connection in a channel")
                return
            await asyncio.sleep(0.2)
        target = self.rng.choice(conns)
        body: dict[str, Any] = {"kind": fault, "connection": target["connection"]}
        if fault in ("stall", "no_pong"):
            body["seconds"] = 3.0 if fault == "stall" else 15.0
        status, answer = await http(self.world.tsim_port, "POST", "fault", body)
        ok = status == 200 and answer.get("applied")
        self.record(
            kind,
            outcome="done" if ok else "skipped",
            connection=target["connection"],
            applied=answer.get("applied"),
        )
