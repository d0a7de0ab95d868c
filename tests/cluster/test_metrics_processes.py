"""The metrics endpoint of a real `shardrunner start --sim` (Discord and Twitch simulators, two
workers) and a bot: every family has samples, the events the connections counted are the ones the
simulator sent, and neither the bot token nor the Twitch OAuth token is ever in a scrape."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.bots import BotProcess
from harness.cluster import ClusterProcess
from shardrunner.cluster.supervisor.collector import FAMILIES
from shardrunner.sim.discord.world import DEFAULT_BOT_ID, make_token
from tests.conftest import wait_for

pytestmark = pytest.mark.timeout(90)

OAUTH = "oauthsecret0123456789abcdef"
#: Families that have samples only in other set-ups: several hosts; a reshard's second set.
ELSEWHERE = {"shardrunner_host_info"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def scrape(http: aiohttp.ClientSession, port: int) -> tuple[str, dict[str, list[Any]]]:
    async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    samples: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, []).append(s)
    return text, samples


def discord_events(samples: dict[str, list[Any]]) -> int:
    rows = samples.get("shardrunner_connection_events_total", [])
    return int(sum(s.value for s in rows if s.labels["platform"] == "discord"))


@pytest.fixture
async def running() -> AsyncIterator[tuple[ClusterProcess, int, set[int]]]:
    port = free_port()
    c = ClusterProcess(
        None,
        "--sim", "--platforms", "discord,twitch", "--twitch-accounts", f"mybot:oauth:{OAUTH}",
        "--workers", "2", "--identify-window", "0.2", "--groups", "test", "--log-level", "warning",
        "--metrics-port", str(port),
        token=None, shards=2,
        env={"SHARDRUNNER_SIM_HEARTBEAT_INTERVAL": "300"},  # the simulator's: latencies within the test
    )  # fmt: skip
    children: set[int] = set()  # the test notes the supervisor's children once they run
    try:
        yield c, port, children
    finally:
        await c.stop(grace=20)
        for pid in children:  # the simulators, should the supervisor not have stopped them
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()


async def test_metrics_when_scraped_have_every_family_the_simulators_counts_and_no_token(
    running: tuple[ClusterProcess, int, set[int]],
) -> None:
    c, port, children = running

    async def all_ready() -> bool:
        with contextlib.suppress(Exception):
            rows = (await c.status())["shards"]
            return len(rows) > 2 and all(r["state"] == "ready" for r in rows)
        return False

    await wait_for(all_ready, 40, "every Discord and Twitch connection ready")
    with contextlib.suppress(psutil.Error):
        children.update(p.pid for p in c.supervisor.children(recursive=True))
    bot = BotProcess("tests.cluster.bot_proc", c.run_dir, "--group", "test")
    try:
        await bot.wait_ready(20)
        async with aiohttp.ClientSession() as http:

            async def complete() -> bool:
                # Heartbeats answered, a report since, the bot's acknowledgements in, the joins'
                # budget still within its window: every family has samples.
                _, samples = await scrape(http, port)
                delivered = sum(s.value for s in samples.get("shardrunner_group_delivered_events_total", []))
                return delivered > 0 and set(FAMILIES) - ELSEWHERE <= set(samples)

            await wait_for(complete, 15, "every family with samples")
            status = await c.status()
            simulator = status["supervisor"]["simulator"]
            async with http.post(f"{simulator}/_sim/config", json={"rate": 0}) as resp:
                assert resp.status == 200
            sent = [-1]

            async def quiet() -> bool:
                async with http.get(f"{simulator}/_sim/stats") as resp:
                    stats = await resp.json()
                now = sum(s["dispatches_sent"] for s in stats["shards"])
                settled, sent[0] = now == sent[0], now
                _, samples = await scrape(http, port)
                return settled and discord_events(samples) == now

            await wait_for(quiet, 10, "the Discord connections' events to add up to what the simulator sent")
            text, samples = await scrape(http, port)
    finally:
        await c.stop(grace=20)  # first, while the bot acknowledges: the workers' drain is quick
        bot.stop()
    assert discord_events(samples) == sent[0] > 0
    for secret in (make_token(DEFAULT_BOT_ID), OAUTH):
        assert secret not in text
    ready = [s.value for s in samples["shardrunner_connection_ready"]]
    assert ready == [1.0] * len(ready) == [1.0] * 6, "2 Discord shards, 4 Twitch connections"
