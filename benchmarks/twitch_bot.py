"""The bot process of benchmarks/twitch.py: a `shardrunner.client.Client` counting Twitch chat ids.

What: joins consumer group ``bench`` of the cluster in RUN_DIR and, for every PRIVMSG and USERNOTICE
event (``event.name`` is the IRC command), takes the ``id`` tag from ``event.data`` (the line, parsed
by the client: ``{"tags": {...}, "prefix", "params", "raw"}``) and counts it once; a second copy of
an id counts as a duplicate delivered. Prints one JSON object per line on stdout, like the peer programs of
benchmarks/twitch_peers/ (times are ``time.monotonic()``): ``ready`` once joined, ``progress``
(``count`` ids, ``dups``, ``first`` and ``last`` arrival) every 0.25 s while ids arrive; at the end
of stdin (or SIGTERM) it writes the ids to OUT (one a line), prints ``done`` and exits 0. Not a
benchmark itself.

Run: python -m benchmarks.twitch_bot --run-dir DIR --out FILE [--group bench]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time

from harness.lines import emit
from shardrunner.client import Client

#: The events whose ``id`` tag the simulator counts (its per-channel ``ids``).
COUNTED = frozenset(("PRIVMSG", "USERNOTICE"))


class Counter:
    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.dups = 0
        self.first = 0.0
        self.last = 0.0

    def record(self) -> dict[str, object]:
        return {"count": len(self.seen), "dups": self.dups, "first": self.first, "last": self.last}


async def consume(client: Client, counter: Counter) -> None:
    seen, now = counter.seen, time.monotonic
    async for event in client:
        if event.name not in COUNTED:
            continue
        ident = event.data["tags"].get("id")
        if not ident:
            continue
        counter.last = t = now()
        if not counter.first:
            counter.first = t
        if ident in seen:
            counter.dups += 1
        else:
            seen.add(ident)


def write_ids(path: str, ids: set[str]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(i + "\n" for i in ids))


async def bot(args: argparse.Namespace) -> None:
    client = Client(args.run_dir, group=args.group, member="twitch-bench-bot")
    counter = Counter()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def stdin_end() -> None:
        while await reader.readline():
            pass
        stop.set()

    await client.start()
    emit({"event": "ready", "t": time.monotonic()})
    task = asyncio.ensure_future(consume(client, counter))
    watcher = asyncio.ensure_future(stdin_end())
    reported = -1
    while not stop.is_set() and not task.done():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)
        total = len(counter.seen) + counter.dups
        if total != reported:
            reported = total
            emit({"event": "progress", **counter.record()})
    if task.done() and task.exception() is not None:
        emit({"event": "error", "message": repr(task.exception())})
    task.cancel()
    watcher.cancel()
    for t in (task, watcher):
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await t
    await client.close()
    write_ids(args.out, counter.seen)
    emit({"event": "done", **counter.record(), "client_duplicates": client.duplicates})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--out", required=True, help="file of the ids received (written at the end)")
    parser.add_argument("--group", default="bench")
    args = parser.parse_args(argv)
    import uvloop

    uvloop.run(bot(args))


if __name__ == "__main__":
    main()
