"""IDENTIFY and RESUME refusals: the close code or op 9 each one gets."""

from __future__ import annotations

from tests.conftest import RawGateway, SimFactory, wait_for
from tests.sim.discord.helpers import ready_connection


async def test_resume_when_client_closed_with_1000_gets_op9_false(sim_factory: SimFactory) -> None:
    sim = await sim_factory()
    gw, ready = await ready_connection(sim, [0, 2])
    await gw.close(1000)
    await wait_for(lambda: sim.sessions[ready["d"]["session_id"]].ended is not None, 5, "session end")
    gw2 = await RawGateway.connect(sim.gateway_url)
    await gw2.recv()
    await gw2.resume(ready["d"]["session_id"], 1)
    assert (await gw2.recv_until(lambda m: m["op"] == 9))["d"] is False
    await gw2.close()


async def test_resume_when_session_unknown_or_expired_gets_op9_false(sim_factory: SimFactory) -> None:
    sim = await sim_factory(resume_window=0.2)
    gw = await RawGateway.connect(sim.gateway_url)
    await gw.recv()
    await gw.resume("no-such-session", 3)
    assert (await gw.recv_until(lambda m: m["op"] == 9))["d"] is False
    await gw.close()
    gw, ready = await ready_connection(sim, [0, 2])
    await gw.close(4000)
    sid = ready["d"]["session_id"]
    await wait_for(lambda: sim.sessions[sid].ended == "resume window expired", 5, "expiry")
    gw2 = await RawGateway.connect(sim.gateway_url)
    await gw2.recv()
    await gw2.resume(sid, 1)
    assert (await gw2.recv_until(lambda m: m["op"] == 9))["d"] is False
    await gw2.close()


async def test_resume_when_seq_is_ahead_closes_4007(sim_factory: SimFactory) -> None:
    sim = await sim_factory(rate=0)
    gw, ready = await ready_connection(sim, [0, 2])
    await gw.close(4000)
    gw2 = await RawGateway.connect(sim.gateway_url)
    await gw2.recv()
    await gw2.resume(ready["d"]["session_id"], 10_000)
    assert await gw2.expect_close() == 4007
    await gw2.close()


async def test_resume_when_token_belongs_to_another_bot_is_refused_and_leaves_the_session(
    sim_factory: SimFactory,
) -> None:
    from shardrunner.sim.discord.world import make_token

    sim = await sim_factory()
    gw, ready = await ready_connection(sim, [0, 2])
    other = await RawGateway.connect(sim.gateway_url)
    await other.recv()
    await other.resume(ready["d"]["session_id"], 1, token=make_token(42))
    assert (await other.recv_until(lambda m: m["op"] == 9))["d"] is False
    assert sim.sessions[ready["d"]["session_id"]].ended is None
    await other.close()
    await gw.close()


async def test_identify_when_privileged_intent_not_enabled_closes_4014(sim_factory: SimFactory) -> None:
    sim = await sim_factory(privileged_intents=1 << 1)
    gw = await RawGateway.connect(sim.gateway_url)
    await gw.recv()
    await gw.identify([0, 2], intents=(1 << 1) | 1)
    await gw.recv_until(lambda m: m.get("t") == "READY")
    await gw.close()
    gw = await RawGateway.connect(sim.gateway_url)
    await gw.recv()
    await gw.identify([1, 2], intents=1 << 8)
    assert await gw.expect_close() == 4014
    await gw.close()
