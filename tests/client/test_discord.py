"""Discord's conveniences on the client, without a cluster."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from shardrunner.client import Client, ClientError
from shardrunner.client.discord import newest_set
from shardrunner.protocol.keys import ConnKey


async def test_client_send_when_shard_is_out_of_range_fails_at_once(tmp_path: Path) -> None:
    client = Client(tmp_path)
    client.conns = [ConnKey("discord", 0, i, 4) for i in (0, 2)]  # two workers of the set of 4
    assert client.num_shards == 4
    started = time.monotonic()
    with pytest.raises(ClientError, match=r"unknown shard 9: the cluster runs shards 0-3"):
        await client.send(3, {}, shard=9, timeout=30)
    assert time.monotonic() - started < 1
    with pytest.raises(ValueError, match="exactly one of shard= or guild="):
        await client.send(3, {}, shard=1, guild=2)


async def test_client_send_when_not_started_says_so(tmp_path: Path) -> None:
    with pytest.raises(ClientError, match=r"the shard count is not known yet: start\(\) the client first"):
        await Client(tmp_path).send(3, {}, guild=1, timeout=30)


def test_newest_set_when_two_sets_run_is_every_shard_of_the_newest() -> None:
    old = [ConnKey("discord", 0, i, 4) for i in range(4)]
    new = [ConnKey("discord", 1, i, 8) for i in (5, 6)]
    assert newest_set(old + new) == tuple(ConnKey("discord", 1, i, 8) for i in range(8))
    assert newest_set(old) == tuple(old)
    assert newest_set([ConnKey("twitch", 3, 0, 1)]) == ()
