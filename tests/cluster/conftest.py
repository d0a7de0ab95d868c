"""Fixtures for real-process tests: a `shardrunner start` process against an in-process simulator,
and bot processes using `shardrunner.client` (both on the shared `harness` package)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from harness.bots import BotProcess
from harness.cluster import ClusterProcess
from shardrunner.sim.discord.server import Simulator
from tests.conftest import TOKEN, SimFactory


class Cluster(ClusterProcess):
    """One `shardrunner start` process against the in-process simulator ``sim``, its output kept."""

    status_timeout = 5

    def __init__(self, sim: Simulator, run_dir: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.sim = sim
        # A crashed worker is replaced after 0.2 s (not 1 s: the tests that kill one wait for that).
        options = [
            "--identify-window", str(sim.config.identify_window),
            "--hung-after", "5", "--worker-backoff", "0.2",
        ]  # fmt: skip
        super().__init__(
            sim.url + "/api/v10", *options, *args, token=TOKEN, run_dir=run_dir, env=env, output=True
        )

    async def ready(self, shards: int, timeout: float = 30) -> dict[str, Any]:
        """The status once exactly ``shards`` shards are all ready."""
        await self.wait_ready(shards, timeout=timeout, interval=0.01)
        return await self.status()


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
async def cluster(sim_factory: SimFactory, tmp_path: Path, bots: Any) -> AsyncIterator[Any]:
    # After ``bots`` (set up first, torn down last): the clusters stop while their bots still
    # acknowledge, so that a stop does not wait on its drain to dead bots.
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
        # Awaited in a thread: the simulator on this loop answers the workers' closes meanwhile.
        await c.stop(grace=20)


class Bot(BotProcess):
    """A bot process (tests/cluster/bot_proc.py) and every event it printed."""

    def __init__(self, run_dir: Path | None, *args: str) -> None:
        self.events: list[dict[str, Any]] = []
        #: Why the bot could not join, if it could not (bot_proc.py then exits with status 2).
        self.refused: str | None = None
        super().__init__("tests.cluster.bot_proc", run_dir, *args)

    def on_record(self, record: dict[str, Any]) -> None:
        if "gap" in record or record.get("ready"):
            super().on_record(record)
        elif "refused" in record:
            self.refused = str(record["refused"])
        else:
            self.events.append(record)

    def seqs(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for e in list(self.events):
            out.setdefault(e["session"], []).append(e["seq"])
        return out


@pytest.fixture
def bots() -> Any:
    made: list[Bot] = []

    def start(run_dir: Path | None, *args: str) -> Bot:
        bot = Bot(run_dir, *args)
        made.append(bot)
        return bot

    yield start
    for bot in made:
        bot.stop()
