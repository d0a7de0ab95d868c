"""The identify queue seen from a worker: requests, grants and reports relayed over a link."""

from __future__ import annotations

import asyncio

from shardrunner.identify.relay import RelayIdentifyQueue
from shardrunner.protocol.keys import ConnKey

OLD = ConnKey("discord", 0, 1, 4)
NEW = ConnKey("discord", 1, 1, 8)


class Link:
    def __init__(self) -> None:
        self.said: list[tuple[str, ConnKey, bool | None]] = []

    def request(self, conn: ConnKey) -> None:
        self.said.append(("request", conn, None))

    def sent(self, conn: ConnKey) -> None:
        self.said.append(("sent", conn, None))

    def done(self, conn: ConnKey, *, ready: bool) -> None:
        self.said.append(("done", conn, ready))


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_relay_when_granted_lets_the_waiter_go_and_relays_sent_and_release() -> None:
    link = Link()
    queue = RelayIdentifyQueue(link)
    waiter = asyncio.ensure_future(queue.acquire(OLD))
    await settle()
    assert link.said == [("request", OLD, None)]
    assert queue.waiting == 1
    queue.granted(OLD)
    await asyncio.wait_for(waiter, 1)
    queue.sent(OLD)
    queue.release(OLD, ready=True)
    assert link.said[1:] == [("sent", OLD, None), ("done", OLD, True)]
    assert queue.waiting == 0


async def test_relay_when_two_sets_share_shard_ids_keeps_their_requests_apart() -> None:
    link = Link()
    queue = RelayIdentifyQueue(link)
    old = asyncio.ensure_future(queue.acquire(OLD))
    new = asyncio.ensure_future(queue.acquire(NEW))
    await settle()
    assert [c for _, c, _ in link.said] == [OLD, NEW]
    queue.granted(NEW)
    await asyncio.wait_for(new, 1)
    assert not old.done(), "shard 1 of the old set still waits for its own grant"
    queue.granted(OLD)
    await asyncio.wait_for(old, 1)


async def test_relay_when_the_waiter_gave_up_keeps_the_request_and_hands_a_late_grant_back() -> None:
    link = Link()
    queue = RelayIdentifyQueue(link)
    first = asyncio.ensure_future(queue.acquire(OLD))
    await settle()
    first.cancel()
    await settle()
    again = asyncio.ensure_future(queue.acquire(OLD))  # a restarted connection asks again
    await settle()
    assert [w for w, _, _ in link.said] == ["request"], "the standing request is reused"
    queue.granted(OLD)
    await asyncio.wait_for(again, 1)
    gone = asyncio.ensure_future(queue.acquire(NEW))
    await settle()
    gone.cancel()
    await settle()
    queue.granted(NEW)
    assert link.said[-1] == ("done", NEW, False), "nobody waits: the grant goes back at once"
