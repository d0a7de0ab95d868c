"""A bot for the lifecycle test: every platform event (``events=None``) and, through the client's
``on_shard_*`` handlers, the lifecycle events, each printed as a JSON line."""

from __future__ import annotations

import argparse
import asyncio

from harness.lines import emit
from shardrunner.client import Client, ClientEvent, Lifecycle


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--group", default="life")
    parser.add_argument("--member", default=None)
    args = parser.parse_args()
    client = Client(args.run_dir, group=args.group, member=args.member)
    shards: set[int] = set()

    async def said(info: Lifecycle) -> None:
        record = {"kind": info.kind, "conn": info.conn, "shard": info.shard, "at": info.at, "code": info.code}
        emit({**record, "reason": info.reason, "resumable": info.resumable, "session": info.session})

    for register in (client.on_shard_ready, client.on_shard_resumed, client.on_shard_disconnect,
                     client.on_shard_fatal):  # fmt: skip
        register(said)

    @client.on("*")
    async def seen(event: ClientEvent) -> None:
        if event.shard not in shards:  # the join reached the shard's worker: faults may come
            shards.add(event.shard)
            emit({"platform_shard": event.shard})

    await client.start()
    emit({"ready": True})
    try:
        await client.run()
    finally:
        await client.close()


if __name__ == "__main__":
    asyncio.run(main())
