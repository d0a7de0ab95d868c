"""Messages: timestamps, members, sizes, bounded edits."""

from __future__ import annotations

import datetime

from shardrunner.sim.discord.entities import EPOCH_MS, START_MS, EntityFactory, GuildModel
from tests.sim.discord.entities.helpers import encoded_size


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
