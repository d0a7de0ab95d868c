"""Dispatch identity: one id per world dispatch, the same in every session (and layout) it reaches."""

from __future__ import annotations

from collections import Counter
from typing import Any

from shardrunner.sim.discord.server import Simulator
from tests.conftest import RawGateway, SimFactory, http_json, wait_for
from tests.sim.discord.helpers import ready_connection, resume_after

#: Long enough that no test connection times out for want of heartbeats.
NO_TIMEOUT_MS = 600_000


async def connect_layout(sim: Simulator, num_shards: int) -> list[tuple[RawGateway, dict[str, Any]]]:
    return [await ready_connection(sim, [i, num_shards]) for i in range(num_shards)]


async def generate(sim: Simulator, at_least: int, rate: float = 400) -> None:
    """Let the generator make at least ``at_least`` more dispatches, then stop it."""
    target = sim.dispatches.generated + at_least
    status, body, _ = await http_json(sim, "POST", "/_sim/config", {"rate": rate})
    assert status == 200, body
    await wait_for(lambda: sim.dispatches.generated >= target, 10, "dispatches")
    status, body, _ = await http_json(sim, "POST", "/_sim/config", {"rate": 0})
    assert status == 200, body


async def catch_up(sim: Simulator, gw: RawGateway, session_id: str) -> None:
    last = sim.sessions[session_id].last_seq
    while max(gw.dispatch_seqs()) < last:
        await gw.recv()


async def test_dispatches_when_4_and_8_shard_layouts_run_give_each_id_to_one_session_of_each(
    sim_factory: SimFactory,
) -> None:
    sim = await sim_factory(
        shards=4,
        guilds_per_shard=3,
        rate=0,
        identify_window=0,
        heartbeat_interval_ms=NO_TIMEOUT_MS,
        dm_ratio=0.2,
        track_dispatches=True,
    )
    layouts = {n: await connect_layout(sim, n) for n in (4, 8)}
    await generate(sim, 300)
    status, body, ctype = await http_json(sim, "GET", "/_sim/dispatches")
    assert (status, ctype) == (200, "application/json")
    generated = body["generated"]
    assert generated == sim.dispatches.generated >= 300
    records = {r["session_id"]: r for r in body["sessions"]}
    assert len(records) == 12
    by_id: dict[int, dict[int, dict[str, Any]]] = {4: {}, 8: {}}
    for n, conns in layouts.items():
        seen: Counter[int] = Counter()
        for gw, ready in conns:
            sid = ready["d"]["session_id"]
            record = records[sid]
            assert record["shard"] == ready["d"]["shard"]
            assert record["first_seq"] == 1
            ids = record["ids"]
            guilds = len(ready["d"]["guilds"])
            # READY and the session's own GUILD_CREATEs belong to that session only.
            assert ids[: 1 + guilds] == [0] * (1 + guilds)
            assert len(ids) == sim.sessions[sid].last_seq
            seen.update(i for i in ids if i)
            await catch_up(sim, gw, sid)
            for m in gw.received:
                if m.get("op") == 0 and ids[m["s"] - 1]:
                    by_id[n][ids[m["s"] - 1]] = m
        # Every world dispatch reached exactly one session of each layout.
        assert seen == Counter(range(1, generated + 1))
    # One id is one dispatch: the same event and body on both layouts, DMs included.
    assert by_id[4].keys() == by_id[8].keys() == set(range(1, generated + 1))
    for ident, m in by_id[4].items():
        assert (m["t"], m["d"]) == (by_id[8][ident]["t"], by_id[8][ident]["d"])
    assert any("guild_id" not in m["d"] for m in by_id[4].values())  # some DMs were among them


async def test_dispatches_when_tracking_off_count_only_and_switched_on_track_from_the_next_seq(
    sim_factory: SimFactory,
) -> None:
    sim = await sim_factory(shards=1, guilds_per_shard=2, rate=0, heartbeat_interval_ms=NO_TIMEOUT_MS)
    gw, ready = await ready_connection(sim, [0, 1])
    sid = ready["d"]["session_id"]
    await generate(sim, 50)
    status, body, _ = await http_json(sim, "GET", "/_sim/dispatches")
    assert body["generated"] >= 50
    assert body["sessions"] == []
    assert sim.sessions[sid].track is None
    before = sim.sessions[sid].last_seq
    counted = body["generated"]
    status, body, _ = await http_json(sim, "POST", "/_sim/config", {"track_dispatches": True})
    assert (status, body["track_dispatches"]) == (200, True)
    await generate(sim, 50)
    status, body, _ = await http_json(sim, "POST", "/_sim/config", {"track_dispatches": False})
    assert status == 200
    stopped_at = sim.sessions[sid].last_seq
    await generate(sim, 20)
    _, body, _ = await http_json(sim, "GET", "/_sim/dispatches")
    (record,) = body["sessions"]
    assert record["first_seq"] == before + 1
    # Shard 0 of one shard gets every world dispatch, so its ids are the counter's, in order.
    assert record["ids"] == list(range(counted + 1, counted + 1 + len(record["ids"])))
    assert record["first_seq"] + len(record["ids"]) - 1 == stopped_at
    assert body["generated"] > counted + len(record["ids"])
    await gw.close()


async def test_dispatches_when_a_session_resumes_give_resumed_no_id(sim_factory: SimFactory) -> None:
    sim = await sim_factory(
        shards=1, guilds_per_shard=1, rate=0, heartbeat_interval_ms=NO_TIMEOUT_MS, track_dispatches=True
    )
    gw, ready = await ready_connection(sim, [0, 1])
    sid = ready["d"]["session_id"]
    await generate(sim, 10)
    await catch_up(sim, gw, sid)
    await gw.close(4000)
    gw2 = await resume_after(sim, gw, ready)
    resumed = next(m for m in gw2.received if m.get("t") == "RESUMED")
    await generate(sim, 10)
    _, body, _ = await http_json(sim, "GET", "/_sim/dispatches")
    (record,) = body["sessions"]
    ids = record["ids"]
    assert ids[resumed["s"] - 1] == 0
    assert ids[:2] == [0, 0]  # READY, GUILD_CREATE
    world = [i for i in ids if i]
    assert world == list(range(1, body["generated"] + 1))
    assert len(ids) == sim.sessions[sid].last_seq
    await gw2.close(1000)
    await wait_for(lambda: sim.sessions[sid].ended is not None, 5, "session end")
    _, after, _ = await http_json(sim, "GET", "/_sim/dispatches")
    assert after["sessions"] == body["sessions"]  # an ended session's record stays
