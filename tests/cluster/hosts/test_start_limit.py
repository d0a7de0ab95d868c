"""Several hosts share the daily start budget (Discord's session_start_limit) in Redis: the lower
reading wins, and a host warns when it is short."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pytest

from shardrunner.cluster.supervisor.grants import IdentifyGrants
from shardrunner.cluster.supervisor.queues import share_start_limits
from shardrunner.identify.protocol import StartLimit
from shardrunner.identify.redis_queue import RedisIdentifyQueue
from shardrunner.protocol.keys import ConnKey
from tests.redis_server import RedisServer


@dataclass
class Limit:
    total: int
    remaining: int
    reset_after: int  # milliseconds, as Discord says it


@dataclass
class Plan:
    session_start_limit: Limit
    name: str = "discord"
    conns: list[ConnKey] = field(default_factory=lambda: [ConnKey("discord", 0, i, 8) for i in range(8)])


@dataclass
class Sup:
    plans: dict[str, Any]
    grants: IdentifyGrants


async def test_start_limits_when_two_hosts_read_them_keep_the_lower_and_warn_when_short(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    limits = [StartLimit("discord.identify", 1, 5.0)]
    queues = [
        RedisIdentifyQueue(redis_server.url, "startlimit", limits, lambda c: ("discord.identify", 0), host=h)
        for h in ("a", "b")
    ]
    try:
        sups = [
            Sup(
                {"discord": Plan(Limit(1000, left, 3_600_000))},
                IdentifyGrants(q, lambda i, m: True, first_identifies=0, opened_at=0.0),
            )
            for q, left in zip(queues, (900, 5), strict=True)
        ]
        with caplog.at_level(logging.WARNING, "shardrunner.supervisor"):
            await share_start_limits(sups[0])  # type: ignore[arg-type]
            assert not caplog.records, "900 left for 8 connections: nothing to say"
            await share_start_limits(sups[1])  # type: ignore[arg-type]
        state = await queues[0].start_limit()
        assert state is not None
        assert (state.remaining, state.total) == (5, 1000), "the lower reading is the bot's"
        assert 3500 < state.reset_after <= 3600
        assert "5 session starts left today for the whole bot and 8 connections" in caplog.text
    finally:
        for q in queues:
            await q.close()
