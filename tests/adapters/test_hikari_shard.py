"""BusShard: hikari's shard sends, built and checked as hikari does, go to ``send(op, d, shard)``."""

from __future__ import annotations

import asyncio
import datetime
import math
from typing import Any

import hikari
import pytest
from hikari.api.shard import ChannelInfoField

from shardrunner.adapters.hikari_shard import BusShard
from shardrunner.client import ClientError

pytestmark = pytest.mark.asyncio

GUILD = 1_200_000_000_000_000_001
CHANNEL = 1_200_000_000_000_000_777


class Sends:
    """What a shard handed on: (op, d, shard), and an error to raise instead when ``refuse`` is set."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, dict[str, Any], int]] = []
        self.refuse: str | None = None
        self.closes = 0

    async def send(self, op: int, d: dict[str, Any], shard: int) -> None:
        if self.refuse is not None:
            raise ClientError(self.refuse)
        self.sent.append((op, d, shard))

    async def close(self) -> None:
        self.closes += 1


def make_shard(
    sends: Sends, intents: hikari.Intents = hikari.Intents.ALL_UNPRIVILEGED
) -> tuple[BusShard, asyncio.Event]:
    closed = asyncio.Event()
    shard = BusShard(
        1,
        4,
        intents=intents,
        capabilities=hikari.GatewayCapabilities.NONE,
        send=sends.send,
        on_close=sends.close,
        closed=closed,
    )
    return shard, closed


async def test_update_presence_when_partial_keeps_what_it_does_not_name() -> None:
    sends = Sends()
    shard, _ = make_shard(sends)
    await shard.update_presence(activity=hikari.Activity(name="chess", type=hikari.ActivityType.PLAYING))
    await shard.update_presence(
        status=hikari.Status.IDLE, idle_since=datetime.datetime.fromtimestamp(5, datetime.UTC)
    )
    await shard.update_presence(status=hikari.Status.OFFLINE, activity=None)
    game = [{"name": "chess", "state": None, "type": 0, "url": None}]
    assert sends.sent == [
        (3, {"since": None, "afk": False, "activities": game, "status": "online"}, 1),
        (3, {"since": 5000, "afk": False, "activities": game, "status": "idle"}, 1),
        # Discord ignores "offline" from a bot: hikari sends "invisible", so does the adapter.
        (3, {"since": 5000, "afk": False, "activities": [], "status": "invisible"}, 1),
    ]


async def test_update_presence_when_custom_status_by_name_sends_it_as_state() -> None:
    sends = Sends()
    shard, _ = make_shard(sends)
    await shard.update_presence(
        activity=hikari.Activity(name="on shardrunner", type=hikari.ActivityType.CUSTOM)
    )
    ((_, d, _),) = sends.sent
    assert d["activities"] == [{"name": "Custom Status", "state": "on shardrunner", "type": 4, "url": None}]


async def test_update_voice_state_when_leaving_sends_a_null_channel() -> None:
    sends = Sends()
    shard, _ = make_shard(sends)
    await shard.update_voice_state(GUILD, CHANNEL, self_deaf=True)
    await shard.update_voice_state(GUILD, None)
    assert sends.sent == [
        (4, {"guild_id": str(GUILD), "channel_id": str(CHANNEL), "self_deaf": True}, 1),
        (4, {"guild_id": str(GUILD), "channel_id": None}, 1),
    ]


async def test_request_guild_members_when_valid_sends_op_8_with_what_was_given() -> None:
    sends = Sends()
    shard, _ = make_shard(sends, hikari.Intents.ALL_UNPRIVILEGED | hikari.Intents.GUILD_MEMBERS)
    await shard.request_guild_members(GUILD)
    await shard.request_guild_members(GUILD, users=[5, 6], nonce="n1")
    await shard.request_guild_members(GUILD, query="ab", limit=10)
    assert sends.sent == [
        (8, {"guild_id": str(GUILD), "query": "", "limit": 0}, 1),
        (8, {"guild_id": str(GUILD), "query": "", "limit": 0, "user_ids": ["5", "6"], "nonce": "n1"}, 1),
        (8, {"guild_id": str(GUILD), "query": "ab", "limit": 10}, 1),
    ]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({}, hikari.MissingIntentError),  # every member needs GUILD_MEMBERS
        ({"query": "a", "include_presences": True}, hikari.MissingIntentError),
        ({"query": "a", "limit": 101}, ValueError),
        ({"users": [1], "query": "a"}, ValueError),
        ({"users": list(range(101))}, ValueError),
        ({"query": "a", "nonce": "x" * 33}, ValueError),
    ],
)
async def test_request_guild_members_when_hikari_would_refuse_raises_as_hikari_and_sends_nothing(
    kwargs: dict[str, Any], error: type[Exception]
) -> None:
    sends = Sends()
    shard, _ = make_shard(sends)
    with pytest.raises(error):
        await shard.request_guild_members(GUILD, **kwargs)
    assert sends.sent == []


async def test_request_channel_info_when_asked_sends_op_43() -> None:
    sends = Sends()
    shard, _ = make_shard(sends)
    await shard.request_channel_info(GUILD, fields=[ChannelInfoField.STATUS])
    assert sends.sent == [(43, {"guild_id": str(GUILD), "fields": ["status"]}, 1)]


async def test_send_when_the_cluster_refuses_raises_component_state_conflict_with_its_sentence() -> None:
    sends = Sends()
    shard, _ = make_shard(sends)
    sends.refuse = "no running worker has discord:1/4 (waited 30 s)"
    with pytest.raises(
        hikari.ComponentStateConflictError, match=r"shard 1: no running worker has discord:1/4"
    ):
        await shard.update_voice_state(GUILD, None)


async def test_shard_when_closed_is_not_alive_joins_and_refuses_sends() -> None:
    sends = Sends()
    shard, closed = make_shard(sends)
    shard.connected = True
    assert shard.is_alive
    assert shard.is_connected
    joining = asyncio.ensure_future(shard.join())
    await shard.close()
    assert sends.closes == 1  # the adapter's close: every shard shares it
    closed.set()
    await asyncio.wait_for(joining, 5)
    assert not shard.is_alive
    assert not shard.is_connected
    with pytest.raises(hikari.ComponentStateConflictError, match="closed"):
        await shard.update_presence(status=hikari.Status.DO_NOT_DISTURB)
    assert sends.sent == []


async def test_shard_when_new_knows_no_user_nor_latency_and_cannot_be_started() -> None:
    shard, _ = make_shard(Sends())
    assert (shard.id, shard.shard_count) == (1, 4)
    assert math.isnan(shard.heartbeat_latency)
    with pytest.raises(hikari.ComponentStateConflictError, match="READY"):
        shard.get_user_id()
    with pytest.raises(hikari.ComponentStateConflictError, match="started by the cluster"):
        await shard.start()
