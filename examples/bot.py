"""An example bot: events from a running shardrunner cluster, and a command back.

Run a cluster beside it (`shardrunner start --sim` works without a token), then
`python examples/bot.py` (it waits for the cluster if it is still starting). It counts events by
type, answers "!ping" messages by setting the presence of the shard that owns the guild, and
reports events its group lost while it was away. Stop it with Ctrl-C, start it again: it goes on
where it stopped (its group's events waited for it).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time

from shardrunner.client import Client, ClientError, ClientEvent, Gap

PLAYING = 0


async def main() -> None:
    counts: collections.Counter[str] = collections.Counter()
    client = Client(group="example-bot", events=["MESSAGE_CREATE", "GUILD_CREATE", "PRESENCE_UPDATE"])

    @client.on("MESSAGE_CREATE")
    async def on_message(event: ClientEvent) -> None:
        counts[event.name] += 1
        content = event.data.get("content", "")
        if content.startswith("!ping") and event.guild_id is not None:
            activity = {"name": f"pong at {time.strftime('%H:%M:%S')}", "type": PLAYING}
            presence = {"since": None, "activities": [activity], "status": "online", "afk": False}
            await client.send(3, presence, guild=event.guild_id)

    @client.on("*")
    async def on_any(event: ClientEvent) -> None:
        if event.name != "MESSAGE_CREATE":
            counts[event.name] += 1

    @client.on_gap
    async def on_gap(gap: Gap) -> None:
        print(f"lost {gap.count} events of {gap.conn} while away: seqs {gap.ranges}")

    async def report() -> None:
        while True:
            await asyncio.sleep(5)
            top = dict(counts.most_common(5))
            print(f"{sum(counts.values())} events: {top}; duplicates dropped: {client.duplicates}")

    for attempt in range(120):  # the cluster may still be starting (the README starts both at once)
        try:
            await client.start()
            break
        except ClientError:
            if attempt == 0:
                print("waiting for the cluster to start...")
            await asyncio.sleep(0.5)
    else:
        raise SystemExit("no cluster found: start one with `shardrunner start --sim`")
    print(f"joined group example-bot as {client.member}; {client.num_shards} shards")
    reporter = asyncio.ensure_future(report())
    try:
        await client.run()
    finally:
        reporter.cancel()
        await client.close()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
