"""The socket that stands in for discord.py's gateway: each payload becomes one bus command,
addressed to its shard or by its guild; closing closes nothing."""

from __future__ import annotations

import math

import discord

from shardrunner.adapters.discordpy_socket import BusSocket
from tests.adapters.dpy_fakes import FakeClient


async def test_bus_socket_when_it_stands_for_every_shard_sends_to_each_and_guild_payloads_by_guild() -> None:
    fake = FakeClient(3)
    socket = BusSocket(fake, None, {0: 0.01, 1: 0.03})  # type: ignore[arg-type]
    await socket.change_presence(activity=discord.Game("x"), status="idle")
    assert [(op, shard, guild) for op, _, shard, guild in fake.sent] == [
        (3, 0, None),
        (3, 1, None),
        (3, 2, None),
    ]
    d = fake.sent[0][1]
    assert d["activities"][0]["name"] == "x"
    assert (d["status"], d["afk"]) == ("idle", False)
    assert d["since"] > 0, "idle carries since, as discord.py's own socket does"
    fake.sent.clear()
    await socket.send_as_json({"op": 31, "d": {"guild_ids": ["1", "2"]}})  # a list: not one guild
    await socket.voice_state(42 << 22, None)
    assert [(op, shard, guild) for op, _, shard, guild in fake.sent] == [
        (31, 0, None), (31, 1, None), (31, 2, None), (4, None, 42 << 22),
    ]  # fmt: skip
    assert socket.latency == 0.02
    assert not socket.is_ratelimited()


async def test_bus_socket_when_it_stands_for_one_shard_sends_there_and_reports_its_latency() -> None:
    fake = FakeClient(3)
    latencies: dict[int, float] = {}
    socket = BusSocket(fake, 2, latencies)  # type: ignore[arg-type]
    assert math.isnan(socket.latency), "nan until the cluster reported one"
    latencies[2] = 0.05
    assert socket.latency == 0.05
    await socket.request_chunks(7 << 22, limit=0, user_ids=[5], presences=True)
    await socket.change_presence(status="online")
    await socket.close(1000)
    assert socket.open
    assert fake.sent == [
        (8, {"guild_id": 7 << 22, "presences": True, "limit": 0, "user_ids": [5]}, None, 7 << 22),
        (3, {"activities": [], "afk": False, "since": 0.0, "status": "online"}, 2, None),
    ]
