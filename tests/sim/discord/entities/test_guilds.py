"""Guild models and GUILD_CREATE: invariants, small and large guilds, sizes."""

from __future__ import annotations

import msgspec
import pytest

from shardrunner.sim.discord.entities import EntityFactory, GuildModel
from tests.sim.discord.entities.helpers import BOT_ID, GUILD_ID, encoded_size


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
