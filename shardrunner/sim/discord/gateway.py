"""One client WebSocket connection to the simulated gateway: the protocol of one connection.

Reading client frames and the handshake are aiohttp's; what goes out is the
:class:`~shardrunner.sim.discord.writer.Writer`'s. A connection has at most one session attached;
IDENTIFY and RESUME (:mod:`shardrunner.sim.discord.handshake`) attach one, op 9 detaches it.

op 9 (Invalid Session) leaves the connection open and unauthenticated, as on Discord: nothing more
is streamed on it, and the client may RESUME (after ``d: true``, the session is kept, detached, for
the resume window) or IDENTIFY (after either) on the same connection. discord.js 2.x resumes there.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from typing import TYPE_CHECKING, Any, Final

import msgspec
from aiohttp import WSMsgType, web

from shardrunner.protocol.compression import Compression
from shardrunner.protocol.discord import (
    CLOSE_REASONS,
    COMMAND_WINDOW_S,
    MAX_PAYLOAD_BYTES,
    CloseAction,
    CloseCode,
    Op,
    client_close_ends_session,
    close_action,
    shard_for_guild,
)
from shardrunner.sim.discord import handshake
from shardrunner.sim.discord.limits import CommandWindow
from shardrunner.sim.discord.session import Session
from shardrunner.sim.discord.writer import Writer
from shardrunner.sim.discord.wsframe import sendable_close_code

if TYPE_CHECKING:
    from shardrunner.sim.discord.server import Simulator

_json_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.encode
_MEMBERS_PER_CHUNK: Final = 1000
_ACK: Final = b'{"t":null,"s":null,"op":11,"d":null}'
_HEARTBEAT_REQUEST: Final = b'{"t":null,"s":null,"op":1,"d":null}'
_INVALID_SESSION: Final = {
    True: b'{"t":null,"s":null,"op":9,"d":true}',
    False: b'{"t":null,"s":null,"op":9,"d":false}',
}
_COMMAND_OPS: Final = (
    Op.PRESENCE_UPDATE,
    Op.VOICE_STATE_UPDATE,
    Op.REQUEST_GUILD_MEMBERS,
    Op.REQUEST_SOUNDBOARD_SOUNDS,
)


class Connection:
    """One client WebSocket connection to the simulated gateway."""

    def __init__(self, sim: Simulator, request: web.Request, ws: web.WebSocketResponse, mode: Compression):
        self.sim = sim
        self.request = request
        self.ws = ws
        self.mode = mode
        self.writer = Writer(self, mode)
        self.session: Session | None = None
        self.wake = asyncio.Event()
        self.closing = False
        self.stalled_until = 0.0
        self.zombie_until = 0.0
        self.last_heartbeat = time.monotonic()
        self.heartbeats = 0
        self.commands = CommandWindow()
        self.writer_task: asyncio.Task[None] | None = None
        self.timer_task: asyncio.Task[None] | None = None

    # -- bookkeeping --------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        s = self.session
        if s is None:
            return {"shard": None, "session_id": None}
        return {"shard": [s.shard_id, s.num_shards], "session_id": s.id}

    def send_control(self, payload: bytes) -> None:
        """Queue a non-dispatch payload; it goes out before any pending dispatch."""
        if not self.closing:
            self.writer.control.append(payload)
            self.wake.set()

    def send_garbage(self, data: bytes) -> None:
        """Write one frame of ``data`` as it is, past the compressor (fault injection)."""
        if not self.closing:
            self.writer.send_garbage(data)

    @property
    def stalled(self) -> bool:
        return self.stalled_until > time.monotonic()

    # -- lifecycle ----------------------------------------------------------------------------
    async def run(self) -> None:
        interval = self.sim.config.heartbeat_interval_ms
        self.send_control(
            b'{"t":null,"s":null,"op":10,"d":{"heartbeat_interval":%d,"_trace":["[\\"shardrunner-sim\\"]"]}}'
            % interval
        )
        self.writer_task = asyncio.create_task(self.writer.run())
        self.timer_task = asyncio.create_task(self._timers())
        try:
            while not self.closing:
                msg = await self.ws.receive()
                if self.stalled:
                    await asyncio.sleep(self.stalled_until - time.monotonic())
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    data = msg.data.encode() if isinstance(msg.data, str) else msg.data
                    await self._on_payload(data)
                elif msg.type is WSMsgType.CLOSE:
                    await self._on_client_close(msg.data, msg.extra)
                    break
                else:  # CLOSING, CLOSED, ERROR: the connection is gone
                    break
        finally:
            self.closing = True
            self.wake.set()
            for task in (self.writer_task, self.timer_task):
                if task is not None:
                    task.cancel()
            self.detach()

    def attach(self, session: Session, cursor: int) -> None:
        """Stream ``session`` on this connection from after ``cursor``."""
        self.session = session
        session.conn = self
        session.detached_at = None
        self.writer.start_at(cursor)
        self.sim.faults.schedule_random(self)
        self.wake.set()

    def detach(self) -> None:
        """Stop streaming the session here; it stays resumable for the resume window."""
        s = self.session
        if s is not None and s.conn is self:
            s.conn = None
            s.detached_at = time.monotonic()
        self.session = None

    def invalid_session(self, *, resumable: bool, why: str) -> None:
        """Send op 9 and stop streaming; the client may RESUME (``resumable``) or IDENTIFY here."""
        self.send_control(_INVALID_SESSION[resumable])
        s = self.session
        if s is None:
            return
        # Faults act on connections with a session: the next RESUME or IDENTIFY schedules one again.
        self.sim.faults.forget(self)
        if resumable:
            self.detach()
        else:
            self.sim.end_session(s, f"invalid session (op 9 false) {why}")
            self.session = None

    async def _on_client_close(self, code: int | None, reason: str | None) -> None:
        code = code or 1005  # a close frame without a status code (RFC 6455: 1005): not 1000
        s = self.session
        self.sim.recorder.add("closes", by="client", code=code, reason=reason or "", **self.describe())
        if s is not None and client_close_ends_session(code):
            self.sim.end_session(s, f"client closed with {code}")
        self.closing = True
        # The gateway answers a close frame with the client's own code (1000 when it sent none).
        with contextlib.suppress(Exception):
            await self.ws.close(code=code if sendable_close_code(code) else 1000)

    async def close(self, code: int, reason: str | None = None) -> None:
        """Close with ``code``; what happens to the session follows Discord's close-code table."""
        if self.closing:
            return
        self.closing = True
        reason = reason or CLOSE_REASONS.get(code, "")
        self.sim.recorder.add("closes", by="server", code=code, reason=reason, **self.describe())
        s = self.session
        if s is not None and close_action(code) is not CloseAction.RESUME:
            self.sim.end_session(s, f"gateway closed with {code}")
        self.wake.set()
        with contextlib.suppress(Exception):
            await self.ws.close(code=code, message=reason.encode())

    def drop(self) -> None:
        """Drop the TCP connection without a close frame."""
        self.closing = True
        self.sim.recorder.add("closes", by="server", code=None, reason="dropped", **self.describe())
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    # -- inbound ------------------------------------------------------------------------------
    async def _on_payload(self, raw: bytes) -> None:
        sim = self.sim
        if len(raw) > MAX_PAYLOAD_BYTES:
            sim.recorder.violation("payload_too_large", self, f"{len(raw)} bytes")
            await self.close(CloseCode.DECODE_ERROR, "Payload too large.")
            return
        try:
            msg = _json_decode(raw)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):  # nested too deep too
            sim.recorder.violation("decode_error", self, repr(raw[:80]))
            await self.close(CloseCode.DECODE_ERROR)
            return
        op = msg.get("op") if isinstance(msg, dict) else None
        if not isinstance(op, int) or isinstance(op, bool):
            sim.recorder.violation("decode_error", self, "payload is not an object with an integer op")
            await self.close(CloseCode.DECODE_ERROR)
            return
        now = time.monotonic()
        count = self.commands.over_limit(now)
        if count is not None:
            sim.recorder.violation("rate_limited", self, f"{count} payloads in {COMMAND_WINDOW_S:.0f} s")
            await self.close(CloseCode.RATE_LIMITED)
            return
        d = msg.get("d")
        if op == Op.HEARTBEAT:
            self.last_heartbeat = now
            self.heartbeats += 1
            if self.zombie_until <= now:
                self.send_control(_ACK)
        elif op in (Op.IDENTIFY, Op.RESUME):
            if self.session is not None:
                name = "IDENTIFY" if op == Op.IDENTIFY else "RESUME"
                sim.recorder.violation(
                    "already_authenticated", self, f"{name} on an authenticated connection"
                )
                await self.close(CloseCode.ALREADY_AUTHENTICATED)
            elif op == Op.IDENTIFY:
                await handshake.identify(self, d)
            else:
                await handshake.resume(self, d)
        elif op in _COMMAND_OPS:
            if self.session is None:
                sim.recorder.violation("not_authenticated", self, f"op {op} before IDENTIFY or RESUME")
                await self.close(CloseCode.NOT_AUTHENTICATED)
                return
            sim.recorder.add("commands", op=op, d=d, **self.describe())
            if op == Op.REQUEST_GUILD_MEMBERS and isinstance(d, dict):
                self._members_chunks(d)
        else:
            sim.recorder.violation("unknown_opcode", self, f"op {op}")
            await self.close(CloseCode.UNKNOWN_OPCODE)

    def _members_chunks(self, d: dict[str, Any]) -> None:
        s = self.session
        sim = self.sim
        if s is None or s.scripted:
            return  # replay mode sends its script and nothing else
        raw = d.get("guild_id")
        guild_ids = raw if isinstance(raw, list) else [raw]
        nonce = d.get("nonce") if isinstance(d.get("nonce"), str) else None
        for g in guild_ids:
            try:
                gid = int(str(g))
            except (TypeError, ValueError):
                continue
            if gid not in sim.world.member_counts or shard_for_guild(gid, s.num_shards) != s.shard_id:
                continue
            model = sim.world.model(gid)
            wanted = d.get("user_ids")
            if isinstance(wanted, list | str):
                members = [  # isdecimal and ASCII: "²".isdigit() is true and int() refuses it
                    int(u)
                    for u in ([wanted] if isinstance(wanted, str) else wanted)
                    if str(u).isascii() and str(u).isdecimal()
                ]
            else:
                limit = d.get("limit") or 0
                members = model.member_ids[: limit or None] if isinstance(limit, int) else model.member_ids
            chunks = [
                members[i : i + _MEMBERS_PER_CHUNK] for i in range(0, len(members), _MEMBERS_PER_CHUNK)
            ] or [[]]
            for i, chunk in enumerate(chunks):
                body = sim.world.entities.members_chunk(
                    model, chunk_index=i, chunk_count=len(chunks), member_ids=chunk, nonce=nonce
                )
                s.append(b"GUILD_MEMBERS_CHUNK", _encode(body))
        self.wake.set()

    # -- timers: heartbeat timeout, heartbeat requests, random faults ----------------------------
    async def _timers(self) -> None:
        sim = self.sim
        cfg = sim.config
        interval = cfg.heartbeat_interval_ms / 1000  # fixed per connection: it was sent in HELLO
        timeout = interval * cfg.heartbeat_timeout_factor
        requested_every = cfg.heartbeat_request_interval
        next_request = time.monotonic() + requested_every if requested_every else math.inf
        while not self.closing:
            now = time.monotonic()
            if sim.config.heartbeat_request_interval != requested_every:  # changed at run time
                requested_every = sim.config.heartbeat_request_interval
                next_request = now + requested_every if requested_every else math.inf
            if self.stalled:
                await asyncio.sleep(self.stalled_until - now)
                self.last_heartbeat = max(self.last_heartbeat, time.monotonic() - interval)
                continue
            if now - self.last_heartbeat > timeout:
                sim.recorder.violation(
                    "heartbeat_timeout", self, f"no heartbeat for {now - self.last_heartbeat:.1f} s"
                )
                await self.close(CloseCode.SESSION_TIMED_OUT)
                return
            if now >= next_request and self.session is not None:
                self.send_control(_HEARTBEAT_REQUEST)
                next_request = now + requested_every
            fault_at = sim.faults.due.get(self, math.inf)
            if now >= fault_at:
                sim.faults.forget(self)
                await sim.faults.inject_random(self)
                continue
            wake = min(self.last_heartbeat + timeout, next_request, fault_at) - now
            await asyncio.sleep(max(0.001, min(wake, 1.0)))
