"""Identify grants: how long each granted identify waited, per platform, on the supervisor's clock."""

from __future__ import annotations

import asyncio

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
