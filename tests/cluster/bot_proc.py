"""A bot for the tests: prints every event it gets as a JSON line (and gaps), flushing each line."""

from __future__ import annotations

import argparse
import asyncio
import time

from harness.lines import emit, gap_record
from shardrunner.client import Client, ClientError, ClientEvent, Gap


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run-dir", default=None, help="none: the default (or TCP mode only)")
    parser.add_argument("--group", default="test")
    parser.add_argument("--member", default=None)
    parser.add_argument("--events", default=None, help="comma-separated names")
    parser.add_argument("--block", type=float, default=0.0, help="block the loop this long per event")
    parser.add_argument("--send-guild", type=int, default=None, help="send a presence update via this guild")
    parser.add_argument("--control", default=None, help="TCP control endpoints, comma separated (CURVE)")
    parser.add_argument("--server-key", default=None, help="the server's public key file")
    parser.add_argument("--key", default=None, help="this bot's secret key file")
    args = parser.parse_args()
    events = args.events.split(",") if args.events else None
    client = Client(
        args.run_dir,
        group=args.group,
        events=events,
        member=args.member,
        control=args.control,
        server_key=args.server_key,
        key=args.key,
    )
    try:
        await client.start()
    except ClientError as exc:  # no host answered (or every one refused this bot's key)
        emit({"refused": str(exc)})
        await client.close()
        raise SystemExit(2) from None
    try:

        @client.on_gap
        async def gap(g: Gap) -> None:
            emit({"gap": gap_record(g)})

        emit({"ready": True})
        if args.send_guild is not None:
            presence: dict[str, object] = {"since": None, "activities": [], "status": "dnd", "afk": False}
            await client.send(3, presence, guild=args.send_guild, timeout=10)
            emit({"ready": True, "sent": True})
        event: ClientEvent
        async for event in client:
            emit(
                {
                    "conn": str(event.conn),
                    "shard": event.shard,
                    "session": event.session,
                    "seq": event.seq,
                    "t": event.name,
                    "guild": event.guild_id,
                    "redelivered": event.redelivered,
                    "at": round(time.monotonic(), 4),
                }
            )
            if args.block:
                time.sleep(args.block)  # noqa: ASYNC251 - a handler that blocks its loop, on purpose

    finally:
        await client.close()


if __name__ == "__main__":
    asyncio.run(main())
