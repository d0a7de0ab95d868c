"""IDENTIFY and RESUME refusals: the close code or op 9 each one gets."""

from __future__ import annotations

from tests.conftest import RawGateway, SimFactory, http_json, wait_for
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


async def test_identify_when_num_shards_is_not_the_multiple_closes_4010(sim_factory: SimFactory) -> None:
    sim = await sim_factory(shards=4, shard_multiple=4)
    gw = await RawGateway.connect(sim.gateway_url)
    await gw.recv()
    await gw.identify([0, 6])
    assert await gw.expect_close() == 4010
    await gw.close()
    assert sim.stats()["identifies"][-1]["reason"] == "invalid shard"
    gw, ready = await ready_connection(sim, [0, 8])
    assert ready["d"]["shard"] == [0, 8]
    await gw.close()


async def test_identify_when_shard_would_exceed_the_configured_max_closes_4011(
    sim_factory: SimFactory,
) -> None:
    sim = await sim_factory(shards=1, guilds_per_shard=3, max_guilds_per_shard=2)
    gw = await RawGateway.connect(sim.gateway_url)
    await gw.recv()
    await gw.identify([0, 1])
    assert await gw.expect_close() == 4011
    await gw.close()
    assert sim.stats()["identifies"][-1]["reason"] == "sharding required"
    gw, ready = await ready_connection(sim, [0, 2])
    assert len(ready["d"]["guilds"]) <= 2
    await gw.close()


async def test_identify_when_shard_count_is_refused_gets_op9_or_the_code_and_uses_no_start(
    sim_factory: SimFactory,
) -> None:
    sim = await sim_factory(shards=2, refuse_shard_counts=(8,), identify_window=0)
    gw = await RawGateway.connect(sim.gateway_url)
    await gw.recv()
    await gw.identify([0, 8])
    assert (await gw.recv_until(lambda m: m["op"] == 9))["d"] is False
    await gw.close()
    status, body, _ = await http_json(sim, "POST", "/_sim/config", {"refuse_code": 4011})
    assert (status, body["refuse_code"], body["refuse_shard_counts"]) == (200, 4011, [8])
    gw = await RawGateway.connect(sim.gateway_url)
    await gw.recv()
    await gw.identify([3, 8])
    assert await gw.expect_close() == 4011
    await gw.close()
    stats = sim.stats()
    assert stats["identifies_refused"] == 2
    assert [i["reason"] for i in stats["identifies"]] == ["refused shard count"] * 2
    assert stats["session_start_limit"]["remaining"] == 1000
    assert stats["sessions"] == []
    # Another count is not refused; and the refusal list is settable at run time.
    gw, _ = await ready_connection(sim, [0, 4])
    await gw.close()
    status, body, _ = await http_json(sim, "POST", "/_sim/config", {"refuse_shard_counts": []})
    assert (status, body["refuse_shard_counts"]) == (200, [])
    gw, _ = await ready_connection(sim, [1, 8])
    await gw.close()
    assert sim.stats()["identifies_refused"] == 2


async def test_identify_record_lists_the_sessions_it_could_have_resumed(sim_factory: SimFactory) -> None:
    sim = await sim_factory(rate=0, identify_window=0)
    gw, ready = await ready_connection(sim, [0, 2])
    first = ready["d"]["session_id"]
    await gw.close(4000)  # the session stays resumable
    gw2, ready2 = await ready_connection(sim, [0, 2])
    gw3, _ = await ready_connection(sim, [1, 2])
    accepted = [r for r in sim.stats()["identifies"] if r["accepted"]]
    assert [r["resumable"] for r in accepted] == [[], [first], []]
    await gw2.close(1000)  # ends the second session: a new identify of shard 0 wastes only the first
    await wait_for(lambda: sim.sessions[ready2["d"]["session_id"]].ended is not None, 5, "session end")
    gw4, _ = await ready_connection(sim, [0, 2])
    assert [r for r in sim.stats()["identifies"] if r["accepted"]][-1]["resumable"] == [first]
    for g in (gw3, gw4):
        await g.close()
