"""The dispatch mix and EntityFactory.event; a seed reproduces a run byte for byte."""

from __future__ import annotations

import random
from typing import Any

import msgspec
import pytest

from shardrunner.sim.discord.entities import (
    DEFAULT_MIX,
    DM_CAPABLE,
    SUPPORTED_EVENTS,
    EntityFactory,
    GuildModel,
)
from tests.sim.discord.entities.helpers import APP_ID, BOT_ID, GUILD_ID


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


def test_event_when_name_unknown_raises(factory: EntityFactory, model: GuildModel) -> None:
    with pytest.raises(ValueError, match="unsupported event"):
        factory.event("GUILD_BAN_ADD", model)


def test_event_when_guild_only_event_has_no_guild_raises(factory: EntityFactory) -> None:
    with pytest.raises(ValueError, match="only happens in a guild"):
        factory.event("PRESENCE_UPDATE", None)


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
