"""The README's main job as a new user runs it: `shardrunner start --sim --groups example-bot` and
the example bot beside it (real processes, the built-in simulator as the CLI starts it)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from shardrunner.control import CommandError, call
from tests.conftest import wait_for
from tests.test_readme import ROOT


async def _status(run_dir: Path) -> dict[str, Any] | None:
    with contextlib.suppress(CommandError):
        status: dict[str, Any] = await call(run_dir, "status", timeout=5)
        return status
    return None


async def test_main_job_when_the_bot_joins_after_every_shard_is_ready_it_still_gets_every_guild_create(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != "SHARDRUNNER_TOKEN"}
    cluster = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "shardrunner", "start", "--sim", "--groups", "example-bot",
        "--run-dir", str(run_dir), "--identify-window", "0.2", "--progress", "never",
        cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    bot: asyncio.subprocess.Process | None = None
    try:

        async def all_ready() -> bool:
            status = await _status(run_dir)
            return bool(status and status["shards"] and all(s["state"] == "ready" for s in status["shards"]))

        await wait_for(all_ready, 60, "every shard ready")
        status = await _status(run_dir)
        assert status is not None
        guilds = sum(s["keys"] for s in status["shards"])
        assert guilds > 0
        # The worst case for the bot: it joins only once every shard sent its GUILD_CREATEs.
        bot = await asyncio.create_subprocess_exec(
            sys.executable, "examples/bot.py", cwd=ROOT, stdout=asyncio.subprocess.PIPE,
            env={**env, "SHARDRUNNER_RUN_DIR": str(run_dir)},
        )  # fmt: skip
        assert bot.stdout is not None
        seen = -1
        deadline = asyncio.get_running_loop().time() + 30  # the bot reports every 5 s
        while seen != guilds:
            left = deadline - asyncio.get_running_loop().time()
            assert left > 0, f"the bot got {seen} GUILD_CREATEs of {guilds}"
            line = (await asyncio.wait_for(bot.stdout.readline(), left)).decode()
            assert line, "the example bot exited"
            found = re.search(r"'GUILD_CREATE': (\d+)", line)
            if found:
                seen = int(found.group(1))
        bot.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(bot.wait(), 20) == 0
        stopped = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "shardrunner", "stop", "--run-dir", str(run_dir)],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert stopped.returncode == 0, stopped.stderr
        assert "identif" in stopped.stdout  # under --sim the next start cannot resume: it says so
        assert await asyncio.wait_for(cluster.wait(), 30) == 0
    finally:
        if bot is not None and bot.returncode is None:
            bot.kill()
            await bot.wait()
        if cluster.returncode is None:
            cluster.kill()
            await cluster.wait()
