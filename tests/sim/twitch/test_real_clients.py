"""Real Twitch chat clients against the simulator, changed in nothing but the server address.

- tmi.js 1.8.5 (node/client.mjs ``tmi``) over WebSocket, with an account and anonymously;
- @twurple/chat 8.2.0 (node/client.mjs ``twurple``) over plain TCP;
- twitchio 2.10.0 (twitchio_client.py) over WebSocket.

Each runs in its own process and prints one JSON line per event; the simulator runs in the test's
process. Each test: the client logs in and joins two channels, receives generated PRIVMSGs (their
ids are checked against the simulator's, none twice), sends one PRIVMSG (checked in the
simulator's ``messages``; not for the anonymous login, which cannot send), then gets
``:tmi.twitch.tv RECONNECT`` (``POST /_sim/fault``) and must log in on a new connection, join both
channels again and receive messages there. Then stdin is closed and the client must exit 0.

``npm ci`` installs the pinned Node packages on first use (node and npm are required: their absence
fails the test instead of skipping it); twitchio is in the ``test`` extra.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import random
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Final

import pytest
from aiohttp import web

from shardrunner.sim.twitch.server import TwitchSimulator
from tests.node import JsonLinesProcess, ensure_installed, node_tools
from tests.sim.twitch.helpers import admin, running

pytestmark = pytest.mark.asyncio

HERE: Final = Path(__file__).parent
NODE_DIR: Final = HERE / "node"
CHANNELS: Final = ("chan0", "chan1")
LOGIN: Final = "simbot"
TOKEN: Final = "simtoken123"
#: Generated lines per second over both channels: a few messages per channel per second.
RATE: Final = 30.0
STEP: Final = 10.0  # deadline of each wait
#: twurple's ChatClient has no port option: plain TCP goes to Twitch's port 6667.
TWITCH_IRC_PORT: Final = 6667


# -- installing the Node clients ------------------------------------------------------------------
# -- the client process ---------------------------------------------------------------------------
class ClientProcess(JsonLinesProcess):
    """A running client: every JSON line it printed and the tail of its stderr."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process) -> None:
        self.name = name
        super().__init__(proc)

    @classmethod
    async def start(cls, name: str, *argv: str, env: dict[str, str] | None = None) -> ClientProcess:
        return cls(name, await cls.spawn(*argv, cwd=HERE, env=env))

    def context(self) -> str:
        shown = [e for e in self.events if e["event"] != "message"][-15:]
        return f"\n{self.name} events (no messages): {shown}\n{self.name} stderr (tail):\n" + "\n".join(
            self.stderr
        )

    def alive(self) -> None:
        if self.proc.returncode is not None:
            pytest.fail(f"{self.name} exited with {self.proc.returncode}{self.context()}", pytrace=False)
        errors = [e for e in self.events if e["event"] == "error"]
        if errors:
            pytest.fail(f"{self.name} reported {errors[0]}{self.context()}", pytrace=False)

    async def wait(self, predicate: Callable[[], bool], what: str, timeout: float = STEP) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.alive()
            if predicate():
                return
            if time.monotonic() > deadline:
                pytest.fail(f"{self.name}: no {what} within {timeout:.0f} s{self.context()}", pytrace=False)
            await asyncio.sleep(0.02)

    def named(self, event: str, start: int = 0) -> list[dict[str, Any]]:
        return [e for e in self.events[start:] if e["event"] == event]

    def messages(self, channel: str, start: int = 0) -> list[dict[str, Any]]:
        return [e for e in self.named("message", start) if e["channel"] == channel and not e["self"]]

    async def say(self, channel: str, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"say {channel} {text}\n".encode())
        await self.proc.stdin.drain()


# -- the simulator's side -------------------------------------------------------------------------
def live(sim: TwitchSimulator, login: str | None) -> list[Any]:
    """The open logged-in connections of ``login`` (None: the anonymous ones)."""
    return [
        c
        for c in sim.connections
        if not c.closed and c.login is not None and (c.login == login if login else c.anonymous)
    ]


def logins(sim: TwitchSimulator, login: str | None) -> list[dict[str, Any]]:
    """Accepted logins of ``login`` (None: anonymous ones)."""
    return [
        r
        for r in sim.stats.logins
        if r["ok"] and (r["account"] == login if login else r["note"] == "anonymous")
    ]


def joined_everywhere(sim: TwitchSimulator, login: str | None) -> bool:
    conns = live(sim, login)
    return len(conns) == 1 and set(conns[0].channels) == set(CHANNELS)


def check_ids(sim: TwitchSimulator, client: ClientProcess) -> int:
    """Every message the client got was generated in its channel; none came twice."""
    total = 0
    for name in CHANNELS:
        ids = [e["id"] for e in client.messages(name)]
        assert ids, f"{client.name} got no message in {name}"
        assert None not in ids, f"{client.name}: a message without id in {name}"
        assert len(ids) == len(set(ids)), f"{client.name}: a message twice in {name}"
        unknown = set(ids) - set(sim.channels[name].ids)
        assert not unknown, f"{client.name}: ids the simulator did not send to {name}: {sorted(unknown)[:5]}"
        total += len(ids)
    return total


async def exercise(sim: TwitchSimulator, client: ClientProcess, login: str | None) -> dict[str, float]:
    """The scenario of the module docstring; ``login`` None: anonymous (``justinfan<digits>``,
    which tmi.js draws anew for each connection)."""
    started = time.monotonic()
    times: dict[str, float] = {}
    await client.wait(lambda: bool(client.named("ready")), "login (ready)")
    await client.wait(lambda: {e["channel"] for e in client.named("join")} >= set(CHANNELS), "JOIN of both")
    await client.wait(
        lambda: all(len(client.messages(c)) >= 3 for c in CHANNELS), "3 messages in each channel"
    )
    assert joined_everywhere(sim, login)
    times["joined and receiving"] = time.monotonic() - started

    if login is not None:
        text = f"hello from {client.name}"
        await client.say(CHANNELS[0], text)
        await client.wait(lambda: bool(client.named("sent")), "say() to resolve")
        await client.wait(
            lambda: any(m["text"] == text for m in sim.stats.messages), "its PRIVMSG in the simulator"
        )
        (sent,) = [m for m in sim.stats.messages if m["text"] == text]
        assert (sent["account"], sent["channel"], sent["accepted"]) == (login, CHANNELS[0], True), sent
        times["sent"] = time.monotonic() - started

    (old,) = live(sim, login)
    logins_before = len(logins(sim, login))
    mark = len(client.events)
    status, body = await admin(sim, "POST", "/_sim/fault", {"kind": "reconnect", "account": old.login})
    assert (status, body["applied"]) == (200, 1), body
    await client.wait(lambda: old.closed, "close of the old connection after RECONNECT")
    await client.wait(
        lambda: live(sim, login) != [old] and joined_everywhere(sim, login),
        "a new connection in both channels",
    )
    await client.wait(
        lambda: all(len(client.messages(c, mark)) >= 3 for c in CHANNELS), "messages again after RECONNECT"
    )
    assert len(logins(sim, login)) == logins_before + 1, sim.stats.logins
    assert client.named("disconnected", mark), "the client did not see its connection end"
    times["reconnected and receiving"] = time.monotonic() - started

    check_ids(sim, client)
    stats = sim.stats
    assert stats.violations == [], stats.violations
    assert stats.bad_lines == [], stats.bad_lines
    assert await client.stop() == 0, client.context()
    assert client.events[-1]["event"] == "quit"
    return times


@contextlib.asynccontextmanager
async def started(client: ClientProcess) -> AsyncIterator[ClientProcess]:
    try:
        yield client
    finally:
        await client.kill()


# -- tmi.js ---------------------------------------------------------------------------------------
@pytest.mark.timeout(240)  # the first run installs the packages (npm ci)
@pytest.mark.parametrize("anonymous", [False, True], ids=["account", "anonymous"])
async def test_tmijs_over_websocket_joins_receives_sends_and_survives_reconnect(anonymous: bool) -> None:
    node, npm = node_tools("the Twitch client tests")
    await ensure_installed(npm, NODE_DIR)
    async with running(channels=CHANNELS, accounts={LOGIN: TOKEN}, rate=RATE, reconnect_grace=1.0) as sim:
        creds = [] if anonymous else [LOGIN, TOKEN]
        argv = [node, str(NODE_DIR / "client.mjs"), "tmi", "127.0.0.1", str(sim.port), ",".join(CHANNELS)]
        async with started(await ClientProcess.start("tmi.js", *argv, *creds)) as client:
            times = await exercise(sim, client, None if anonymous else LOGIN)
        assert all(c.transport.kind == "ws" for c in sim.connections)
        print(f"tmi.js ({'anonymous' if anonymous else 'account'}): {times}")


# -- @twurple/chat --------------------------------------------------------------------------------
def free_loopback(port: int) -> str:
    """A 127.x.y.z address whose ``port`` is free (twurple cannot be given another port)."""
    rng = random.Random()
    for _ in range(50):
        addr = str(ipaddress.IPv4Address(0x7F000000 + rng.randrange(2, 0xFFFFFE)))
        with socket.socket() as s:
            try:
                s.bind((addr, port))
            except OSError:
                continue
        return addr
    pytest.fail(f"no loopback address with port {port} free")


@contextlib.asynccontextmanager
async def token_validator(login: str, token: str) -> AsyncIterator[tuple[int, list[str]]]:
    """id.twitch.tv's ``GET /oauth2/validate`` for one token, where twurple's mock-API setting
    (``TWURPLE_MOCK_API_PORT``) sends it: ``/auth/validate`` on localhost. Yields (port, the
    tokens it was asked about)."""
    asked: list[str] = []

    async def validate(request: web.Request) -> web.Response:
        got = request.headers.get("Authorization", "").removeprefix("OAuth ")
        asked.append(got)
        if got != token:
            return web.json_response({"status": 401, "message": "invalid access token"}, status=401)
        return web.json_response(
            {
                "client_id": "simclientid",
                "login": login,
                "scopes": ["chat:edit", "chat:read"],
                "user_id": "12345678",
                "expires_in": 5_000_000,
            }
        )

    app = web.Application()
    app.router.add_get("/auth/validate", validate)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    port = next(iter(getattr(server, "sockets", []))).getsockname()[1]
    try:
        yield port, asked
    finally:
        await runner.cleanup()


@pytest.mark.timeout(240)  # the first run installs the packages (npm ci)
async def test_twurple_over_tcp_joins_receives_sends_and_survives_reconnect() -> None:
    node, npm = node_tools("the Twitch client tests")
    await ensure_installed(npm, NODE_DIR)
    host = free_loopback(TWITCH_IRC_PORT)
    async with (
        token_validator(LOGIN, TOKEN) as (api_port, asked),
        running(
            host=host,
            irc_port=TWITCH_IRC_PORT,
            channels=CHANNELS,
            accounts={LOGIN: TOKEN},
            rate=RATE,
            reconnect_grace=1.0,
        ) as sim,
    ):
        argv = [node, str(NODE_DIR / "client.mjs"), "twurple", host, "-", ",".join(CHANNELS), LOGIN, TOKEN]
        env = {"TWURPLE_MOCK_API_PORT": str(api_port)}
        async with started(await ClientProcess.start("twurple", *argv, env=env)) as client:
            times = await exercise(sim, client, LOGIN)
        assert asked, "twurple did not validate its token"
        assert set(asked) == {TOKEN}
        assert all(c.transport.kind == "tcp" for c in sim.connections)
        print(f"@twurple/chat: {times}")


# -- twitchio 2.x ---------------------------------------------------------------------------------
async def test_twitchio_over_websocket_joins_receives_sends_and_survives_reconnect() -> None:
    async with running(channels=CHANNELS, accounts={LOGIN: TOKEN}, rate=RATE, reconnect_grace=1.0) as sim:
        argv = [
            sys.executable,
            str(HERE / "twitchio_client.py"),
            sim.ws_url,
            ",".join(CHANNELS),
            LOGIN,
            TOKEN,
        ]
        async with started(await ClientProcess.start("twitchio", *argv)) as client:
            times = await exercise(sim, client, LOGIN)
        print(f"twitchio: {times}")
