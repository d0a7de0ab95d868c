"""The Discord gateway and REST simulator: one aiohttp server, one port.

``GET /`` with a WebSocket upgrade is the gateway; ``/api/v10/...`` the REST endpoints clients call
before connecting; ``/_sim/...`` the admin API (faults, stats, run-time settings) for tests and
benchmarks. See docs/simulator.md.

Reading client frames and the handshake are aiohttp's; dispatches are written as ready-made frames
straight to the transport (see :mod:`shardrunner.sim.discord.wsframe`), many per ``write``.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import logging
import math
import random
import secrets
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Final

import msgspec
from aiohttp import WSMsgType, web

from shardrunner.protocol.compression import Compression, StreamCompressor, new_compressor
from shardrunner.protocol.discord import (
    ALL_INTENTS,
    CLOSE_REASONS,
    COMMAND_WINDOW_S,
    COMMANDS_PER_WINDOW,
    MAX_GUILDS_PER_SHARD,
    MAX_PAYLOAD_BYTES,
    PRIVILEGED_INTENTS,
    CloseAction,
    CloseCode,
    Op,
    client_close_ends_session,
    close_action,
    shard_for_guild,
)
from shardrunner.sim.discord.config import FAULT_KINDS, SimConfig
from shardrunner.sim.discord.replay import PreparedScript
from shardrunner.sim.discord.session import Session
from shardrunner.sim.discord.world import World, token_user_id
from shardrunner.sim.discord.wsframe import frame

log = logging.getLogger("shardrunner.sim")

_json_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.encode
JSON: Final = "application/json"
_MEMBERS_PER_CHUNK: Final = 1000
#: Bytes written per batch before the writer yields to the loop.
_WRITE_BATCH: Final = 256 * 1024
_HIGH_WATER: Final = 4 * 1024 * 1024
_RECORD_LIMIT: Final = 100_000
#: Ended sessions stay listed (stats, op 9 answers) this long, then are forgotten.
_ENDED_SESSIONS_KEPT_S: Final = 600.0
_ACK: Final = b'{"t":null,"s":null,"op":11,"d":null}'
_RECONNECT: Final = b'{"t":null,"s":null,"op":7,"d":null}'
_HEARTBEAT_REQUEST: Final = b'{"t":null,"s":null,"op":1,"d":null}'
#: Codes a random "close" fault draws from: the resumable ones and the two that need a new session.
_RANDOM_CLOSE_CODES: Final = (4000, 4001, 4002, 4003, 4005, 4007, 4008, 4009)


class FaultSpec(msgspec.Struct, forbid_unknown_fields=True):
    """The body of ``POST /_sim/fault``: what to inject, and which connections (all, if no filter)."""

    kind: str
    shard: int | None = None
    num_shards: int | None = None
    session_id: str | None = None
    #: invalid_session: the ``d`` of op 9.
    resumable: bool = True
    #: close: the close code and reason.
    code: int = 4000
    reason: str | None = None
    #: zombie and stall: seconds (zombie: until the connection ends when absent).
    duration: float | None = msgspec.field(default=None)

    def __post_init__(self) -> None:
        if self.duration is not None and self.duration <= 0:
            raise ValueError("duration must be positive")


class Recorder:
    """What the simulator saw, for ``GET /_sim/stats``: bounded lists of records."""

    def __init__(self) -> None:
        names = ("identifies", "resumes", "violations", "closes", "commands", "faults")
        self.lists: dict[str, deque[dict[str, Any]]] = {n: deque(maxlen=_RECORD_LIMIT) for n in names}

    def add(self, into: str, /, **fields: Any) -> None:
        fields["time"] = time.time()
        self.lists[into].append(fields)

    def violation(self, kind: str, conn: Connection | None, detail: str) -> None:
        log.info("violation %s: %s", kind, detail)
        self.add("violations", kind=kind, detail=detail, **(conn.describe() if conn else {}))


class Connection:
    """One client WebSocket connection to the simulated gateway."""

    def __init__(self, sim: Simulator, request: web.Request, ws: web.WebSocketResponse, mode: Compression):
        self.sim = sim
        self.request = request
        self.ws = ws
        self.transport = request.transport
        self.mode = mode
        self.opcode = 2 if mode.binary else 1
        self.compressor: StreamCompressor = new_compressor(mode)
        self.session: Session | None = None
        self.cursor = 0  # last seq written to this connection
        self.resume_marker: int | None = None  # send RESUMED once the cursor reaches this seq
        self.control: list[bytes] = []
        self.wake = asyncio.Event()
        self.closing = False
        self.stalled_until = 0.0
        self.zombie_until = 0.0
        self.last_heartbeat = time.monotonic()
        self.heartbeats = 0
        self.commands: deque[float] = deque()
        self.next_prepared: int | None = None  # script index that continues the prepared frames
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
            self.control.append(payload)
            self.wake.set()

    def send_garbage(self, data: bytes) -> None:
        """Write one frame of ``data`` as it is, past the compressor (fault injection)."""
        if not self.closing and self.transport is not None:
            self.transport.write(frame(b"\xff" + data, self.opcode))

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
        self.writer_task = asyncio.create_task(self._write_loop())
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
            self._detach()

    def _detach(self) -> None:
        s = self.session
        if s is not None and s.conn is self:
            s.conn = None
            s.detached_at = time.monotonic()
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
            await self.ws.close(code=code if _sendable_close_code(code) else 1000)

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
        if self.transport is not None:
            self.transport.abort()

    # -- inbound ------------------------------------------------------------------------------
    async def _on_payload(self, raw: bytes) -> None:
        sim = self.sim
        if len(raw) > MAX_PAYLOAD_BYTES:
            sim.recorder.violation("payload_too_large", self, f"{len(raw)} bytes")
            await self.close(CloseCode.DECODE_ERROR, "Payload too large.")
            return
        try:
            msg = _json_decode(raw)
        except (msgspec.DecodeError, UnicodeDecodeError):
            sim.recorder.violation("decode_error", self, repr(raw[:80]))
            await self.close(CloseCode.DECODE_ERROR)
            return
        op = msg.get("op") if isinstance(msg, dict) else None
        if not isinstance(op, int) or isinstance(op, bool):
            sim.recorder.violation("decode_error", self, "payload is not an object with an integer op")
            await self.close(CloseCode.DECODE_ERROR)
            return
        now = time.monotonic()
        window = self.commands
        window.append(now)
        while window and now - window[0] > COMMAND_WINDOW_S:
            window.popleft()
        if len(window) > COMMANDS_PER_WINDOW:
            sim.recorder.violation(
                "rate_limited", self, f"{len(window)} payloads in {COMMAND_WINDOW_S:.0f} s"
            )
            await self.close(CloseCode.RATE_LIMITED)
            return
        d = msg.get("d")
        if op == Op.HEARTBEAT:
            self.last_heartbeat = now
            self.heartbeats += 1
            if self.zombie_until <= now:
                self.send_control(_ACK)
        elif op == Op.IDENTIFY:
            await self._on_identify(d)
        elif op == Op.RESUME:
            await self._on_resume(d)
        elif op in (
            Op.PRESENCE_UPDATE,
            Op.VOICE_STATE_UPDATE,
            Op.REQUEST_GUILD_MEMBERS,
            Op.REQUEST_SOUNDBOARD_SOUNDS,
        ):
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

    def _check_token(self, token: object) -> int | None:
        if not isinstance(token, str):
            return None
        user_id = token_user_id(token)
        expected = self.sim.config.token
        if expected is not None and token.removeprefix("Bot ") != expected.removeprefix("Bot "):
            return None
        return user_id

    async def _on_identify(self, d: object) -> None:
        sim = self.sim
        cfg = sim.config
        if self.session is not None:
            sim.recorder.violation("already_authenticated", self, "IDENTIFY on an authenticated connection")
            await self.close(CloseCode.ALREADY_AUTHENTICATED)
            return
        if not isinstance(d, dict):
            await self.close(CloseCode.DECODE_ERROR, "IDENTIFY without a d object.")
            return
        user_id = self._check_token(d.get("token"))
        shard = d.get("shard", [0, 1])
        shard_ok = (
            isinstance(shard, list)
            and len(shard) == 2
            and all(isinstance(x, int) and not isinstance(x, bool) for x in shard)
        )
        shard_id, num_shards = (shard[0], shard[1]) if shard_ok else (-1, 0)
        record = {"shard": [shard_id, num_shards] if shard_ok else shard, "session_id": None}
        if user_id is None:
            sim.recorder.add(
                "identifies", accepted=False, reason="authentication failed", bucket=None, **record
            )
            await self.close(CloseCode.AUTHENTICATION_FAILED)
            return
        intents = d.get("intents")
        if not isinstance(intents, int) or isinstance(intents, bool) or intents < 0 or intents & ~ALL_INTENTS:
            sim.recorder.add("identifies", accepted=False, reason="invalid intents", bucket=None, **record)
            await self.close(CloseCode.INVALID_INTENTS)
            return
        if intents & PRIVILEGED_INTENTS & ~cfg.privileged_intents:
            sim.recorder.add("identifies", accepted=False, reason="disallowed intents", bucket=None, **record)
            await self.close(CloseCode.DISALLOWED_INTENTS)
            return
        if not shard_ok or num_shards < 1 or not 0 <= shard_id < num_shards:
            sim.recorder.add("identifies", accepted=False, reason="invalid shard", bucket=None, **record)
            await self.close(CloseCode.INVALID_SHARD)
            return
        guild_ids = sim.world.guilds_for(shard_id, num_shards)
        if len(guild_ids) > MAX_GUILDS_PER_SHARD:
            sim.recorder.add("identifies", accepted=False, reason="sharding required", bucket=None, **record)
            await self.close(CloseCode.SHARDING_REQUIRED)
            return
        bucket = shard_id % cfg.max_concurrency
        now = time.monotonic()
        last = sim.bucket_last.get(bucket)
        if last is not None and now - last < cfg.identify_window:
            sim.recorder.add(
                "identifies", accepted=False, reason="identify rate limit", bucket=bucket, **record
            )
            sim.recorder.violation(
                "identify_rate",
                None,
                f"shard {shard_id}/{num_shards} identified {now - last:.3f} s after the previous identify "
                f"of bucket {bucket} (window {cfg.identify_window} s)",
            )
            self.send_control(b'{"t":null,"s":null,"op":9,"d":false}')
            return
        if sim.starts_remaining <= 0:
            sim.recorder.add(
                "identifies", accepted=False, reason="session start limit", bucket=bucket, **record
            )
            sim.recorder.violation(
                "session_start_limit", None, f"shard {shard_id}/{num_shards}: no session starts left"
            )
            await self.close(CloseCode.AUTHENTICATION_FAILED, "Session start limit exhausted: token reset.")
            return
        sim.starts_remaining -= 1
        sim.bucket_last[bucket] = now
        lt = d.get("large_threshold", 50)
        large_threshold = min(250, max(50, lt)) if isinstance(lt, int) else 50
        session = sim.new_session(shard_id, num_shards, user_id, intents, large_threshold, self.mode)
        record["session_id"] = session.id
        sim.recorder.add("identifies", accepted=True, reason=None, bucket=bucket, **record)
        self.attach(session, 0)

    async def _on_resume(self, d: object) -> None:
        sim = self.sim
        if self.session is not None:
            sim.recorder.violation("already_authenticated", self, "RESUME on an authenticated connection")
            await self.close(CloseCode.ALREADY_AUTHENTICATED)
            return
        if not isinstance(d, dict):
            await self.close(CloseCode.DECODE_ERROR, "RESUME without a d object.")
            return
        sid, seq = d.get("session_id"), d.get("seq")
        user_id = self._check_token(d.get("token"))
        session = sim.sessions.get(sid) if isinstance(sid, str) else None
        record: dict[str, Any] = {"session_id": sid, "seq": seq}
        if session is not None:
            record["shard"] = [session.shard_id, session.num_shards]
        if user_id is None:
            sim.recorder.add("resumes", accepted=False, reason="authentication failed", replayed=0, **record)
            await self.close(CloseCode.AUTHENTICATION_FAILED)
            return
        if seq is None:
            seq = 0
        reason = None
        if session is None:
            reason = "unknown session"
        elif session.ended is not None:
            reason = f"session invalidated ({session.ended})"
        elif session.user_id != user_id:
            reason = "session belongs to another token"
        elif not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            reason = "seq is not a number"
        elif seq > session.last_seq:
            sim.recorder.add("resumes", accepted=False, reason="invalid seq", replayed=0, **record)
            sim.end_session(session, "resume with a seq from the future")
            await self.close(CloseCode.INVALID_SEQ)
            return
        elif seq + 1 < session.oldest_seq:
            reason = f"seq {seq} is older than the replay buffer (oldest {session.oldest_seq})"
        if reason is not None or session is None:
            sim.recorder.add("resumes", accepted=False, reason=reason, replayed=0, **record)
            if session is not None and session.ended is None and session.user_id == user_id:
                # The bot's own session can no longer be resumed by anyone: it is over. A refused
                # RESUME with another bot's token leaves the session alone.
                sim.end_session(session, reason or "resume refused")
            self.send_control(b'{"t":null,"s":null,"op":9,"d":false}')
            return
        old = session.conn
        if old is not None and old is not self:
            # A session lives on one connection: the newer one wins, as on Discord.
            old._detach()
            old.drop()
        sim.recorder.add("resumes", accepted=True, reason=None, replayed=session.last_seq - seq, **record)
        self.attach(session, seq)
        self.resume_marker = session.last_seq

    def attach(self, session: Session, cursor: int) -> None:
        self.session = session
        session.conn = self
        session.detached_at = None
        self.cursor = cursor
        self.next_prepared = None
        self.sim.schedule_random_fault(self)
        self.wake.set()

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
                members = [
                    int(u) for u in ([wanted] if isinstance(wanted, str) else wanted) if str(u).isdigit()
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

    # -- outbound -----------------------------------------------------------------------------
    async def _write_loop(self) -> None:
        transport = self.transport
        assert transport is not None
        while not self.closing:
            await self.wake.wait()
            self.wake.clear()
            while not self.closing:
                if self.stalled:
                    await asyncio.sleep(self.stalled_until - time.monotonic())
                    continue
                chunks: list[bytes | memoryview] = []
                if self.control:
                    for payload in self.control:
                        chunks.append(frame(self.compressor.compress(payload), self.opcode))
                    self.control.clear()
                    self.next_prepared = None
                more = self._fill(chunks)
                if chunks and not self.closing:
                    # One writev for the whole batch: no join, and prepared slices are memoryviews.
                    transport.writelines(chunks)
                    if self.session is not None:
                        self.session.last_sent_seq = self.cursor
                        if self.sim.config.record_sends:
                            self.sim.record_send(self.session, self.cursor)
                    if transport.get_write_buffer_size() > _HIGH_WATER:
                        await self._drain()
                    else:
                        await asyncio.sleep(0)
                if not more:
                    break

    async def _drain(self) -> None:
        # aiohttp's protocol pauses writing at its high-water mark; wait for it like StreamWriter does.
        helper: Callable[[], Any] | None = getattr(self.request.protocol, "_drain_helper", None)
        if helper is not None:
            with contextlib.suppress(ConnectionError):
                await helper()
        else:  # pragma: no cover - only if aiohttp drops its drain helper: poll the buffer instead
            while self.transport and self.transport.get_write_buffer_size() > _HIGH_WATER // 2:  # noqa: ASYNC110
                await asyncio.sleep(0.005)

    def _fill(self, chunks: list[bytes | memoryview]) -> bool:
        """Append frames for pending dispatches; return True if more are pending after this batch."""
        s = self.session
        if s is None:
            return False
        last = s.last_seq
        cursor = self.cursor
        if s.script is None and cursor < s.oldest_seq - 1:
            self.sim.recorder.violation("slow_consumer", self, f"fell {last - cursor} dispatches behind")
            asyncio.get_running_loop().create_task(self.close(CloseCode.UNKNOWN_ERROR, "Client too slow."))
            return False
        marker = self.resume_marker
        size = sum(map(len, chunks))
        script = s.script
        comp = self.compressor
        while size < _WRITE_BATCH:
            if marker is not None and cursor >= marker:
                chunks.append(frame(comp.compress(_resumed(cursor)), self.opcode))
                self.next_prepared = None
                self.resume_marker = marker = None
                continue
            if cursor >= last:
                break
            stop = last if marker is None else marker
            seq = cursor + 1
            if script is not None and seq >= script.first_seq and script.mode is self.mode:
                written, cursor = self._fill_scripted(script, seq, stop, chunks)
                size += written
                continue
            fr = frame(comp.compress(s.payload(seq)), self.opcode)
            self.next_prepared = None
            chunks.append(fr)
            size += len(fr)
            cursor = seq
        self.cursor = cursor
        return cursor < last or marker is not None

    def _fill_scripted(
        self, script: PreparedScript, seq: int, stop: int, chunks: list[bytes | memoryview]
    ) -> tuple[int, int]:
        """Frames for scripted dispatches from ``seq``: prepared slices where the stream allows it."""
        idx = seq - script.first_seq
        seg, pos = divmod(idx, script.segment)
        end = min(stop - script.first_seq + 1, (seg + 1) * script.segment) - seg * script.segment
        off = script.offsets[seg]
        blob = memoryview(script.blobs[seg])
        if pos == 0:
            prefix = self.compressor.splice_prefix()
            start = 0
            if prefix:
                fr = frame(prefix + script.first_message(seg), self.opcode)
                chunks.append(fr)
                start = 1
                written = len(fr)
            else:
                written = 0
        elif self.next_prepared == idx or self.mode is Compression.NONE:
            start, written = pos, 0
        else:
            # Off the prepared path (something live was sent mid-segment): compress until the next segment.
            fr = frame(self.compressor.compress(script.payload(idx)), self.opcode)
            chunks.append(fr)
            return len(fr), seq
        if end > start:
            piece = blob[off[start] : off[end]]  # a memoryview: no copy
            chunks.append(piece)
            written += len(piece)
        self.next_prepared = seg * script.segment + end
        return written, script.first_seq + seg * script.segment + end - 1

    # -- timers: heartbeat timeout, heartbeat requests, random faults ----------------------------
    async def _timers(self) -> None:
        cfg = self.sim.config
        interval = cfg.heartbeat_interval_ms / 1000  # fixed per connection: it was sent in HELLO
        timeout = interval * cfg.heartbeat_timeout_factor
        requested_every = cfg.heartbeat_request_interval
        next_request = time.monotonic() + requested_every if requested_every else math.inf
        while not self.closing:
            now = time.monotonic()
            if self.sim.config.heartbeat_request_interval != requested_every:  # changed at run time
                requested_every = self.sim.config.heartbeat_request_interval
                next_request = now + requested_every if requested_every else math.inf
            if self.stalled:
                await asyncio.sleep(self.stalled_until - now)
                self.last_heartbeat = max(self.last_heartbeat, time.monotonic() - interval)
                continue
            if now - self.last_heartbeat > timeout:
                self.sim.recorder.violation(
                    "heartbeat_timeout", self, f"no heartbeat for {now - self.last_heartbeat:.1f} s"
                )
                await self.close(CloseCode.SESSION_TIMED_OUT)
                return
            if now >= next_request and self.session is not None:
                self.send_control(_HEARTBEAT_REQUEST)
                next_request = now + requested_every
            fault_at = self.sim.random_faults.get(self, math.inf)
            if now >= fault_at:
                self.sim.random_faults.pop(self, None)
                await self.sim.inject_random(self)
                continue
            wake = min(self.last_heartbeat + timeout, next_request, fault_at) - now
            await asyncio.sleep(max(0.001, min(wake, 1.0)))


def _sendable_close_code(code: int) -> bool:
    """Close codes that may appear in a close frame (RFC 6455, 7.4)."""
    return 1000 <= code < 5000 and code not in (1004, 1005, 1006, 1015)


def _resumed(seq: int) -> bytes:
    # RESUMED reuses the last replayed seq instead of taking a new one, so scripted sequence
    # numbers stay aligned with their prepared frames (clients only ever keep the highest seq).
    return b'{"t":"RESUMED","s":%d,"op":0,"d":{"_trace":["[\\"shardrunner-sim\\"]"]}}' % seq


class Simulator:
    """The simulated gateway and REST API. ``await start()``, then ``await stop()``."""

    def __init__(
        self, config: SimConfig, scripts: dict[tuple[int, Compression], PreparedScript] | None = None
    ):
        self.config = config
        self.world = World(config)
        self.scripts = scripts or {}
        self.recorder = Recorder()
        self.sessions: dict[str, Session] = {}
        # num_shards -> shard id -> live sessions: where each dispatch is delivered.
        self.layouts: dict[int, dict[int, list[Session]]] = {}
        self.connections: set[Connection] = set()
        #: Sessions fed by the live generator (not scripted): without any, nothing is generated.
        self.live_sessions = 0
        self.bucket_last: dict[int, float] = {}
        self.starts_remaining = config.starts_remaining
        self.starts_reset_at = time.monotonic() + config.session_start_reset_after
        self.random_faults: dict[Connection, float] = {}
        self.fault_rng = random.Random(config.seed ^ 0xFA17)
        self._credit = [0.0] * config.shards
        #: Per session id: (shard, [last seq of each write], [time.monotonic_ns() of that write]).
        self.sends: dict[str, tuple[int, array.array[int], array.array[int]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: web.AppRunner | None = None
        self.port = config.port
        self.started = time.time()

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
        for v in ("v9", "v10"):
            prefix = f"/api/{v}"
            app.router.add_get(prefix + "/gateway", self._gateway)
            app.router.add_get(prefix + "/gateway/bot", self._gateway_bot)
            app.router.add_get(prefix + "/users/@me", self._me)
            app.router.add_get(prefix + "/oauth2/applications/@me", self._application)
            app.router.add_get(prefix + "/applications/@me", self._application)
            app.router.add_route("*", prefix + "/{tail:.*}", self._not_found)
        app.router.add_get("/_sim/stats", self._stats)
        app.router.add_post("/_sim/fault", self._fault)
        app.router.add_post("/_sim/config", self._set_config)
        app.router.add_get("/_sim/sends", self._sends)
        app.router.add_delete("/_sim/sends", self._sends)
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
        self._tasks = [asyncio.create_task(self._ticker()), asyncio.create_task(self._sweeper())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for conn in list(self.connections):
            conn.drop()
        if self._runner is not None:
            await self._runner.cleanup()

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
        world = self.world
        guild_ids = world.guilds_for(shard_id, num_shards)
        # The replay buffer always holds at least READY and the GUILD_CREATEs.
        buffer = max(self.config.replay_buffer, len(guild_ids) + 1)
        session = Session(secrets.token_hex(16), shard_id, num_shards, user_id, intents, buffer)
        session.large_threshold = large_threshold
        ready = world.entities.ready(
            session_id=session.id,
            resume_gateway_url=self.resume_url,
            shard_id=shard_id,
            num_shards=num_shards,
            guild_ids=guild_ids,
        )
        session.append(b"READY", _encode(ready))
        for gid in guild_ids:
            session.append(b"GUILD_CREATE", world.guild_create(gid, large_threshold))
        if self.config.replay and num_shards == self.config.shards:
            # Scripted only where the script's sequence numbers fit: the configured layout, and a
            # compression that was prepared.
            session.script = self.scripts.get((shard_id, mode))
        self.sessions[session.id] = session
        self.layouts.setdefault(num_shards, {}).setdefault(shard_id, []).append(session)
        if session.script is None:
            self.live_sessions += 1
        return session

    def end_session(self, session: Session, reason: str) -> None:
        if session.ended is not None:
            return
        by_shard = self.layouts.get(session.num_shards, {})
        peers = by_shard.get(session.shard_id, [])
        if session in peers:
            peers.remove(session)
            if session.script is None:
                self.live_sessions -= 1
        session.end(reason)

    # -- dispatch generation ------------------------------------------------------------------
    async def _ticker(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(self.config.tick)
            cfg = self.config  # settable at run time
            now = time.monotonic()
            dt, last = now - last, now
            if not self.layouts:
                continue
            rate = cfg.rate
            if cfg.replay:
                self._advance_scripts(rate, dt)
            if rate <= 0 or not self.live_sessions:
                continue
            # Live dispatches carry wall-clock timestamps (the entity clock never goes backwards).
            self.world.entities.advance_clock(int(time.time() * 1000))
            for shard in range(cfg.shards):
                credit = self._credit[shard] + rate * dt
                n = int(min(credit, 5000))
                self._credit[shard] = credit - n if n < 5000 else 0.0
                for _ in range(n):
                    self._route(*self.world.next_event(shard))

    def _advance_scripts(self, rate: float, dt: float) -> None:
        for by_shard in self.layouts.values():
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
        for num_shards, by_shard in self.layouts.items():
            shard = 0 if guild_id is None else shard_for_guild(guild_id, num_shards)
            for s in by_shard.get(shard, ()):
                if s.script is None:
                    s.append(bname, d)
                    if s.conn is not None:
                        s.conn.wake.set()

    async def _sweeper(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            now = time.monotonic()
            for s in list(self.sessions.values()):
                detached = s.ended is None and s.conn is None and s.detached_at is not None
                if detached and now - (s.detached_at or now) > self.config.resume_window:
                    self.end_session(s, "resume window expired")
                elif s.ended is not None and now - s.ended_at > _ENDED_SESSIONS_KEPT_S:
                    del self.sessions[s.id]  # kept a while for RESUME answers and stats, then forgotten
            if now >= self.starts_reset_at:
                self.starts_remaining = self.config.session_start_total
                self.starts_reset_at = now + self.config.session_start_reset_after

    # -- faults -------------------------------------------------------------------------------
    def schedule_random_fault(self, conn: Connection) -> None:
        rate = self.config.fault_rate
        if rate > 0 and self.config.faults:
            self.random_faults[conn] = time.monotonic() + self.fault_rng.expovariate(rate / 60.0)

    async def inject_random(self, conn: Connection) -> None:
        rng = self.fault_rng
        kind = rng.choice(self.config.faults)
        spec: dict[str, Any] = {"kind": kind}
        if kind == "invalid_session":
            spec["resumable"] = rng.random() < 0.5
        elif kind == "close":
            spec["code"] = rng.choice(_RANDOM_CLOSE_CODES)
        await self.apply_fault(conn, spec, source="random")
        if not conn.closing:
            self.schedule_random_fault(conn)

    async def apply_fault(self, conn: Connection, spec: dict[str, Any], source: str) -> None:
        kind = spec["kind"]
        self.recorder.add("faults", **{**spec, **conn.describe(), "source": source})
        interval = self.config.heartbeat_interval_ms / 1000
        if kind == "reconnect":
            conn.send_control(_RECONNECT)
        elif kind == "invalid_session":
            resumable = bool(spec.get("resumable", True))
            conn.send_control(b'{"t":null,"s":null,"op":9,"d":%b}' % (b"true" if resumable else b"false"))
            if not resumable and conn.session is not None:
                self.end_session(conn.session, "invalid session (op 9 false) injected")
                conn.session = None  # the client may IDENTIFY again, on this connection or another
        elif kind == "drop":
            conn.drop()
        elif kind == "close":
            await conn.close(int(spec.get("code", 4000)), spec.get("reason"))
        elif kind == "zombie":
            conn.zombie_until = time.monotonic() + float(spec.get("duration") or math.inf)
        elif kind == "stall":
            conn.stalled_until = time.monotonic() + float(spec.get("duration") or min(60.0, 2 * interval))
        elif kind == "garbage":
            # Bytes that are no valid payload in any compression: the client's stream is now broken.
            conn.send_garbage(bytes(self.fault_rng.randrange(256) for _ in range(64)))

    # -- HTTP handlers ------------------------------------------------------------------------
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
            self.random_faults.pop(conn, None)
        return ws

    def _json(self, body: Any, status: int = 200) -> web.Response:
        # Exactly "application/json": some clients compare the header for equality.
        return web.Response(
            body=_encode(body),
            status=status,
            headers={
                "Content-Type": JSON,
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "4",
                "X-RateLimit-Reset-After": "1.0",
                "X-RateLimit-Reset": f"{time.time() + 1:.3f}",
                "X-RateLimit-Bucket": "shardrunner-sim",
            },
        )

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        token = header[4:] if header.startswith("Bot ") else header
        if token_user_id(token) is None:
            return False
        return self.config.token is None or token == self.config.token.removeprefix("Bot ")

    def _unauthorized(self) -> web.Response:
        return self._json({"message": "401: Unauthorized", "code": 0}, 401)

    async def _gateway(self, request: web.Request) -> web.Response:
        return self._json({"url": self.gateway_url})

    async def _gateway_bot(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        reset_after = max(0.0, self.starts_reset_at - time.monotonic())
        return self._json(
            {
                "url": self.gateway_url,
                "shards": self.config.shards,
                "session_start_limit": {
                    "total": self.config.session_start_total,
                    "remaining": self.starts_remaining,
                    "reset_after": int(reset_after * 1000),
                    "max_concurrency": self.config.max_concurrency,
                },
            }
        )

    async def _me(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        return self._json(self.world.entities.bot_user())

    async def _application(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        return self._json(self.world.entities.full_application())

    async def _not_found(self, request: web.Request) -> web.Response:
        return self._json({"message": "404: Not Found", "code": 0}, 404)

    async def _stats(self, request: web.Request) -> web.Response:
        return web.Response(body=_encode(self.stats()), headers={"Content-Type": JSON})

    def stats(self) -> dict[str, Any]:
        """Everything ``GET /_sim/stats`` returns."""
        sessions = []
        shards: dict[tuple[int, int], dict[str, Any]] = {}
        for s in self.sessions.values():
            entry = {
                "session_id": s.id,
                "shard": [s.shard_id, s.num_shards],
                "last_seq": s.last_seq if s.ended is None else s.last_sent_seq,
                "last_sent_seq": s.last_sent_seq,
                "connected": s.conn is not None,
                "ended": s.ended,
            }
            sessions.append(entry)
            agg = shards.setdefault(
                (s.shard_id, s.num_shards),
                {"shard": s.shard_id, "num_shards": s.num_shards, "sessions": 0, "dispatches_sent": 0},
            )
            agg["sessions"] += 1
            agg["dispatches_sent"] += s.last_sent_seq
            agg["session_id"] = s.id
            agg["last_seq_sent"] = s.last_sent_seq
            agg["connected"] = s.conn is not None
        out: dict[str, Any] = {name: list(items) for name, items in self.recorder.lists.items()}
        out.update(
            started=self.started,
            now=time.time(),
            connections=len(self.connections),
            session_start_limit={
                "total": self.config.session_start_total,
                "remaining": self.starts_remaining,
                "max_concurrency": self.config.max_concurrency,
            },
            identify_window=self.config.identify_window,
            sessions=sessions,
            shards=sorted(shards.values(), key=lambda e: (e["num_shards"], e["shard"])),
        )
        return out

    async def _fault(self, request: web.Request) -> web.Response:
        try:
            spec = _json_decode(await request.read())
        except msgspec.DecodeError:
            return self._json({"message": "body is not JSON"}, 400)
        if not isinstance(spec, dict) or spec.get("kind") not in FAULT_KINDS:
            return self._json({"message": f"kind must be one of {', '.join(FAULT_KINDS)}"}, 400)
        try:
            checked = msgspec.convert(spec, FaultSpec)
        except msgspec.ValidationError as exc:
            return self._json({"message": f"invalid fault: {exc}"}, 400)
        if not _sendable_close_code(checked.code):
            return self._json({"message": f"code {checked.code} cannot be sent in a close frame"}, 400)
        targets = []
        for conn in list(self.connections):
            s = conn.session
            if s is None or conn.closing:
                continue
            if "session_id" in spec and s.id != spec["session_id"]:
                continue
            if "shard" in spec and s.shard_id != spec["shard"]:
                continue
            if "num_shards" in spec and s.num_shards != spec["num_shards"]:
                continue
            targets.append(conn)
        if not targets:
            return self._json({"message": "no connected session matches", "applied": []}, 404)
        applied = []
        given = {k: v for k, v in msgspec.structs.asdict(checked).items() if k in spec}
        for conn in targets:
            applied.append(conn.describe())
            await self.apply_fault(conn, {"kind": checked.kind, **given}, source="admin")
        return self._json({"applied": applied})

    def record_send(self, session: Session, last_seq: int) -> None:
        """Note that every dispatch of ``session`` up to ``last_seq`` has just been written."""
        entry = self.sends.get(session.id)
        if entry is None:
            entry = self.sends[session.id] = (session.shard_id, array.array("q"), array.array("q"))
        entry[1].append(last_seq)
        entry[2].append(time.monotonic_ns())

    async def _sends(self, request: web.Request) -> web.Response:
        """GET: the recorded writes per session; DELETE: forget them."""
        if request.method == "DELETE":
            self.sends.clear()
            return self._json({"cleared": True})
        return self._json(
            {
                "clock": "CLOCK_MONOTONIC, nanoseconds",
                "sessions": [
                    {"session_id": sid, "shard": shard, "last_seq": seqs.tolist(), "t_ns": times.tolist()}
                    for sid, (shard, seqs, times) in self.sends.items()
                ],
            }
        )

    async def _set_config(self, request: web.Request) -> web.Response:
        try:
            body = _json_decode(await request.read())
        except msgspec.DecodeError:
            return self._json({"message": "body is not JSON"}, 400)
        numbers = {"rate", "fault_rate", "heartbeat_request_interval", "tick"}
        urls = {"resume_gateway_url", "gateway_url"}
        flags = {"record_sends"}
        allowed = numbers | urls | flags
        if not isinstance(body, dict) or not set(body) <= allowed:
            return self._json({"message": f"settable at run time: {', '.join(sorted(allowed))}"}, 400)
        if body.get("rate") == "max":
            body["rate"] = math.inf
        for key, value in body.items():
            if key in numbers:
                ok = isinstance(value, int | float) and not isinstance(value, bool)
                kind = "a number" + (" or 'max'" if key == "rate" else "")
            elif key in flags:
                ok, kind = isinstance(value, bool), "true or false"
            else:
                ok, kind = value is None or isinstance(value, str), "a URL or null"
            if not ok:
                return self._json({"message": f"{key} must be {kind}"}, 400)
        try:
            changed = self.config.replace(**body)
        except ValueError as exc:
            return self._json({"message": str(exc)}, 400)
        self.config = changed
        effective = {k: getattr(changed, k) for k in sorted(allowed)}
        if math.isinf(effective["rate"]):
            effective["rate"] = "max"
        return self._json(effective)
