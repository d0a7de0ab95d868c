"""A controller in real processes: the supervisor and its worker load it from the setting, its
filter drops TYPING_START before the bus, and the bot gets exactly the other events, counted
against the simulator's own log of what it sent (and ``status`` counts the dropped ones)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shardrunner.sim.discord.session import Session
from tests.conftest import SimFactory, wait_for

pytestmark = pytest.mark.timeout(90)

CONTROLLER = """
import os
from pathlib import Path

from shardrunner.controller import Controller


class Half(Controller):
    def __init__(self):
        Path(os.environ["CONTROLLER_MARKS"], str(os.getpid())).write_text("loaded")

    def accept(self, platform, name, key):
        return name != "TYPING_START"

    async def on_ready(self, conn, info):
        Path(os.environ["CONTROLLER_MARKS"], f"ready-{conn.shard}-{os.getpid()}").write_text(info["session"])
"""


def name_of(session: Session, seq: int) -> str:
    return str(json.loads(session.payload(seq))["t"])


async def test_controller_when_set_filters_in_the_worker_and_the_bot_gets_exactly_the_rest(
    cluster: Any, sim_factory: SimFactory, bots: Any, tmp_path: Path
) -> None:
    sim = await sim_factory(
        shards=2, guilds_per_shard=3, rate=100, identify_window=0.1, heartbeat_interval_ms=1000,
        mix={"MESSAGE_CREATE": 1.0, "TYPING_START": 1.0},
    )  # fmt: skip
    marks = tmp_path / "marks"
    marks.mkdir()
    (tmp_path / "half.py").write_text(CONTROLLER)
    c = await cluster(
        sim, "--workers", "1", "--groups", "test", "--controller", f"{tmp_path / 'half.py'}:Half",
        env={"CONTROLLER_MARKS": str(marks)},
    )  # fmt: skip
    status = await c.ready(2)
    bot = bots(c.run_dir)
    await wait_for(lambda: len(bot.events) >= 150, 20, "events in the bot")
    sim.config = sim.config.replace(rate=0)
    live = {s.id: s for s in sim.sessions.values() if s.ended is None}
    assert len(live) == 2
    sent = {(sid, seq): name_of(s, seq) for sid, s in live.items() for seq in range(1, s.last_seq + 1)}
    expected = {k for k, name in sent.items() if name != "TYPING_START"}
    await wait_for(
        lambda: {(e["session"], e["seq"]) for e in list(bot.events)} >= expected, 20, "every accepted event"
    )
    got = [(e["session"], e["seq"]) for e in bot.events]
    assert len(got) == len(set(got))
    assert set(got) == expected, "exactly the events the filter accepted, from the first seq on"
    typing = len(sent) - len(expected)
    assert typing >= len(sent) // 4, f"the filter dropped a share: {typing} of {len(sent)}"
    assert not any(e["t"] == "TYPING_START" for e in bot.events)
    counted: list[int] = []

    async def filtered() -> bool:
        counted.append((await c.status())["workers"][0]["filtered"])
        return counted[-1] == typing

    await wait_for(filtered, 10, "the status to count every dropped event")
    status = await c.status()
    assert status["controller"]["hooks"] == ["accept", "on_ready"]
    assert status["controller"]["failures"] == {}
    assert status["workers"][0]["hook_failures"] == {}
    loaded = {int(p.name) for p in marks.iterdir() if p.name.isdigit()}
    worker_pid = status["workers"][0]["pid"]
    assert loaded == {c.proc.pid, worker_pid}, "loaded by the supervisor and its worker"
    # The lifecycle callback ran in the worker, once per shard, with the session it started.
    ready = {p.name: p.read_text() for p in marks.iterdir() if p.name.startswith("ready-")}
    assert ready == {f"ready-{s.shard_id}-{worker_pid}": sid for sid, s in live.items()}
