"""Fixtures of the entity tests: a seeded factory and a guild of 120 members."""

from __future__ import annotations

import random

import pytest

from shardrunner.sim.discord.entities import EntityFactory, GuildModel
from tests.sim.discord.entities.helpers import APP_ID, BOT_ID, GUILD_ID


@pytest.fixture
def factory() -> EntityFactory:
    return EntityFactory(random.Random(7), bot_user_id=BOT_ID, application_id=APP_ID)


@pytest.fixture
def model(factory: EntityFactory) -> GuildModel:
    return factory.guild_model(GUILD_ID, 120)
