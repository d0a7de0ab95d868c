"""The simulator's Discord objects: real clients (discord.py, hikari) must parse them without error.

Every payload goes through a JSON round trip before a client sees it, as it would on the wire (and
because discord.py mutates the dicts it parses).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import random
from collections.abc import Iterator
from typing import Any
from unittest import mock

import discord
import hikari
import msgspec
import pytest
from discord.state import ChunkRequest, ConnectionState
from hikari.events import guild_events, message_events, reaction_events, typing_events
from hikari.impl.entity_factory import EntityFactoryImpl
from hikari.impl.event_factory import EventFactoryImpl

from shardrunner.sim.discord.entities import (
    DEFAULT_MIX,
    DM_CAPABLE,
    EPOCH_MS,
    START_MS,
    SUPPORTED_EVENTS,
    EntityFactory,
    GuildModel,
    snowflake,
)

BOT_ID = snowflake(1_600_000_000_000, 1234)
APP_ID = BOT_ID
GUILD_ID = snowflake(1_500_000_000_000, 42)


def wire(payload: dict[str, Any]) -> Any:
    """The payload as a client receives it: encoded and decoded again."""
    return msgspec.json.decode(msgspec.json.encode(payload))


def encoded_size(payload: dict[str, Any]) -> int:
    return len(msgspec.json.encode(payload))


@pytest.fixture
def factory() -> EntityFactory:
    return EntityFactory(random.Random(7), bot_user_id=BOT_ID, application_id=APP_ID)


@pytest.fixture
def model(factory: EntityFactory) -> GuildModel:
    return factory.guild_model(GUILD_ID, 120)


# -- Plain properties --------------------------------------------------------------------------------


def test_snowflake_encodes_timestamp_and_low_bits() -> None:
    sf = snowflake(1_700_000_000_123, 77)
    assert (sf >> 22) + EPOCH_MS == 1_700_000_000_123
    assert sf & (2**22 - 1) == 77


@pytest.mark.parametrize(("timestamp_ms", "low"), [(EPOCH_MS, -1), (EPOCH_MS, 2**22), (EPOCH_MS - 1, 0)])
def test_snowflake_when_out_of_range_raises(timestamp_ms: int, low: int) -> None:
    with pytest.raises(ValueError, match=r"low|epoch"):
        snowflake(timestamp_ms, low)


def test_default_mix_when_read_has_required_events_and_message_create_dominates() -> None:
    required = {
        "MESSAGE_CREATE",
        "PRESENCE_UPDATE",
        "TYPING_START",
        "GUILD_MEMBER_UPDATE",
        "MESSAGE_UPDATE",
        "MESSAGE_DELETE",
        "MESSAGE_REACTION_ADD",
        "VOICE_STATE_UPDATE",
    }
    assert required <= DEFAULT_MIX.keys()
    assert max(DEFAULT_MIX, key=DEFAULT_MIX.__getitem__) == "MESSAGE_CREATE"
    assert {"MESSAGE_CREATE", "TYPING_START", "MESSAGE_REACTION_ADD"} <= DM_CAPABLE
    assert DEFAULT_MIX.keys() <= SUPPORTED_EVENTS


def test_guild_model_when_built_satisfies_invariants(factory: EntityFactory) -> None:
    model = factory.guild_model(GUILD_ID, 500)

    assert model.role_ids[0] == model.id == GUILD_ID
    assert model.member_ids[0] == BOT_ID
    assert model.member_count == len(model.member_ids) == len(set(model.member_ids)) == 500
    assert model.owner_id in model.member_ids
    assert model.owner_id != BOT_ID
    assert len(model.channel_ids) >= 3
    assert len(model.voice_channel_ids) >= 1
    all_ids = [*model.channel_ids, *model.voice_channel_ids, *model.role_ids, *model.member_ids]
    assert len(all_ids) == len(set(all_ids))


def test_guild_model_when_only_the_bot_is_member_makes_it_owner(factory: EntityFactory) -> None:
    model = factory.guild_model(GUILD_ID, 1)

    assert model.member_ids == [BOT_ID]
    assert model.owner_id == BOT_ID


def test_guild_model_when_no_members_raises(factory: EntityFactory) -> None:
    with pytest.raises(ValueError, match="at least one member"):
        factory.guild_model(GUILD_ID, 0)


def test_event_when_name_unknown_raises(factory: EntityFactory, model: GuildModel) -> None:
    with pytest.raises(ValueError, match="unsupported event"):
        factory.event("GUILD_BAN_ADD", model)


def test_event_when_guild_only_event_has_no_guild_raises(factory: EntityFactory) -> None:
    with pytest.raises(ValueError, match="only happens in a guild"):
        factory.event("PRESENCE_UPDATE", None)


def test_guild_create_when_called_twice_describes_the_same_guild(
    factory: EntityFactory, model: GuildModel
) -> None:
    first = msgspec.json.encode(factory.guild_create(model))
    factory.event("MESSAGE_CREATE", model)  # the generator moved on; the guild must not change

    assert msgspec.json.encode(factory.guild_create(model)) == first


def test_guild_create_when_small_lists_every_member_and_online_presences(
    factory: EntityFactory, model: GuildModel
) -> None:
    guild = factory.guild_create(model, large_threshold=250)

    assert guild["large"] is False
    assert guild["unavailable"] is False
    assert guild["member_count"] == model.member_count
    assert [int(m["user"]["id"]) for m in guild["members"]] == model.member_ids
    listed = {m["user"]["id"] for m in guild["members"]}
    assert 0 < len(guild["presences"]) < model.member_count
    assert all(p["user"]["id"] in listed for p in guild["presences"])
    assert all(v["user_id"] in listed for v in guild["voice_states"])
    # Channels in GUILD_CREATE omit guild_id, as Discord sends them.
    assert all("guild_id" not in c for c in guild["channels"])


def test_guild_create_when_large_lists_bot_and_a_sample_of_online_members(factory: EntityFactory) -> None:
    model = factory.guild_model(GUILD_ID, 2500)

    guild = factory.guild_create(model, large_threshold=250)

    assert guild["large"] is True
    assert guild["member_count"] == 2500
    listed = [m["user"]["id"] for m in guild["members"]]
    assert str(BOT_ID) in listed
    assert 1 < len(listed) <= 1 + 2500 // 3
    assert {p["user"]["id"] for p in guild["presences"]} <= set(listed)
    assert all(v["user_id"] in listed for v in guild["voice_states"])


def test_guild_create_when_250_members_and_threshold_250_is_not_large_and_60_to_150_kb(
    factory: EntityFactory,
) -> None:
    guild = factory.guild_create(factory.guild_model(GUILD_ID, 250), large_threshold=250)

    assert guild["large"] is False
    assert len(guild["members"]) == 250
    assert 60_000 <= encoded_size(guild) <= 150_000


def test_guild_create_when_only_the_bot_is_a_few_kb(factory: EntityFactory) -> None:
    guild = factory.guild_create(factory.guild_model(GUILD_ID, 1))

    assert len(guild["members"]) == 1
    assert encoded_size(guild) <= 8_000


def test_guild_create_when_9000_members_is_about_one_megabyte(factory: EntityFactory) -> None:
    guild = factory.guild_create(factory.guild_model(GUILD_ID, 9000), large_threshold=250)

    assert guild["large"] is True
    assert 700_000 <= encoded_size(guild) <= 1_500_000


def test_members_chunk_when_ids_unknown_lists_them_in_not_found(
    factory: EntityFactory, model: GuildModel
) -> None:
    stranger = snowflake(1_700_000_000_000, 9)

    chunk = factory.members_chunk(
        model, chunk_index=0, chunk_count=1, member_ids=[*model.member_ids[:5], stranger], nonce="abc"
    )

    assert [m["user"]["id"] for m in chunk["members"]] == [str(u) for u in model.member_ids[:5]]
    assert chunk["not_found"] == [str(stranger)]
    assert chunk["nonce"] == "abc"


def test_members_chunk_when_no_nonce_omits_it(factory: EntityFactory, model: GuildModel) -> None:
    chunk = factory.members_chunk(
        model, chunk_index=0, chunk_count=1, member_ids=model.member_ids, nonce=None
    )

    assert "nonce" not in chunk
    assert chunk["not_found"] == []


def test_message_create_when_in_guild_has_iso_timestamp_and_member_without_user(
    factory: EntityFactory, model: GuildModel
) -> None:
    message = factory.event("MESSAGE_CREATE", model)

    assert message["timestamp"].endswith("+00:00")
    created = datetime.datetime.fromisoformat(message["timestamp"])
    assert created.timestamp() * 1000 >= START_MS
    assert (int(message["id"]) >> 22) + EPOCH_MS == int(created.timestamp() * 1000)
    assert "user" not in message["member"]
    assert message["guild_id"] == str(model.id)
    assert int(message["author"]["id"]) in model.member_ids


def test_message_create_when_sampled_averages_about_one_kilobyte(
    factory: EntityFactory, model: GuildModel
) -> None:
    sizes = [encoded_size(factory.event("MESSAGE_CREATE", model)) for _ in range(500)]

    assert 600 <= sum(sizes) / len(sizes) <= 1_500


def test_message_update_when_edits_repeat_content_stays_bounded(
    factory: EntityFactory, model: GuildModel
) -> None:
    factory.event("MESSAGE_CREATE", model)

    sizes = [encoded_size(factory.event("MESSAGE_UPDATE", model)) for _ in range(200)]

    assert max(sizes) < 5_000


def test_factory_when_same_seed_produces_identical_bytes() -> None:
    def run(seed: int) -> bytes:
        f = EntityFactory(random.Random(seed), bot_user_id=BOT_ID, application_id=APP_ID)
        m = f.guild_model(GUILD_ID, 300)
        out: list[Any] = [
            f.ready(session_id="s", resume_gateway_url="wss://x", shard_id=0, num_shards=1, guild_ids=[m.id]),
            f.guild_create(m),
            f.members_chunk(m, chunk_index=0, chunk_count=1, member_ids=m.member_ids[:50], nonce=None),
            f.full_application(),
        ]
        rng = random.Random(seed)
        for _ in range(300):
            name = rng.choices(list(DEFAULT_MIX), list(DEFAULT_MIX.values()))[0]
            out.append(f.event(name, m))
        out.extend(f.event(name, None) for name in sorted(DM_CAPABLE))
        return msgspec.json.encode(out)

    assert run(7) == run(7)
    assert run(7) != run(8)


# -- discord.py --------------------------------------------------------------------------------------


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


# -- hikari ------------------------------------------------------------------------------------------


@pytest.fixture
def hikari_app() -> mock.Mock:
    app = mock.Mock(spec=hikari.traits.RESTAware)
    app.entity_factory = EntityFactoryImpl(app)
    return app


@pytest.fixture
def events(hikari_app: mock.Mock) -> EventFactoryImpl:
    return EventFactoryImpl(hikari_app)


@pytest.fixture
def shard() -> mock.Mock:
    shard = mock.Mock()
    shard.get_user_id.return_value = hikari.Snowflake(BOT_ID)
    return shard


def test_hikari_when_given_ready_builds_ready_event(
    events: EventFactoryImpl, shard: mock.Mock, factory: EntityFactory
) -> None:
    data = factory.ready(
        session_id="abc",
        resume_gateway_url="wss://gateway.example",
        shard_id=3,
        num_shards=8,
        guild_ids=[1, 2],
    )

    event = events.deserialize_ready_event(shard, wire(data))

    assert event.session_id == "abc"
    assert event.resume_gateway_url == "wss://gateway.example"
    assert event.actual_gateway_version == 10
    assert event.my_user.id == BOT_ID
    assert event.my_user.is_bot
    assert event.unavailable_guilds == [1, 2]
    assert event.application_id == APP_ID


@pytest.mark.parametrize("members", [1, 120, 2500])
def test_hikari_when_given_guild_create_builds_available_event(
    events: EventFactoryImpl, shard: mock.Mock, factory: EntityFactory, members: int
) -> None:
    model = factory.guild_model(GUILD_ID, members)
    data = factory.guild_create(model, large_threshold=250)

    event = events.deserialize_guild_available_event(shard, wire(data))

    assert event.guild.id == model.id
    assert event.guild.member_count == members
    assert event.guild.is_large is (members > 250)
    assert len(event.members) == len(data["members"])
    assert BOT_ID in event.members
    assert set(event.roles) == set(model.role_ids)
    assert event.roles[hikari.Snowflake(model.id)].name == "@everyone"
    text = [c for c in event.channels.values() if isinstance(c, hikari.GuildTextChannel)]
    assert [c.id for c in text] == model.channel_ids
    assert text[0].name == "general"
    assert len(event.presences) == len(data["presences"])
    assert len(event.voice_states) == len(data["voice_states"])
    assert len(event.emojis) == len(data["emojis"])
    assert len(event.stickers) == len(data["stickers"])


def test_hikari_when_given_guild_events_builds_them(
    events: EventFactoryImpl, shard: mock.Mock, factory: EntityFactory, model: GuildModel
) -> None:
    created = factory.event("MESSAGE_CREATE", model)
    message_event = events.deserialize_message_create_event(shard, wire(created))
    assert isinstance(message_event, message_events.GuildMessageCreateEvent)
    assert message_event.message.content == (created["content"] or None)
    assert message_event.message.member is not None
    assert message_event.message.author.id == int(created["author"]["id"])

    presence = events.deserialize_presence_update_event(shard, wire(factory.event("PRESENCE_UPDATE", model)))
    assert presence.presence.guild_id == model.id

    typing = events.deserialize_typing_start_event(shard, wire(factory.event("TYPING_START", model)))
    assert isinstance(typing, typing_events.GuildTypingEvent)
    assert typing.member.user.id in model.member_ids

    member = events.deserialize_guild_member_update_event(
        shard, wire(factory.event("GUILD_MEMBER_UPDATE", model))
    )
    assert member.member.guild_id == model.id

    update = events.deserialize_message_update_event(shard, wire(factory.event("MESSAGE_UPDATE", model)))
    assert isinstance(update, message_events.GuildMessageUpdateEvent)
    assert update.message.edited_timestamp is not None

    reaction = events.deserialize_message_reaction_add_event(
        shard, wire(factory.event("MESSAGE_REACTION_ADD", model))
    )
    assert isinstance(reaction, reaction_events.GuildReactionAddEvent)

    removed = events.deserialize_message_reaction_remove_event(
        shard, wire(factory.event("MESSAGE_REACTION_REMOVE", model))
    )
    assert isinstance(removed, reaction_events.GuildReactionDeleteEvent)

    delete = events.deserialize_message_delete_event(shard, wire(factory.event("MESSAGE_DELETE", model)))
    assert isinstance(delete, message_events.GuildMessageDeleteEvent)

    voice = events.deserialize_voice_state_update_event(
        shard, wire(factory.event("VOICE_STATE_UPDATE", model))
    )
    assert voice.state.guild_id == model.id
    assert voice.state.member is not None


def test_hikari_when_many_events_builds_all(
    events: EventFactoryImpl, shard: mock.Mock, factory: EntityFactory, model: GuildModel
) -> None:
    deserializers = {
        "MESSAGE_CREATE": events.deserialize_message_create_event,
        "PRESENCE_UPDATE": events.deserialize_presence_update_event,
        "TYPING_START": events.deserialize_typing_start_event,
        "GUILD_MEMBER_UPDATE": events.deserialize_guild_member_update_event,
        "MESSAGE_UPDATE": events.deserialize_message_update_event,
        "MESSAGE_DELETE": events.deserialize_message_delete_event,
        "MESSAGE_REACTION_ADD": events.deserialize_message_reaction_add_event,
        "VOICE_STATE_UPDATE": events.deserialize_voice_state_update_event,
    }
    assert deserializers.keys() == DEFAULT_MIX.keys()
    rng = random.Random(5)

    for _ in range(400):
        name = rng.choices(list(DEFAULT_MIX), list(DEFAULT_MIX.values()))[0]
        deserializers[name](shard, wire(factory.event(name, model)))


def test_hikari_when_given_dm_events_builds_dm_variants(
    events: EventFactoryImpl, shard: mock.Mock, factory: EntityFactory
) -> None:
    created = events.deserialize_message_create_event(shard, wire(factory.event("MESSAGE_CREATE", None)))
    typing = events.deserialize_typing_start_event(shard, wire(factory.event("TYPING_START", None)))
    reaction = events.deserialize_message_reaction_add_event(
        shard, wire(factory.event("MESSAGE_REACTION_ADD", None))
    )
    update = events.deserialize_message_update_event(shard, wire(factory.event("MESSAGE_UPDATE", None)))
    delete = events.deserialize_message_delete_event(shard, wire(factory.event("MESSAGE_DELETE", None)))

    assert isinstance(created, message_events.DMMessageCreateEvent)
    assert isinstance(typing, typing_events.DMTypingEvent)
    assert isinstance(reaction, reaction_events.DMReactionAddEvent)
    assert isinstance(update, message_events.DMMessageUpdateEvent)
    assert isinstance(delete, message_events.DMMessageDeleteEvent)


def test_hikari_when_given_members_chunk_builds_chunk_event(
    events: EventFactoryImpl, shard: mock.Mock, factory: EntityFactory, model: GuildModel
) -> None:
    data = factory.members_chunk(
        model, chunk_index=1, chunk_count=2, member_ids=model.member_ids[:60], nonce="n1"
    )

    event = events.deserialize_guild_member_chunk_event(shard, wire(data))

    assert event.guild_id == model.id
    assert list(event.members) == model.member_ids[:60]
    assert (event.chunk_index, event.chunk_count, event.nonce) == (1, 2, "n1")
    assert event.not_found == []


def test_hikari_when_given_bot_user_builds_own_user(hikari_app: mock.Mock, factory: EntityFactory) -> None:
    user = hikari_app.entity_factory.deserialize_my_user(wire(factory.bot_user()))

    assert user.id == BOT_ID
    assert user.username == "shardrunner-sim"
    assert user.is_bot
    assert user.is_mfa_enabled


def test_hikari_when_given_application_builds_application(
    hikari_app: mock.Mock, factory: EntityFactory
) -> None:
    application = hikari_app.entity_factory.deserialize_application(wire(factory.full_application()))

    assert application.id == APP_ID
    assert application.name == "shardrunner-sim"
    assert application.team is None
    assert application.owner.id != BOT_ID
    assert len(application.public_key) == 32
    assert application.install_parameters is not None


def test_hikari_when_presence_in_guild_create_is_deserialized_has_valid_status(
    hikari_app: mock.Mock, factory: EntityFactory, model: GuildModel
) -> None:
    guild = factory.guild_create(model)
    definition = hikari_app.entity_factory.deserialize_gateway_guild(
        wire(guild), user_id=hikari.Snowflake(BOT_ID)
    )

    presences = definition.presences()

    assert presences
    assert all(p.visible_status is not hikari.Status.OFFLINE for p in presences.values())
    assert isinstance(definition.guild(), hikari.GatewayGuild)


def test_hikari_guild_available_event_type(
    events: EventFactoryImpl, shard: mock.Mock, factory: EntityFactory
) -> None:
    model = factory.guild_model(GUILD_ID, 3)

    event = events.deserialize_guild_available_event(shard, wire(factory.guild_create(model)))

    assert isinstance(event, guild_events.GuildAvailableEvent)
