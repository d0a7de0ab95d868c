"""WebSocket transports for gateway connections.

A shard sees a transport as: ``connect(url, on_message)`` gives a :class:`Connection` that calls
``on_message(payload)`` synchronously for every complete WebSocket message (so the hot path runs
without a task switch per event), sends text frames, closes with a code, and resolves ``closed``
with the code the peer closed with (``None`` when the TCP connection dropped without a close frame).

The implementation is picows: receiving 1 KB frames it does about 1.1M frames per CPU-second here,
against 540k for aiohttp and 190k for websockets (docs/performance.md, benchmarks/ws_libraries.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from shardrunner.protocol.compression import MAX_MESSAGE_BYTES

log = logging.getLogger("shardrunner.gateway")

OnMessage = Callable[[bytes], None]

#: Each connection's first read buffer. Idle shards are the common case and each holds one: 4 KiB
#: instead of picows' 16 took an idle shard from 67.8 to 55.9 KiB, for about 4 % of full-load
#: throughput (docs/performance.md, decision 8). picows grows it when a read fills it.
READ_BUFFER_INIT_SIZE = 4096


class TransportError(ConnectionError):
    """The connection could not be opened (refused, timed out, bad handshake)."""


class Connection(Protocol):
    """One open WebSocket connection."""

    @property
    def closed(self) -> asyncio.Future[int | None]:
        """Resolves when the connection is gone, with the peer's close code or None if it dropped."""

    def send_text(self, data: bytes) -> None:
        """Send one text frame (gateway payloads are JSON text)."""

    def close(self, code: int) -> None:
        """Start the closing handshake with ``code``; ``closed`` resolves when it is over."""

    def abort(self) -> None:
        """Drop the TCP connection at once."""


class Transport(Protocol):
    async def connect(self, url: str, on_message: OnMessage, *, timeout: float) -> Connection:
        """Open a connection to ``url``; raise :class:`TransportError` if that fails."""


class _Listener(WSListener):
    """Hands complete messages to the shard; reassembles the rare fragmented one, up to ``limit``
    bytes (a longer message closes the connection with 1009, as a frame over it does in picows)."""

    __slots__ = ("_fragments", "_size", "close_code", "closed", "limit", "on_message")

    def __init__(self, on_message: OnMessage, closed: asyncio.Future[int | None], limit: int) -> None:
        self.on_message = on_message
        self.closed = closed
        self.limit = limit
        self.close_code: int | None = None
        self._fragments: list[bytes] | None = None
        self._size = 0

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind is WSMsgType.BINARY or kind is WSMsgType.TEXT:
            if frame.fin:
                self.on_message(frame.get_payload_as_bytes())
            else:
                self._fragments = [frame.get_payload_as_bytes()]
                self._size = frame.payload_size
        elif kind is WSMsgType.CONTINUATION:
            if self._fragments is not None:
                self._size += frame.payload_size
                if self._size > self.limit:
                    log.warning("a fragmented message over %d bytes: closing (1009)", self.limit)
                    self._fragments = None
                    transport.send_close(WSCloseCode.MESSAGE_TOO_BIG)
                    transport.disconnect()
                    return
                self._fragments.append(frame.get_payload_as_bytes())
                if frame.fin:
                    data = b"".join(self._fragments)
                    self._fragments = None
                    self.on_message(data)
        elif kind is WSMsgType.CLOSE:
            code = int(frame.get_close_code().value) if frame.payload_size >= 2 else 1005
            self.close_code = code
            if not transport.is_close_frame_sent:
                # Answer the peer's close with its own code, then let it close the TCP connection.
                transport.send_close(frame.get_close_code())
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if not self.closed.done():
            self.closed.set_result(self.close_code)
        # picows keeps the error that made it disconnect (a frame over the limit, a protocol error:
        # it logged it) for ``wait_disconnected``; taken here, asyncio does not report it as never
        # retrieved. One short task per disconnect, none while a connection lives.
        task = asyncio.ensure_future(_reap(transport))
        _reaping.add(task)
        task.add_done_callback(_reaping.discard)


#: The reaping tasks under way (asyncio keeps only weak references to tasks).
_reaping: set[asyncio.Task[None]] = set()


async def _reap(transport: WSTransport) -> None:
    with contextlib.suppress(Exception):
        await transport.wait_disconnected()


class PicowsConnection:
    __slots__ = ("_listener", "_transport")

    def __init__(self, transport: WSTransport, listener: _Listener) -> None:
        self._transport = transport
        self._listener = listener

    @property
    def closed(self) -> asyncio.Future[int | None]:
        return self._listener.closed

    def send_text(self, data: bytes) -> None:
        if not self._transport.is_close_frame_sent:
            self._transport.send(WSMsgType.TEXT, data)

    def close(self, code: int) -> None:
        if not self._transport.is_close_frame_sent:
            self._transport.send_close(code)  # type: ignore[arg-type]
        # The server answers with the same code and closes TCP; disconnect if it does not within 5 s.
        asyncio.get_running_loop().call_later(5.0, self._transport.disconnect, False)

    def abort(self) -> None:
        self._transport.disconnect(graceful=False)


class PicowsTransport:
    """Gateway connections over picows; a message over ``max_message`` bytes closes with 1009."""

    def __init__(self, max_message: int = MAX_MESSAGE_BYTES) -> None:
        self.max_message = max_message

    async def connect(self, url: str, on_message: OnMessage, *, timeout: float = 10.0) -> Connection:
        closed: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        try:
            transport, listener = await ws_connect(
                lambda: _Listener(on_message, closed, self.max_message),
                url,
                websocket_handshake_timeout=timeout,
                enable_auto_pong=True,
                max_frame_size=self.max_message,
                read_buffer_init_size=READ_BUFFER_INIT_SIZE,
            )
        except (TimeoutError, OSError) as exc:
            raise TransportError(f"cannot connect to {_safe(url)}: {exc}") from None
        except Exception as exc:  # picows raises its own errors for bad handshakes
            raise TransportError(f"WebSocket handshake with {_safe(url)} failed: {exc}") from None
        if not isinstance(listener, _Listener):
            # picows gives no listener when the connection drops during the handshake.
            raise TransportError(f"the connection to {_safe(url)} was lost during the WebSocket handshake")
        return PicowsConnection(transport, listener)


def _safe(url: str) -> str:
    """The URL without its query string (nothing secret is in it, but it is noise in logs)."""
    return url.split("?", 1)[0]
