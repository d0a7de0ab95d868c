"""hikari's GatewayBot counting GuildMessageCreateEvents from the simulator, for benchmarks/peers.py.

    python hikari_bench.py <sim base url> <token> <shard count> <expected MESSAGE_CREATEs>

Run as its users run it: ``bot.run()`` (stock asyncio, hikari's default cache and logging), the
messages counted by a listener of ``hikari.GuildMessageCreateEvent``. ``rest_url`` points it at the
simulator (the gateway URL then comes from ``/gateway/bot``). hikari 2.7 asks for zstd-stream
whenever ``backports.zstd`` is importable and GatewayBot has no compression option, so the shards'
default (``GatewayShardImpl``'s ``compression``) is set to ``TRANSPORT_ZLIB_STREAM``: every peer reads
the same zlib-stream traffic.

Prints one JSON object per line on stdout; times are ``time.monotonic()``:
``{"event": "ready", "shards": 4}`` once every shard is ready and the bot has started,
``{"event": "progress", ...}`` every 0.5 s while messages arrive,
``{"event": "done", "count": N, "first": t, "last": t}`` at the expected count. Then it runs until
killed.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import hikari
import hikari.impl.shard as hikari_shard
from hikari.api import GatewayCompression


def emit(**record: Any) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def main() -> None:
    base, token, shards, expected = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    defaults = hikari_shard.GatewayShardImpl.__init__.__kwdefaults__
    assert defaults is not None
    defaults["compression"] = GatewayCompression.TRANSPORT_ZLIB_STREAM

    bot = hikari.GatewayBot(
        token,
        rest_url=base.rstrip("/") + "/api/v10",
        intents=hikari.Intents.GUILDS | hikari.Intents.GUILD_MESSAGES,
        banner=None,
        suppress_optimization_warning=True,
    )
    ready: set[int] = set()
    started = False
    announced = False
    count = 0
    first = last = 0.0

    def announce() -> None:
        nonlocal announced
        if started and len(ready) == shards and not announced:
            announced = True
            emit(event="ready", shards=len(ready))

    async def report() -> None:
        while True:
            await asyncio.sleep(0.5)
            if 0 < count < expected:
                emit(event="progress", count=count, first=first, last=last)

    async def on_shard_ready(event: hikari.ShardReadyEvent) -> None:
        ready.add(event.shard.id)
        announce()

    async def on_started(event: hikari.StartedEvent) -> None:
        nonlocal started
        started = True
        asyncio.create_task(report())  # noqa: RUF006 - lives as long as the process
        announce()

    async def on_message(event: hikari.GuildMessageCreateEvent) -> None:
        nonlocal count, first, last
        last = time.monotonic()
        if count == 0:
            first = last
        count += 1
        if count == expected:
            emit(event="done", count=count, first=first, last=last)

    bot.subscribe(hikari.ShardReadyEvent, on_shard_ready)
    bot.subscribe(hikari.StartedEvent, on_started)
    bot.subscribe(hikari.GuildMessageCreateEvent, on_message)
    bot.run(shard_count=shards, check_for_updates=False)


if __name__ == "__main__":
    main()
