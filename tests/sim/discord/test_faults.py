"""Injected faults: op 7, op 9, drops, closes, zombies, stalls, random faults."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import SimFactory
from tests.sim.discord.helpers import fault, ready_connection, resume_after


async def test_fault_reconnect_sends_op7(sim_factory: SimFactory) -> None:
    sim = await sim_factory()
    gw, _ = await ready_connection(sim, [1, 2])
    body = await fault(sim, kind="reconnect", shard=1)
    assert body["applied"][0]["shard"] == [1, 2]
    await gw.recv_until(lambda m: m["op"] == 7)
    await gw.close()


@pytest.mark.parametrize("resumable", [True, False])
async def test_fault_invalid_session_sends_op9_and_ends_session_only_when_false(
    sim_factory: SimFactory, resumable: bool
) -> None:
    sim = await sim_factory()
    gw, ready = await ready_connection(sim, [0, 2])
    await fault(sim, kind="invalid_session", resumable=resumable)
    assert (await gw.recv_until(lambda m: m["op"] == 9))["d"] is resumable
    assert (sim.sessions[ready["d"]["session_id"]].ended is None) is resumable
    await gw.close(4000)


async def test_fault_drop_closes_without_close_frame_and_keeps_session(sim_factory: SimFactory) -> None:
    sim = await sim_factory(rate=100)
    gw, ready = await ready_connection(sim, [0, 2])
    while len(gw.dispatch_seqs()) < 5:
        await gw.recv()
    await fault(sim, kind="drop")
    while await gw.recv() is not None:
        pass
    assert gw.close_code in (1006, None) or gw.close_code > 4999 or gw.close_code == 1006
    gw2 = await resume_after(sim, gw, ready)
    await gw2.recv_until(lambda m: m.get("op") == 0)
    assert sim.sessions[ready["d"]["session_id"]].ended is None
    await gw2.close()


@pytest.mark.parametrize(("code", "survives"), [(4000, True), (4008, True), (4009, False), (4004, False)])
async def test_fault_close_applies_the_close_code_table(
    sim_factory: SimFactory, code: int, survives: bool
) -> None:
    sim = await sim_factory()
    gw, ready = await ready_connection(sim, [0, 2])
    await fault(sim, kind="close", code=code)
    assert await gw.expect_close() == code
    assert (sim.sessions[ready["d"]["session_id"]].ended is None) is survives
    await gw.close()


async def test_fault_zombie_stops_acks_and_stall_stops_everything(sim_factory: SimFactory) -> None:
    sim = await sim_factory(rate=100)
    gw, ready = await ready_connection(sim, [0, 2])
    await fault(sim, kind="zombie", duration=0.5)
    await gw.send({"op": 1, "d": None})
    got: list[int] = []
    end = asyncio.get_running_loop().time() + 0.3
    while asyncio.get_running_loop().time() < end:
        msg = await gw.recv(timeout=1)
        assert msg is not None
        got.append(msg["op"])
    assert 11 not in got
    assert 0 in got
    await fault(sim, kind="stall", duration=1.5)
    # What was written before the stall may still be on its way: take it, then nothing may come.
    sent = sim.sessions[ready["d"]["session_id"]].last_sent_seq
    while not gw.dispatch_seqs() or max(gw.dispatch_seqs()) < sent:
        await gw.recv(timeout=1)
    with pytest.raises(asyncio.TimeoutError):
        await gw.recv(timeout=0.3)
    await gw.recv_until(lambda m: m["op"] == 0, timeout=3)
    await gw.close()


async def test_fault_invalid_session_false_lets_the_client_identify_again_on_the_same_connection(
    sim_factory: SimFactory,
) -> None:
    sim = await sim_factory(identify_window=0)
    gw, ready = await ready_connection(sim, [0, 2])
    await fault(sim, kind="invalid_session", resumable=False)
    await gw.recv_until(lambda m: m["op"] == 9)
    await gw.identify([0, 2])
    again = await gw.recv_until(lambda m: m.get("t") == "READY")
    assert again["d"]["session_id"] != ready["d"]["session_id"]
    await gw.close()


async def test_random_faults_when_enabled_are_injected_from_the_seeded_options(
    sim_factory: SimFactory,
) -> None:
    sim = await sim_factory(fault_rate=600.0, faults=("reconnect",), seed=5)  # ~10 per second
    gw, _ = await ready_connection(sim, [0, 2])
    await gw.recv_until(lambda m: m["op"] == 7, timeout=5)
    faults = sim.stats()["faults"]
    assert faults
    assert all(f["source"] == "random" and f["kind"] == "reconnect" for f in faults)
    await gw.close()


async def test_random_faults_when_op9_detached_the_session_stop_for_that_connection(
    sim_factory: SimFactory,
) -> None:
    sim = await sim_factory(
        fault_rate=600.0, faults=("invalid_session",), seed=5, heartbeat_interval_ms=30_000
    )
    gw, _ = await ready_connection(sim, [0, 2])
    await gw.recv_until(lambda m: m["op"] == 9, timeout=5)
    (conn,) = sim.connections
    assert conn.session is None
    # Faults act on connections with a session; the next RESUME or IDENTIFY schedules one again.
    assert conn not in sim.faults.due
    assert len(sim.stats()["faults"]) == 1
    await gw.close()
