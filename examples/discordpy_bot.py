"""A discord.py bot on shardrunner: the usual ``commands.AutoShardedBot``, one line changed.

Run a cluster beside it with the state cache, so that the bot's cache is whole whenever it starts:

    shardrunner start --sim --state-cache &
    python examples/discordpy_bot.py

It waits for the cluster if it is still starting, logs in over REST (against ``--sim``: the
simulator's REST API, found from the cluster's gateway URL), then runs on the cluster's stream:
on_ready once every shard is READY (``--sim`` identifies one shard every 5 s), on_message, a
``gg`` command that sets the presence (a gateway send, through the bus). Stop it with Ctrl-C and
start it again: it goes on from where it stopped, its cache filled again from the workers' state.
"""

from __future__ import annotations

import asyncio
import logging
import os

import discord
import discord.http
from discord.ext import commands

import shardrunner.adapters.discordpy
from shardrunner.control import CommandError, call
from shardrunner.rundir import resolve_run_dir

intents = discord.Intents.default()
intents.message_content = True
bot = commands.AutoShardedBot(command_prefix="", intents=intents)
seen = {"messages": 0}


@bot.event
async def on_ready() -> None:
    print(f"ready: {len(bot.guilds)} guilds on {bot.shard_count} shards, latency {bot.latency * 1000:.0f} ms")


@bot.listen("on_message")
async def count(message: discord.Message) -> None:
    seen["messages"] += 1
    if seen["messages"] % 100 == 0:
        print(f"{seen['messages']} messages so far")


@bot.event
async def on_guild_join(guild: discord.Guild) -> None:
    print(f"joined {guild.name} ({guild.member_count} members)")


@bot.event
async def on_command_error(ctx: commands.Context[commands.AutoShardedBot], error: Exception) -> None:
    if not isinstance(error, commands.CommandNotFound):  # the simulator's chatter is not for us
        raise error


@bot.command()
async def gg(ctx: commands.Context[commands.AutoShardedBot]) -> None:
    """Answer "gg" by playing it: op 3 on every shard, sent by the cluster's shards."""
    await ctx.bot.change_presence(activity=discord.Game(f"gg in {ctx.guild.name if ctx.guild else 'a DM'}"))


async def cluster_gateway(timeout: float = 60.0) -> str:
    """The cluster's Discord gateway URL, waiting for the cluster if it is still starting."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            endpoints = await call(resolve_run_dir(None), "endpoints", timeout=5)
            return str(endpoints["platforms"]["discord"]["gateway_url"])
        except (CommandError, KeyError):
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.5)


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    token = os.environ.get("DISCORD_TOKEN")
    if token is None:  # against `shardrunner start --sim`: its REST API, and any bot-shaped token
        from shardrunner.sim.discord.world import DEFAULT_BOT_ID, make_token

        gateway = await cluster_gateway()
        discord.http.Route.BASE = gateway.replace("ws://", "http://") + "/api/v10"
        token = make_token(DEFAULT_BOT_ID)
    # The one line that changes: instead of `await bot.start(token)`.
    await shardrunner.adapters.discordpy.run(bot, token, group="example-discordpy")


if __name__ == "__main__":
    asyncio.run(main())
