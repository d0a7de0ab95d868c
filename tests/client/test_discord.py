"""Discord's conveniences on the client, without a cluster."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from shardrunner.client import Client, ClientError
from shardrunner.client.dedupe import raw_identity
from shardrunner.client.discord import active_set, discord_identity, newest_set
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


OLD = [ConnKey("discord", 0, i, 4) for i in range(4)]
NEW = [ConnKey("discord", 1, i, 8) for i in range(8)]


def test_active_set_when_the_endpoints_name_a_running_generation_is_that_set() -> None:
    conns = OLD + NEW[2:4]
    assert active_set(conns, {"discord": {"generation": 0, "num_shards": 4}}) == tuple(OLD)
    assert active_set(conns, {"discord": {"generation": 1, "num_shards": 8}}) == tuple(NEW)


def test_active_set_when_the_named_generation_is_not_running_is_the_newest() -> None:
    conns = OLD + NEW[5:6]
    assert active_set(conns, {"discord": {"generation": 2, "num_shards": 16}}) == tuple(NEW)
    assert active_set(conns, {"discord": {"shards": 8}}) == tuple(NEW), "an answer without generation"
    assert active_set(conns, {}) == tuple(NEW)
    assert active_set(OLD, {"discord": {"generation": 1}}) == tuple(OLD)
    assert active_set([ConnKey("twitch", 0, 0, 1)], {"discord": {"generation": 0}}) == ()


async def test_client_send_when_the_old_set_still_delivers_uses_its_shards(tmp_path: Path) -> None:
    client = Client(tmp_path)
    client.conns = OLD + NEW
    client.platforms = {"discord": {"generation": 0, "num_shards": 4}}
    assert client.num_shards == 4
    with pytest.raises(ClientError, match=r"unknown shard 5: the cluster runs shards 0-3"):
        await client.send(3, {}, shard=5, timeout=30)
    client.platforms = {"discord": {"generation": 1, "num_shards": 8}}
    assert client.num_shards == 8


def test_discord_identity_when_an_event_creates_an_entity_is_its_id_whatever_the_bytes() -> None:
    one = discord_identity("MESSAGE_CREATE", b'{"id":"11","channel_id":"5","content":"hi"}')
    same = discord_identity("MESSAGE_CREATE", b'{ "content": "hi", "nonce": 3, "id": "11", "channel_id": 5 }')
    assert one == same == ("MESSAGE_CREATE", "11")
    assert discord_identity("MESSAGE_CREATE", b'{"id":"12","content":"hi"}') != one
    interaction = discord_identity("INTERACTION_CREATE", b'{"id":"11","type":2,"data":{"id":"99"}}')
    assert interaction == ("INTERACTION_CREATE", "11"), "the top-level id, not a nested one"


def test_discord_identity_when_an_event_has_no_fresh_id_is_its_name_and_raw_body() -> None:
    typing = b'{"channel_id":"5","user_id":"7","timestamp":1700000000}'
    copy, other = bytes(bytearray(typing)), typing.replace(b"7", b"8")
    assert discord_identity("TYPING_START", typing) == discord_identity("TYPING_START", copy)
    assert discord_identity("TYPING_START", typing) != discord_identity("TYPING_START", other)
    # Re-sent for an entity that exists already (access gained, a rejoin): the body tells them apart.
    channel, again = b'{"id":"5","type":0,"name":"general"}', b'{"id":"5","type":0,"name":"news"}'
    assert discord_identity("CHANNEL_CREATE", channel) != discord_identity("CHANNEL_CREATE", again)
    # A creating event without a usable id falls back to the body.
    for broken in (b'{"content":"no id"}', b'{"id":11}', b"not json", b"[]"):
        copy = bytes(bytearray(broken))
        assert discord_identity("MESSAGE_CREATE", broken) == raw_identity("MESSAGE_CREATE", copy)


def test_discord_identity_when_an_event_belongs_to_one_session_is_none() -> None:
    for name in ("READY", "RESUMED", "GUILD_MEMBERS_CHUNK", "SOUNDBOARD_SOUNDS"):
        assert discord_identity(name, b"null") is None, name


def test_discord_identity_when_a_body_is_written_in_another_key_order_is_the_same() -> None:
    a = b'{"guild_id":"1","user":{"id":"2","username":"x"},"status":"online"}'
    b = b'{"status": "online", "user": {"username": "x", "id": "2"}, "guild_id": "1"}'
    assert discord_identity("PRESENCE_UPDATE", a) == discord_identity("PRESENCE_UPDATE", b)
    assert discord_identity("PRESENCE_UPDATE", a) != discord_identity(
        "PRESENCE_UPDATE", a.replace(b"online", b"idle")
    )
    assert discord_identity("PRESENCE_UPDATE", b"not json") == ("PRESENCE_UPDATE", hash(b"not json"))
