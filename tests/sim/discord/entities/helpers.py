"""Shared by the entity tests: the ids they build with, and a payload as it is on the wire."""

from __future__ import annotations

from typing import Any

import msgspec

from shardrunner.sim.discord.entities import snowflake

BOT_ID = snowflake(1_600_000_000_000, 1234)
APP_ID = BOT_ID
GUILD_ID = snowflake(1_500_000_000_000, 42)


def wire(payload: dict[str, Any]) -> Any:
    """The payload as a client receives it: encoded and decoded again."""
    return msgspec.json.decode(msgspec.json.encode(payload))


def encoded_size(payload: dict[str, Any]) -> int:
    return len(msgspec.json.encode(payload))
