"""A Twitch bot for the tests: prints every event it gets as a JSON line (its Twitch ``id`` tag and
channel), and with ``--send`` sends chat messages first, printing each result."""

from __future__ import annotations

import argparse
import asyncio
import time

from harness.lines import emit, gap_record
from shardrunner.client import Client, ClientError, ClientEvent, Gap


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--group", default="test")
    parser.add_argument("--member", default=None)
    parser.add_argument("--send", type=int, default=0, help="send this many messages first")
    parser.add_argument("--send-to", default="chan0", help="channels to send to, comma-separated")
    args = parser.parse_args()
    async with Client(args.run_dir, group=args.group, member=args.member) as client:

        @client.on_gap
        async def gap(g: Gap) -> None:
            emit({"gap": gap_record(g)})

        emit({"ready": True})
        if args.send:
            targets = args.send_to.split(",")

            async def one(i: int) -> None:
                channel = targets[i % len(targets)]
                started = time.monotonic()
                try:
                    result = await client.send_chat(channel, f"message {i}", timeout=300)
                    emit(
                        {
                            "sent": i,
                            "channel": channel,
                            "id": result["id"],
                            "took": time.monotonic() - started,
                        }
                    )
                except ClientError as exc:
                    emit({"sent": i, "channel": channel, "error": str(exc)})

            await asyncio.gather(*(one(i) for i in range(args.send)))
            emit({"ready": True, "sent_all": True})
        event: ClientEvent
        async for event in client:
            emit(
                {
                    "conn": str(event.conn),
                    "t": event.name,
                    "channel": event.channel,
                    "id": event.tags.get("id"),
                    "redelivered": event.redelivered,
                    "at": round(time.monotonic(), 4),
                }
            )


if __name__ == "__main__":
    asyncio.run(main())
