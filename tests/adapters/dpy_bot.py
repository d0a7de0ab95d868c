"""A real discord.py ``commands.AutoShardedBot`` on shardrunner (for tests/adapters/test_discordpy.py):
prints one JSON line per thing its handlers and the adapter saw.

Lines: ``{"ready": true, "guilds": N}`` from on_ready; ``{"h": [session, seq, name, parsed]}`` for
every live event the adapter handled (``parsed`` 0: held in the fetched state); ``{"message": id}``
from an on_message listener; ``{"join": id}`` from on_guild_join; ``{"available": id}`` from
on_guild_available; ``{"command": id}`` once the ``gg`` command (which sets the presence through
the bus) returned.
"""

from __future__ import annotations

import argparse
import asyncio

import discord
import discord.http
from discord.ext import commands

from harness.lines import emit
from shardrunner.adapters.discordpy import Adapter, run
from shardrunner.client import Client
from shardrunner.sim.discord.world import DEFAULT_BOT_ID, make_token

#: The simulator's short replies the ``gg`` command answers to (with the empty prefix), so that
#: a few of every hundred messages invoke it.
ALIASES = ["lol", "same", "ok", "yes", "true", "fair", "real", "based", "ty", "brb", "omg"]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--api", required=True, help="the simulator's REST base (…/api/v10)")
    parser.add_argument("--group", default="dpy-test")
    args = parser.parse_args()
    discord.http.Route.BASE = args.api  # REST stays the bot's own: here, the simulator's
    intents = discord.Intents.default()
    intents.message_content = True
    bot = commands.AutoShardedBot(command_prefix="", intents=intents, guild_ready_timeout=0.2)

    @bot.event
    async def on_ready() -> None:
        emit({"ready": True, "guilds": len(bot.guilds), "shards": bot.shard_count})

    @bot.listen("on_message")
    async def seen(message: discord.Message) -> None:
        emit({"message": message.id})

    @bot.event
    async def on_guild_join(guild: discord.Guild) -> None:
        emit({"join": guild.id})

    @bot.event
    async def on_guild_available(guild: discord.Guild) -> None:
        emit({"available": guild.id})

    @bot.event
    async def on_command_error(ctx: commands.Context[commands.AutoShardedBot], error: Exception) -> None:
        if not isinstance(error, commands.CommandNotFound):
            emit({"error": repr(error)})

    @bot.command(aliases=ALIASES)
    async def gg(ctx: commands.Context[commands.AutoShardedBot]) -> None:
        await ctx.bot.change_presence(activity=discord.Game(f"gg {ctx.message.id}"))
        emit({"command": ctx.message.id})

    async def setup_hook() -> None:  # in login, before any event: the adapter is there already
        adapter: Adapter = bot.shardrunner  # type: ignore[attr-defined]
        adapter.on_event = lambda e, parsed: emit({"h": [e.session, e.seq, e.name, int(parsed)]})

    bot.setup_hook = setup_hook  # type: ignore[method-assign]
    await run(bot, make_token(DEFAULT_BOT_ID), client=Client(args.run_dir, group=args.group))


if __name__ == "__main__":
    asyncio.run(main())
