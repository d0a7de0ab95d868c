"""Twitch chat with real processes: the Twitch simulator (in this process), `shardrunner start
--platforms twitch` with its workers, and bots using `shardrunner.client`. Every message the
simulator generated in a channel someone read is counted by its id against what the bots got
after the client's dedupe: each exactly once, through RECONNECTs, drops, a worker killed with
SIGKILL and a bot restart, with backup readers. Joins of 2,000 channels and a mass reconnect stay
within the JOIN limit; sends over the message limit are paced, never refused by the server; a
refused login stops the cluster in one sentence; a suspended channel is not joined in a loop."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from harness.bots import BotProcess
from harness.cluster import ClusterProcess
from shardrunner.sim.twitch.server import TwitchSimulator
from tests.conftest import wait_for
from tests.sim.twitch.helpers import running

pytestmark = pytest.mark.timeout(240)

#: Twitch's limit windows shortened, with the same counts, for the simulator and the cluster alike
#: (the tests that wait on the JOIN or message windows): 20 JOINs per 3 s, 20 messages per 10 s.
SHORT = {"join_window": 3.0, "message_window": 10.0}


class TwitchCluster(ClusterProcess):
    """`shardrunner start --platforms twitch` against the in-process simulator ``sim``, with its limit
    windows (``--twitch-join-window``, ``--twitch-message-window``)."""

    status_timeout = 5

    def __init__(self, sim: TwitchSimulator, run_dir: Path, channels: list[str], *args: str) -> None:
        self.sim = sim
        run_dir.mkdir(parents=True, exist_ok=True)
        names = run_dir.parent / "channels.txt"
        names.write_text("".join(f"{c}\n" for c in channels))
        super().__init__(
            None,
            "--platforms", "twitch", "--twitch-url", sim.ws_url, "--twitch-channels-file", str(names),
            "--hung-after", "5", "--worker-backoff", "0.2", "--groups", "test", "--log-level", "warning",
            "--twitch-join-window", str(sim.config.join_window),
            "--twitch-message-window", str(sim.config.message_window), *args,
            token=None, run_dir=run_dir, output=True,
        )  # fmt: skip

    async def joined(self, channels: int, timeout: float = 60) -> dict[str, Any]:
        """The status once every connection is ready and ``channels`` channel joins (counting a
        backup's) are confirmed, none pending."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"the cluster exited with {self.proc.returncode}")
            try:
                status = await self.status()
            except Exception:
                status = {}
            rows = status.get("shards") or []
            details = [r.get("detail") or {} for r in rows]
            got = sum(int(d.get("joined", 0)) for d in details if d.get("role") == "read")
            pending = sum(int(d.get("joining", 0)) for d in details)
            if rows and all(r["state"] == "ready" for r in rows) and got == channels and not pending:
                return status
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{got}/{channels} joins confirmed, {pending} pending, after {timeout} s"
                )
            await asyncio.sleep(0.1)


class TwitchBot(BotProcess):
    def __init__(self, run_dir: Path, *args: str) -> None:
        self.events: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []
        super().__init__("tests.cluster.twitch_bot_proc", run_dir, *args)

    def on_record(self, record: dict[str, Any]) -> None:
        if "sent" in record:
            self.sent.append(record)
        elif "gap" in record or record.get("ready"):
            super().on_record(record)
        else:
            self.events.append(record)


@pytest.fixture
async def simulator() -> AsyncIterator[Callable[..., Awaitable[TwitchSimulator]]]:
    """Start in-process Twitch simulators (options of TwitchSimConfig); stopped after the clusters."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(**options: Any) -> TwitchSimulator:
            return await stack.enter_async_context(running(**options))

        yield start


@pytest.fixture
async def twitch(tmp_path: Path, simulator: Any, bots: Any) -> AsyncIterator[Callable[..., Any]]:
    # After ``simulator`` and ``bots`` (set up first, torn down last): the clusters stop while the
    # simulator still answers and the bots still acknowledge, so that a stop waits on neither a
    # dead server nor a drain to dead bots.
    made: list[TwitchCluster] = []

    def start(sim: TwitchSimulator, channels: list[str], *args: str) -> TwitchCluster:
        c = TwitchCluster(sim, tmp_path / f"run{len(made)}", channels, *args)
        made.append(c)
        return c

    yield start
    for c in made:
        await c.stop(grace=20)


@pytest.fixture
def bots() -> Any:
    made: list[TwitchBot] = []

    def start(run_dir: Path, *args: str) -> TwitchBot:
        bot = TwitchBot(run_dir, *args)
        made.append(bot)
        return bot

    yield start
    for bot in made:
        bot.stop()


def generated(sim: TwitchSimulator) -> set[str]:
    """Every message the simulator sent to at least one reader of its channel."""
    return {i for ch in sim.channels.values() for i in (*ch.ids, *(c for c, _ in ch.copies))}


def delivered(*bots: TwitchBot) -> Counter[str]:
    """Times each message id reached a bot; a copy marked redelivered (the bot before it was killed
    or stopped before it acknowledged) does not count twice."""
    got: Counter[str] = Counter()
    again: Counter[str] = Counter()
    for bot in bots:
        for e in list(bot.events):
            if e["id"] and e["t"] in ("PRIVMSG", "USERNOTICE"):
                got[e["id"]] += 1
                again[e["id"]] += bool(e["redelivered"])
    return Counter({i: max(1, n - again[i]) for i, n in got.items()})


def unheard(sim: TwitchSimulator) -> dict[str, int]:
    """Per channel, the messages generated so far while no reader was in it."""
    return {name: ch.unheard for name, ch in sim.channels.items()}


async def exactly_once(
    sim: TwitchSimulator, *bots: TwitchBot, since: dict[str, int] | None = None, timeout: float = 30
) -> int:
    """Stop the traffic; with ``since`` (:func:`unheard` once every channel was joined), no message
    was generated after that while a channel had no reader (the backups kept one in each); every
    message some reader heard reached the bots once."""
    sim.config = dataclasses.replace(sim.config, rate=0.0)
    if since is not None:
        lost = {name: n - since.get(name, 0) for name, n in unheard(sim).items() if n > since.get(name, 0)}
        assert not lost, f"messages generated while no reader was in the channel: {lost}"

    def missing() -> set[str]:
        return generated(sim) - set(delivered(*bots))

    try:
        await wait_for(lambda: not missing(), timeout, "every generated message delivered")
    except BaseException:
        lost = sorted(missing())
        raise AssertionError(
            f"{len(lost)} of {len(generated(sim))} messages never delivered: {lost[:5]}"
        ) from None
    twice = {i: n for i, n in delivered(*bots).items() if n > 1}
    assert not twice, f"{len(twice)} messages delivered more than once, e.g. {list(twice.items())[:5]}"
    return len(generated(sim))


def sim_conns(sim: TwitchSimulator) -> list[Any]:
    return sorted((c for c in sim.connections if c.login is not None and not c.closed), key=lambda c: c.id)


def read_twice(sim: TwitchSimulator) -> bool:
    """Whether every channel has two readers in it (backup readers: the whole fleet is up)."""
    return all(len(ch.members) == 2 for ch in sim.channels.values())


def worker_pids(status: dict[str, Any]) -> list[int]:
    return [int(w["pid"]) for w in status["workers"] if w.get("pid")]


async def replaced(c: TwitchCluster, pid: int, timeout: float = 30) -> None:
    """Until the status lists a worker in place of ``pid``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            pids = worker_pids(await c.status())
        except Exception:
            pids = []
        if pids and pid not in pids and len(pids) >= 2:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"worker {pid} was not replaced within {timeout} s")
        await asyncio.sleep(0.1)


async def test_twitch_cluster_with_backup_readers_delivers_every_message_once_through_faults(
    simulator: Any, twitch: Any, bots: Any
) -> None:
    channels = [f"chan{i}" for i in range(200)]
    sim = await simulator(channels=tuple(channels), rate=300.0, zipf=1.0, reconnect_grace=1.0, **SHORT)
    c = twitch(sim, channels, "--workers", "2", "--twitch-backup-readers", "--twitch-spare-readers", "0")
    status = await c.joined(400)
    await wait_for(lambda: read_twice(sim), 30, "every channel read twice")
    since = unheard(sim)
    readers = [r for r in status["shards"] if (r.get("detail") or {}).get("role") == "read"]
    assert len(readers) == 8
    assert {r["delivery"] for r in readers} == {"dedupe"}
    bot = bots(c.run_dir, "--member", "a")
    await bot.wait_ready()
    await wait_for(lambda: len(bot.events) > 500, 20, "traffic reaches the bot")

    # RECONNECT (make before break), then a drop without close: one connection at a time, each
    # read again by its replacement before the next fault (a channel's two readers both down
    # at once would lose what was said meanwhile: the JOIN limit makes a rejoin take seconds).
    for kind in ("reconnect", "drop"):
        target = sim_conns(sim)[0]
        sim.faults.apply(kind, target)
        # Healed by the simulator's own account (the cluster's reports lag by a second): the
        # faulted connection is gone and every channel has its two readers again.
        await wait_for(lambda t=target: t.closed and read_twice(sim), 60, f"the {kind} is over")

    # A worker killed with SIGKILL: the backups on the other worker read its channels meanwhile.
    before = worker_pids(await c.status())
    os.kill(before[0], signal.SIGKILL)
    await replaced(c, before[0])
    await wait_for(lambda: read_twice(sim), 60, "every channel read twice again")
    await c.joined(400, timeout=60)

    # The bot restarts; the durable group kept its events meanwhile.
    await bot.terminate()
    seen = len(bot.events)
    later = bots(c.run_dir, "--member", "b")
    await later.wait_ready()
    await wait_for(lambda: len(later.events) > 200, 20, "traffic reaches the new bot")
    count = await exactly_once(sim, bot, later, since=since)
    assert count > 3000
    assert seen > 0
    assert not sim.stats.violations


def joins_within_limit(sim: TwitchSimulator, limit: int = 20) -> list[str]:
    """Logins whose JOINs (one record per channel) exceed ``limit`` in any JOIN window of ``sim``."""
    window = sim.config.join_window
    by_login: dict[str, list[float]] = {}
    for j in sim.stats.joins:
        by_login.setdefault(str(j["account"]), []).append(float(j["time"]))
    over = []
    for login, times in by_login.items():
        times.sort()
        lo = 0
        for hi, t in enumerate(times):
            while t - times[lo] >= window:
                lo += 1
            if hi - lo + 1 > limit:
                over.append(login)
                break
    return over


async def test_twitch_cluster_joining_2000_channels_and_after_a_mass_reconnect_stays_within_the_join_limit(
    simulator: Any, twitch: Any
) -> None:
    channels = [f"ch{i}" for i in range(2000)]
    sim = await simulator(channels=tuple(channels), rate=50.0, reconnect_grace=2.0, **SHORT)
    c = twitch(sim, channels, "--workers", "2", "--twitch-spare-readers", "0")
    started = time.monotonic()
    await c.joined(2000, timeout=90)
    took = time.monotonic() - started
    # 40 anonymous logins of 50 channels each: 20 JOINs per window each (20, 20 then 10), so
    # two windows at best.
    assert took >= 2 * SHORT["join_window"]
    assert not sim.stats.violations, [(v["kind"], v["account"], v["time"]) for v in sim.stats.violations][:8]
    assert not joins_within_limit(sim)
    for conn in sim_conns(sim):
        sim.faults.apply("reconnect", conn)
    await wait_for(lambda: len(sim.stats.joins) >= 4000, 90, "every channel joined again")
    await c.joined(2000, timeout=60)
    assert not sim.stats.violations, [(v["kind"], v["account"], v["time"]) for v in sim.stats.violations][:8]
    assert not joins_within_limit(sim)


async def test_twitch_cluster_sending_over_the_limit_paces_and_a_suspended_channel_is_not_joined_in_a_loop(
    simulator: Any, twitch: Any, bots: Any
) -> None:
    channels = ["chan0", "chan1", "chan2", "chan3", "chan4", "gone"]
    sim = await simulator(channels=tuple(channels), suspended=frozenset({"gone"}), rate=0.0, **SHORT)
    c = twitch(sim, channels, "--workers", "2", "--twitch-accounts", "bot:oauth:abc", "--no-twitch-anonymous")
    status = await c.joined(5)
    failed = {ch for r in status["shards"] for ch in ((r.get("detail") or {}).get("failed") or {})}
    assert failed == {"gone"}
    bot = bots(c.run_dir, "--send", "26", "--send-to", "chan0,chan1,chan2,chan3,chan4")
    await wait_for(lambda: len(bot.sent) == 26, 90, "every send answered")
    assert [s for s in bot.sent if "error" in s] == []
    ids = {s["id"] for s in bot.sent}
    assert len(ids) == 26
    # The limit is 20 per window: 6 of them waited for the window (the first 20 go within 4 s,
    # at one per second per channel).
    window = SHORT["message_window"]
    assert sum(1 for s in bot.sent if s["took"] >= window * 25 / 30) >= 6
    delivered_ok = [m for m in sim.stats.messages if m["accepted"]]
    assert len(delivered_ok) == 26
    assert not sim.stats.violations
    # The suspended channel was tried once (retried hourly, not in a loop).
    assert sum(1 for j in sim.stats.joins if j.get("channel") == "gone") == 1
    # A stop keeps the durable groups for the next start (there are no sessions to keep).
    await c.stop(grace=20)
    from shardrunner.cluster import statefile

    assert dict(statefile.load_groups(c.run_dir)) == {"test": None}


async def test_twitch_cluster_when_the_login_is_refused_stops_in_one_sentence(
    simulator: Any, twitch: Any
) -> None:
    sim = await simulator(channels=("chan0",), accounts={"bot": "right"})
    c = twitch(sim, ["chan0"], "--twitch-accounts", "bot:wrong", "--no-twitch-anonymous", "--workers", "1")
    code = await c.exit_code(60)
    assert code == 1
    out = c.output()
    assert "bot" in out
    assert "wrong" not in out
    logins = [entry for entry in sim.stats.logins if entry.get("account") == "bot"]
    assert 1 <= len(logins) <= 2, "no login loop"


async def test_twitch_cluster_with_backup_readers_loses_nothing_through_a_rolling_reload(
    simulator: Any, twitch: Any, bots: Any
) -> None:
    channels = [f"chan{i}" for i in range(40)]
    sim = await simulator(channels=tuple(channels), rate=200.0)
    c = twitch(
        sim, channels, "--workers", "2", "--twitch-backup-readers", "--twitch-spare-readers", "0",
        "--twitch-channels-per-conn", "10",
    )  # fmt: skip
    await c.joined(80)
    since = unheard(sim)
    bot = bots(c.run_dir, "--member", "a")
    await bot.wait_ready()
    await wait_for(lambda: len(bot.events) > 200, 20, "traffic reaches the bot")
    before = set(worker_pids(await c.status()))
    result = await shardrunner_cli("reload", "--run-dir", str(c.run_dir), "--timeout", "120")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "reload done" in result.stdout

    async def replaced_all() -> bool:
        pids = set(worker_pids(await c.status()))
        return len(pids) == 2 and not pids & before

    await wait_for(replaced_all, 30, "every worker replaced")
    await wait_for(lambda: read_twice(sim), 60, "every channel read twice again")
    await c.joined(80)
    await exactly_once(sim, bot, since=since)
    assert not sim.stats.violations


async def shardrunner_cli(*args: str) -> Any:
    import subprocess
    import sys

    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "shardrunner", *args],
        capture_output=True,
        text=True,
        timeout=180,
    )
