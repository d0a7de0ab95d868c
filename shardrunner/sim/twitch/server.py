"""The Twitch chat simulator: IRC over WebSocket (aiohttp, at ``/``, with the admin API under
``/_sim/``) on ``--port`` and plain IRC over TCP on ``--irc-port``.

This module assembles the parts and runs the traffic and keepalive ticker: :mod:`.connection` (one
client's session and writer), :mod:`.commands` (what each line does), :mod:`.limits` (per-account
budgets), :mod:`.traffic` (channels and generated chat), :mod:`.faults`, :mod:`.admin`.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from shardrunner.protocol import irc
from shardrunner.protocol.twitch import SERVER
from shardrunner.sim.twitch import admin
from shardrunner.sim.twitch.commands import handle_line
from shardrunner.sim.twitch.config import TwitchSimConfig
from shardrunner.sim.twitch.connection import Connection
from shardrunner.sim.twitch.faults import Faults
from shardrunner.sim.twitch.limits import Account
from shardrunner.sim.twitch.traffic import Channel, Traffic
from shardrunner.sim.twitch.wire import line

TICK_S = 0.02


class _WsTransport:
    kind = "ws"

    def __init__(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        self.request, self.ws = request, ws
        self.peer = str(request.remote)

    async def write(self, data: bytes) -> None:
        await self.ws.send_str(data.decode())

    async def close(self) -> None:
        await self.ws.close()

    def abort(self) -> None:
        if self.request.transport is not None:
            self.request.transport.abort()


class _TcpTransport:
    def __init__(self, writer: asyncio.StreamWriter, kind: str = "tcp") -> None:
        self.writer = writer
        self.kind = kind
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def close(self) -> None:
        self.writer.close()

    def abort(self) -> None:
        self.writer.transport.abort()


class TwitchSimulator:
    """``await start()``, then ``await stop()``; ``port``, ``irc_port`` and ``irc_tls_port`` are the
    bound ports, ``tls_cert`` the PEM file of the TLS listener's certificate (None without one)."""

    def __init__(self, config: TwitchSimConfig) -> None:
        self.config = config
        self.channels: dict[str, Channel] = {}
        self.traffic = Traffic([], config.zipf, config.seed)
        self.add_channels(config.channels)
        self._link_shared(config.shared_chat)
        self.accounts: dict[str, Account] = {}
        self.connections: set[Connection] = set()
        self.stats = admin.Stats()
        self.faults = Faults(self)
        self.port = config.port
        self.irc_port = config.irc_port
        self.irc_tls_port: int | None = None
        self.tls_cert: Path | None = None
        self._tls_dir: Path | None = None
        self._tls: asyncio.Server | None = None
        self.started = time.time()
        self._runner: web.AppRunner | None = None
        self._tcp: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._credit = 0.0

    # -- channels and accounts ----------------------------------------------------------------
    def add_channels(self, names: tuple[str, ...] | list[str]) -> list[str]:
        added = []
        for name in names:
            if name not in self.channels:
                ch = Channel(name, str(141_000_000 + len(self.channels) * 7919))
                ch.suspended = name in self.config.suspended
                self.channels[name] = ch
                self.traffic.channels.append(ch)
                added.append(name)
        if added:
            self.traffic.reweigh()
        return added

    def _link_shared(self, groups: int) -> None:
        chans = self.traffic.channels
        for g in range(min(groups, len(chans) // 3)):
            group = chans[3 * g : 3 * g + 3]
            for ch in group:
                ch.shared = [c for c in group if c is not ch]

    def account(self, login: str) -> Account:
        acc = self.accounts.get(login)
        if acc is None:
            acc = self.accounts[login] = Account(login, self.config.limits(login))
        return acc

    def user_id(self, login: str) -> str:
        return str(10_000_000 + sum(ord(c) * 31**i for i, c in enumerate(login)) % 90_000_000)

    def moderated(self, login: str) -> frozenset[str]:
        return self.config.moderator.get(login, frozenset()) | {login}

    def roomstate(self, ch: Channel) -> dict[str, str]:
        return {
            "emote-only": "0",
            "followers-only": "-1",
            "r9k": "0",
            "room-id": ch.room_id,
            "slow": "0",
            "subs-only": "0",
        }

    def leave(self, conn: Connection, name: str) -> None:
        ch = conn.channels.pop(name, None)
        if ch is None:
            return
        ch.members.discard(conn)
        if conn.account is not None:
            left = conn.account.channels.get(name, 0) - 1
            if left > 0:
                conn.account.channels[name] = left
            else:
                conn.account.channels.pop(name, None)

    # -- records ------------------------------------------------------------------------------
    def record(self, what: str, conn: Connection, /, **extra: Any) -> None:
        getattr(self.stats, what).append({"time": time.time(), **conn.describe(), **extra})

    def record_login(self, conn: Connection, login: str, ok: bool, note: str) -> None:
        self.stats.logins.append(
            {"time": time.time(), "connection": conn.id, "account": login, "ok": ok, "note": note}
        )

    def record_message(
        self, conn: Connection, channel: str, text: str, refused: str | None, ident: str | None = None
    ) -> None:
        entry = {"time": time.time(), **conn.describe(), "channel": channel, "text": text}
        entry.update({"accepted": refused is None, "reason": refused, "id": ident})
        self.stats.messages.append(entry)

    def violation(self, kind: str, conn: Connection, **extra: Any) -> None:
        self.record("violations", conn, kind=kind, **extra)

    def disconnected(self, conn: Connection, by: str, reason: str, dropped: bool) -> None:
        self.connections.discard(conn)
        for name in list(conn.channels):
            self.leave(conn, name)
        self.record("closes", conn, by=by, reason=reason, dropped=dropped)

    def loop_close(self, conn: Connection) -> None:
        self.faults._later(conn.close("server closed"))

    # -- lifecycle ----------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self._root)
        admin.add_routes(app, self)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port, backlog=4096)
        await site.start()
        server = site._server
        if server is not None and self.config.port == 0:
            self.port = next(iter(getattr(server, "sockets", []))).getsockname()[1]
        self._tcp = await asyncio.start_server(self._tcp_client, self.config.host, self.config.irc_port)
        self.irc_port = self._tcp.sockets[0].getsockname()[1]
        if self.config.irc_tls_port is not None:
            await self._start_tls(self.config.irc_tls_port)
        self._tasks = [asyncio.create_task(self._ticker())]

    async def _start_tls(self, port: int) -> None:
        from shardrunner.sim.twitch.tls import make_certificate, server_context

        self._tls_dir = Path(tempfile.mkdtemp(prefix="sr-sim-twitch-tls-"))
        cert, key = await asyncio.to_thread(make_certificate, self._tls_dir, self.config.host)
        self.tls_cert = cert

        async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._tcp_client(reader, writer, "tls")

        self._tls = await asyncio.start_server(client, self.config.host, port, ssl=server_context(cert, key))
        self.irc_tls_port = self._tls.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for conn in list(self.connections):
            conn.drop("simulator stopped")
        for server in (self._tcp, self._tls):
            if server is not None:
                server.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._tls_dir is not None:
            shutil.rmtree(self._tls_dir, ignore_errors=True)

    @property
    def ws_url(self) -> str:
        return f"ws://{self.config.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    # -- transports ---------------------------------------------------------------------------
    def _open(self, transport: Any) -> Connection:
        conn = Connection(self, transport)
        self.connections.add(conn)
        self.record("opens", conn, peer=transport.peer)
        conn.start()
        return conn

    async def _root(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return web.Response(text="shardrunner Twitch chat simulator\n")
        ws = web.WebSocketResponse(autoping=True, max_msg_size=1 << 20, protocols=("irc",))
        await ws.prepare(request)
        conn = self._open(_WsTransport(request, ws))
        buf = irc.LineBuffer()
        try:
            async for frame in ws:
                if frame.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break
                data = frame.data.encode() if isinstance(frame.data, str) else frame.data
                if not data.endswith(b"\n"):
                    # A frame holds whole lines: its end ends the last one, CRLF or not (tmi.js
                    # sends every line as a frame of its own, without CRLF).
                    data += b"\r\n"
                if not self._feed(conn, buf, data):
                    break
        finally:
            conn.gone()
        return ws

    async def _tcp_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, kind: str = "tcp"
    ) -> None:
        conn = self._open(_TcpTransport(writer, kind))
        buf = irc.LineBuffer()
        try:
            while not conn.closed:
                data = await reader.read(65536)
                if not data or not self._feed(conn, buf, data):
                    break
        except (ConnectionError, OSError):
            pass
        finally:
            conn.gone()
            with contextlib.suppress(Exception):
                writer.close()

    def _feed(self, conn: Connection, buf: irc.LineBuffer, data: bytes) -> bool:
        try:
            lines = buf.feed(data)
        except irc.IrcError:
            conn.drop("line too long")
            return False
        for raw in lines:
            if conn.closed:
                return False
            handle_line(self, conn, raw)
        return not conn.closed

    # -- traffic and keepalive ----------------------------------------------------------------
    async def _ticker(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(TICK_S)
            now = time.monotonic()
            dt, last = now - last, now
            self._keepalive(now)
            self.faults.tick(dt)
            self._generate(now, dt)

    def _keepalive(self, now: float) -> None:
        cfg = self.config
        ping = line("PING", [SERVER], prefix=None)
        for conn in list(self.connections):
            if conn.pong_deadline is not None and now > conn.pong_deadline:
                conn.pong_deadline = conn.ping_sent_at = None
                self.violation("pong_timeout", conn)
                self.faults._later(conn.close("pong timeout"))
            elif now >= conn.next_ping:
                conn.next_ping = now + cfg.ping_interval
                conn.send(ping)
                if conn.pong_deadline is None:
                    conn.pong_deadline = now + cfg.pong_timeout
                    conn.ping_sent_at = now

    def _generate(self, now: float, dt: float) -> None:
        cfg = self.config
        credit = self._credit + cfg.rate * dt
        n = int(min(credit, 10_000))
        self._credit = credit - n
        traffic = self.traffic
        rng = traffic.rng
        for _ in range(n if traffic.channels else 0):
            ch = traffic.pick()
            if ch.suspended:
                continue
            for target, data, ident, source in traffic.lines(ch):
                self.deliver(target, data, ident, source, now, rng.random() < cfg.swap_rate)
                if rng.random() < cfg.duplicate_rate:
                    self.deliver(target, data, None, None, now, False)
            if cfg.membership and ch.members:
                joined_or_left = traffic.membership(ch)
                if joined_or_left is not None:
                    for conn in list(ch.members):
                        if conn.membership():
                            conn.send(joined_or_left)
        for ch in self.traffic.channels:
            if ch.held is not None and now - ch.held_at > 1.0:
                self._send_all(ch, ch.held)
                ch.held = None

    def deliver(
        self, ch: Channel, line: bytes, ident: str | None, source: str | None, now: float, swap: bool
    ) -> None:
        if ident is not None:
            if not ch.members:
                ch.unheard += 1
                return
            if source is not None and source != ident:
                ch.copies.append((ident, source))
            else:
                ch.ids.append(ident)
        if swap and ch.held is None:
            ch.held, ch.held_at = line, now
            return
        self._send_all(ch, line)
        if ch.held is not None:
            held, ch.held = ch.held, None
            self._send_all(ch, held)

    def _send_all(self, ch: Channel, line: bytes) -> None:
        for conn in list(ch.members):
            conn.send(line)
