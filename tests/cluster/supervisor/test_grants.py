"""Identify grants: how long each granted identify waited, per platform, on the supervisor's clock."""

from __future__ import annotations

import asyncio

from shardrunner.cluster import messages as m
from shardrunner.cluster.supervisor.grants import IdentifyGrants
from shardrunner.identify.local import LocalIdentifyQueue
from shardrunner.identify.protocol import StartLimit
from shardrunner.protocol.keys import ConnKey
from tests.fakes import FakeClock

A, B, C = (ConnKey("discord", 0, s, 3) for s in range(3))


async def test_grants_when_identifies_wait_in_line_record_each_wait_until_its_grant() -> None:
    clock = FakeClock()
    queue = LocalIdentifyQueue(
        [StartLimit("discord.identify", 1, 5.0)], lambda c: ("discord.identify", 0), clock=clock
    )
    alive = {b"w0", b"w1"}
    grants = IdentifyGrants(queue, lambda i, msg: i in alive, first_identifies=0, opened_at=0.0, clock=clock)
    grants.request(b"w0", A)
    grants.request(b"w0", B)
    grants.request(b"w1", C)
    await clock.settle()
    grants.sent(A)
    alive.discard(b"w1")  # C's worker goes: its grant goes to nobody and is no wait of anyone
    await clock.advance(5.1)
    grants.sent(B)
    await clock.advance(5.1)
    waits = grants.waits["discord"]
    assert waits.count == 2
    assert dict(waits.cumulative())["0.1"] == 1, "A: granted at once"
    assert 5.0 < waits.sum < 5.2, "B: one window after A"
    grants.close()
    await asyncio.sleep(0)


async def test_grants_when_a_worker_asks_near_tells_it_then_grants_once_it_asks_connected() -> None:
    clock = FakeClock()
    queue = LocalIdentifyQueue(
        [StartLimit("discord.identify", 1, 5.0, 1.0)], lambda c: ("discord.identify", 0), clock=clock
    )
    said: list[tuple[bytes, object]] = []
    grants = IdentifyGrants(
        queue, lambda i, msg: said.append((i, msg)) is None, first_identifies=0, opened_at=0.0, clock=clock
    )
    grants.request(b"w0", A, near=True)
    grants.request(b"w0", B, near=True)
    grants.request(b"w0", A, near=True)  # asked twice: in line once
    await clock.settle()
    assert said == [(b"w0", m.IdentifyNear(A))], "A is first in line; B is due a window later"
    grants.request(b"w0", A)  # connected now
    await clock.settle()
    assert said[1:] == [(b"w0", m.IdentifyGrant(A))]
    grants.sent(A)
    await clock.advance(4.1)
    assert said[2:] == [(b"w0", m.IdentifyNear(B))], "a lead before its turn"
    grants.done(B, ready=False)  # its connect failed: out of the line
    assert queue.waiting == 0
    grants.request(b"w1", C, near=True)
    await clock.settle()
    grants.forget(b"w1")  # C's worker went: its place in line too
    assert queue.waiting == 0
    grants.close()
    await asyncio.sleep(0)
