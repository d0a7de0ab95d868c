"""The session table: resuming replays what was missed; two shard layouts side by side."""

from __future__ import annotations

from shardrunner.protocol.discord import shard_for_guild
from tests.conftest import SimFactory, wait_for
from tests.sim.discord.helpers import ready_connection, resume_after


async def test_resume_when_connection_closed_resumably_replays_every_missed_dispatch(
    sim_factory: SimFactory,
) -> None:
    sim = await sim_factory(rate=300, guilds_per_shard=2)
    gw, ready = await ready_connection(sim, [0, 2])
    while len(gw.dispatch_seqs()) < 20:
        await gw.recv()
    before = gw.dispatch_seqs()
    await gw.close(4000)
    # Dispatches keep happening while the client is away.
    session_id = ready["d"]["session_id"]
    last = sim.sessions[session_id].last_seq
    await wait_for(lambda: sim.sessions[session_id].last_seq > last + 30, 10, "dispatches while away")
    gw2 = await resume_after(sim, gw, ready)
    while len(gw2.dispatch_seqs()) < 40:
        await gw2.recv()
    after = gw2.dispatch_seqs()
    assert after[0] == before[-1] + 1
    assert before + after == list(range(1, len(before) + len(after) + 1))
    resumes = sim.stats()["resumes"]
    assert resumes[-1]["accepted"]
    assert resumes[-1]["replayed"] >= 30
    await gw2.close()


async def test_resharding_when_two_layouts_connect_each_gets_its_own_guilds(sim_factory: SimFactory) -> None:
    sim = await sim_factory(shards=2, guilds_per_shard=4, identify_window=0)
    old, ready_old = await ready_connection(sim, [0, 2])
    new, ready_new = await ready_connection(sim, [0, 4])
    old_ids = {int(g["id"]) for g in ready_old["d"]["guilds"]}
    new_ids = {int(g["id"]) for g in ready_new["d"]["guilds"]}
    assert all(shard_for_guild(g, 2) == 0 for g in old_ids)
    assert all(shard_for_guild(g, 4) == 0 for g in new_ids)
    assert new_ids <= set(sim.world.guild_ids)
    await old.close()
    await new.close()
