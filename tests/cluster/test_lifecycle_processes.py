"""Lifecycle events with real processes: ``shardrunner start --sim`` with 2 shards, a bot with the
``on_shard_*`` handlers, faults injected through the simulator's admin API: each fault gives one
``disconnected`` and one ``resumed`` (``ready`` after a non-resumable op 9) for its shard, and a bot
killed and restarted loses none of them (its group is durable)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import aiohttp
import pytest

from harness.bots import BotProcess
from harness.cluster import ClusterProcess
from tests.conftest import wait_for

pytestmark = pytest.mark.timeout(120)


class LifecycleBot(BotProcess):
    def __init__(self, *args: Any) -> None:
        self.said: list[dict[str, Any]] = []
        self.platform: set[int] = set()
        super().__init__("tests.cluster.lifecycle_bot", *args)

    def on_record(self, record: dict[str, Any]) -> None:
        if "kind" in record:
            self.said.append(record)
        elif "platform_shard" in record:
            self.platform.add(int(record["platform_shard"]))
        else:
            super().on_record(record)


async def fault(url: str, spec: dict[str, Any]) -> None:
    async with aiohttp.ClientSession() as s, s.post(url + "/_sim/fault", json=spec) as r:
        body = await r.json()
        assert r.status == 200, body
        assert len(body["applied"]) == 1, body


def short(records: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(r["kind"].removeprefix("shardrunner."), r["shard"]) for r in records]


async def test_lifecycle_when_the_simulator_injects_faults_each_gives_one_disconnect_and_one_recovery(
    tmp_path: Any,
) -> None:
    c = ClusterProcess(None, "--sim", "--workers", "2", "--identify-window", "0.2", token=None,
                       run_dir=tmp_path / "run", shards=2)  # fmt: skip
    bots: list[LifecycleBot] = []
    try:
        await c.wait_ready(timeout=60, interval=0.05)
        url = (await c.status())["supervisor"]["simulator"]
        first = LifecycleBot(c.run_dir, "--member", "first")
        bots.append(first)
        await wait_for(lambda: first.platform == {0, 1}, 30, "the bot joined both workers")
        await fault(url, {"kind": "reconnect", "shard": 0})  # op 7
        await wait_for(lambda: short(first.said) == [("disconnected", 0), ("resumed", 0)], 20, "op 7")
        op7 = first.said[0]
        assert (op7["code"], op7["reason"], op7["resumable"]) == (4000, "reconnect", True)
        # The bot is killed; what happens meanwhile waits for it in its durable group.
        first.kill()
        await fault(url, {"kind": "drop", "shard": 1})
        await fault(url, {"kind": "invalid_session", "resumable": False, "shard": 0})  # op 9
        later = LifecycleBot(c.run_dir, "--member", "later")
        bots.append(later)

        def union() -> list[dict[str, Any]]:
            unique = {(r["conn"], r["kind"], r["at"]): r for r in [*first.said, *later.said]}
            return sorted(unique.values(), key=lambda r: r["at"])

        def counts() -> Counter[tuple[str, int]]:
            return Counter(short(union()))

        expected = Counter({("disconnected", 0): 2, ("resumed", 0): 1, ("ready", 0): 1,
                            ("disconnected", 1): 1, ("resumed", 1): 1})  # fmt: skip
        await wait_for(lambda: counts() == expected, 40, f"every fault's events, got {short(union())}")
        per_shard = {s: [k for k, shard in short(union()) if shard == s] for s in (0, 1)}
        assert per_shard == {0: ["disconnected", "resumed", "disconnected", "ready"],
                             1: ["disconnected", "resumed"]}  # fmt: skip
        dropped = next(r for r in union() if r["shard"] == 1)
        assert (dropped["code"], dropped["reason"], dropped["resumable"]) == (None, "closed", True)
        op9 = [r for r in union() if r["shard"] == 0][2:]
        assert (op9[0]["reason"], op9[0]["resumable"]) == ("invalid_session", False)
        assert op9[1]["session"] not in (None, first.said[1]["session"]), "a new session"
        await c.stop(grace=20)
        for bot in bots:
            await bot.terminate()
        assert counts() == expected, "and nothing more: a stop says nothing"
    finally:
        for bot in bots:
            bot.stop()
        await c.stop(grace=20)
