"""The hikari adapter with a fake client: the shards it gives the bot, the state and the stream it
feeds into hikari's event manager, the latency it reads, and how the bot's close ends it.

The payloads are the simulator's (its entity factory), the bot is a real ``hikari.GatewayBot``.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import hikari
import msgspec
import pytest

from shardrunner.adapters import hikari as adapter_mod
from shardrunner.adapters.hikari import HikariAdapter
from shardrunner.client import ClientError, ClientEvent
from shardrunner.client.discord import active_set
from shardrunner.protocol.envelope import Event
from shardrunner.protocol.keys import ConnKey
from shardrunner.sim.discord.config import SimConfig
from shardrunner.sim.discord.server import Simulator
from shardrunner.sim.discord.world import World
from tests.cluster.conftest import Cluster
from tests.conftest import TOKEN, SimFactory, http_json, wait_for

SHARDS = 2


class FakeClient:
    """The part of ``shardrunner.client.Client`` the adapter uses, with a scripted stream."""

    def __init__(self, conns: list[ConnKey], state: list[ClientEvent] | None = None) -> None:
        self.conns = conns
        self.platforms: dict[str, Any] = {}
        self.discovered = True
        self.stream: asyncio.Queue[ClientEvent] = asyncio.Queue()
        self.state = state
        #: Per connection, the (session, seq) the last fetched state reflects (as Client's).
        self.state_marks: dict[ConnKey, tuple[str, int]] = {}
        self.sent: list[tuple[int, Any, int | None, int | None]] = []
        self.status: dict[str, Any] = {"shards": []}
        self.started = self.closed = False
        self.discovery = self

    @property
    def num_shards(self) -> int:
        return len(active_set(self.conns, self.platforms))

    async def start(self) -> None:
        self.started = True

    async def close(self) -> None:
        self.closed = True

    async def next_event(self) -> ClientEvent:
        return await self.stream.get()

    async def send(self, op: int, d: Any, *, shard: int | None = None, guild: int | None = None) -> None:
        self.sent.append((op, d, shard, guild))

    async def fetch_state(self, platform: str = "discord", timeout: float = 30.0) -> list[ClientEvent]:
        assert platform == "discord"
        if self.state is None:
            raise ClientError("the cluster keeps no state (start it with the state cache on)")
        for e in self.state:
            self.state_marks[e.conn] = (e.session, e.seq)
        return self.state

    async def ask(self, command: str, *, timeout: float = 5.0) -> Any:
        assert command == "status"
        return self.status


class Stream:
    """Discord events of each shard of one set, numbered per session as a gateway would."""

    def __init__(self, shards: int = SHARDS, generation: int = 0) -> None:
        self.world = World(SimConfig(shards=shards, guilds_per_shard=2, max_members=40, seed=3))
        self.conns = [ConnKey("discord", generation, i, shards) for i in range(shards)]
        self.seqs = Counter[int]()

    def event(self, shard: int, name: str, d: Any, key: int | None = None) -> ClientEvent:
        self.seqs[shard] += 1
        raw = d if isinstance(d, bytes) else msgspec.json.encode(d)
        return ClientEvent(Event(self.conns[shard], f"s{shard}", self.seqs[shard], name, key, raw), False)

    def ready(self, shard: int) -> ClientEvent:
        count = len(self.conns)
        d = self.world.entities.ready(
            session_id=f"s{shard}",
            resume_gateway_url="ws://127.0.0.1:1",
            shard_id=shard,
            num_shards=count,
            guild_ids=self.world.guilds_for(shard, count),
        )
        return self.event(shard, "READY", d)

    def guild_creates(self, shard: int) -> list[ClientEvent]:
        gids = self.world.guilds_for(shard, len(self.conns))
        return [self.event(shard, "GUILD_CREATE", self.world.guild_create(g, 250), g) for g in gids]

    def message(self, shard: int) -> ClientEvent:
        gid = self.world.guilds_for(shard, len(self.conns))[0]
        return self.event(
            shard, "MESSAGE_CREATE", self.world.entities.event("MESSAGE_CREATE", self.world.model(gid)), gid
        )

    def startup(self) -> list[ClientEvent]:
        return [e for i in range(len(self.conns)) for e in [self.ready(i), *self.guild_creates(i)]]


class Seen:
    """What the bot's listeners got."""

    def __init__(self, bot: hikari.GatewayBot) -> None:
        self.lifecycle: list[str] = []
        self.ready: list[int] = []
        self.guilds: list[tuple[int, int]] = []
        self.joined: list[int] = []
        self.messages: list[tuple[int, int]] = []

        async def on_lifecycle(event: hikari.Event) -> None:
            self.lifecycle.append(type(event).__name__)

        async def on_ready(event: hikari.ShardReadyEvent) -> None:
            self.ready.append(event.shard.id)

        async def on_guild(event: hikari.GuildAvailableEvent | hikari.GuildJoinEvent) -> None:
            self.guilds.append((int(event.guild_id), event.shard.id))
            if isinstance(event, hikari.GuildJoinEvent):
                self.joined.append(int(event.guild_id))

        async def on_message(event: hikari.GuildMessageCreateEvent) -> None:
            self.messages.append((int(event.message_id), event.shard.id))

        for kind in (hikari.StartingEvent, hikari.StartedEvent, hikari.StoppingEvent, hikari.StoppedEvent):
            bot.subscribe(kind, on_lifecycle)
        bot.subscribe(hikari.ShardReadyEvent, on_ready)
        bot.subscribe(hikari.GuildAvailableEvent, on_guild)
        bot.subscribe(hikari.GuildJoinEvent, on_guild)
        bot.subscribe(hikari.GuildMessageCreateEvent, on_message)


def new_bot() -> hikari.GatewayBot:
    return hikari.GatewayBot(TOKEN, banner=None, logs=None, suppress_optimization_warning=True)


@pytest.fixture
async def bot() -> AsyncIterator[hikari.GatewayBot]:
    made = new_bot()
    yield made
    if made.is_alive:
        await asyncio.wait_for(made.close(), 10)


async def start(bot: hikari.GatewayBot, client: FakeClient, **options: Any) -> HikariAdapter:
    options.setdefault("status_every", None)
    return await adapter_mod.start(bot, client=client, **options)  # type: ignore[arg-type]


async def test_start_when_the_cluster_runs_two_shards_gives_the_bot_those_shards(
    bot: hikari.GatewayBot,
) -> None:
    stream = Stream()
    client = FakeClient(stream.conns, state=[])
    seen = Seen(bot)
    adapter = await start(bot, client)
    assert client.started
    assert bot.is_alive
    assert sorted(bot.shards) == [0, 1]
    assert bot.shard_count == SHARDS
    assert all(s.shard_count == SHARDS and s.is_alive for s in bot.shards.values())
    assert adapter.shards[1] is bot.shards[1]
    await wait_for(lambda: seen.lifecycle == ["StartingEvent", "StartedEvent"], 5, "starting, started")
    with pytest.raises(hikari.ComponentStateConflictError, match="already running"):
        await start(bot, FakeClient(stream.conns, state=[]))


async def test_feed_when_state_then_stream_every_listener_fires_once_per_event(
    bot: hikari.GatewayBot,
) -> None:
    stream = Stream()
    state = stream.startup()
    client = FakeClient(stream.conns, state=state)
    seen = Seen(bot)
    adapter = await start(bot, client)
    guilds = set(stream.world.guild_ids)
    await wait_for(lambda: len(seen.guilds) == len(guilds), 5, "GuildAvailableEvent for every guild")
    assert set(bot.cache.get_guilds_view()) == guilds
    assert sorted(seen.ready) == [0, 1]
    assert all(shard == (gid >> 22) % SHARDS for gid, shard in seen.guilds)
    assert int(bot.shards[0].get_user_id()) == stream.world.bot_id
    # The group's queue still holds the live copies of what the state gave (same session and seq),
    # and a message from before the state's last seq that the state does not hold.
    copies = [e for e in state if e.conn.shard == 0]
    message = stream.message(0)
    client.stream.put_nowait(copies[0])
    client.stream.put_nowait(copies[1])
    message.seq = copies[-1].seq - 1  # older than the state's last: still new to the bot
    client.stream.put_nowait(message)
    later = [stream.message(1), stream.message(0)]
    for e in later:
        client.stream.put_nowait(e)
    await wait_for(lambda: len(seen.messages) == 3, 5, "GuildMessageCreateEvent for each message")
    assert sorted(shard for _, shard in seen.messages) == [0, 0, 1]
    assert adapter.skipped == 2
    assert adapter.fed == len(state) + 3
    assert len(seen.guilds) == len(guilds)
    assert sorted(seen.ready) == [0, 1]


async def test_feed_when_a_guild_joins_live_fires_guild_join_and_caches_it(bot: hikari.GatewayBot) -> None:
    stream = Stream()
    client = FakeClient(stream.conns, state=stream.startup())
    seen = Seen(bot)
    await start(bot, client)
    gid = stream.world.add_guild()
    shard = (gid >> 22) % SHARDS
    d = msgspec.json.decode(stream.world.guild_create(gid, 250))
    d.pop("unavailable", None)  # a join: the guild was not in READY
    client.stream.put_nowait(stream.event(shard, "GUILD_CREATE", d, gid))
    await wait_for(lambda: bot.cache.get_guild(gid) is not None, 5, "the joined guild cached")
    await wait_for(lambda: (gid, shard) in seen.guilds, 5, "GuildJoinEvent")
    assert seen.joined == [gid]


async def test_feed_when_an_event_is_twitch_s_or_unknown_to_hikari_goes_on(bot: hikari.GatewayBot) -> None:
    stream = Stream()
    client = FakeClient(stream.conns, state=stream.startup())
    seen = Seen(bot)
    adapter = await start(bot, client)
    fed = adapter.fed
    twitch = ClientEvent(Event(ConnKey("twitch", 0, 0, 1), "t", 1, "PRIVMSG", "chan", b"x"), False)
    client.stream.put_nowait(twitch)
    client.stream.put_nowait(stream.event(0, "SOMETHING_DISCORD_ADDS_LATER", {"x": 1}))
    client.stream.put_nowait(stream.message(0))
    await wait_for(lambda: len(seen.messages) == 1, 5, "the message after them")
    assert adapter.fed == fed + 2  # the unknown one was handed on (hikari ignores it), Twitch's not


async def test_feed_when_an_event_cannot_be_taken_logs_it_and_goes_on(
    bot: hikari.GatewayBot, caplog: pytest.LogCaptureFixture
) -> None:
    stream = Stream()
    client = FakeClient(stream.conns, state=stream.startup())
    seen = Seen(bot)
    await start(bot, client)
    client.stream.put_nowait(stream.event(0, "READY", {"v": 10}))  # no user: the adapter's KeyError
    client.stream.put_nowait(stream.message(0))
    await wait_for(lambda: len(seen.messages) == 1, 5, "the message after it")
    assert "could not be handed to hikari" in caplog.text
    assert bot.is_alive


async def test_start_when_the_cluster_keeps_no_state_runs_on_the_stream_alone(bot: hikari.GatewayBot) -> None:
    stream = Stream()
    client = FakeClient(stream.conns, state=None)
    seen = Seen(bot)
    await start(bot, client)
    for e in stream.startup():
        client.stream.put_nowait(e)
    await wait_for(lambda: len(bot.cache.get_guilds_view()) == len(stream.world.guild_ids), 5, "guilds")
    assert sorted(seen.ready) == [0, 1]


async def test_start_when_no_discord_shard_runs_raises_and_leaves_the_bot_stopped(
    bot: hikari.GatewayBot,
) -> None:
    client = FakeClient([], state=[])
    with pytest.raises(ClientError, match="no Discord shards"):
        await start(bot, client, shards_timeout=0.2)
    assert client.closed
    assert not bot.is_alive


async def test_bot_close_when_running_stops_the_feed_and_closes_the_client(bot: hikari.GatewayBot) -> None:
    stream = Stream()
    client = FakeClient(stream.conns, state=stream.startup())
    seen = Seen(bot)
    adapter = await start(bot, client)
    joined = asyncio.ensure_future(bot.join())
    await asyncio.wait_for(bot.close(), 10)
    await asyncio.wait_for(joined, 5)
    await asyncio.wait_for(adapter.join(), 5)
    assert client.closed
    assert not bot.is_alive
    assert dict(bot.shards) == {}
    assert seen.lifecycle == ["StartingEvent", "StartedEvent", "StoppingEvent", "StoppedEvent"]
    fed = adapter.fed
    client.stream.put_nowait(stream.message(0))
    await asyncio.sleep(0)
    assert adapter.fed == fed


async def test_bot_sends_when_routed_by_guild_go_to_the_shard_that_owns_it(bot: hikari.GatewayBot) -> None:
    stream = Stream()
    client = FakeClient(stream.conns, state=stream.startup())
    await start(bot, client)
    gid = stream.world.guilds_for(1, SHARDS)[0]
    await bot.update_voice_state(gid, None)
    await bot.update_presence(status=hikari.Status.IDLE)
    assert client.sent[0] == (4, {"guild_id": str(gid), "channel_id": None}, 1, None)
    assert sorted((op, shard) for op, _, shard, _ in client.sent[1:]) == [(3, 0), (3, 1)]


async def test_heartbeat_latency_when_the_status_says_is_the_workers_measure(bot: hikari.GatewayBot) -> None:
    stream = Stream()
    client = FakeClient(stream.conns, state=stream.startup())
    client.status = {
        "shards": [
            {"platform": "discord", "generation": 0, "shard": 0, "state": "ready", "latency_ms": 40.0},
            {"platform": "discord", "generation": 0, "shard": 1, "state": "resuming", "latency_ms": None},
            {"platform": "twitch", "generation": 0, "shard": 0, "state": "ready", "latency_ms": 900.0},
        ]
    }
    adapter = await start(bot, client, status_every=0.05)
    assert math.isclose(bot.heartbeat_latencies[0], 0.04)
    assert math.isclose(bot.heartbeat_latency, 0.04)  # hikari's mean leaves the unknown one out
    assert math.isnan(bot.heartbeat_latencies[1])
    assert bot.shards[0].is_connected
    assert not bot.shards[1].is_connected
    client.status["shards"][1].update(state="ready", latency_ms=60.0)
    await wait_for(lambda: math.isclose(bot.heartbeat_latency, 0.05), 5, "the next status read")
    assert adapter.shards[1].is_connected


async def test_shards_when_the_cluster_reshards_follow_the_set_that_delivers(bot: hikari.GatewayBot) -> None:
    old = Stream()
    client = FakeClient(old.conns, state=old.startup())
    seen = Seen(bot)
    adapter = await start(bot, client)
    new = Stream(shards=4, generation=1)
    client.conns = sorted([*old.conns, *new.conns])
    message = new.message(3)
    client.stream.put_nowait(message)
    await wait_for(lambda: len(seen.messages) == 1, 5, "the new set's message")
    assert bot.shard_count == 4
    assert sorted(bot.shards) == [0, 1, 2, 3]
    assert seen.messages[0][1] == 3
    # A late event of the old set: handed on with the new set's shard of its guild.
    late = old.message(1)
    client.stream.put_nowait(late)
    await wait_for(lambda: len(seen.messages) == 2, 5, "the old set's late message")
    assert late.guild_id is not None
    assert seen.messages[1][1] == (late.guild_id >> 22) % 4
    assert int(adapter.shards[2].get_user_id()) == old.world.bot_id


# -- a real hikari bot on a real cluster --------------------------------------------------------
def sim_record(sim: Simulator) -> tuple[dict[int, int], set[int]]:
    """What the simulator sent on its live sessions: each guild message's id with its shard, and the
    guilds of the GUILD_CREATEs (decoded from every session's dispatch log)."""
    messages: dict[int, int] = {}
    guilds: set[int] = set()
    for session in sim.sessions.values():
        if session.ended is not None:
            continue
        for seq in range(1, session.last_seq + 1):
            payload = msgspec.json.decode(session.payload(seq))
            d = payload["d"]
            if payload["t"] == "MESSAGE_CREATE" and d.get("guild_id"):
                messages[int(d["id"])] = session.shard_id
            elif payload["t"] == "GUILD_CREATE":
                guilds.add(int(d["id"]))
    return messages, guilds


async def add_guilds(sim: Simulator, n: int) -> set[int]:
    status, body, _ = await http_json(sim, "POST", "/_sim/guilds", {"add": n})
    assert status == 200, body
    return {int(g) for g in body["added"]}


@pytest.mark.timeout(60)
async def test_hikari_bot_when_run_on_a_cluster_and_restarted_gets_every_message_once_and_every_guild(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    """A GatewayBot with message and guild listeners on `shardrunner start` (2 shards) against the
    simulator, closed and started again (a new GatewayBot, same group) while the gateway goes on:
    between them their listeners got every guild message of the simulator's logs once, each bot
    cached every guild and saw each shard's READY (the second one with the guilds that joined and
    without the one that left while no bot ran), and the bot's presence went out on each shard."""
    sim = await sim_factory(
        shards=SHARDS,
        guilds_per_shard=3,
        rate=40,
        identify_window=0.1,
        heartbeat_interval_ms=1000,
        max_members=40,
    )
    args = ["--shards", str(SHARDS), "--workers", "1", "--groups", "hik", "--state-cache"]
    cluster = Cluster(sim, tmp_path / "run", *args)
    bots: list[hikari.GatewayBot] = []
    try:
        await cluster.ready(SHARDS)

        async def run_bot() -> Seen:
            bot = hikari.GatewayBot(
                TOKEN,
                rest_url=sim.url + "/api/v10",
                banner=None,
                logs=None,
                suppress_optimization_warning=True,
            )
            bots.append(bot)
            seen = Seen(bot)
            await adapter_mod.start(bot, group="hik", run_dir=cluster.run_dir, status_every=0.5)
            guilds = set(sim.world.guild_ids)
            await wait_for(lambda: set(bot.cache.get_guilds_view()) == guilds, 10, "every guild cached")
            await wait_for(lambda: {g for g, _ in seen.guilds} >= guilds, 10, "GuildAvailableEvent for each")
            await wait_for(lambda: sorted(seen.ready) == list(range(SHARDS)), 10, "ShardReadyEvent for each")
            assert len(seen.guilds) == len(set(seen.guilds)), "a guild event fired twice"
            assert all(shard == (gid >> 22) % SHARDS for gid, shard in seen.guilds)
            return seen

        first = await run_bot()
        await wait_for(lambda: len(first.messages) >= 15, 10, "messages in the first bot")
        assert bots[0].shard_count == SHARDS
        await wait_for(lambda: not math.isnan(bots[0].heartbeat_latency), 10, "a heartbeat latency")
        joined = await add_guilds(sim, 2)
        # A join's GUILD_CREATE has no "unavailable" (as on Discord): hikari calls it a GuildJoinEvent.
        await wait_for(lambda: joined <= set(first.joined), 10, "a GuildJoinEvent for each join")
        assert joined <= set(bots[0].cache.get_guilds_view())
        await asyncio.wait_for(bots[0].close(), 10)
        # While no bot runs: guilds join and one leaves (the next bot's cache must say so).
        joined |= await add_guilds(sim, 2)
        gone = sim.world.guild_ids[0]
        status, body, _ = await http_json(sim, "POST", "/_sim/guilds", {"remove_ids": [str(gone)]})
        assert status == 200, body
        # The gateway goes on while no bot runs: the group keeps what comes meanwhile.
        marks = {s.id: s.last_seq for s in sim.sessions.values() if s.ended is None}
        await wait_for(
            lambda: all(sim.sessions[sid].last_seq >= seq + 40 for sid, seq in marks.items()),
            10,
            "1 s of traffic",
        )
        second = await run_bot()
        await bots[1].update_presence(status=hikari.Status.IDLE)
        sim.config = sim.config.replace(rate=0)
        expected, guilds = sim_record(sim)
        assert guilds - {gone} == set(sim.world.guild_ids)
        assert gone not in bots[1].cache.get_guilds_view()
        assert joined <= set(bots[1].cache.get_guilds_view())
        got = [*first.messages, *second.messages]

        def complete() -> bool:
            got[:] = [*first.messages, *second.messages]
            return {m for m, _ in got} >= set(expected)

        await wait_for(complete, 15, "every guild message of the simulator's logs")
        assert len(got) == len(expected), "a message reached the listeners twice"
        assert dict(got) == expected  # each on the shard that sent it
        assert len(second.messages) > 0
        presences = [c for c in sim.stats()["commands"] if c["op"] == 3]
        assert sorted(c["shard"][0] for c in presences) == list(range(SHARDS))
        assert all(c["d"]["status"] == "idle" for c in presences)
    finally:
        for bot in bots:
            if bot.is_alive:
                await asyncio.wait_for(bot.close(), 10)
        await cluster.stop(grace=20)


class EndingClient(FakeClient):
    """A stream that breaks after what it was given."""

    async def next_event(self) -> ClientEvent:
        if self.stream.empty():
            raise RuntimeError("the stream broke")
        return self.stream.get_nowait()


def test_run_when_the_stream_breaks_closes_the_bot_and_returns() -> None:
    stream = Stream()
    client = EndingClient(stream.conns, state=stream.startup())
    bot = new_bot()
    seen = Seen(bot)
    client.stream.put_nowait(stream.message(0))
    adapter_mod.run(bot, client=client, status_every=None)  # type: ignore[arg-type]
    assert client.closed
    assert not bot.is_alive
    assert len(seen.messages) == 1
    assert seen.lifecycle == ["StartingEvent", "StartedEvent", "StoppingEvent", "StoppedEvent"]


def test_run_when_sigterm_comes_closes_the_bot_and_returns() -> None:
    stream = Stream()
    client = FakeClient(stream.conns, state=stream.startup())
    bot = new_bot()
    seen = Seen(bot)

    async def on_started(_: hikari.StartedEvent) -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # run() handles it from before the bot starts

    bot.subscribe(hikari.StartedEvent, on_started)
    adapter_mod.run(bot, client=client, status_every=None)  # type: ignore[arg-type]
    assert client.closed
    assert not bot.is_alive
    assert seen.lifecycle[-2:] == ["StoppingEvent", "StoppedEvent"]


async def test_shards_when_a_new_set_delivers_before_the_switch_stay_the_old_set(
    bot: hikari.GatewayBot,
) -> None:
    old = Stream()
    client = FakeClient(old.conns, state=old.startup())
    seen = Seen(bot)
    await start(bot, client)
    new = Stream(shards=4, generation=1)
    client.conns = sorted([*old.conns, *new.conns])
    client.platforms = {"discord": {"generation": 0}}  # the endpoints answer: set 0 still delivers
    message = new.message(3)
    client.stream.put_nowait(message)
    await wait_for(lambda: len(seen.messages) == 1, 5, "the new set's message")
    assert bot.shard_count == SHARDS
    assert message.guild_id is not None
    assert seen.messages[0][1] == (message.guild_id >> 22) % SHARDS


def renamed(stream: Stream, gid: int, name: str) -> Any:
    d = msgspec.json.decode(stream.world.guild_create(gid, 250))
    d["name"] = name
    return d


async def test_feed_state_when_structural_events_follow_the_guilds_updates_the_cache_without_listeners(
    bot: hikari.GatewayBot,
) -> None:
    stream = Stream()
    gid = stream.world.guilds_for(0, SHARDS)[0]
    state = [*stream.startup(), stream.event(0, "GUILD_UPDATE", renamed(stream, gid, "Renamed"), gid)]
    client = FakeClient(stream.conns, state=state)
    seen = Seen(bot)
    updates: list[int] = []

    async def on_update(event: hikari.GuildUpdateEvent) -> None:
        updates.append(int(event.guild_id))

    bot.subscribe(hikari.GuildUpdateEvent, on_update)
    await start(bot, client)
    await wait_for(lambda: len(seen.guilds) == len(stream.world.guild_ids), 5, "a guild event for each")
    guild = bot.cache.get_guild(gid)
    assert guild is not None
    assert guild.name == "Renamed"
    # A live update is news: its listener fires (so the one of the state would have, had it run).
    client.stream.put_nowait(stream.event(0, "GUILD_UPDATE", renamed(stream, gid, "Live"), gid))
    await wait_for(lambda: updates == [gid], 5, "GuildUpdateEvent for the live update")
    assert bot.cache.get_guild(gid).name == "Live"  # type: ignore[union-attr]


async def test_feed_when_a_state_event_is_redelivered_after_newer_ones_skips_it(
    bot: hikari.GatewayBot,
) -> None:
    stream = Stream()
    gid = stream.world.guilds_for(0, SHARDS)[0]
    # Shard 0's session: seq 1 an update the cache folded into the guild's GUILD_CREATE (seq 5,
    # after the READY and the first GUILD_CREATEs): the state holds the folded one only.
    old = stream.event(0, "GUILD_UPDATE", renamed(stream, gid, "Old"), gid)
    state = stream.startup()
    state[1] = stream.event(0, "GUILD_CREATE", renamed(stream, gid, "Folded"), gid)
    client = FakeClient(stream.conns, state=state)
    seen = Seen(bot)
    adapter = await start(bot, client)
    client.stream.put_nowait(stream.message(0))  # newer than the mark
    client.stream.put_nowait(old)  # a killed bot's unacknowledged event, redelivered late
    client.stream.put_nowait(stream.message(0))
    await wait_for(lambda: len(seen.messages) == 2, 5, "both messages")
    assert adapter.skipped == 1
    assert bot.cache.get_guild(gid).name == "Folded"  # type: ignore[union-attr]


async def test_feed_when_an_older_session_s_backlog_comes_skips_it_until_a_new_session_s_ready(
    bot: hikari.GatewayBot,
) -> None:
    stream = Stream()
    gid = stream.world.guilds_for(0, SHARDS)[0]
    client = FakeClient(stream.conns, state=stream.startup())
    seen = Seen(bot)
    adapter = await start(bot, client)

    def on(session: str, seq: int, name: str, d: Any, key: int | None = None) -> ClientEvent:
        return ClientEvent(Event(stream.conns[0], session, seq, name, key, msgspec.json.encode(d)), False)

    client.stream.put_nowait(on("older", 90, "GUILD_UPDATE", renamed(stream, gid, "Older"), gid))
    ready = stream.ready(0)
    client.stream.put_nowait(on("newer", 1, "READY", ready.data))
    client.stream.put_nowait(on("newer", 2, "GUILD_UPDATE", renamed(stream, gid, "Newer"), gid))
    await wait_for(lambda: seen.ready.count(0) == 2, 5, "the new session's ShardReadyEvent")
    await wait_for(lambda: bot.cache.get_guild(gid).name == "Newer", 5, "the new session's update")  # type: ignore[union-attr]
    assert adapter.skipped == 1
    assert stream.conns[0] not in adapter.marks
