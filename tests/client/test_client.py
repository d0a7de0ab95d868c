"""The bot-side client, without a cluster."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from shardrunner.client import Client, ClientError, ClientEvent
from shardrunner.protocol.envelope import Event


async def test_client_when_no_cluster_runs_says_how_to_start_one(tmp_path: Path) -> None:
    client = Client(tmp_path)
    with pytest.raises(ClientError, match="no cluster is running in"):
        await client.start()


async def test_client_send_when_shard_is_out_of_range_fails_at_once(tmp_path: Path) -> None:
    client = Client(tmp_path)
    client.num_shards = 4
    started = time.monotonic()
    with pytest.raises(ClientError, match=r"unknown shard 9: the cluster runs shards 0-3"):
        await client.send(3, {}, shard=9, timeout=30)
    assert time.monotonic() - started < 1
    with pytest.raises(ValueError, match="exactly one of shard= or guild="):
        await client.send(3, {}, shard=1, guild=2)


def test_client_event_when_data_is_read_decodes_it_once() -> None:
    event = ClientEvent(Event(1, "s", 7, "MESSAGE_CREATE", 42, b'{"content":"hi"}'), redelivered=False)
    assert (event.shard, event.seq, event.guild_id, event.name) == (1, 7, 42, "MESSAGE_CREATE")
    assert event.data == {"content": "hi"}
    assert event.data is event.data


def test_client_dedupe_when_the_same_event_comes_twice_drops_the_second() -> None:
    client = Client("/nonexistent")
    e = Event(0, "s", 5, "TYPING_START", None, b"{}")
    assert not client._duplicate(e)
    assert client._duplicate(e)
    assert not client._duplicate(Event(0, "other-session", 5, "TYPING_START", None, b"{}"))


async def test_link_when_something_swallowed_the_fd_edge_a_send_still_reads_what_came(tmp_path: Path) -> None:
    """ZeroMQ's FD is edge-triggered, and anything that looks at the socket (a send, a poll)
    consumes the edge announcing a message. The link must still read the message: it looks again
    after each send instead of waiting for an edge that will not come."""
    import zmq

    from shardrunner.bus import protocol as p
    from shardrunner.client import _Link
    from tests.conftest import wait_for

    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    endpoint = f"ipc://{tmp_path}/bus.sock"
    router.bind(endpoint)
    got: list[p.BusMessage] = []
    link = _Link(ctx, endpoint, [0], lambda _link, message: got.append(message))
    try:
        link.send(p.Alive("m", []))
        assert router.poll(5000), "the router got nothing from the link"
        identity, _ = router.recv_multipart()
        for i in range(20):
            router.send_multipart([identity, p.encode(p.Gap("g", 0, "s", 1, [(i, i)]))])
            # Wait, synchronously, until the message is at the link: this consumes the FD's edge,
            # as a send from the consuming code may do while the loop is busy.
            assert link.sock.poll(5000, zmq.POLLIN), "the message never reached the link"
            link.send(p.Ack("g", "m", i))
            await wait_for(lambda n=i + 1: len(got) == n, 5, f"message {i + 1} read by the link")
        assert [m.ranges for m in got if isinstance(m, p.Gap)] == [[(i, i)] for i in range(20)]
    finally:
        link.close()
        router.close(0)
        ctx.term()
