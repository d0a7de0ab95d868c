"""The client's lifecycle handlers: what registering one asks of the group, and the typed body the
handler gets."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from shardrunner.bus import protocol as p
from shardrunner.client import Client, ClientEvent, Lifecycle
from shardrunner.protocol import lifecycle
from shardrunner.protocol.envelope import Event
from shardrunner.protocol.keys import ConnKey
from shardrunner.protocol.lifecycle import Notice
from tests.client.test_client import OLD, FakeCluster, cluster  # noqa: F401  (the fixture)
from tests.conftest import wait_for

TWITCH = ConnKey("twitch", 0, 2, 3)


def lifecycle_event(conn: ConnKey, seq: int, kind: str, **fields: object) -> Event:
    body = lifecycle.encode(lifecycle.body(Notice(kind, conn, dict(fields)), 100.0))
    return Event(conn, "shardrunner:abc", seq, kind, None, body)


def test_client_lifecycle_when_events_is_none_asks_for_the_handlers_names_beside_them(tmp_path: Path) -> None:
    client = Client(tmp_path, group="g", member="m")

    @client.on_shard_ready
    async def ready(info: Lifecycle) -> None: ...

    @client.on_shard_disconnect
    async def gone(info: Lifecycle) -> None: ...

    client.on_shard_ready(ready)  # twice: asked once
    join = client._join()
    assert join.events == ["*", lifecycle.READY, lifecycle.DISCONNECTED], "every platform event, and those"
    assert client.events is None


def test_client_lifecycle_when_events_are_named_adds_the_handlers_names_to_them(tmp_path: Path) -> None:
    mine = ["PRIVMSG"]
    client = Client(tmp_path, events=mine)
    for register in (client.on_channel_joined, client.on_channel_failed, client.on_channel_moved,
                     client.on_reshard_switch, client.on_shard_fatal, client.on_shard_resumed):  # fmt: skip

        async def handler(info: Lifecycle) -> None: ...

        register(handler)
    join = client._join()
    lc = lifecycle
    asked = [lc.CHANNEL_JOINED, lc.CHANNEL_FAILED, lc.CHANNEL_MOVED, lc.SWITCHED, lc.FATAL, lc.RESUMED]
    assert join.events == ["PRIVMSG", *asked]
    assert mine == ["PRIVMSG"], "the caller's list is not changed"
    wildcard = Client(tmp_path, events=["PRIVMSG", lifecycle.WILDCARD])
    wildcard.on_shard_ready(handler)
    assert wildcard._join().events == ["PRIVMSG", lifecycle.WILDCARD], "the wildcard covers it"
    with pytest.raises(ValueError, match="not a lifecycle event name"):
        client.on_lifecycle("MESSAGE_CREATE")


async def test_client_lifecycle_when_events_come_each_handler_gets_its_typed_body(
    tmp_path: Path,
    cluster: FakeCluster,  # noqa: F811
) -> None:
    got: list[Lifecycle] = []
    client = Client(tmp_path)

    @client.on_shard_resumed
    async def resumed(info: Lifecycle) -> None:
        got.append(info)

    @client.on_channel_failed
    async def failed(info: Lifecycle) -> None:
        got.append(info)

    async with client:
        endpoint = next(iter(cluster.workers))
        await wait_for(lambda: endpoint in cluster.members, 5, "the join")
        assert cluster.got[endpoint][0].events == ["*", lifecycle.RESUMED, lifecycle.CHANNEL_FAILED]  # type: ignore[union-attr]
        events = [
            lifecycle_event(OLD[1], 1, lifecycle.RESUMED, session="sess-9"),
            lifecycle_event(TWITCH, 1, lifecycle.CHANNEL_FAILED, channel="chan1", reason="msg_banned"),
            lifecycle_event(OLD[1], 1, lifecycle.RESUMED, session="sess-9"),  # a repeat: dropped
        ]
        await cluster.send(endpoint, p.Batch("default", 1, events))
        runner = asyncio.ensure_future(client.run())
        try:
            await wait_for(lambda: len(got) == 2 and client.duplicates == 1, 5, "both handled")
        finally:
            runner.cancel()
    resumed_info, failed_info = got
    assert (resumed_info.kind, resumed_info.shard, resumed_info.conn, resumed_info.session) == (
        lifecycle.RESUMED, 1, "discord:1/4", "sess-9",
    )  # fmt: skip
    assert resumed_info.conn_key == OLD[1]
    assert (failed_info.channel, failed_info.reason, failed_info.platform) == (
        "chan1",
        "msg_banned",
        "twitch",
    )


def test_client_event_when_it_is_a_twitch_lifecycle_event_its_data_is_the_json_body() -> None:
    event = ClientEvent(
        lifecycle_event(TWITCH, 3, lifecycle.CHANNEL_MOVED, channel="c", to="twitch:1/3"), False
    )
    event_data = event.data
    assert event_data["kind"] == lifecycle.CHANNEL_MOVED
    assert event_data["to"] == "twitch:1/3"
    assert event.lifecycle.from_ is None
    platform = ClientEvent(Event(TWITCH, "s", 1, "PRIVMSG", "c", b"PING :x"), False)
    with pytest.raises(ValueError, match="not a lifecycle event"):
        platform.lifecycle  # noqa: B018
