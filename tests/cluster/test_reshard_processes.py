"""Resharding with real processes: the simulator, `shardrunner start`, `shardrunner reshard` and a
bot, with traffic flowing. Every generated dispatch is counted by the simulator's dispatch id (one
id whatever the number of sessions it reached), against what the bots got after the client's
dedupe: each exactly once."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
from collections import Counter
from typing import Any

import pytest

from shardrunner.sim.discord.server import Simulator
from tests.cluster.conftest import Bot, Cluster, accepted, shardrunner
from tests.conftest import SimFactory, wait_for

pytestmark = pytest.mark.timeout(180)

#: 4 shards of 20 guilds at most 25 a shard: 80% full; /gateway/bot recommends one per 10 guilds.
SIM = {
    "shards": 4,
    "guilds_per_shard": 20,
    "max_guilds_per_shard": 25,
    "recommend_per": 10,
    "rate": 40,
    "identify_window": 0.1,
    "heartbeat_interval_ms": 1000,
    "track_dispatches": True,
}
ARGS = (
    "--workers", "2", "--shards", "4", "--groups", "test", "--max-guilds-per-shard", "25",
    "--reshard-overlap", "0.4",
)  # fmt: skip


def ids_of(sim: Simulator) -> tuple[dict[tuple[str, int], int], set[int]]:
    """(session, seq) -> dispatch id, and every id some session received."""
    by_seq: dict[tuple[str, int], int] = {}
    for track in sim.dispatches.snapshot()["sessions"]:
        for i, ident in enumerate(track["ids"]):
            if ident:
                by_seq[(track["session_id"], track["first_seq"] + i)] = ident
    return by_seq, set(by_seq.values())


def delivered(sim: Simulator, *bots: Bot) -> Counter[int]:
    """How many times each dispatch id reached a bot, not counting the copies marked redelivered
    (a bot killed before it acknowledged them: at least once, and said so)."""
    by_seq, _ = ids_of(sim)
    got: Counter[int] = Counter()
    again: Counter[int] = Counter()
    for bot in bots:
        for e in list(bot.events):
            ident = by_seq.get((e["session"], e["seq"]))
            if ident:
                got[ident] += 1
                again[ident] += bool(e["redelivered"])
    return Counter({i: max(1, n - again[i]) for i, n in got.items()})


async def exactly_once(sim: Simulator, *bots: Bot) -> Counter[int]:
    """Stop the traffic, wait until the bots hold every dispatch any session received, and check
    that none came twice."""
    sim.config = sim.config.replace(rate=0, guild_growth=0.0)

    def missing() -> set[int]:
        return ids_of(sim)[1] - set(delivered(sim, *bots))

    try:
        await wait_for(lambda: not missing(), 30, "every dispatch delivered")
    except BaseException:
        lost = sorted(missing())
        raise AssertionError(f"{len(lost)} dispatches never delivered, e.g. {lost[:20]}") from None
    got = delivered(sim, *bots)
    twice = {i: n for i, n in got.items() if n > 1}
    if twice:
        by_seq, _ = ids_of(sim)
        first = sorted(twice)[:3]
        copies = [
            (by_seq.get((e["session"], e["seq"])), e["conn"], e["session"][:6], e["seq"], e["t"], e["at"])
            for bot in bots
            for e in bot.events
            if by_seq.get((e["session"], e["seq"])) in first
        ]
        raise AssertionError(f"{len(twice)} dispatches delivered more than once, e.g. {copies}")
    return got


def longest_gap(bot: Bot, since: float) -> float:
    times = [e["at"] for e in list(bot.events) if e["at"] >= since]
    return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


async def reshard_status(c: Cluster) -> dict[str, Any]:
    return (await c.status()).get("reshard") or {}


async def wait_phase(c: Cluster, *phases: str, timeout: float = 60) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        r = await reshard_status(c)
        if r.get("phase") in phases:
            return r
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the reshard is {r.get('phase')}, not {' or '.join(phases)}: {r}")
        await asyncio.sleep(0.05)


@pytest.fixture
async def started(cluster: Any, sim_factory: SimFactory, bots: Any) -> Any:
    async def start(*args: str, sim: dict[str, Any] | None = None) -> tuple[Cluster, Bot]:
        s = await sim_factory(**(SIM | (sim or {})))
        auto = () if "--auto-reshard" in args else ("--no-auto-reshard",)
        c = await cluster(s, *ARGS, *auto, *args)
        await c.ready(4)
        bot = bots(c.run_dir)
        await bot.wait_ready()
        await wait_for(lambda: len(bot.events) >= 100, 20, "events in the bot")
        return c, bot

    return start


async def test_reshard_by_command_from_4_to_8_delivers_every_dispatch_exactly_once(started: Any) -> None:
    c, bot = await started()
    since = bot.events[-1]["at"]
    result = await shardrunner("reshard", "--shards", "8", "--run-dir", str(c.run_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "reshard discord: 4 -> 8 shards (8 shards, as asked)" in result.stdout
    assert "identifies needed:  8" in result.stdout
    assert "switching, step 4/4" in result.stdout or "step 3/4" in result.stdout
    assert "switched to 8 shards" in result.stdout or "resharded discord from 4 to 8" in result.stdout
    await wait_phase(c, "done")
    status = await c.ready(8)
    assert {s["conn"] for s in status["shards"]} == {f"discord:{i}/8@1" for i in range(8)}
    assert len(status["workers"]) == 2
    await exactly_once(c.sim, bot)
    assert c.sim.stats()["violations"] == []
    assert sorted(i["shard"] for i in accepted(c.sim, "identifies")[4:]) == [[n, 8] for n in range(8)]
    assert longest_gap(bot, since) < 1.5, "no delivery gap longer than a normal one"
    # The old sessions ended (1000): nothing resumes them, and the state file holds the new set.
    old = [s for s in c.sim.sessions.values() if s.num_shards == 4]
    assert all(s.ended is not None for s in old)


async def test_reshard_automatic_when_guilds_grow_past_the_threshold(started: Any) -> None:
    c, bot = await started("--auto-reshard", "--reshard-check", "1", sim={"guilds_per_shard": 15})  # 60% full
    await asyncio.sleep(0)
    assert (await reshard_status(c)) == {}
    added, _ = c.sim.membership.add(22)  # 82 guilds: 82% of 4 x 25
    assert len(added) == 22
    r = await wait_phase(c, "done", timeout=90)
    # ceil(82 / 10) = 9 recommended; ceil(82 / 12.5) = 7 bring the fill to 50%: 9.
    assert (r["current"], r["count"]) == (4, 9)
    await c.ready(9)
    got = await exactly_once(c.sim, bot)
    joins = [e for e in bot.events if e["t"] == "GUILD_CREATE" and e["guild"] in set(added)]
    assert len({e["guild"] for e in joins}) == 22, "every guild that joined came once"
    assert got
    assert c.sim.stats()["violations"] == []


async def test_reshard_with_workers_killed_in_the_middle_loses_nothing(started: Any) -> None:
    c, bot = await started(sim={"identify_window": 0.5})
    result = await shardrunner("reshard", "--shards", "8", "--no-wait", "--run-dir", str(c.run_dir))
    assert result.returncode == 0, result.stderr

    # While the new set warms up: the first new worker's shards have sessions, the others not yet.
    async def first_new_worker_ready() -> dict[str, Any] | None:
        status = await c.status()
        states = {s["conn"]: s["state"] for s in status["shards"]}
        for w in status["workers"]:
            if w["conns"][0].endswith("/8@1") and all(states.get(x) == "ready" for x in w["conns"]):
                return status
        return None

    status = None
    while status is None:
        status = await first_new_worker_ready()
        await asyncio.sleep(0.05)
    assert (status.get("reshard") or {}).get("phase") == "warming"
    old_worker = next(w for w in status["workers"] if w["conns"][0].endswith("/4"))
    states = {s["conn"]: s["state"] for s in status["shards"]}
    new_worker = next(
        w for w in status["workers"] if w["conns"][0].endswith("/8@1") and states[w["conns"][0]] == "ready"
    )
    os.kill(old_worker["pid"], signal.SIGKILL)
    os.kill(new_worker["pid"], signal.SIGKILL)
    await wait_phase(c, "done", timeout=90)
    await c.ready(8)
    await exactly_once(c.sim, bot)
    assert len(accepted(c.sim, "identifies")) == 4 + 8, "the killed workers' shards resumed"
    assert c.sim.stats()["violations"] == []


async def test_reshard_with_the_supervisor_restarted_in_the_middle_rolls_back_then_completes(
    started: Any, cluster: Any
) -> None:
    c, bot = await started(sim={"identify_window": 0.5})
    result = await shardrunner("reshard", "--shards", "8", "--no-wait", "--run-dir", str(c.run_dir))
    assert result.returncode == 0, result.stderr
    await wait_for(lambda: len(accepted(c.sim, "identifies")) >= 6, 30, "the new set identifying")
    await c.stop(grace=30)
    assert not any(s.ended is None and s.num_shards == 8 for s in c.sim.sessions.values()), (
        "the aborted set's sessions ended"
    )
    again = await cluster(c.sim, *ARGS, "--no-auto-reshard")
    await again.ready(4)
    assert len(accepted(c.sim, "resumes")) >= 4, "the old set resumed"
    result = await shardrunner("reshard", "--shards", "8", "--run-dir", str(again.run_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    await wait_phase(again, "done")
    await exactly_once(c.sim, bot)
    assert c.sim.stats()["violations"] == []


async def test_reshard_while_the_bot_is_down_delivers_its_queue_once_afterwards(
    started: Any, bots: Any
) -> None:
    c, first = await started()
    os.kill(first.proc.pid, signal.SIGKILL)
    first.stop()
    result = await shardrunner("reshard", "--shards", "8", "--run-dir", str(c.run_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    r = await reshard_status(c)
    assert r["phase"] == "draining", "the old workers keep the absent bot's queue"
    second = bots(c.run_dir)
    await wait_phase(c, "done", timeout=60)
    await exactly_once(c.sim, first, second)
    assert second.gaps == []


async def test_reshard_refused_for_a_bad_multiple_or_a_short_budget_changes_nothing(
    started: Any,
) -> None:
    c, _bot = await started(sim={"max_concurrency": 4, "shard_multiple": 4, "session_start_remaining": 15})
    before = await c.status()
    bad = await shardrunner("reshard", "--shards", "6", "--run-dir", str(c.run_dir))
    assert bad.returncode == 1
    assert "multiples of 4" in bad.stderr
    assert "4 or 8" in bad.stderr
    short = await shardrunner("reshard", "--shards", "8", "--dry-run", "--run-dir", str(c.run_dir))
    assert short.returncode == 1
    assert "refused: Discord allows 11 more session starts today" in short.stdout
    after = await c.status()
    assert [s["conn"] for s in after["shards"]] == [s["conn"] for s in before["shards"]]
    assert [w["pid"] for w in after["workers"]] == [w["pid"] for w in before["workers"]]
    assert after.get("reshard") is None
    assert len(accepted(c.sim, "identifies")) == 4


async def test_reshard_aborted_when_the_new_set_is_refused_leaves_the_old_set_delivering(
    started: Any,
) -> None:
    c, bot = await started()
    c.sim.config = c.sim.config.replace(refuse_shard_counts=(8,), refuse_code=4011)
    result = await shardrunner("reshard", "--shards", "8", "--run-dir", str(c.run_dir))
    assert result.returncode == 1
    assert "reshard aborted: a new shard closed fatally" in result.stdout
    r = await wait_phase(c, "aborted")
    assert "4011" in r["outcome"]
    count = len(bot.events)
    await wait_for(lambda: len(bot.events) >= count + 200, 20, "the old set delivering")
    for _ in range(400):  # the aborted set's workers end their sessions and exit, then go
        status = await c.status()
        if {s["conn"] for s in status["shards"]} == {f"discord:{i}/4" for i in range(4)}:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"the aborted set is still listed: {[s['conn'] for s in status['shards']]}")
    assert len(status["workers"]) == 2
    await exactly_once(c.sim, bot)
