"""`BotProcess`: reads a bot program's JSON lines as they come; kill and stop end it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.bots import BotProcess
from tests.conftest import wait_for


class Recording(BotProcess):
    def __init__(self, run_dir: Path, *args: str) -> None:
        self.others: list[dict[str, Any]] = []
        super().__init__("tests.harness.printer", run_dir, *args)

    def on_record(self, record: dict[str, Any]) -> None:
        if "event" in record:
            self.others.append(record)
        else:
            super().on_record(record)


async def test_bot_process_when_the_bot_prints_records_keeps_gaps_ready_and_the_rest(tmp_path: Path) -> None:
    bot = Recording(tmp_path, "hello")
    try:
        await bot.wait_ready(timeout=30)
        await wait_for(lambda: bool(bot.others), 10, "the event line")
        assert bot.ready_at == 12.5
        assert bot.gaps == [
            {"conn": "discord:1/4", "shard": 1, "session": "s1", "count": 3, "ranges": [[5, 7]]}
        ]
        assert bot.others == [{"event": "hello"}]
        assert bot.spawned > 0
    finally:
        bot.stop()
    assert bot.killed_at is not None
    assert bot.proc.returncode == -9


async def test_bot_process_terminate_when_the_bot_runs_ends_it(tmp_path: Path) -> None:
    bot = Recording(tmp_path, "x")
    await bot.wait_ready(timeout=30)
    await bot.terminate(timeout=10)
    assert bot.proc.returncode is not None
    bot.stop()
