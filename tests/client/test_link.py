"""One worker connection of the client."""

from __future__ import annotations

from pathlib import Path

import zmq

from shardrunner.bus import protocol as p
from shardrunner.client.link import Link
from shardrunner.protocol.keys import ConnKey
from tests.conftest import wait_for

C0 = ConnKey("discord", 0, 0, 1)


async def test_link_when_something_swallowed_the_fd_edge_a_send_still_reads_what_came(tmp_path: Path) -> None:
    """ZeroMQ's FD is edge-triggered, and anything that looks at the socket (a send, a poll)
    consumes the edge announcing a message. The link must still read the message: it looks again
    after each send instead of waiting for an edge that will not come."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    endpoint = f"ipc://{tmp_path}/bus.sock"
    router.bind(endpoint)
    got: list[p.BusMessage] = []
    link = Link(ctx, endpoint, [C0], lambda _link, message: got.append(message))
    try:
        link.send(p.Alive("m", []))
        assert router.poll(5000), "the router got nothing from the link"
        identity, _ = router.recv_multipart()
        for i in range(20):
            router.send_multipart([identity, p.encode(p.Gap("g", C0, "s", 1, [(i, i)]))])
            # Wait, synchronously, until the message is at the link: this consumes the FD's edge,
            # as a send from the consuming code may do while the loop is busy.
            assert link.sock.poll(5000, zmq.POLLIN), "the message never reached the link"
            link.send(p.Ack("g", "m", i))

            def arrived(n: int = i + 1) -> bool:
                return len(got) == n

            await wait_for(arrived, 5, f"message {i + 1} read by the link")
        assert [m.ranges for m in got if isinstance(m, p.Gap)] == [[(i, i)] for i in range(20)]
    finally:
        link.close()
        router.close(0)
        ctx.term()
