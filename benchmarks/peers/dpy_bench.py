"""discord.py's AutoShardedClient counting MESSAGE_CREATEs from the simulator, for benchmarks/peers.py.

    python dpy_bench.py <sim base url> <token> <shard count> <expected MESSAGE_CREATEs>

Run as its users run it: ``client.run(token)`` (stock asyncio, discord.py's default logging), the
messages counted in ``on_message``, so each is built into a ``discord.Message`` (and kept in the
default message cache). Two changes point it at the simulator and keep start-up short:
``Route.BASE`` and ``DiscordWebSocket.DEFAULT_GATEWAY`` name the simulator, and
``before_identify_hook`` does not wait (the default waits 5 s per shard; the simulator lets all
shards identify at once). discord.py 2.7 asks for zstd-stream whenever a zstd module is importable;
``_ActiveDecompressionContext`` is set to its own zlib-stream context (the one it uses without zstd),
so every peer reads the same zlib-stream traffic.

Prints one JSON object per line on stdout; times are ``time.monotonic()``:
``{"event": "ready", "shards": 4}`` once on_ready (every shard ready), ``{"event": "progress", ...}``
every 0.5 s while messages arrive, ``{"event": "done", "count": N, "first": t, "last": t}`` at the
expected count. Then it runs until killed.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import zlib
from typing import Any

import discord
import discord.gateway
import discord.http
import discord.utils
import yarl


class ZlibContext:
    """discord.py's zlib-stream context (``utils._ZlibDecompressionContext``, defined only without zstd)."""

    __slots__ = ("buffer", "context")

    COMPRESSION_TYPE: str = "zlib-stream"

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.context = zlib.decompressobj()

    def decompress(self, data: bytes, /) -> str | None:
        self.buffer.extend(data)
        if len(data) < 4 or data[-4:] != b"\x00\x00\xff\xff":
            return None
        msg = self.context.decompress(self.buffer)
        self.buffer = bytearray()
        return msg.decode("utf-8")


def emit(**record: Any) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


class Bot(discord.AutoShardedClient):
    def __init__(self, expected: int, **options: Any) -> None:
        super().__init__(**options)
        self.expected = expected
        self.count = 0
        self.first = 0.0
        self.last = 0.0
        self.announced = False

    async def setup_hook(self) -> None:
        asyncio.create_task(self.report())  # noqa: RUF006 - lives as long as the process

    async def report(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            if 0 < self.count < self.expected:
                emit(event="progress", count=self.count, first=self.first, last=self.last)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        pass  # the simulator's identify window is 0 and every shard has its own bucket

    async def on_ready(self) -> None:
        if not self.announced:
            self.announced = True
            emit(event="ready", shards=len(self.shards))

    async def on_message(self, message: discord.Message) -> None:
        self.last = time.monotonic()
        if self.count == 0:
            self.first = self.last
        self.count += 1
        if self.count == self.expected:
            emit(event="done", count=self.count, first=self.first, last=self.last)


def main() -> None:
    base, token, shards, expected = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    base = base.rstrip("/")
    discord.http.Route.BASE = base + "/api/v10"
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL("ws" + base.removeprefix("http") + "/")
    discord.utils._ActiveDecompressionContext = ZlibContext  # type: ignore[misc]
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    Bot(expected, intents=intents, shard_count=shards).run(token)


if __name__ == "__main__":
    main()
