"""twitchio 2.x reading channels of the shardrunner Twitch chat simulator; run by benchmarks/twitch.py.

    python twitchio_bench.py WS_URL CHANNELS_FILE IDS_OUT JOIN

One ``twitchio.Client`` (WebSocket, stock asyncio as its users run it), logged in anonymously as
``justinfan<digits>`` (twitchio 2.x has no anonymous mode: it is given that login as Twitch's token
validation would, ``client._http.nick``, with the HTTP session validation would have opened, and any
token: the server takes any PASS from a justinfan). Its WebSocket URL is the module constant
``twitchio.websocket.HOST``, set to the simulator's (twitchio has no server setting). JOIN says how
it joins the channels of CHANNELS_FILE (names, one a line):

- ``direct``: none at start; once ready, its websocket's ``_join_channel`` for every channel at
  once (the JOIN line and the wait for its answer, without the throttle of ``join_channels``);
- ``library``: ``initial_channels``, joined by twitchio itself (``join_channels``: chunks of 20
  channels, 11 s apart).

Counts the ``id`` of every PRIVMSG (``event_message``) and USERNOTICE (``event_raw_usernotice``)
once; a second copy counts as a duplicate. Prints one JSON object per line on stdout, like
tmi_bench.mjs (times are ``time.monotonic()``): ready, joined (after each JOIN came back),
progress (every 0.25 s while ids arrive), disconnected; at the end of stdin it writes the ids to
IDS_OUT, prints ``done`` and exits 0.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import aiohttp
import twitchio
import twitchio.websocket

LOGIN = "justinfan31337"


def emit(**record: Any) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def read_channels(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [ln.strip() for ln in f if ln.strip()]


def write_ids(path: str, ids: set[str]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(i + "\n" for i in ids))


async def main(url: str, channels_file: str, ids_out: str, join: str) -> int:
    channels = read_channels(channels_file)
    twitchio.websocket.HOST = url
    library = join == "library"
    client = twitchio.Client(token="oauth:anonymous", initial_channels=channels if library else None)
    client._http.nick = LOGIN
    client._http.session = aiohttp.ClientSession()
    seen: set[str] = set()
    state = {"dups": 0, "first": 0.0, "last": 0.0, "joined": 0}

    def got(ident: str | None) -> None:
        if not ident:
            return
        state["last"] = t = time.monotonic()
        if not state["first"]:
            state["first"] = t
        if ident in seen:
            state["dups"] += 1
        else:
            seen.add(ident)

    @client.event()
    async def event_ready() -> None:
        emit(event="ready", t=time.monotonic())
        if not library:
            ws = client._connection
            for name in channels:
                await ws._join_channel(name, 60)

    @client.event()
    async def event_channel_joined(channel: twitchio.Channel) -> None:
        state["joined"] += 1
        emit(event="joined", count=state["joined"], t=time.monotonic())

    @client.event()
    async def event_message(message: twitchio.Message) -> None:
        got(message.id)

    @client.event()
    async def event_raw_usernotice(channel: twitchio.Channel, tags: dict[str, str]) -> None:
        got(tags.get("id"))

    @client.event()
    async def event_reconnect() -> None:
        emit(event="disconnected", reason="RECONNECT", t=time.monotonic())

    async def progress() -> None:
        reported = -1
        while True:
            await asyncio.sleep(0.25)
            total = len(seen) + int(state["dups"])
            if total != reported:
                reported = total
                emit(
                    event="progress",
                    count=len(seen),
                    dups=state["dups"],
                    first=state["first"],
                    last=state["last"],
                )

    ticker = asyncio.ensure_future(progress())
    await client.connect()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.readline():
        pass
    ticker.cancel()
    write_ids(ids_out, seen)
    emit(event="done", count=len(seen), dups=state["dups"], first=state["first"], last=state["last"])
    await client.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(*sys.argv[1:5])))
