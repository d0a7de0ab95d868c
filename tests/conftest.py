"""Shared fixtures: an in-process simulator on a free port, and a raw gateway client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import msgspec
import pytest

from shardrunner.protocol.compression import Compression, new_decompressor
from shardrunner.sim.discord.config import SimConfig
from shardrunner.sim.discord.server import Simulator
from shardrunner.sim.discord.world import make_token

#: A real redis-server on a free port (the ``redis_server`` fixture).
pytest_plugins = ["tests.redis_server"]

TOKEN = make_token(1100000000000000001)


async def wait_for(
    predicate: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0, what: str = ""
) -> None:
    """Wait until ``predicate`` is true, polling; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what or predicate}")
        await asyncio.sleep(0.01)


_open_gateways: list[RawGateway] = []


class RawGateway:
    """A minimal gateway client that does exactly what a test tells it to, and keeps everything it got."""

    def __init__(
        self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse, mode: Compression
    ):
        self.session = session
        self.ws = ws
        self.decompressor = new_decompressor(mode)
        self.received: list[dict[str, Any]] = []
        self.close_code: int | None = None

    @classmethod
    async def connect(cls, url: str, mode: Compression = Compression.ZLIB_STREAM, **query: str) -> RawGateway:
        session = aiohttp.ClientSession()
        params = {"v": "10", "encoding": "json", **query}
        if mode is not Compression.NONE:
            params["compress"] = mode.value
        try:
            ws = await session.ws_connect(url, params=params, autoclose=False, max_msg_size=0)
        except BaseException:
            await session.close()
            raise
        gw = cls(session, ws, mode)
        _open_gateways.append(gw)
        return gw

    async def recv(self, timeout: float = 10.0) -> dict[str, Any] | None:
        """The next payload, or None once the gateway closed (``close_code`` then holds its code)."""
        while True:
            msg = await self.ws.receive(timeout=timeout)
            if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                data = msg.data.encode() if isinstance(msg.data, str) else msg.data
                payload = self.decompressor.feed(data)
                if payload is None:
                    continue
                decoded: dict[str, Any] = msgspec.json.decode(payload)
                self.received.append(decoded)
                return decoded
            if msg.type is aiohttp.WSMsgType.CLOSE:
                self.close_code = msg.data
                await self.ws.close()
                return None
            self.close_code = self.close_code or 1006
            return None

    async def recv_until(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail("timed out waiting for a payload")
            msg = await self.recv(timeout=left)
            if msg is None:
                pytest.fail(f"gateway closed with {self.close_code} while waiting for a payload")
            if predicate(msg):
                return msg

    async def expect_close(self, timeout: float = 10.0) -> int | None:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail("timed out waiting for the gateway to close")
            if await self.recv(timeout=left) is None:
                return self.close_code

    async def send(self, payload: Any) -> None:
        await self.ws.send_bytes(msgspec.json.encode(payload))

    async def identify(self, shard: list[int] | None = None, token: str = TOKEN, intents: int = 513) -> None:
        d: dict[str, Any] = {
            "token": token,
            "intents": intents,
            "properties": {"os": "linux", "browser": "test", "device": "test"},
        }
        if shard is not None:
            d["shard"] = shard
        await self.send({"op": 2, "d": d})

    async def resume(self, session_id: str, seq: int | None, token: str = TOKEN) -> None:
        await self.send({"op": 6, "d": {"token": token, "session_id": session_id, "seq": seq}})

    async def close(self, code: int = 1000) -> None:
        await self.ws.close(code=code)
        await self.session.close()

    def dispatch_seqs(self) -> list[int]:
        """Seqs of every dispatch received, in order (RESUMED included: it has a seq of its own)."""
        return [m["s"] for m in self.received if m.get("op") == 0]


SimFactory = Callable[..., Awaitable[Simulator]]


@pytest.fixture(autouse=True)
async def _close_raw_gateways() -> AsyncIterator[None]:
    """Close every RawGateway a test opened, also when it failed half-way."""
    yield
    while _open_gateways:
        gw = _open_gateways.pop()
        if not gw.session.closed:
            await gw.ws.close()
            await gw.session.close()


@pytest.fixture
async def sim_factory() -> AsyncIterator[SimFactory]:
    """Start simulators on free ports on 127.0.0.1; every one is stopped at the end of the test."""
    started: list[Simulator] = []

    async def start(**options: Any) -> Simulator:
        options.setdefault("port", 0)
        options.setdefault("identify_window", 0.2)
        options.setdefault("heartbeat_interval_ms", 1000)
        options.setdefault("min_members", 2)
        options.setdefault("max_members", 50)
        sim = Simulator(SimConfig(**options))
        await sim.start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        await sim.stop()


async def http_json(
    sim: Simulator, method: str, path: str, body: Any = None, token: str | None = TOKEN
) -> tuple[int, Any, str]:
    headers = {"Authorization": f"Bot {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as s,
        s.request(
            method, sim.url + path, data=None if body is None else msgspec.json.encode(body), headers=headers
        ) as r,
    ):
        return r.status, msgspec.json.decode(await r.read()), r.headers.get("Content-Type", "")
