"""The identify queue seen from a worker: requests, grants and reports relayed over a link."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from shardrunner.identify.relay import RelayBudgets, RelayIdentifyQueue
from shardrunner.protocol.keys import ConnKey

OLD = ConnKey("discord", 0, 1, 4)
NEW = ConnKey("discord", 1, 1, 8)


class Link:
    def __init__(self) -> None:
        self.said: list[tuple[str, ConnKey, bool | None]] = []

    def request(self, conn: ConnKey, *, near: bool = False) -> None:
        self.said.append(("near" if near else "request", conn, None))

    def sent(self, conn: ConnKey) -> None:
        self.said.append(("sent", conn, None))

    def done(self, conn: ConnKey, *, ready: bool) -> None:
        self.said.append(("done", conn, ready))


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_relay_when_near_waits_for_the_word_then_asks_as_connected_and_a_release_leaves() -> None:
    link = Link()
    queue = RelayIdentifyQueue(link)
    near = asyncio.ensure_future(queue.near(OLD))
    await settle()
    assert link.said == [("near", OLD, None)]
    assert not near.done()
    queue.nearby(OLD)
    await asyncio.wait_for(near, 1)
    waiter = asyncio.ensure_future(queue.acquire(OLD))
    await settle()
    assert link.said[1:] == [("request", OLD, None)], "connected now: it asks for the grant"
    waiter.cancel()
    queue.release(OLD, ready=False)  # the connection closed before its grant: out of the line
    assert link.said[2:] == [("done", OLD, False)]
    queue.granted(OLD)  # a grant that crossed the release goes back
    assert link.said[3:] == [("done", OLD, False)]
    again = asyncio.ensure_future(queue.near(OLD))
    await settle()
    assert link.said[4:] == [("near", OLD, None)], "a new attempt stands in line anew"
    again.cancel()


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


# -- budgets relayed ---------------------------------------------------------------------------------


class BudgetPosts:
    def __init__(self) -> None:
        self.posts: list[tuple[str, int]] = []
        self.asked: list[tuple[int, str, str, int]] = []

    def request(self, request: int, name: str, key: str, n: int) -> None:
        self.asked.append((request, name, key, n))
        self.posts.append(("request", request))

    def used(self, request: int) -> None:
        self.posts.append(("used", request))

    def cancel(self, request: int) -> None:
        self.posts.append(("cancel", request))


async def test_relay_budgets_when_granted_hands_a_ticket_that_reports_its_use_once() -> None:
    link = BudgetPosts()
    relay = RelayBudgets(link)
    waiter = asyncio.ensure_future(relay.acquire("twitch.join", "bot", 10))
    await asyncio.sleep(0)
    assert link.asked == [(1, "twitch.join", "bot", 10)]
    relay.granted(1)
    ticket = await waiter
    ticket.used()
    ticket.used()
    ticket.cancel()
    assert link.posts == [("request", 1), ("used", 1)], "one report per ticket"


async def test_relay_budgets_when_the_waiter_gives_up_cancels_and_a_late_grant_goes_back() -> None:
    link = BudgetPosts()
    relay = RelayBudgets(link)
    waiter = asyncio.ensure_future(relay.acquire("twitch.join", "bot"))
    await asyncio.sleep(0)
    waiter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiter
    relay.granted(1)
    assert link.posts == [("request", 1), ("cancel", 1), ("cancel", 1)]
    assert relay.waiting == 0


async def test_relay_budgets_when_refused_raises_the_reason() -> None:
    relay = RelayBudgets(BudgetPosts())
    waiter = asyncio.ensure_future(relay.acquire("twitch.join", "bot", 30))
    await asyncio.sleep(0)
    relay.granted(1, refused="30 uses at once cannot fit a limit of 20")
    with pytest.raises(ValueError, match="cannot fit a limit of 20"):
        await waiter
