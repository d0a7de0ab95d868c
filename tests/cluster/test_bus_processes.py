"""The event bus with real processes: the simulator, `shardrunner start`, and bot processes.

Every test counts by sequence number against the simulator's own log.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from shardrunner.sim.discord.server import Simulator
from tests.cluster.conftest import Bot, accepted, shardrunner
from tests.conftest import SimFactory, wait_for

pytestmark = pytest.mark.timeout(150)
SHARDS = 4


def received(*bots: Bot, also: dict[str, set[int]] | None = None) -> dict[str, set[int]]:
    union: dict[str, set[int]] = {k: set(v) for k, v in (also or {}).items()}
    for bot in bots:
        for session, seqs in bot.seqs().items():
            union.setdefault(session, set()).update(seqs)
    return union


async def quiesce(sim: Simulator, *bots: Bot, lost: Any = None) -> dict[str, int]:
    """Stop the dispatch stream, and wait until the bots hold every seq of every session from the
    first one they saw to the last (plus what ``lost()`` says was reported lost); return the last seqs.

    Waiting for the highest seq is not enough: a dead member's unacknowledged events are redelivered
    only after its timeout, possibly after a live member already got the newest ones.
    """
    sim.config = sim.config.replace(rate=0)
    live = {s.id: s.last_seq for s in sim.sessions.values() if s.ended is None}

    def complete() -> bool:
        union = received(*bots, also=lost() if lost else None)
        return all(
            sid in union and set(range(min(union[sid]), last + 1)) <= union[sid] for sid, last in live.items()
        )

    try:
        await wait_for(complete, 30, "the bots to hold every event of every session")
    except BaseException:
        union = received(*bots, also=lost() if lost else None)
        missing = {
            sid: sorted(set(range(min(union.get(sid, {1})), last + 1)) - union.get(sid, set()))[:30]
            for sid, last in live.items()
        }
        raise AssertionError(f"events still missing after 30 s: {missing}") from None
    return live


def assert_complete(live: dict[str, int], *bots: Bot) -> None:
    """Every seq of every live session from the first one any bot saw to the last: delivered."""
    union: dict[str, set[int]] = {}
    for bot in bots:
        for session, seqs in bot.seqs().items():
            assert len(seqs) == len(set(seqs)), "a bot process never sees a duplicate (client dedupe)"
            union.setdefault(session, set()).update(seqs)
    assert set(union) >= set(live)
    for session, last in live.items():
        seqs = union[session]
        missing = set(range(min(seqs), last + 1)) - seqs
        assert not missing, f"session {session}: lost {sorted(missing)[:20]}"


@pytest.fixture
async def running(cluster: Any, sim_factory: SimFactory) -> Any:
    async def start(*args: str) -> Any:
        sim = await sim_factory(
            shards=SHARDS, guilds_per_shard=4, rate=100, identify_window=0.1, heartbeat_interval_ms=1000
        )
        c = await cluster(sim, "--workers", "2", *args)
        await c.ready(SHARDS)
        return c

    return start


async def test_bot_when_killed_and_restarted_later_misses_nothing(running: Any, bots: Any) -> None:
    c = await running()
    first = bots(c.run_dir)
    await wait_for(lambda: len(first.events) >= 200, 20, "events in the first bot")
    os.kill(first.proc.pid, signal.SIGKILL)
    first.stop()
    # The bot is down while the gateway goes on: about 5 s of traffic (500 dispatches a shard).
    marks = {s.id: s.last_seq for s in c.sim.sessions.values() if s.ended is None}
    await wait_for(
        lambda: all(c.sim.sessions[sid].last_seq >= seq + 500 for sid, seq in marks.items()),
        20,
        "5 s of traffic",
    )
    second = bots(c.run_dir)
    live = await quiesce(c.sim, first, second)
    assert_complete(live, first, second)
    twice = {(e["session"], e["seq"]) for e in first.events} & {
        (e["session"], e["seq"]) for e in second.events
    }
    again = {(e["session"], e["seq"]) for e in second.events if e["redelivered"]}
    assert twice <= again, "an event is delivered twice only after a failure, and marked so"


async def test_worker_when_killed_loses_no_event(running: Any, bots: Any) -> None:
    c = await running()
    bot = bots(c.run_dir)
    await wait_for(lambda: len(bot.events) >= 200, 20, "events")
    status = await c.status()
    os.kill(status["workers"][0]["pid"], signal.SIGKILL)
    await wait_for(lambda: len(accepted(c.sim, "resumes")) >= 2, 30, "its shards resumed")
    await wait_for(lambda: len(bot.events) >= 600, 30, "events after the crash")
    live = await quiesce(c.sim, bot)
    assert_complete(live, bot)
    assert len(accepted(c.sim, "identifies")) == SHARDS


async def test_worker_when_killed_its_resumes_deliver_resumed_to_subscribed_groups_with_no_seq_hole(
    running: Any, bots: Any
) -> None:
    c = await running()
    everything = bots(c.run_dir)
    only = bots(c.run_dir, "--group", "resumed", "--events", "RESUMED")
    await wait_for(lambda: len(everything.events) >= 200 and only.ready, 20, "events, and both groups")
    status = await c.status()
    os.kill(status["workers"][0]["pid"], signal.SIGKILL)
    await wait_for(lambda: len(accepted(c.sim, "resumes")) >= 2, 30, "its shards resumed")
    resumes = accepted(c.sim, "resumes")
    # RESUMED has the seq after the last one its resume replayed, as on Discord.
    expected = {(r["session_id"], r["seq"] + r["replayed"] + 1) for r in resumes}
    live = await quiesce(c.sim, everything)
    assert_complete(live, everything)  # RESUMED's seq included: no hole where it is
    assert everything.gaps == []
    got = {(e["session"], e["seq"]) for e in everything.events if e["t"] == "RESUMED"}
    assert got == expected
    assert all(e["guild"] is None for e in everything.events if e["t"] == "RESUMED")
    await wait_for(lambda: len(only.events) >= len(expected), 20, "RESUMED in the group subscribed to it")
    assert {(e["session"], e["seq"]) for e in only.events} == expected
    assert {e["t"] for e in only.events} == {"RESUMED"}


async def test_group_when_two_members_share_it_splits_guilds_and_survives_one_dying(
    running: Any, bots: Any
) -> None:
    c = await running()
    a = bots(c.run_dir, "--member", "a")
    b = bots(c.run_dir, "--member", "b")
    await wait_for(lambda: len(a.events) >= 20 and len(b.events) >= 20, 20, "both members get events")
    # Until b joined, a owned every guild: compare what came once both were members.
    ia, ib = len(a.events) + 50, len(b.events) + 50
    await wait_for(lambda: len(a.events) >= ia + 100 and len(b.events) >= ib + 100, 20, "more events")
    guilds_a = {e["guild"] for e in a.events[ia:] if e["guild"]}
    guilds_b = {e["guild"] for e in b.events[ib:] if e["guild"]}
    assert guilds_a
    assert guilds_b
    assert not guilds_a & guilds_b, "each guild sticks to one member"
    os.kill(a.proc.pid, signal.SIGKILL)
    a.stop()
    # After the member timeout the survivor gets the dead member's guilds, and what it had not acked.
    await wait_for(lambda: any(e["guild"] in guilds_a for e in b.events), 30, "b takes over a's guilds")
    live = await quiesce(c.sim, a, b)
    assert_complete(live, a, b)


async def test_group_when_its_queue_overflows_is_told_the_exact_gap(
    running: Any, bots: Any, tmp_path: Path
) -> None:
    c = await running("--queue-events", "50")
    first = bots(c.run_dir)
    await wait_for(lambda: first.ready and len(first.events) > 10, 20, "the group exists")
    os.kill(first.proc.pid, signal.SIGKILL)
    first.stop()
    marks = {s.id: s.last_seq for s in c.sim.sessions.values() if s.ended is None}
    await wait_for(
        lambda: all(c.sim.sessions[sid].last_seq >= seq + 300 for sid, seq in marks.items()), 20, "traffic"
    )
    second = bots(c.run_dir)

    def reported_lost() -> dict[str, set[int]]:
        out: dict[str, set[int]] = {}
        for gap in list(second.gaps):
            out.setdefault(gap["session"], set()).update(s for a, b in gap["ranges"] for s in range(a, b + 1))
        return out

    live = await quiesce(c.sim, first, second, lost=reported_lost)
    for gap in second.gaps:
        assert len({s for a, b in gap["ranges"] for s in range(a, b + 1)}) == gap["count"]
    lost = reported_lost()
    got: dict[str, set[int]] = {}
    for bot in (first, second):
        for session, seqs in bot.seqs().items():
            got.setdefault(session, set()).update(seqs)
    for session, last in live.items():
        expected = set(range(min(got[session]), last + 1))
        assert got[session] | lost[session] == expected, "what did not arrive is exactly what the gap says"
        # Reported lost although seen: only what the killed bot had received but never acknowledged.
        assert got[session] & lost[session] <= set(first.seqs().get(session, []))
        assert not set(second.seqs().get(session, [])) & lost[session]


async def test_send_when_addressed_by_guild_reaches_the_shard_that_owns_it(running: Any, bots: Any) -> None:
    c = await running()
    guild = c.sim.world.guilds_by_shard[2][0]
    bots(c.run_dir, "--send-guild", str(guild))  # killed after the cluster stopped (the fixture)
    await wait_for(
        lambda: any(cmd["op"] == 3 for cmd in c.sim.stats()["commands"]), 20, "the presence update"
    )
    [command] = [cmd for cmd in c.sim.stats()["commands"] if cmd["op"] == 3]
    assert command["shard"] == [2, SHARDS]
    assert command["d"] == {"since": None, "activities": [], "status": "dnd", "afk": False}


async def test_bot_when_its_handler_blocks_for_seconds_does_not_delay_heartbeats(
    running: Any, bots: Any
) -> None:
    c = await running()
    bot = bots(c.run_dir, "--block", "3")
    await wait_for(lambda: len(bot.events) >= 2, 20, "two slow events")
    stats = c.sim.stats()
    assert [v for v in stats["violations"] if v["kind"] == "heartbeat_timeout"] == []
    assert [x for x in stats["closes"] if x["by"] == "server"] == []
    status = await c.status()
    assert all(s["state"] == "ready" for s in status["shards"])


async def test_tail_when_run_prints_events_as_json_and_leaves_no_group_behind(running: Any) -> None:
    c = await running()
    result = await shardrunner("tail", "--run-dir", str(c.run_dir), "--json", "--count", "5", timeout=30)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 5
    assert all(
        set(line) == {"conn", "shard", "session", "seq", "t", "guild_id", "key", "d"} for line in lines
    )
    assert all(isinstance(line["d"], dict) for line in lines)
    status = await c.status()
    assert [g for g in status["groups"] if g["group"].startswith("tail-")] == []


async def test_example_bot_when_started_beside_a_cluster_joins_and_counts_events(running: Any) -> None:
    c = await running()
    env = {**os.environ, "SHARDRUNNER_RUN_DIR": str(c.run_dir)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "examples/bot.py", stdout=asyncio.subprocess.PIPE, env=env
    )
    try:
        assert proc.stdout is not None
        first = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert b"joined group example-bot" in first
        report = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert b"events:" in report
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_reload_when_a_bot_consumes_loses_nothing(running: Any, bots: Any) -> None:
    c = await running()
    bot = bots(c.run_dir)
    await wait_for(lambda: len(bot.events) >= 200, 20, "events")
    c.proc.send_signal(signal.SIGHUP)
    await wait_for(lambda: len(accepted(c.sim, "resumes")) >= SHARDS, 40, "every shard resumed")
    await wait_for(lambda: len(bot.events) >= 800, 30, "events after the reload")
    live = await quiesce(c.sim, bot)
    assert_complete(live, bot)
    assert len(accepted(c.sim, "identifies")) == SHARDS


async def test_stop_and_start_when_a_bot_comes_back_later_loses_nothing(
    running: Any, bots: Any, cluster: Any
) -> None:
    c = await running()
    first = bots(c.run_dir)
    await wait_for(lambda: len(first.events) >= 200, 20, "events")
    c.proc.send_signal(signal.SIGTERM)
    assert await c.exit_code() == 0
    first.stop()
    again = await cluster(c.sim, "--workers", "2")  # the group is remembered in the session table
    await again.ready(SHARDS)
    assert len(accepted(c.sim, "identifies")) == SHARDS, "resumed, not identified"
    second = bots(again.run_dir)
    live = await quiesce(c.sim, first, second)
    assert_complete(live, first, second)
