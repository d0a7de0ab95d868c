"""A fake shardrunner client for the discord.py adapter's unit tests, and Discord payloads that
discord.py's parsers accept."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from shardrunner.client import ClientEvent
from shardrunner.protocol.envelope import Event
from shardrunner.protocol.keys import ConnKey

BOT_ID = 1100000000000000001
_ids = itertools.count(1)


def snowflake(shard: int, count: int) -> int:
    """A fresh id whose guild would live on ``shard`` of ``count``."""
    n = next(_ids)
    return ((n * count + shard) << 22) | n


def user(uid: int, *, bot: bool = False) -> dict[str, Any]:
    return {"id": str(uid), "username": f"u{uid}", "discriminator": "0", "avatar": None, "bot": bot}


def ready(shard: int, count: int, guilds: list[int], session: str = "s") -> dict[str, Any]:
    return {
        "v": 10,
        "user": user(BOT_ID, bot=True),
        "guilds": [{"id": str(g), "unavailable": True} for g in guilds],
        "session_id": session,
        "resume_gateway_url": "ws://resume.test",
        "shard": [shard, count],
        "application": {"id": str(BOT_ID), "flags": 0},
    }


def guild(gid: int, channel: int, *, joined: bool = False) -> dict[str, Any]:
    """A GUILD_CREATE ``d``; ``joined``: the bot just joined it (no ``unavailable``, as on Discord)."""
    role = {"id": str(gid), "name": "@everyone", "permissions": "0", "position": 0, "color": 0}
    body = {
        "id": str(gid),
        "name": f"guild {gid}",
        "owner_id": "2",
        "member_count": 1,
        "channels": [{"id": str(channel), "type": 0, "name": "general", "position": 0}],
        "roles": [role],
        "members": [
            {
                "user": user(BOT_ID, bot=True),
                "roles": [],
                "joined_at": "2025-01-01T00:00:00+00:00",
                "flags": 0,
            }
        ],
        "emojis": [],
        "stickers": [],
        "features": [],
    }
    return body if joined else {**body, "unavailable": False}


def channel(cid: int, gid: int, name: str = "new") -> dict[str, Any]:
    return {"id": str(cid), "guild_id": str(gid), "type": 0, "name": name, "position": 1}


def message(mid: int, cid: int, gid: int, content: str = "hello") -> dict[str, Any]:
    return {
        "id": str(mid),
        "channel_id": str(cid),
        "guild_id": str(gid),
        "author": user(7),
        "member": {"roles": [], "joined_at": "2025-01-01T00:00:00+00:00", "flags": 0},
        "content": content,
        "timestamp": "2025-01-01T00:00:00+00:00",
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "pinned": False,
        "type": 0,
    }


def event(conn: ConnKey, session: str, seq: int, name: str, d: Any, key: int | None = None) -> ClientEvent:
    return ClientEvent(Event(conn, session, seq, name, key, msgspec.json.encode(d)), False)


class FakeDiscovery:
    def __init__(self, status: dict[str, Any]) -> None:
        self.status = status

    async def ask(self, command: str, *, timeout: float = 5.0, **fields: Any) -> Any:
        assert command == "status"
        return self.status


class FakeClient:
    """What the adapter asks of ``shardrunner.client.Client``: its shards, the status, the state,
    the live events (``live.put_nowait``) and the sends (kept in ``sent``)."""

    def __init__(
        self,
        count: int,
        state: list[ClientEvent] | None = None,
        marks: dict[ConnKey, tuple[str, int]] | None = None,
        ready: tuple[int, ...] = (),
    ) -> None:
        self.conns = [ConnKey("discord", 0, s, count) for s in range(count)]
        self.num_shards = count
        self.platforms: dict[str, Any] = {}
        shards = [
            {"platform": "discord", "shard": s, "count": count, "latency_ms": 40.0 + s,
             "state": "ready" if s in ready else "identifying"}
            for s in range(count)
        ]  # fmt: skip
        self.discovery = FakeDiscovery({"shards": shards})
        self._state = state or []
        self._marks = marks or {}
        self.state_marks: dict[ConnKey, tuple[str, int]] = {}
        self.live: asyncio.Queue[ClientEvent] = asyncio.Queue()
        self.sent: list[tuple[int, Any, int | None, int | None]] = []
        self.started = self.closed = False

    async def start(self) -> None:
        self.started = True

    async def close(self) -> None:
        self.closed = True

    async def fetch_state(self, platform: str = "discord", timeout: float = 30.0) -> list[ClientEvent]:
        self.state_marks.update(self._marks)
        return self._state

    def __aiter__(self) -> AsyncIterator[ClientEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[ClientEvent]:
        while True:
            yield await self.live.get()

    async def send(
        self, op: int, d: Any, *, shard: int | None = None, guild: int | None = None, timeout: float = 30.0
    ) -> None:
        self.sent.append((op, d, shard, guild))
