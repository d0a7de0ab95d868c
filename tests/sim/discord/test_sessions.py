"""The session table: resuming replays what was missed (RESUMED with a seq of its own); two shard
layouts side by side."""

from __future__ import annotations

from typing import Any

from shardrunner.protocol.discord import shard_for_guild
from shardrunner.sim.discord.server import Simulator
from tests.conftest import RawGateway, SimFactory, http_json, wait_for
from tests.sim.discord.helpers import ready_connection, resume_after


async def resume_at(
    sim: Simulator, session_id: str, seq: int, after: int = 0
) -> tuple[RawGateway, dict[str, Any]]:
    """A new connection that resumes ``session_id`` from ``seq``; returns it with its own RESUMED
    (the first with a seq above ``after``: a replay may hold earlier ones)."""
    gw = await RawGateway.connect(sim.gateway_url)
    await gw.recv()
    await gw.resume(session_id, seq)
    return gw, await gw.recv_until(lambda m: m.get("t") == "RESUMED" and m["s"] > after)


async def away(sim: Simulator, gw: RawGateway, session_id: str, dispatches: int) -> int:
    """Receive ``dispatches`` more, close resumably, let the session log more; return the last seq got."""
    got = len(gw.dispatch_seqs()) + dispatches
    while len(gw.dispatch_seqs()) < got:
        await gw.recv()
    last = max(gw.dispatch_seqs())
    await gw.close(4000)
    session = sim.sessions[session_id]
    await wait_for(lambda: session.last_seq > last + 10, 10, "dispatches while away")
    return last


async def stop_and_catch_up(sim: Simulator, gw: RawGateway, session_id: str) -> None:
    """Stop the stream and wait until ``gw`` has everything its session logged."""
    status, body, _ = await http_json(sim, "POST", "/_sim/config", {"rate": 0})
    assert status == 200, body
    session = sim.sessions[session_id]
    while max(gw.dispatch_seqs()) < session.last_seq:
        await gw.recv()


async def test_resume_when_accepted_gives_resumed_the_next_seq_and_streams_on_after_it(
    sim_factory: SimFactory,
) -> None:
    sim = await sim_factory(rate=300, guilds_per_shard=2)
    gw, ready = await ready_connection(sim, [0, 2])
    sid = ready["d"]["session_id"]
    seq = await away(sim, gw, sid, 10)
    first = gw.dispatch_seqs()
    gw2, resumed = await resume_at(sim, sid, seq)
    (record,) = sim.stats()["resumes"]
    replayed = gw2.dispatch_seqs()[:-1]
    assert replayed == list(range(seq + 1, seq + 1 + record["replayed"]))
    # RESUMED is a dispatch of its own: the seq after the last replayed one, as on Discord.
    assert resumed["s"] == seq + record["replayed"] + 1
    assert resumed["d"] == {"_trace": ['["shardrunner-sim"]']}
    after = await gw2.recv_until(lambda m: m.get("op") == 0 and m["s"] > resumed["s"])
    assert after["s"] == resumed["s"] + 1
    seqs = first + gw2.dispatch_seqs()
    assert seqs == list(range(1, len(seqs) + 1))
    # The session's stats count RESUMED as the dispatch it is.
    await stop_and_catch_up(sim, gw2, sid)
    (entry,) = [e for e in sim.stats()["sessions"] if e["session_id"] == sid]
    assert entry["last_seq"] == entry["last_sent_seq"] == max(gw2.dispatch_seqs())
    assert sim.stats()["violations"] == []
    await gw2.close()


async def test_resume_when_from_resumeds_seq_replays_only_what_followed_it(sim_factory: SimFactory) -> None:
    sim = await sim_factory(rate=300, guilds_per_shard=2)
    gw, ready = await ready_connection(sim, [0, 2])
    sid = ready["d"]["session_id"]
    gw2, resumed = await resume_at(sim, sid, await away(sim, gw, sid, 10))
    await away(sim, gw2, sid, 5)
    gw3, again = await resume_at(sim, sid, resumed["s"])
    got = gw3.dispatch_seqs()
    assert got == list(range(resumed["s"] + 1, again["s"] + 1))
    assert [m["s"] for m in gw3.received if m.get("t") == "RESUMED"] == [again["s"]]
    await gw3.close()


async def test_resume_when_from_before_an_earlier_resumed_replays_it_in_its_place(
    sim_factory: SimFactory,
) -> None:
    # A client that rewinds (shardrunner resumes from the bus's low water) gets no hole where the
    # earlier RESUMED was: it is replayed like every other dispatch of the session.
    sim = await sim_factory(rate=300, guilds_per_shard=2)
    gw, ready = await ready_connection(sim, [0, 2])
    sid = ready["d"]["session_id"]
    gw2, resumed = await resume_at(sim, sid, await away(sim, gw, sid, 10))
    await away(sim, gw2, sid, 5)
    gw3, again = await resume_at(sim, sid, resumed["s"] - 1, after=resumed["s"])
    assert gw3.dispatch_seqs() == list(range(resumed["s"], again["s"] + 1))
    assert [m["s"] for m in gw3.received if m.get("t") == "RESUMED"] == [resumed["s"], again["s"]]
    await gw3.close()


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
