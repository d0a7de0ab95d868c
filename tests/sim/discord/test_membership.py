"""Guilds joining and leaving at run time: routed per layout, refused over the limit, and growth."""

from __future__ import annotations

from typing import Any

import pytest

from shardrunner.protocol.discord import shard_for_guild
from shardrunner.sim.discord.server import Simulator
from tests.conftest import RawGateway, SimFactory, http_json, wait_for
from tests.sim.discord.helpers import ready_connection

NO_TIMEOUT_MS = 600_000


async def guilds(sim: Simulator, body: dict[str, Any]) -> dict[str, Any]:
    status, answer, _ = await http_json(sim, "POST", "/_sim/guilds", body)
    assert status == 200, answer
    return answer  # type: ignore[no-any-return]


async def drain(sim: Simulator, gw: RawGateway, session_id: str) -> list[dict[str, Any]]:
    """Everything the session logged, once received; returns the dispatches."""
    last = sim.sessions[session_id].last_seq
    while max(gw.dispatch_seqs()) < last:
        await gw.recv()
    return [m for m in gw.received if m.get("op") == 0]


async def test_guilds_when_added_and_removed_reach_the_owning_shard_of_each_layout_once(
    sim_factory: SimFactory,
) -> None:
    sim = await sim_factory(
        shards=4,
        guilds_per_shard=2,
        rate=0,
        identify_window=0,
        heartbeat_interval_ms=NO_TIMEOUT_MS,
        track_dispatches=True,
    )
    conns = {(i, n): await ready_connection(sim, [i, n]) for n in (4, 8) for i in range(n)}
    answer = await guilds(sim, {"add": 3})
    added = [int(g) for g in answer["added"]]
    assert (len(added), answer["refused"], answer["total"], answer["removed"]) == (3, 0, 11, [])
    gone = added[1]
    answer = await guilds(sim, {"remove_ids": [str(gone)]})
    assert (answer["removed"], answer["added"], answer["total"]) == ([str(gone)], [], 10)
    _, tracked, _ = await http_json(sim, "GET", "/_sim/dispatches")
    ids = {r["session_id"]: r["ids"] for r in tracked["sessions"]}
    for n in (4, 8):
        events: dict[int, list[tuple[str, int, dict[str, Any]]]] = {}
        for i in range(n):
            gw, ready = conns[(i, n)]
            sid = ready["d"]["session_id"]
            for m in await drain(sim, gw, sid):
                if m["s"] > 1 + len(ready["d"]["guilds"]):  # after the session's own GUILD_CREATEs
                    events.setdefault(i, []).append((m["t"], ids[sid][m["s"] - 1], m["d"]))
        for gid in added:
            owner = shard_for_guild(gid, n)
            creates = [
                (ident, d) for t, ident, d in events[owner] if t == "GUILD_CREATE" and d["id"] == str(gid)
            ]
            assert len(creates) == 1
            assert creates[0][1]["member_count"] >= 2
            assert "unavailable" not in creates[0][1]  # a join, not a guild becoming available
        (delete,) = [(ident, d) for t, ident, d in events[shard_for_guild(gone, n)] if t == "GUILD_DELETE"]
        assert delete[1] == {"id": str(gone)}  # no "unavailable": the bot left
        # Nothing reached a shard that does not own the guild.
        assert sum(len(e) for e in events.values()) == 4
        idents = {(t, d["id"]): ident for e in events.values() for t, ident, d in e}
        # Each join and leave is one world dispatch of its own, with one id on both layouts.
        assert sorted(idents.values()) == list(range(1, 5)) == list(range(1, tracked["generated"] + 1))
        if n == 4:
            first = idents
        else:
            assert idents == first
    # A session that identifies afterwards has the new guilds, not the one that left.
    gw, ready = await ready_connection(sim, [shard_for_guild(added[0], 2), 2])
    listed = {g["id"] for g in ready["d"]["guilds"]}
    assert str(added[0]) in listed
    assert str(gone) not in listed
    status, summary, _ = await http_json(sim, "GET", "/_sim/guilds")
    assert status == 200
    assert summary["total"] == 10
    assert (summary["joins"], summary["leaves"], summary["joins_refused"]) == (3, 1, 0)
    layouts = {e["num_shards"]: e for e in summary["layouts"]}
    assert set(layouts) == {2, 4, 8}
    assert layouts[8]["sessions"] == 8
    for n, entry in layouts.items():
        assert entry["guilds"] == sim.world.guild_counts(n)
        assert sum(entry["guilds"]) == 10
        for i in range(n):
            assert entry["guilds"][i] == len(sim.world.guilds_for(i, n))


async def test_guilds_when_a_join_would_overfill_a_live_session_refuse_it(sim_factory: SimFactory) -> None:
    sim = await sim_factory(shards=1, guilds_per_shard=2, rate=0, max_guilds_per_shard=3, identify_window=0)
    # No session is live: nothing to overfill, so both join; 4 guilds on one shard close 4011.
    assert len((await guilds(sim, {"add": 2}))["added"]) == 2
    gw = await RawGateway.connect(sim.gateway_url)
    await gw.recv()
    await gw.identify([0, 1])
    assert await gw.expect_close() == 4011
    halves = [await ready_connection(sim, [i, 2]) for i in range(2)]
    assert [len(r["d"]["guilds"]) for _, r in halves] == [2, 2]
    answer = await guilds(sim, {"add": 4})
    assert (len(answer["added"]), answer["refused"], answer["total"]) == (2, 2, 6)
    assert sim.world.guild_counts(2) == [3, 3]
    stats = sim.stats()
    assert (stats["guild_total"], stats["guild_joins"], stats["guild_joins_refused"]) == (6, 4, 2)
    assert (await guilds(sim, {"remove": 1}))["total"] == 5
    assert sim.stats()["guild_leaves"] == 1


async def test_guilds_when_growing_join_at_the_rate_and_get_traffic(sim_factory: SimFactory) -> None:
    sim = await sim_factory(
        shards=1,
        guilds_per_shard=1,
        rate=0,
        mix={"MESSAGE_CREATE": 1.0},
        dm_ratio=0,
        heartbeat_interval_ms=NO_TIMEOUT_MS,
    )
    gw, _ = await ready_connection(sim, [0, 1])
    status, body, _ = await http_json(sim, "POST", "/_sim/config", {"guild_growth": 100})
    assert (status, body["guild_growth"]) == (200, 100)
    await wait_for(lambda: sim.world.guild_total >= 6, 10, "guilds joining")
    await http_json(sim, "POST", "/_sim/config", {"guild_growth": 0})
    joined = set(sim.world.guild_ids[1:])
    total = sim.world.guild_total
    created = await gw.recv_until(lambda m: m.get("t") == "GUILD_CREATE" and int(m["d"]["id"]) in joined)
    assert created["s"] > 2
    await http_json(sim, "POST", "/_sim/config", {"rate": 500})
    await gw.recv_until(lambda m: m.get("t") == "MESSAGE_CREATE" and int(m["d"]["guild_id"]) in joined)
    assert sim.stats()["guild_joins"] == total - 1
    await gw.close()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "give any of add, remove, remove_ids"),
        ({"add": 1, "grow": 2}, "give any of add, remove, remove_ids"),
        ({"add": -1}, "add must be a whole number from 0 to 100000"),
        ({"remove": True}, "remove must be a whole number from 0 to 100000"),
        ({"remove_ids": "1"}, "remove_ids must be a list of guild ids"),
        ({"remove_ids": ["x"]}, "remove_ids must be a list of guild ids"),
        ({"remove_ids": [1], "add": 1}, "remove_ids: unknown guild 1; nothing changed"),
    ],
)
async def test_guilds_when_body_invalid_answer_400_and_change_nothing(
    sim_factory: SimFactory, body: dict[str, Any], message: str
) -> None:
    sim = await sim_factory(shards=1, guilds_per_shard=2)
    status, answer, _ = await http_json(sim, "POST", "/_sim/guilds", body)
    assert (status, answer["message"]) == (400, message)
    assert sim.world.guild_total == 2
    assert sim.stats()["guild_joins"] == 0
