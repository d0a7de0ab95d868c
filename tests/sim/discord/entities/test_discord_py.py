"""discord.py 2.x parses the simulator's objects without error (a JSON round trip first, as on the wire)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterator
from typing import Any

import discord
import pytest
from discord.state import ChunkRequest, ConnectionState

from shardrunner.sim.discord.entities import DEFAULT_MIX, DM_CAPABLE, EntityFactory, GuildModel
from tests.sim.discord.entities.helpers import APP_ID, BOT_ID, GUILD_ID, wire


class Recorder:
    """Stands in for Client.dispatch: keeps every dispatched event for assertions."""

    def __init__(self) -> None:
        self.events: list[tuple[str, tuple[Any, ...]]] = []

    def __call__(self, event: str, *args: Any, **kwargs: Any) -> None:
        self.events.append((event, args))

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def last(self, event: str) -> tuple[Any, ...]:
        return next(args for name, args in reversed(self.events) if name == event)


@pytest.fixture
def discord_state() -> Iterator[tuple[ConnectionState[discord.Client], Recorder]]:
    # As Client builds it, but without chunking at startup: that would need a live websocket.
    client = discord.Client(intents=discord.Intents.all(), chunk_guilds_at_startup=False)
    state = client._connection
    recorder = Recorder()
    state.dispatch = recorder
    yield state, recorder
    if state._ready_task is not None:
        state._ready_task.cancel()


def assert_no_discord_errors(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r for r in caplog.records if r.name.startswith("discord") and r.levelno >= logging.ERROR]
    assert errors == []


async def test_discord_py_when_fed_ready_guild_and_events_parses_them(
    discord_state: tuple[ConnectionState[discord.Client], Recorder],
    factory: EntityFactory,
    model: GuildModel,
    caplog: pytest.LogCaptureFixture,
) -> None:
    state, recorder = discord_state
    caplog.set_level(logging.DEBUG, logger="discord")

    state.parse_ready(
        wire(
            factory.ready(
                session_id="abc",
                resume_gateway_url="wss://gateway.example",
                shard_id=0,
                num_shards=1,
                guild_ids=[model.id],
            )
        )
    )
    state.parse_guild_create(wire(factory.guild_create(model)))

    assert state.user is not None
    assert state.user.id == BOT_ID
    assert state.user.bot
    assert state.application_id == APP_ID
    guild = state._get_guild(model.id)
    assert guild is not None
    assert not guild.unavailable
    assert guild.name == model.name
    assert guild.member_count == model.member_count
    assert len(guild.members) == model.member_count
    assert [c.id for c in guild.text_channels] == model.channel_ids
    assert [c.id for c in guild.voice_channels] == model.voice_channel_ids
    general = guild.get_channel(model.channel_ids[0])
    assert isinstance(general, discord.TextChannel)
    assert general.name == "general"
    assert general.category is not None
    assert guild.default_role.id == model.id
    assert guild.me is not None
    assert guild.me.roles[-1].is_bot_managed()
    assert guild.owner_id == model.owner_id
    assert guild.emojis
    assert all(e.guild_id == model.id for e in guild.emojis)
    assert any(m.status is not discord.Status.offline for m in guild.members)

    message_data = factory.event("MESSAGE_CREATE", model)
    state.parse_message_create(wire(message_data))
    (message,) = recorder.last("message")
    assert message.content == message_data["content"]
    assert message.author.id == int(message_data["author"]["id"])
    assert isinstance(message.author, discord.Member)
    assert message.guild is guild

    for name in DEFAULT_MIX:
        state.parsers[name](wire(factory.event(name, model)))
    state.parse_message_reaction_remove(wire(factory.event("MESSAGE_REACTION_REMOVE", model)))

    names = recorder.names()
    for expected in (
        "presence_update",
        "typing",
        "member_update",
        "raw_message_edit",
        "raw_message_delete",
        "raw_reaction_add",
        "voice_state_update",
    ):
        assert expected in names
    # Edits and reactions target messages the client has cached, so the rich events fire too.
    assert "message_edit" in names
    assert "reaction_add" in names
    assert_no_discord_errors(caplog)


async def test_discord_py_when_many_events_parses_all_without_errors(
    discord_state: tuple[ConnectionState[discord.Client], Recorder],
    factory: EntityFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    state, _ = discord_state
    model = factory.guild_model(GUILD_ID, 40)
    state.parse_ready(
        wire(
            factory.ready(
                session_id="s", resume_gateway_url="wss://x", shard_id=0, num_shards=1, guild_ids=[]
            )
        )
    )
    state.parse_guild_create(wire(factory.guild_create(model)))
    rng = random.Random(3)

    for _ in range(400):
        name = rng.choices(list(DEFAULT_MIX), list(DEFAULT_MIX.values()))[0]
        state.parsers[name](wire(factory.event(name, model)))

    assert_no_discord_errors(caplog)


async def test_discord_py_when_dm_events_parses_them(
    discord_state: tuple[ConnectionState[discord.Client], Recorder],
    factory: EntityFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    state, recorder = discord_state
    state.parse_ready(
        wire(
            factory.ready(
                session_id="s", resume_gateway_url="wss://x", shard_id=0, num_shards=1, guild_ids=[]
            )
        )
    )

    data = factory.event("MESSAGE_CREATE", None)
    state.parse_message_create(wire(data))
    (message,) = recorder.last("message")
    for name in sorted(DM_CAPABLE):
        state.parsers[name](wire(factory.event(name, None)))

    assert message.guild is None
    assert isinstance(message.channel, discord.DMChannel)
    assert message.content == data["content"]
    assert message.author.id == int(data["author"]["id"])
    assert "typing" in recorder.names() or "raw_typing" in recorder.names()
    assert "raw_reaction_add" in recorder.names()
    assert_no_discord_errors(caplog)


async def test_discord_py_when_large_guild_chunked_caches_requested_members(
    discord_state: tuple[ConnectionState[discord.Client], Recorder],
    factory: EntityFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    state, _ = discord_state
    model = factory.guild_model(GUILD_ID, 2500)
    state.parse_ready(
        wire(
            factory.ready(
                session_id="s", resume_gateway_url="wss://x", shard_id=0, num_shards=1, guild_ids=[]
            )
        )
    )
    state.parse_guild_create(wire(factory.guild_create(model, large_threshold=250)))
    guild = state._get_guild(model.id)
    assert guild is not None
    assert guild.large
    assert not guild.chunked
    request = ChunkRequest(guild.id, 0, asyncio.get_running_loop(), state._get_guild, cache=True)
    state._chunk_requests[request.nonce] = request
    future = request.get_future()

    ids = model.member_ids
    for index, start in enumerate(range(0, len(ids), 1000)):
        state.parse_guild_members_chunk(
            wire(
                factory.members_chunk(
                    model,
                    chunk_index=index,
                    chunk_count=3,
                    member_ids=ids[start : start + 1000],
                    nonce=request.nonce,
                )
            )
        )

    assert len(await future) == 2500
    assert guild.chunked
    assert len(guild.members) == 2500
    assert_no_discord_errors(caplog)


def test_discord_py_when_given_application_builds_app_info(
    discord_state: tuple[ConnectionState[discord.Client], Recorder], factory: EntityFactory
) -> None:
    state, _ = discord_state

    info = discord.AppInfo(state, wire(factory.full_application()))

    assert info.id == APP_ID
    assert info.name == "shardrunner-sim"
    assert info.owner.id != BOT_ID
    assert info.install_params is not None
    assert info.guild_integration_config is not None
