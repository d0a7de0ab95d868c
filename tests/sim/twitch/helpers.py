"""Helpers of the Twitch simulator's tests: an in-process simulator on free ports and a raw IRC
client over TCP or WebSocket that keeps every line it got."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

import aiohttp
import msgspec

from shardrunner.protocol import irc
from shardrunner.sim.twitch.config import TwitchSimConfig
from shardrunner.sim.twitch.server import TwitchSimulator


@asynccontextmanager
async def running(**options: Any) -> AsyncIterator[TwitchSimulator]:
    options.setdefault("port", 0)
    options.setdefault("irc_port", 0)
    options.setdefault("rate", 0.0)
    sim = TwitchSimulator(TwitchSimConfig(**options))
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


class RawIrc:
    """A client that sends what a test says and keeps every parsed line."""

    def __init__(self) -> None:
        self.lines: list[irc.Message] = []
        #: The same lines as received (without CRLF).
        self.raw: list[bytes] = []
        self.closed = asyncio.Event()
        self._new = asyncio.Event()
        self._buf = irc.LineBuffer()
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    async def tcp(cls, sim: TwitchSimulator, rcvbuf: int = 0) -> RawIrc:
        self = cls()
        if rcvbuf:
            import socket

            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", sim.irc_port))
            reader, self._writer = await asyncio.open_connection(sock=sock)
        else:
            reader, self._writer = await asyncio.open_connection("127.0.0.1", sim.irc_port)
        self._task = asyncio.create_task(self._read_tcp(reader)) if not rcvbuf else None
        return self

    @classmethod
    async def ws(cls, sim: TwitchSimulator) -> RawIrc:
        self = cls()
        self._session = aiohttp.ClientSession()
        self._ws = await self._session.ws_connect(sim.ws_url)
        self._task = asyncio.create_task(self._read_ws())
        return self

    def _got(self, data: bytes) -> None:
        for line in self._buf.feed(data):
            self.raw.append(line)
            self.lines.append(irc.parse(line))
        self._new.set()

    async def _read_tcp(self, reader: asyncio.StreamReader) -> None:
        try:
            while data := await reader.read(65536):
                self._got(data)
        except (ConnectionError, OSError):
            pass
        self.closed.set()

    async def _read_ws(self) -> None:
        assert self._ws is not None
        async for frame in self._ws:
            if frame.type == aiohttp.WSMsgType.TEXT:
                self._got(frame.data.encode())
            else:
                break
        self.closed.set()

    async def send(self, *lines: str) -> None:
        data = "".join(line + "\r\n" for line in lines)
        if self._ws is not None:
            await self._ws.send_str(data)
        else:
            assert self._writer is not None
            self._writer.write(data.encode())
            await self._writer.drain()

    async def wait(
        self, pred: Callable[[irc.Message], bool], timeout: float = 5.0, start: int = 0
    ) -> irc.Message:
        deadline = time.monotonic() + timeout
        seen = start
        while True:
            for m in self.lines[seen:]:
                if pred(m):
                    return m
            seen = len(self.lines)
            left = deadline - time.monotonic()
            if left <= 0 or self.closed.is_set():
                raise AssertionError(f"no matching line in {[irc.format(m) for m in self.lines][-10:]}")
            self._new.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self._new.wait(), min(left, 0.2))

    async def wait_closed(self, timeout: float = 5.0) -> None:
        await asyncio.wait_for(self.closed.wait(), timeout)

    def commands(self) -> list[str]:
        return [m.command for m in self.lines]

    async def login(self, nick: str = "bar", token: str = "oauth:abc", caps: bool = True) -> None:
        if caps:
            await self.send("CAP REQ :twitch.tv/tags twitch.tv/commands twitch.tv/membership")
        await self.send(f"PASS {token}", f"NICK {nick}")
        await self.wait(lambda m: m.command == "376")

    async def join(self, chan: str) -> None:
        start = len(self.lines)
        await self.send(f"JOIN #{chan}")
        await self.wait(lambda m: m.command == "ROOMSTATE" and m.params[0] == f"#{chan}", start=start)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._writer is not None:
            self._writer.close()
        if self._ws is not None:
            await self._ws.close()
        if self._session is not None:
            await self._session.close()


async def admin(sim: TwitchSimulator, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, sim.url + path, data=None if body is None else msgspec.json.encode(body)) as r,
    ):
        return r.status, msgspec.json.decode(await r.read())
