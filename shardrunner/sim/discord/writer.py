"""What one connection writes: control payloads first, then its session's dispatches, compressed.

Dispatches are written as ready-made frames straight to the transport (see
:mod:`shardrunner.sim.discord.wsframe`), many per ``writelines``. In replay mode, runs of scripted
dispatches go out as slices of frames compressed ahead of time, where the compression stream
allows it (:mod:`shardrunner.sim.discord.replay`). RESUMED is one of the session's dispatches (see
:mod:`shardrunner.sim.discord.session`): a slice stops before the script slot a RESUMED took, and
RESUMED itself is compressed live there.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from shardrunner.protocol.compression import Compression, StreamCompressor, new_compressor
from shardrunner.protocol.discord import CloseCode
from shardrunner.sim.discord.replay import PreparedScript
from shardrunner.sim.discord.session import resumed_payload
from shardrunner.sim.discord.wsframe import frame

if TYPE_CHECKING:
    from shardrunner.sim.discord.gateway import Connection

#: Bytes written per batch before the writer yields to the loop.
_WRITE_BATCH: Final = 256 * 1024
_HIGH_WATER: Final = 4 * 1024 * 1024


class Writer:
    """The outbound half of a :class:`~shardrunner.sim.discord.gateway.Connection`."""

    def __init__(self, conn: Connection, mode: Compression) -> None:
        self.conn = conn
        self.transport = conn.request.transport
        self.mode = mode
        self.opcode = 2 if mode.binary else 1
        self.compressor: StreamCompressor = new_compressor(mode)
        self.cursor = 0  # last seq written to this connection
        self.control: list[bytes] = []
        self.next_prepared: int | None = None  # script index that continues the prepared frames

    def start_at(self, cursor: int) -> None:
        """Stream the attached session from after ``cursor``."""
        self.cursor = cursor
        self.next_prepared = None

    def send_garbage(self, data: bytes) -> None:
        """Write one frame of ``data`` as it is, past the compressor (fault injection)."""
        if self.transport is not None:
            self.transport.write(frame(b"\xff" + data, self.opcode))

    async def run(self) -> None:
        conn = self.conn
        transport = self.transport
        assert transport is not None
        while not conn.closing:
            await conn.wake.wait()
            conn.wake.clear()
            while not conn.closing:
                if conn.stalled:
                    await asyncio.sleep(conn.stalled_until - time.monotonic())
                    continue
                chunks: list[bytes | memoryview] = []
                if self.control:
                    for payload in self.control:
                        chunks.append(frame(self.compressor.compress(payload), self.opcode))
                    self.control.clear()
                    self.next_prepared = None
                more = self._fill(chunks)
                if chunks and not conn.closing:
                    # One writev for the whole batch: no join, and prepared slices are memoryviews.
                    transport.writelines(chunks)
                    session = conn.session
                    if session is not None:
                        session.last_sent_seq = self.cursor
                        if conn.sim.config.record_sends:
                            conn.sim.record_send(session, self.cursor)
                    if transport.get_write_buffer_size() > _HIGH_WATER:
                        await self._drain()
                    else:
                        await asyncio.sleep(0)
                if not more:
                    break

    async def _drain(self) -> None:
        # aiohttp's protocol pauses writing at its high-water mark; wait for it like StreamWriter does.
        helper: Callable[[], Any] | None = getattr(self.conn.request.protocol, "_drain_helper", None)
        if helper is not None:
            with contextlib.suppress(ConnectionError):
                await helper()
        else:  # pragma: no cover - only if aiohttp drops its drain helper: poll the buffer instead
            while self.transport and self.transport.get_write_buffer_size() > _HIGH_WATER // 2:  # noqa: ASYNC110
                await asyncio.sleep(0.005)

    def _fill(self, chunks: list[bytes | memoryview]) -> bool:
        """Append frames for pending dispatches; return True if more are pending after this batch."""
        conn = self.conn
        s = conn.session
        if s is None:
            return False
        last = s.last_seq
        cursor = self.cursor
        if s.script is None and cursor < s.oldest_seq - 1:
            conn.sim.recorder.violation("slow_consumer", conn, f"fell {last - cursor} dispatches behind")
            asyncio.get_running_loop().create_task(conn.close(CloseCode.UNKNOWN_ERROR, "Client too slow."))
            return False
        size = sum(map(len, chunks))
        script = s.script
        comp = self.compressor
        while size < _WRITE_BATCH and cursor < last:
            seq = cursor + 1
            if script is not None and seq >= script.first_seq and script.mode is self.mode:
                stop = last
                if s.resumed:  # once per slice, not per dispatch: the hot path stays as it was
                    at = s.next_resumed(seq)
                    if at == seq:
                        fr = frame(comp.compress(resumed_payload(seq)), self.opcode)
                        self.next_prepared = None  # live mid-segment: off the prepared frames
                        chunks.append(fr)
                        size += len(fr)
                        cursor = seq
                        continue
                    if at is not None:
                        stop = at - 1  # the prepared slice ends before the slot RESUMED took
                written, cursor = self._fill_scripted(script, seq, stop, chunks)
                size += written
                continue
            fr = frame(comp.compress(s.payload(seq)), self.opcode)
            self.next_prepared = None
            chunks.append(fr)
            size += len(fr)
            cursor = seq
        self.cursor = cursor
        return cursor < last

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
