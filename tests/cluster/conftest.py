"""Harness for real-process tests: a `shardrunner start` process against an in-process simulator,
and bot processes using `shardrunner.client`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from shardrunner.control import CommandError, call
from shardrunner.sim.discord.server import Simulator
from tests.conftest import TOKEN, SimFactory, wait_for


class Cluster:
    """One `shardrunner start` process and what it left running."""

    def __init__(self, sim: Simulator, run_dir: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.sim = sim
        self.run_dir = run_dir
        command = [
            sys.executable, "-m", "shardrunner", "start", "--api-url", sim.url + "/api/v10",
            "--run-dir", str(run_dir), "--identify-window", str(sim.config.identify_window),
            "--progress", "never", "--hung-after", "5", *args,
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "SHARDRUNNER_TOKEN": TOKEN, **(env or {})},
        )
        self.seen_pids: set[int] = set()

    async def status(self) -> dict[str, Any]:
        result: dict[str, Any] = await call(self.run_dir, "status", timeout=5)
        self.seen_pids.update(w["pid"] for w in result["workers"])
        return result

    async def ready(self, shards: int, timeout: float = 30) -> dict[str, Any]:
        async def all_ready() -> bool:
            try:
                status = await self.status()
            except CommandError:
                return False
            states = [s["state"] for s in status["shards"]]
            return len(states) == shards and all(s == "ready" for s in states)

        await wait_for(all_ready, timeout, f"{shards} shards ready")
        return await self.status()

    async def exit_code(self, timeout: float = 30) -> int:
        code = await asyncio.wait_for(asyncio.to_thread(self.proc.wait), timeout)
        return int(code)

    def output(self) -> str:
        assert self.proc.stdout is not None
        if self.proc.poll() is None:
            return ""
        return self.proc.stdout.read().decode(errors="replace")

    async def kill_everything(self) -> None:
        """Stop the cluster without blocking the loop: the in-process simulator runs on it and must
        answer the workers' closes while they stop (a blocking wait here made each stop run into
        the close timeouts)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.to_thread(self.proc.wait), 20)
            except TimeoutError:
                self.proc.kill()
                await asyncio.wait_for(asyncio.to_thread(self.proc.wait), 5)
        for pid in self.seen_pids:
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()
        if self.proc.stdout:
            self.proc.stdout.close()


async def shardrunner(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """Run `shardrunner ARGS` to the end without blocking the simulator's loop."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "shardrunner", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def accepted(sim: Simulator, kind: str) -> list[dict[str, Any]]:
    return [r for r in sim.stats()[kind] if r["accepted"]]


@pytest.fixture
async def cluster(sim_factory: SimFactory, tmp_path: Path) -> AsyncIterator[Any]:
    made: list[Cluster] = []

    async def start(sim: Simulator | None = None, *args: str, env: dict[str, str] | None = None) -> Cluster:
        if sim is None:
            sim = await sim_factory(
                shards=8, guilds_per_shard=2, rate=50, identify_window=0.25, heartbeat_interval_ms=1000
            )
        c = Cluster(sim, tmp_path / "run", *args, env=env)
        made.append(c)
        return c

    yield start
    for c in made:
        await c.kill_everything()


class Bot:
    """A bot process (tests/cluster/bot_proc.py) and every event it printed."""

    def __init__(self, run_dir: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.cluster.bot_proc", "--run-dir", str(run_dir), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.events: list[dict[str, Any]] = []
        self.gaps: list[dict[str, Any]] = []
        self.ready = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            record = json.loads(line)
            if "gap" in record:
                self.gaps.append(record["gap"])
            elif record.get("ready"):
                self.ready = True
            else:
                self.events.append(record)

    def seqs(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for e in list(self.events):
            out.setdefault(e["session"], []).append(e["seq"])
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._reader.join(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()

    def stderr(self) -> str:
        assert self.proc.stderr is not None
        return self.proc.stderr.read() if self.proc.poll() is not None else ""


@pytest.fixture
def bots() -> Any:
    made: list[Bot] = []

    def start(run_dir: Path, *args: str) -> Bot:
        bot = Bot(run_dir, *args)
        made.append(bot)
        return bot

    yield start
    for bot in made:
        bot.stop()
