"""The processes of a chaos run: the two simulators, redis-server, the hosts and the bots, each
logging to a file of the run's out dir; and the memory sampler over all of them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from benchmarks.harness import TOKEN
from harness.cluster import ClusterProcess
from harness.procs import REPO, free_port

SHARDS = 4
CHANNELS = 20
GROUPS = ("chaos-a", "chaos-b")
#: The coordinator's password: a secret the run's outputs are scanned for (with the token).
REDIS_PASSWORD = "chaos-redis-pw-" + os.urandom(6).hex()


def spawn(command: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with open(log, "ab") as sink:
        return subprocess.Popen(
            command, cwd=REPO, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )  # fmt: skip


async def wait_line(
    proc: subprocess.Popen[bytes], log: Path, pattern: str, timeout: float = 60
) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while True:
        found = re.search(pattern, await asyncio.to_thread(log.read_text, errors="replace"))
        if found:
            return found
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = (await asyncio.to_thread(log.read_text, errors="replace"))[-2000:]
            raise SystemExit(f"{log.name}: no {pattern!r} (exit {proc.poll()}):\n{tail}")
        await asyncio.sleep(0.05)


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            s.sendall(f"AUTH {REDIS_PASSWORD}\r\nPING\r\n".encode())
            return b"+PONG" in s.recv(64)
    except OSError:
        return False


class Redis:
    """redis-server on a fixed free port with an append-only file in ``directory``: a kill -9 and a
    start again keep (about) its data; ``start(empty=True)`` wipes the directory first."""

    def __init__(self, directory: Path, log: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed: run .ci/redis (or the README's test command)")
        self.binary, self.directory, self.log = binary, directory, log
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        #: Outside the out dir: the one file that holds the password on purpose.
        self._conf_dir = tempfile.TemporaryDirectory(prefix="sr-chaos-redis-")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self, *, empty: bool = False) -> None:
        if empty:
            shutil.rmtree(self.directory, ignore_errors=True)
        self.directory.mkdir(parents=True, exist_ok=True)
        # The password goes in a config file, not on the command line (which ps shows).
        conf = Path(self._conf_dir.name) / "redis.conf"
        conf.write_text(f"requirepass {REDIS_PASSWORD}\n")
        conf.chmod(0o600)
        args = [self.binary, str(conf), "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "yes", "--appendfsync", "everysec", "--dir", str(self.directory)]
        self.proc = spawn(args, self.log)
        deadline = time.monotonic() + 15
        while not _ping(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"redis-server did not start:\n{self.log.read_text()[-2000:]}")
            await asyncio.sleep(0.02)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


@dataclass
class Host:
    name: str
    cluster: ClusterProcess
    standby: bool
    metrics_port: int
    killed: bool = False  # its supervisor was killed by the schedule

    @property
    def run_dir(self) -> Path:
        return self.cluster.run_dir

    def alive(self) -> bool:
        return not self.killed and self.cluster.proc.poll() is None


@dataclass
class Bot:
    name: str
    group: str
    incarnation: int
    proc: subprocess.Popen[bytes]
    out: Path
    log: Path
    killed: bool = False


@dataclass
class World:
    out: Path
    seed: int
    ttl: float
    discord_rate: float
    twitch_rate: float
    logs: Path = field(init=False)
    dsim_port: int = 0
    tsim_port: int = 0
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    hosts: list[Host] = field(default_factory=list)
    bots: dict[str, Bot] = field(default_factory=dict)
    incarnations: list[Bot] = field(default_factory=list)
    redis: Redis | None = None
    host_count: int = 0

    def __post_init__(self) -> None:
        self.logs = self.out / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    async def start_simulators(self) -> None:
        py = [sys.executable, "-m", "shardrunner", "sim"]
        port = free_port()
        log = self.logs / "sim-discord.log"
        self.procs["sim-discord"] = proc = spawn(
            [*py, "discord", "--port", str(port), "--shards", str(SHARDS), "--guilds-per-shard", "3",
             "--min-members", "2", "--max-members", "5", "--rate", "0", "--identify-window", "0.5",
             "--max-concurrency", "1", "--heartbeat-interval", "10000", "--heartbeat-request-interval", "0",
             "--session-start-total", "1000000", "--track-dispatches", "--seed", str(self.seed),
             "--log-level", "warning"], log)  # fmt: skip
        await wait_line(proc, log, "listening")
        self.dsim_port = port
        log = self.logs / "sim-twitch.log"
        self.procs["sim-twitch"] = proc = spawn(
            [*py, "twitch", "--host", "127.0.0.1", "--port", "0", "--irc-port", "0", "--channels",
             str(CHANNELS), "--rate", "0", "--seed", str(self.seed), "--slow-kill", "0",
             "--reconnect-grace", "2", "--log-level", "warning"], log)  # fmt: skip
        found = await wait_line(proc, log, r"listening on ws://[^:]+:(\d+)")
        self.tsim_port = int(found.group(1))
        (self.out / "channels.txt").write_text("".join(f"chan{i}\n" for i in range(CHANNELS)))

    async def start_redis(self) -> None:
        self.redis = Redis(self.out / "redis" / "data", self.logs / "redis.log")
        await self.redis.start()

    def start_host(self, standby: bool) -> Host:
        assert self.redis is not None
        self.host_count += 1
        name = f"h{self.host_count}"
        metrics = free_port()
        args = [
            "--coordinator", self.redis.url, "--host-name", name, "--workers", "2",
            "--platforms", "discord,twitch", "--twitch-url", f"ws://127.0.0.1:{self.tsim_port}/",
            "--twitch-channels-file", str(self.out / "channels.txt"), "--twitch-anonymous",
            "--twitch-channels-per-conn", "5", "--twitch-backup-readers", "--lease-ttl", str(self.ttl),
            "--identify-window", "0.5", "--max-concurrency", "1", "--groups", ",".join(GROUPS),
            "--queue-events", "1000000", "--metrics-port", str(metrics), "--log-level", "info",
            *(["--standby"] if standby else []),
        ]  # fmt: skip
        run_dir = self.out / "hosts" / name
        run_dir.mkdir(parents=True, exist_ok=True)
        env = {"SHARDRUNNER_COORDINATOR_PASSWORD": REDIS_PASSWORD}
        cluster = ClusterProcess(
            f"http://127.0.0.1:{self.dsim_port}/api/v10", *args, token=TOKEN, run_dir=run_dir,
            shards=SHARDS, env=env, log=self.logs / f"{name}.log",
        )  # fmt: skip
        host = Host(name, cluster, standby, metrics)
        self.hosts.append(host)
        return host

    def live_hosts(self) -> list[Host]:
        return [h for h in self.hosts if h.alive()]

    def start_bot(self, name: str, group: str, host: Host) -> Bot:
        previous = self.bots.get(name)
        n = previous.incarnation + 1 if previous else 1
        out = self.out / "bots" / f"{name}.{n}.rec"
        out.parent.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"bot-{name}.{n}.log"
        proc = spawn(
            [sys.executable, "-m", "benchmarks.chaos.bot", "--run-dir", str(host.run_dir), "--out", str(out),
             "--group", group, "--member", f"chaos-{name}"], log)  # fmt: skip
        bot = Bot(name, group, n, proc, out, log)
        self.bots[name] = bot
        self.incarnations.append(bot)
        return bot

    async def wait_bot(self, bot: Bot, timeout: float = 60) -> None:
        await wait_line(bot.proc, bot.log, r'"ready": true', timeout)

    def every_process(self) -> list[tuple[str, str, psutil.Process]]:
        """(role, name, process) of everything running now: simulators, redis, supervisors, workers, bots."""
        out: list[tuple[str, str, psutil.Process]] = []

        def add(role: str, name: str, pid: int) -> None:
            with contextlib.suppress(psutil.Error):
                out.append((role, name, psutil.Process(pid)))

        for name, proc in self.procs.items():
            if proc.poll() is None:
                add(name, name, proc.pid)
        if self.redis is not None and self.redis.proc is not None and self.redis.proc.poll() is None:
            add("redis", "redis", self.redis.proc.pid)
        for h in self.hosts:
            if h.cluster.proc.poll() is None:
                add("supervisor", h.name, h.cluster.proc.pid)
                for w in h.cluster.workers():
                    out.append(("worker", f"{h.name}/{w.pid}", w))
        for b in self.bots.values():
            if b.proc.poll() is None:
                add("bot", f"{b.name}.{b.incarnation}", b.proc.pid)
        return out

    async def stop(self) -> None:
        """Every process, also the ones the schedule left stopped (SIGCONT first)."""
        for _, _, p in self.every_process():
            with contextlib.suppress(psutil.Error):
                p.resume()
        for b in self.bots.values():
            if b.proc.poll() is None:
                b.proc.terminate()
        for b in self.bots.values():
            try:
                await asyncio.to_thread(b.proc.wait, 10)
            except subprocess.TimeoutExpired:
                b.proc.kill()
                b.proc.wait(5)
        await asyncio.gather(*(h.cluster.stop(grace=15) for h in self.hosts), return_exceptions=True)
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
                try:
                    await asyncio.to_thread(proc.wait, 10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        if self.redis is not None:
            self.redis.kill()


class Memory:
    """RSS of every process every ``every`` seconds: the high-water by role and by process, and each
    process's command line (kept in the out dir for the secrets scan)."""

    def __init__(self, world: World, every: float = 0.5) -> None:
        self.world = world
        self.every = every
        self.by_role: dict[str, int] = {}
        self.by_name: dict[str, int] = {}
        self.cmdlines: dict[int, tuple[str, list[str]]] = {}
        self._task: asyncio.Future[None] | None = None

    def sample(self) -> None:
        for role, name, p in self.world.every_process():
            try:
                rss = int(p.memory_info().rss)
                if p.pid not in self.cmdlines:
                    self.cmdlines[p.pid] = (name, p.cmdline())
            except psutil.Error:
                continue
            self.by_role[role] = max(self.by_role.get(role, 0), rss)
            self.by_name[name] = max(self.by_name.get(name, 0), rss)

    async def _loop(self) -> None:
        while True:
            await asyncio.to_thread(self.sample)
            await asyncio.sleep(self.every)

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        (self.world.out / "cmdlines.json").write_text(
            json.dumps(
                {str(pid): {"name": n, "cmdline": c} for pid, (n, c) in self.cmdlines.items()}, indent=1
            )
        )


async def http(port: int, method: str, path: str, body: Any = None, timeout: float = 10) -> tuple[int, Any]:
    import aiohttp

    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as s,
        s.request(method, f"http://127.0.0.1:{port}/_sim/{path}", json=body) as r,
    ):
        return r.status, await r.json(content_type=None)
