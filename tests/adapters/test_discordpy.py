"""The discord.py adapter: a real discord.py bot fed by a fake shardrunner client (no network),
then (one process test) a real bot on ``shardrunner start --sim``, killed and started again."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import discord
import pytest
from discord.ext import commands

from harness.bots import BotProcess
from harness.cluster import ClusterProcess
from shardrunner.adapters.discordpy import Adapter, adapt
from shardrunner.control import call
from tests.adapters.dpy_fakes import (
    BOT_ID,
    FakeClient,
    channel,
    event,
    guild,
    message,
    ready,
    snowflake,
    user,
)
from tests.conftest import wait_for


class Recorder:
    """What a bot's handlers saw."""

    def __init__(self, bot: discord.Client) -> None:
        self.seen: Counter[str] = Counter()
        self.messages: list[int] = []
        self.joined: list[int] = []
        self.shards_ready: list[int] = []
        for name in ("ready", "guild_available", "guild_channel_create", "connect"):
            self._count(bot, name)

        @bot.event
        async def on_message(m: discord.Message) -> None:
            self.messages.append(m.id)

        @bot.event
        async def on_guild_join(g: discord.Guild) -> None:
            self.joined.append(g.id)

        @bot.event
        async def on_shard_ready(shard: int) -> None:
            self.shards_ready.append(shard)

    def _count(self, bot: discord.Client, name: str) -> None:
        async def handler(*args: Any) -> None:
            self.seen[name] += 1

        handler.__name__ = f"on_{name}"
        bot.event(handler)


@pytest.fixture
async def bots() -> AsyncIterator[list[discord.Client]]:
    made: list[discord.Client] = []
    yield made
    for bot in made:
        await bot.http.close()


async def make(bots: list[discord.Client], sharded: bool = True) -> discord.Client:
    cls = commands.AutoShardedBot if sharded else commands.Bot
    intents = discord.Intents.default()
    intents.message_content = True  # not members: no chunk requests to answer here
    bot = cls(command_prefix="!", intents=intents, guild_ready_timeout=0.05)
    await bot._async_setup_hook()
    bot._connection.user = discord.ClientUser(state=bot._connection, data=user(BOT_ID, bot=True))  # login's
    bots.append(bot)
    return bot


class World:
    """Two shards, each with one guild that READY listed; a channel created in shard 0's since."""

    def __init__(self) -> None:
        self.gid = [snowflake(0, 2), snowflake(1, 2)]
        self.cid = [snowflake(0, 2), snowflake(1, 2)]
        self.fake = FakeClient(2)
        self.conns = self.fake.conns
        c0, c1 = self.conns
        self.new_channel = snowflake(0, 2)
        self.state = [
            event(c0, "a", 1, "READY", ready(0, 2, [self.gid[0]], "a")),
            event(c0, "a", 2, "GUILD_CREATE", guild(self.gid[0], self.cid[0]), self.gid[0]),
            event(c0, "a", 5, "CHANNEL_CREATE", channel(self.new_channel, self.gid[0]), self.gid[0]),
            event(c1, "b", 1, "READY", ready(1, 2, [self.gid[1]], "b")),
            event(c1, "b", 2, "GUILD_CREATE", guild(self.gid[1], self.cid[1]), self.gid[1]),
        ]
        self.marks = {c0: ("a", 6), c1: ("b", 2)}


async def test_adapter_when_state_is_fetched_a_sharded_bot_starts_as_discordpy_would_with_every_guild(
    bots: list[discord.Client],
) -> None:
    w = World()
    fake = FakeClient(2, w.state, w.marks, ready=(0, 1))
    bot = await make(bots)
    seen = Recorder(bot)
    adapter = Adapter(bot, fake)  # type: ignore[arg-type]
    await adapter.connect()
    await asyncio.wait_for(bot.wait_until_ready(), 5)
    assert fake.started
    assert bot.is_ready()
    assert sorted(g.id for g in bot.guilds) == sorted(w.gid)
    assert bot.get_channel(w.new_channel) is not None, "the logged CHANNEL_CREATE is in the cache"
    await wait_for(lambda: len(seen.shards_ready) == 2, 5, "both shards ready")
    assert seen.seen["guild_available"] == 2
    assert seen.seen["ready"] == 1
    assert seen.seen["guild_channel_create"] == 0, "a logged event is state, not news"
    assert (bot.shard_count, sorted(bot.shards)) == (2, [0, 1])
    assert bot.latency == pytest.approx(0.0405)
    assert bot.get_guild(w.gid[1]).shard_id == 1  # type: ignore[union-attr]


async def test_adapter_when_live_events_come_skips_the_structural_ones_the_state_holds_and_parses_the_rest(
    bots: list[discord.Client],
) -> None:
    w = World()
    c0, c1 = w.conns
    fake = FakeClient(2, w.state, w.marks)
    bot = await make(bots)
    seen = Recorder(bot)
    adapter = Adapter(bot, fake)  # type: ignore[arg-type]
    await adapter.connect()
    await asyncio.wait_for(bot.wait_until_ready(), 5)  # a GUILD_CREATE before it is an availability
    joined = snowflake(1, 2)
    backlog = [
        event(c0, "old", 90, "GUILD_CREATE", guild(w.gid[0], w.cid[0]), w.gid[0]),  # an older session's
        event(c0, "a", 4, "MESSAGE_CREATE", message(501, w.cid[0], w.gid[0]), w.gid[0]),  # waited: news
        event(c0, "a", 5, "CHANNEL_CREATE", channel(w.new_channel, w.gid[0]), w.gid[0]),  # in the state
        event(c0, "a", 7, "CHANNEL_CREATE", channel(snowflake(0, 2), w.gid[0]), w.gid[0]),  # after the mark
        event(c1, "b", 3, "GUILD_CREATE", guild(joined, snowflake(1, 2), joined=True), joined),
        event(c0, "a", 8, "MESSAGE_CREATE", message(502, w.cid[0], w.gid[0]), w.gid[0]),
        # A killed bot's unacknowledged events, redelivered after newer ones: still in the state.
        event(c0, "a", 2, "GUILD_CREATE", guild(w.gid[0], w.cid[0]), w.gid[0]),
        # Shard 1 starts a new session: everything of it is news, whatever its seqs.
        event(c1, "c", 1, "READY", ready(1, 2, [w.gid[1]], "c")),
        event(c1, "c", 2, "GUILD_CREATE", guild(w.gid[1], w.cid[1]), w.gid[1]),
    ]
    parsed: list[tuple[str, int]] = []
    adapter.on_event = lambda e, done: parsed.append((e.name, e.seq)) if done else None
    for e in backlog:
        fake.live.put_nowait(e)
    feeding = asyncio.ensure_future(adapter.run())
    try:
        await wait_for(lambda: len(seen.messages) == 2 and bool(seen.joined), 5, "the messages and the join")
        await wait_for(lambda: seen.seen["guild_channel_create"] == 1, 5, "the new channel")
        await wait_for(lambda: len(parsed) == 6, 5, "the new session's events")
    finally:
        feeding.cancel()
    assert parsed == [
        ("MESSAGE_CREATE", 4),
        ("CHANNEL_CREATE", 7),
        ("GUILD_CREATE", 3),
        ("MESSAGE_CREATE", 8),
        ("READY", 1),
        ("GUILD_CREATE", 2),
    ]
    assert (adapter.skipped, adapter.parsed) == (3, 6)
    assert w.conns[1] not in adapter.marks
    assert sorted(seen.messages) == [501, 502]
    assert seen.joined == [joined]
    assert len(bot.guilds) == 3


async def test_adapter_when_the_cluster_keeps_no_state_says_so_once_and_readies_the_ready_shards_empty(
    bots: list[discord.Client], caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeClient(2, ready=(0, 1))
    bot = await make(bots)
    seen = Recorder(bot)
    with caplog.at_level(logging.WARNING, "shardrunner.adapters.discordpy"):
        await Adapter(bot, fake).connect()  # type: ignore[arg-type]
    assert sum("state_cache is off" in r.message for r in caplog.records) == 1
    await asyncio.wait_for(bot.wait_until_ready(), 5)
    assert list(bot.guilds) == []
    assert seen.seen["ready"] == 1
    late = snowflake(0, 2)
    bot._connection.parsers["GUILD_CREATE"](guild(late, snowflake(0, 2), joined=True))
    await wait_for(lambda: seen.joined == [late], 5, "a guild seen created live")


async def test_adapter_when_a_ready_shards_state_holds_no_ready_makes_one_up_as_the_status_says_ready(
    bots: list[discord.Client], caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeClient(2, [], {c: ("", 0) for c in FakeClient(2).conns}, ready=(0,))
    bot = await make(bots)
    seen = Recorder(bot)
    adapter = Adapter(bot, fake)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, "shardrunner.adapters.discordpy"):
        await adapter.connect()
    assert not any("state_cache is off" in r.message for r in caplog.records), "it is on: kept, empty"
    assert adapter.readied == {0}
    assert adapter.marks == {}, "an empty mark holds back nothing"
    fake.discovery.status["shards"][1]["state"] = "ready"  # a later status (it lags the shards)
    adapter._ready_missing(await adapter._status())
    assert adapter.readied == {0, 1}
    await asyncio.wait_for(bot.wait_until_ready(), 5)
    assert seen.seen["ready"] == 1


async def test_adapter_when_the_bot_is_a_plain_client_keeps_every_shards_guilds_across_their_readies(
    bots: list[discord.Client],
) -> None:
    w = World()
    fake = FakeClient(2, w.state, w.marks)
    bot = await make(bots, sharded=False)
    seen = Recorder(bot)
    await Adapter(bot, fake).connect()  # type: ignore[arg-type]
    await asyncio.wait_for(bot.wait_until_ready(), 5)
    assert sorted(g.id for g in bot.guilds) == sorted(w.gid), "the second READY must not empty the cache"
    assert seen.seen["ready"] == 1
    assert seen.seen["connect"] == 2
    assert bot.shard_count == 2
    assert bot.latency == pytest.approx(0.0405)


async def test_adapter_when_the_bot_sends_the_commands_go_to_the_shards_through_the_bus(
    bots: list[discord.Client],
) -> None:
    w = World()
    fake = FakeClient(2, w.state, w.marks)
    bot = await make(bots)
    await Adapter(bot, fake).connect()  # type: ignore[arg-type]
    await bot.change_presence(status=discord.Status.dnd)
    assert [(op, shard, d["status"]) for op, d, shard, _ in fake.sent] == [(3, 0, "dnd"), (3, 1, "dnd")]
    fake.sent.clear()
    g = bot.get_guild(w.gid[1])
    assert g is not None
    await g.change_voice_state(channel=None, self_mute=True)
    ws = bot._connection._get_websocket(w.gid[1])
    await ws.request_chunks(w.gid[1], "ab", limit=5, nonce="n")
    assert fake.sent == [
        (
            4,
            {"guild_id": w.gid[1], "channel_id": None, "self_mute": True, "self_deaf": False},
            None,
            w.gid[1],
        ),
        (
            8,
            {"guild_id": w.gid[1], "presences": False, "limit": 5, "nonce": "n", "query": "ab"},
            None,
            w.gid[1],
        ),
    ]
    await bot.close()
    assert len(fake.sent) == 2, "closing the bot closes none of the cluster's sessions"


async def test_adapt_when_the_bot_starts_runs_it_on_the_stream_until_it_closes(
    bots: list[discord.Client],
) -> None:
    w = World()
    fake = FakeClient(2, w.state, w.marks)
    bot = await make(bots)
    logins: list[str] = []

    async def login(token: str) -> None:
        logins.append(token)

    bot.login = login  # type: ignore[method-assign]

    @bot.command()
    async def ping(ctx: commands.Context[Any]) -> None:
        await ctx.bot.change_presence(activity=discord.Game("pong"))
        await ctx.bot.close()

    adapt(bot, client=fake)
    running = asyncio.ensure_future(bot.start("a-token"))
    await asyncio.wait_for(bot.wait_until_ready(), 5)
    c0 = w.conns[0]
    fake.live.put_nowait(
        event(c0, "a", 9, "MESSAGE_CREATE", message(9, w.cid[0], w.gid[0], "!ping"), w.gid[0])
    )
    await asyncio.wait_for(running, 5)
    assert logins == ["a-token"]
    assert fake.closed
    assert bot.is_closed()
    assert [(op, d["activities"][0]["name"]) for op, d, _, _ in fake.sent] == [(3, "pong"), (3, "pong")]


# -- one real run: shardrunner start --sim, a discord.py bot killed and started again ------------
class DpyBot(BotProcess):
    """tests/adapters/dpy_bot.py as a process, its lines sorted as they come."""

    def __init__(self, run_dir: Path, api: str) -> None:
        self.handled: list[tuple[str, int, str, int]] = []
        self.messages: list[int] = []
        self.joins: list[int] = []
        self.available: list[int] = []
        self.commands: list[int] = []
        self.errors: list[str] = []
        self.guilds = -1
        super().__init__("tests.adapters.dpy_bot", run_dir, "--api", api)

    def on_record(self, record: dict[str, Any]) -> None:
        if "h" in record:
            session, seq, name, parsed = record["h"]
            self.handled.append((session, seq, name, parsed))
        elif "message" in record:
            self.messages.append(record["message"])
        elif "join" in record:
            self.joins.append(record["join"])
        elif "available" in record:
            self.available.append(record["available"])
        elif "command" in record:
            self.commands.append(record["command"])
        elif "error" in record:
            self.errors.append(record["error"])
        elif record.get("ready"):
            self.guilds = record["guilds"]
            super().on_record(record)

    def parsed(self, name: str) -> set[tuple[str, int]]:
        """The ``(session, seq)`` of every event of this name the bot's parsers ran."""
        return {(s, q) for s, q, n, p in self.handled if p and n == name}


async def sim_get(api: str, path: str) -> Any:
    async with aiohttp.ClientSession() as http, http.get(api.removesuffix("/api/v10") + path) as r:
        return await r.json()


async def sim_post(api: str, path: str, body: dict[str, Any]) -> Any:
    async with (
        aiohttp.ClientSession() as http,
        http.post(api.removesuffix("/api/v10") + path, json=body) as r,
    ):
        assert r.status == 200, await r.text()
        return await r.json()


async def test_discordpy_bot_when_killed_and_started_again_loses_nothing_and_its_cache_holds_every_guild(
    tmp_path: Path,
) -> None:
    cluster = ClusterProcess(
        None, "--sim", "--state-cache", "--identify-window", "0.05", "--groups", "dpy-test",
        token=None, run_dir=tmp_path / "run", shards=2,
    )  # fmt: skip
    bots: list[DpyBot] = []
    try:
        await cluster.wait_ready(timeout=20)
        endpoints = await call(cluster.run_dir, "endpoints", timeout=5)
        api = endpoints["platforms"]["discord"]["gateway_url"].replace("ws://", "http://") + "/api/v10"
        await sim_post(api, "/_sim/config", {"track_dispatches": True})
        total = (await sim_get(api, "/_sim/stats"))["guild_total"]

        first = DpyBot(cluster.run_dir, api)
        bots.append(first)
        await first.wait_ready(20)
        assert first.guilds == total, "the first bot's cache holds every guild (READY came before it)"
        joined = (await sim_post(api, "/_sim/guilds", {"add": 2}))["added"]
        await wait_for(lambda: sorted(first.joins) == sorted(int(g) for g in joined), 10, "on_guild_join")
        await wait_for(lambda: len(first.commands) >= 1, 10, "a gg command answered")
        # Quiet before the kill, so that no handler of the first bot is cut short (that is the
        # documented limit: an event whose parser ran counts as processed).
        await sim_post(api, "/_sim/config", {"rate": 0})
        await wait_for(lambda: len(set(first.messages)) == len(first.parsed("MESSAGE_CREATE")), 10, "quiet")
        first.kill()
        await sim_post(api, "/_sim/config", {"rate": 20})

        # While no bot runs: events queue in the durable group, a guild joins.
        generated = (await sim_get(api, "/_sim/stats"))["dispatches_generated"]
        (late,) = (await sim_post(api, "/_sim/guilds", {"add": 1}))["added"]

        async def moved_on() -> bool:
            return bool((await sim_get(api, "/_sim/stats"))["dispatches_generated"] >= generated + 30)

        await wait_for(moved_on, 10, "traffic while no bot runs")

        second = DpyBot(cluster.run_dir, api)
        bots.append(second)
        await second.wait_ready(20)
        assert second.guilds == total + 3, "the restarted bot's cache holds every guild, via fetch_state"
        await sim_post(api, "/_sim/config", {"rate": 0})

        # Every world dispatch of every tracked session was handled by one bot or the other.
        tracked = {
            (s["session_id"], s["first_seq"] + i)
            for s in (await sim_get(api, "/_sim/dispatches"))["sessions"]
            for i, ident in enumerate(s["ids"])
            if ident
        }

        def handled() -> set[tuple[str, int]]:
            return {(s, q) for b in bots for s, q, _, _ in b.handled}

        await wait_for(lambda: tracked <= handled(), 10, "every tracked dispatch handled")
        parsed = [(s, q, n) for b in bots for s, q, n, p in b.handled if p]
        messages = {(s, q) for s, q, n in parsed if n == "MESSAGE_CREATE"}
        await wait_for(
            lambda: len(set(second.messages)) == len(second.parsed("MESSAGE_CREATE")), 10, "handlers"
        )
        assert len(set(first.messages) | set(second.messages)) == len(messages), "on_message for each"
        # A guild joined while no bot ran is in the fetched state (on_guild_available); the first
        # bot's joins, redelivered to the second if unacknowledged at the kill, are not news again.
        assert second.joins == []
        assert int(late) in second.available
        skipped = [n for b in bots for _, _, n, p in b.handled if not p]
        assert set(skipped) <= {"READY", "GUILD_CREATE", "GUILD_MEMBER_UPDATE"}, "only what the state holds"
        stats = await sim_get(api, "/_sim/stats")
        presences = {c["d"]["activities"][0]["name"]: c["shard"] for c in stats["commands"] if c["op"] == 3}
        assert {f"gg {m}" for b in bots for m in b.commands} <= set(presences), "sent through the bus"
        assert not first.errors + second.errors
    finally:
        for bot in bots:
            bot.kill()
        await cluster.stop()
