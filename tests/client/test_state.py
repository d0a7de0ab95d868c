"""``Client.fetch_state`` against fake workers: every worker asked, answers joined in order, the
marks kept, and a worker that does not answer named."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from shardrunner.bus import protocol as p
from shardrunner.client import Client, ClientError
from shardrunner.protocol.envelope import Event
from tests.client.test_client import NEW, OLD, FakeCluster
from tests.conftest import wait_for


def requests(cluster: FakeCluster, endpoint: str) -> list[p.StateRequest]:
    return [m for m in cluster.got[endpoint] if isinstance(m, p.StateRequest)]


async def test_fetch_state_when_every_worker_answers_joins_their_events_in_order_and_keeps_the_marks(
    tmp_path: Path,
) -> None:
    first, second = f"ipc://{tmp_path}/bus-0.sock", f"ipc://{tmp_path}/bus-1.sock"
    cluster = FakeCluster(tmp_path, {first: OLD, second: NEW})
    client = Client(tmp_path, group="g")
    try:
        await client.start()
        fetching = asyncio.ensure_future(client.fetch_state("discord", timeout=5))
        await wait_for(lambda: bool(requests(cluster, first) and requests(cluster, second)), 5, "both asked")
        (asked,) = requests(cluster, first)
        (other,) = requests(cluster, second)
        assert asked.platform == "discord"
        assert asked.request != other.request
        ready = Event(OLD[0], "s0", 1, "READY", None, b'{"guilds":[]}')
        create = Event(OLD[0], "s0", 2, "GUILD_CREATE", 7, b'{"id":"7"}')
        await cluster.send(first, p.State(asked.request, [ready], last=False))
        await cluster.send(first, p.State(asked.request, [create], [p.StateMark(OLD[0], "s0", 5)]))
        await cluster.send(second, p.State(other.request + 1000, [ready]))  # not ours: ignored
        assert not fetching.done()
        await cluster.send(second, p.State(other.request, []))
        events = await asyncio.wait_for(fetching, 5)
        assert [(e.conn, e.name, e.seq, e.data) for e in events] == [
            (OLD[0], "READY", 1, {"guilds": []}),
            (OLD[0], "GUILD_CREATE", 2, {"id": "7"}),
        ]
        assert client.state_marks == {OLD[0]: ("s0", 5)}
        assert client._state_answers == {}
    finally:
        await client.close()
        await cluster.close()


async def test_fetch_state_when_a_worker_does_not_answer_names_it(tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/bus-0.sock"
    cluster = FakeCluster(tmp_path, {endpoint: OLD})
    client = Client(tmp_path, group="g")
    try:
        await client.start()
        with pytest.raises(ClientError, match=f"{endpoint} did not answer the state request within 0.2 s"):
            await client.fetch_state(timeout=0.2)
        assert client._state_answers == {}
    finally:
        await client.close()
        await cluster.close()


async def test_fetch_state_when_not_started_says_so(tmp_path: Path) -> None:
    with pytest.raises(ClientError, match="start"):
        await Client(tmp_path).fetch_state()
