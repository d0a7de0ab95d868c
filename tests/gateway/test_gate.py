"""The connect gate: so many handshakes in flight, resumes before fresh connects."""

from __future__ import annotations

import asyncio

import pytest

from shardrunner.gateway.gate import ConnectGate


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_gate_when_full_lets_the_resumes_go_before_the_fresh_connects_each_in_arrival_order() -> None:
    gate = ConnectGate(2)
    await gate.enter(resume=False)
    await gate.enter(resume=False)
    order: list[str] = []

    async def one(name: str, resume: bool) -> None:
        await gate.enter(resume=resume)
        order.append(name)

    tasks = [
        asyncio.ensure_future(one(n, r))
        for n, r in (("fresh-1", False), ("resume-1", True), ("fresh-2", False))
    ]
    tasks.append(asyncio.ensure_future(one("resume-2", True)))
    await settle()
    assert order == []
    assert gate.waiting == 4
    assert gate.in_flight == 2
    gate.leave()
    await settle()
    assert order == ["resume-1"]
    gate.leave()
    gate.leave()
    await settle()
    assert order == ["resume-1", "resume-2", "fresh-1"], "resumes first, then first come first served"
    assert gate.in_flight == 2
    assert gate.most == 2
    gate.resize(3)
    await settle()
    assert order[-1] == "fresh-2", "a larger limit lets the next go at once"
    await asyncio.gather(*tasks)


async def test_gate_when_a_waiter_gives_up_its_slot_goes_to_the_next() -> None:
    gate = ConnectGate(1)
    await gate.enter(resume=True)
    quitter = asyncio.ensure_future(gate.enter(resume=True))
    nxt = asyncio.ensure_future(gate.enter(resume=False))
    await settle()
    quitter.cancel()
    await settle()
    gate.leave()
    await asyncio.wait_for(nxt, 1)
    assert gate.in_flight == 1
    assert gate.waiting == 0
    with pytest.raises(ValueError, match="at least 1"):
        ConnectGate(0)
