"""twitchio 2.x's ``Client`` against the Twitch simulator; run by test_real_clients.py as
``python twitchio_client.py WS_URL CHANNELS LOGIN TOKEN``.

Prints the same JSON lines as node/client.mjs (ready, join, message, sent, disconnected, error,
quit) and reads ``say CHANNEL TEXT`` lines from stdin; at end of stdin it closes and exits 0.

twitchio 2.x has no server setting: its WebSocket URL is the module constant
``twitchio.websocket.HOST``, set here to the simulator's. It learns its login by validating the
token at id.twitch.tv unless the login is already known, so the login is given as Twitch's
validate answer would (``client._http.nick``, with the HTTP session that validation would have
opened). Nothing else is changed.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import aiohttp
import twitchio
import twitchio.websocket


def out(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


async def main(url: str, channels: list[str], login: str, token: str) -> int:
    twitchio.websocket.HOST = url
    client = twitchio.Client(token=f"oauth:{token}", initial_channels=channels)
    client._http.nick = login
    client._http.session = aiohttp.ClientSession()

    @client.event()
    async def event_ready() -> None:
        out("ready", user=client.nick)

    @client.event()
    async def event_channel_joined(channel: twitchio.Channel) -> None:
        out("join", channel=channel.name, user=login)

    @client.event()
    async def event_message(message: twitchio.Message) -> None:
        if message.echo:
            return  # twitchio's own copy of what it sent, not from the server
        out("message", channel=message.channel.name, id=message.id, self=False, text=message.content)

    @client.event()
    async def event_reconnect() -> None:
        out("disconnected", reason="RECONNECT")

    @client.event()
    async def event_error(error: Exception, data: str | None = None) -> None:
        out("error", where="event_error", message=repr(error))

    await client.connect()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while raw := await reader.readline():
        cmd, _, rest = raw.decode().strip().partition(" ")
        if cmd == "say":
            channel, _, text = rest.partition(" ")
            try:
                chan = client.get_channel(channel)
                if chan is None:
                    raise RuntimeError(f"not in {channel}")
                await chan.send(text)
                out("sent", channel=channel)
            except Exception as exc:
                out("error", where="say", message=repr(exc))
    await client.close()
    out("quit")
    return 0


if __name__ == "__main__":
    ws_url, names, user, secret = sys.argv[1:5]
    sys.exit(asyncio.run(main(ws_url, names.split(","), user, secret)))
