"""A bot process for benchmarks/recovery.py: joins a consumer group and records every event it gets.

What: a `shardrunner.client.Client` (group ``bench``, member ``bench-bot`` by default) iterates over
the events and writes one fixed-size record per event (receive time on the monotonic clock, seq,
shard, session index, redelivered flag) into a memory-mapped file, before it asks for the next
event (which is what acknowledges this one). The pages belong to the file, so whatever was written
survives a SIGKILL: an event the bot had processed, and possibly acknowledged, is never missing
from the record. Session ids are appended to ``OUT.sessions`` ("index id" lines) before their first
record. Event bodies are not decoded. The client's own count of duplicates it dropped is kept in the
file's header. On stdout, one JSON line each: ``{"ready": ...}`` once joined, ``{"gap": ...}`` per
gap report, and ``{"done": ...}`` after SIGTERM (the client closes, acknowledging what it
processed; with the duplicates it dropped, and the copies its cross-set dedupe dropped during a
reshard). Not a benchmark itself.

Run: python -m benchmarks.botproc --run-dir DIR --out FILE --capacity N [--group bench] [--member bench-bot]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import mmap
import os
import signal
import struct
import time

from harness.lines import emit, gap_record
from shardrunner.client import Client, Gap

#: One event: receive time (time.monotonic), seq, shard, session index, redelivered.
RECORD = struct.Struct("<dIHHB3x")
#: The file's header: magic, the client's dropped duplicates, capacity in records.
HEADER = struct.Struct("<8sQQ")
HEADER_SIZE = 64
MAGIC = b"srbench1"


async def consume(client: Client, mm: mmap.mmap, capacity: int, sessions_fd: int) -> None:
    pack, now = RECORD.pack_into, time.monotonic
    size = RECORD.size
    index: dict[str, int] = {}
    off, end = HEADER_SIZE, HEADER_SIZE + capacity * size
    async for event in client:
        sid = index.get(event.session)
        if sid is None:
            sid = index[event.session] = len(index)
            os.write(sessions_fd, f"{sid} {event.session}\n".encode())
        if off >= end:
            emit({"error": f"more than {capacity} events: the record file is full"})
            return
        pack(mm, off, now(), event.seq, event.shard, sid, event.redelivered)
        off += size


async def bot(args: argparse.Namespace) -> None:
    size = HEADER_SIZE + args.capacity * RECORD.size
    fd = os.open(args.out, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    os.ftruncate(fd, size)
    mm = mmap.mmap(fd, size)
    HEADER.pack_into(mm, 0, MAGIC, 0, args.capacity)
    sessions_fd = os.open(args.out + ".sessions", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
    client = Client(args.run_dir, group=args.group, member=args.member)

    @client.on_gap
    async def gap(g: Gap) -> None:
        emit({"gap": gap_record(g)})

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await client.start()
    emit({"ready": True, "t": time.monotonic(), "member": client.member})
    task = asyncio.ensure_future(consume(client, mm, args.capacity, sessions_fd))
    stopping = asyncio.ensure_future(stop.wait())
    while not stop.is_set() and not task.done():
        await asyncio.wait([task, stopping], timeout=0.1)
        HEADER.pack_into(mm, 0, MAGIC, client.duplicates, args.capacity)
    task.cancel()
    stopping.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await client.close()
    HEADER.pack_into(mm, 0, MAGIC, client.duplicates, args.capacity)
    mm.flush()
    emit(
        {
            "done": True,
            "duplicates": client.duplicates,
            "cross_duplicates": client.cross_duplicates,
            "gaps": len(client.gaps),
        }
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--out", required=True, help="record file (created, or truncated)")
    parser.add_argument("--capacity", type=int, required=True, help="most events to record")
    parser.add_argument("--group", default="bench")
    parser.add_argument("--member", default="bench-bot", help="a fixed member id: a restart takes over")
    args = parser.parse_args(argv)
    import uvloop

    uvloop.run(bot(args))


if __name__ == "__main__":
    main()
