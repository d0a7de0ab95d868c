"""The bot process of the chaos soak (benchmarks/chaos): one `shardrunner.client.Client` member that
writes down every event it gets, after the client's dedupe.

One line per event, appended with ``os.write`` as it is processed (before the next event is asked
for, which is what acknowledges it), so a SIGKILL leaves every processed event on disk:
``d TIME SESSION SEQ REDELIVERED`` for a Discord event, ``t TIME ID REDELIVERED #CHANNEL`` for a
Twitch PRIVMSG or USERNOTICE (its ``id`` tag). TIME is ``time.time()``. Lifecycle events are not written.
On stdout, JSON lines: ``{"ready": ...}`` once joined, ``{"duplicates": N}`` (the client's dedupe
count) every second, ``{"gap": ...}`` per gap report, ``{"done": ...}`` after SIGTERM. Not a
benchmark itself.

Run: python -m benchmarks.chaos.bot --run-dir DIR --out FILE --group NAME --member ID
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import time

from harness.lines import emit, gap_record
from shardrunner.client import Client, Gap

#: The Twitch events whose ``id`` tag the simulator counts (its per-channel ``ids``).
COUNTED = frozenset(("PRIVMSG", "USERNOTICE"))


async def consume(client: Client, fd: int) -> None:
    write, now = os.write, time.time
    async for event in client:
        name = event.name
        if name.startswith("shardrunner."):
            continue
        flag = 1 if event.redelivered else 0
        if event.conn.platform == "twitch":
            if name not in COUNTED:
                continue
            data = event.data
            ident = data["tags"].get("id")
            if ident:
                write(fd, f"t {now():.3f} {ident} {flag} {data['params'][0]}\n".encode())
        else:
            write(fd, f"d {now():.3f} {event.session} {event.seq} {flag}\n".encode())


async def bot(args: argparse.Namespace) -> None:
    fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    client = Client(args.run_dir, group=args.group, member=args.member)

    @client.on_gap
    async def gap(g: Gap) -> None:
        emit({"gap": gap_record(g)})

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await client.start()
    emit({"ready": True, "t": time.time(), "member": client.member})
    task = asyncio.ensure_future(consume(client, fd))
    stopping = asyncio.ensure_future(stop.wait())
    reported = -1
    while not stop.is_set() and not task.done():
        await asyncio.wait([task, stopping], timeout=1.0)
        if client.duplicates != reported:
            reported = client.duplicates
            emit({"duplicates": reported})
    if task.done() and task.exception() is not None:
        emit({"error": repr(task.exception())})
    task.cancel()
    stopping.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    await client.close()
    os.close(fd)
    emit({"done": True, "duplicates": client.duplicates, "gaps": len(client.gaps)})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--out", required=True, help="record file (appended to)")
    parser.add_argument("--group", required=True)
    parser.add_argument("--member", required=True, help="a fixed member id: a restart takes over")
    args = parser.parse_args(argv)
    import uvloop

    uvloop.run(bot(args))


if __name__ == "__main__":
    main()
