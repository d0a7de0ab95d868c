"""hikari 2.x builds its entities and events from the simulator's objects (a JSON round trip first)."""

from __future__ import annotations

import random
from unittest import mock

import hikari
import pytest
from hikari.events import guild_events, message_events, reaction_events, typing_events
from hikari.impl.entity_factory import EntityFactoryImpl
from hikari.impl.event_factory import EventFactoryImpl

from shardrunner.sim.discord.entities import DEFAULT_MIX, EntityFactory, GuildModel
from tests.sim.discord.entities.helpers import APP_ID, BOT_ID, GUILD_ID, wire


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
