"""The Discord gateway and REST simulator: one aiohttp server, one port.

``GET /`` with a WebSocket upgrade is the gateway; ``/api/v10/...`` the REST endpoints clients call
before connecting; ``/_sim/...`` the admin API (faults, stats, run-time settings) for tests and
benchmarks. See docs/simulator.md.

This module assembles the parts and runs the dispatch generator: :mod:`.gateway` (one connection's
protocol), :mod:`.handshake` (IDENTIFY, RESUME), :mod:`.writer` (outbound frames, compression),
:mod:`.limits` (identify and command rate limits), :mod:`.sessions` (the resume table),
:mod:`.faults`, :mod:`.rest`, :mod:`.admin`, and the world (:mod:`.world`, :mod:`.entities`).
"""

from __future__ import annotations

import array
import asyncio
import math
import time
from typing import Any

from aiohttp import web

from shardrunner.protocol.compression import Compression
from shardrunner.protocol.discord import CloseCode, shard_for_guild
from shardrunner.sim.discord import admin
from shardrunner.sim.discord.admin import Admin
from shardrunner.sim.discord.config import SimConfig
from shardrunner.sim.discord.faults import Faults, FaultSpec
from shardrunner.sim.discord.gateway import Connection
from shardrunner.sim.discord.limits import IdentifyLimits
from shardrunner.sim.discord.membership import Membership
from shardrunner.sim.discord.recorder import Recorder
from shardrunner.sim.discord.replay import PreparedScript
from shardrunner.sim.discord.rest import Rest
from shardrunner.sim.discord.session import Session
from shardrunner.sim.discord.sessions import SessionTable
from shardrunner.sim.discord.tracking import DispatchLog
from shardrunner.sim.discord.world import World

__all__ = ["Connection", "FaultSpec", "Recorder", "Simulator"]


class Simulator:
    """The simulated gateway and REST API. ``await start()``, then ``await stop()``."""

    def __init__(
        self, config: SimConfig, scripts: dict[tuple[int, Compression], PreparedScript] | None = None
    ):
        self._config = config
        self.world = World(config)
        self.scripts = scripts or {}
        self.recorder = Recorder()
        self.table = SessionTable(self.world, self.scripts, lambda: self.resume_url)
        self.connections: set[Connection] = set()
        self.limits = IdentifyLimits(config)
        self.faults = Faults(config)
        self.dispatches = DispatchLog()
        self.membership = Membership(self)
        #: IDENTIFYs refused because of ``refuse_shard_counts``.
        self.identifies_refused = 0
        self._credit = [0.0] * config.shards
        #: Per session id: (shard, [last seq of each write], [time.monotonic_ns() of that write]).
        self.sends: dict[str, tuple[int, array.array[int], array.array[int]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: web.AppRunner | None = None
        self.port = config.port
        self.started = time.time()

    @property
    def config(self) -> SimConfig:
        """The settings; ``POST /_sim/config`` replaces them at run time, and every part sees that."""
        return self._config

    @config.setter
    def config(self, config: SimConfig) -> None:
        tracking = self._config.track_dispatches
        self._config = config
        self.limits.config = config
        self.faults.config = config
        if config.track_dispatches and not tracking:
            # Live sessions are tracked from their next seq on.
            for s in self.sessions.values():
                self.dispatches.start(s, s.last_seq + 1)
        elif tracking and not config.track_dispatches:
            for track in self.dispatches.tracks:
                track.stop()

    @property
    def sessions(self) -> dict[str, Session]:
        """Every session by id, ended ones included for a while (what RESUME looks up)."""
        return self.table.by_id

    # -- urls ---------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    @property
    def gateway_url(self) -> str:
        return self.config.gateway_url or f"ws://{self.config.host}:{self.port}"

    @property
    def resume_url(self) -> str:
        return self.config.resume_gateway_url or self.gateway_url

    # -- lifecycle ----------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 20)
        app.router.add_get("/", self._root)
        Rest(self).add_routes(app)
        Admin(self).add_routes(app)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        # A backlog of aiohttp's default 128 drops connects when thousands of shards start at once.
        site = web.TCPSite(self._runner, self.config.host, self.config.port, reuse_address=True, backlog=4096)
        await site.start()
        server = site._server
        if self.config.port == 0 and server is not None:
            sockets = getattr(server, "sockets", None) or []
            self.port = sockets[0].getsockname()[1]
        self._tasks = [
            asyncio.create_task(self._ticker()),
            asyncio.create_task(self._sweeper()),
            asyncio.create_task(self.membership.grow()),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for conn in list(self.connections):
            conn.drop()
        if self._runner is not None:
            await self._runner.cleanup()

    def stats(self) -> dict[str, Any]:
        """Everything ``GET /_sim/stats`` returns."""
        return admin.stats(self)

    # -- sessions -----------------------------------------------------------------------------
    def new_session(
        self,
        shard_id: int,
        num_shards: int,
        user_id: int,
        intents: int,
        large_threshold: int,
        mode: Compression,
    ) -> Session:
        session = self.table.new(self.config, shard_id, num_shards, user_id, intents, large_threshold, mode)
        if self.config.track_dispatches:
            self.dispatches.start(session, 1)
        return session

    def end_session(self, session: Session, reason: str) -> None:
        self.table.end(session, reason)

    def record_send(self, session: Session, last_seq: int) -> None:
        """Note that every dispatch of ``session`` up to ``last_seq`` has just been written."""
        entry = self.sends.get(session.id)
        if entry is None:
            entry = self.sends[session.id] = (session.shard_id, array.array("q"), array.array("q"))
        entry[1].append(last_seq)
        entry[2].append(time.monotonic_ns())

    async def _sweeper(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            now = time.monotonic()
            self.table.sweep(now, self.config.resume_window)
            self.limits.tick(now)

    # -- dispatch generation ------------------------------------------------------------------
    async def _ticker(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(self.config.tick)
            cfg = self.config  # settable at run time
            now = time.monotonic()
            dt, last = now - last, now
            if not self.table.layouts:
                continue
            rate = cfg.rate
            if cfg.replay:
                self._advance_scripts(rate, dt)
            if rate <= 0 or not self.table.live:
                continue
            # Live dispatches carry wall-clock timestamps (the entity clock never goes backwards).
            self.world.entities.advance_clock(int(time.time() * 1000))
            track = cfg.track_dispatches
            for shard in range(cfg.shards):
                credit = self._credit[shard] + rate * dt
                n = int(min(credit, 5000))
                self._credit[shard] = credit - n if n < 5000 else 0.0
                if track:
                    for _ in range(n):
                        self._route_tracked(*self.world.next_event(shard))
                    continue
                # The hot path: untracked dispatches only count, n at a time.
                for _ in range(n):
                    self._route(*self.world.next_event(shard))
                self.dispatches.generated += n

    def _advance_scripts(self, rate: float, dt: float) -> None:
        for by_shard in self.table.layouts.values():
            for peers in by_shard.values():
                for s in peers:
                    script = s.script
                    if script is None or s.script_produced >= script.count:
                        continue
                    if math.isinf(rate):
                        n = script.count - s.script_produced
                    else:
                        s.script_credit += rate * dt
                        n = min(int(s.script_credit), script.count - s.script_produced)
                        s.script_credit -= n
                    if n:
                        s.script_produced += n
                        if s.conn is not None:
                            s.conn.wake.set()

    def _route(self, name: str, guild_id: int | None, d: bytes) -> None:
        bname = name.encode()
        for num_shards, by_shard in self.table.layouts.items():
            shard = 0 if guild_id is None else shard_for_guild(guild_id, num_shards)
            for s in by_shard.get(shard, ()):
                if s.script is None:
                    s.append(bname, d)
                    if s.conn is not None:
                        s.conn.wake.set()

    def _route_tracked(self, name: str, guild_id: int | None, d: bytes) -> None:
        """:meth:`_route` with the dispatch's id recorded in every tracked session it goes to."""
        bname = name.encode()
        ident = self.dispatches.next_id()
        for num_shards, by_shard in self.table.layouts.items():
            shard = 0 if guild_id is None else shard_for_guild(guild_id, num_shards)
            for s in by_shard.get(shard, ()):
                if s.script is None:
                    seq = s.append(bname, d)
                    if s.track is not None:
                        s.track.record(seq, ident)
                    if s.conn is not None:
                        s.conn.wake.set()

    # -- the gateway endpoint -----------------------------------------------------------------
    async def _root(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return web.Response(text="shardrunner Discord gateway simulator\n")
        return await self._gateway_ws(request)

    async def _gateway_ws(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        ws = web.WebSocketResponse(autoclose=False, autoping=True, max_msg_size=16 << 20, compress=False)
        await ws.prepare(request)
        try:
            mode = Compression.from_query(query.get("compress"))
        except ValueError:
            mode = None
        conn = Connection(self, request, ws, mode or Compression.NONE)
        version = query.get("v", "10")
        if version not in ("9", "10"):
            await conn.close(CloseCode.INVALID_API_VERSION)
            return ws
        if query.get("encoding", "json") != "json" or mode is None:
            await conn.close(
                CloseCode.DECODE_ERROR,
                "The simulator speaks encoding=json with zlib-stream, zstd-stream or no compression.",
            )
            return ws
        self.connections.add(conn)
        try:
            await conn.run()
        finally:
            self.connections.discard(conn)
            self.faults.forget(conn)
        return ws
