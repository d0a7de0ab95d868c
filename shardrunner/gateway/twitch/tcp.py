"""IRC over TCP (``irc://host:6667``) and TLS (``ircs://host:6697``), as a gateway transport.

The same :class:`~shardrunner.gateway.transport.Connection` shape as the WebSocket transport:
``on_message`` gets what each read returns (any number of lines, the last one maybe cut: the
caller's :class:`~shardrunner.protocol.irc.LineBuffer` joins them), ``send_text`` writes,
``closed`` resolves when the socket is gone (``None``: IRC has no close codes).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from urllib.parse import urlsplit

from shardrunner.gateway.transport import Connection, OnMessage, TransportError


class TcpConnection:
    __slots__ = ("_closed", "_reader_task", "_writer")

    def __init__(self, writer: asyncio.StreamWriter, closed: asyncio.Future[int | None]) -> None:
        self._writer = writer
        self._closed = closed
        self._reader_task: asyncio.Task[None] | None = None

    @property
    def closed(self) -> asyncio.Future[int | None]:
        return self._closed

    def send_text(self, data: bytes) -> None:
        if not self._writer.is_closing():
            self._writer.write(data)

    def close(self, code: int) -> None:
        if not self._writer.is_closing():
            self._writer.close()

    def abort(self) -> None:
        transport = self._writer.transport
        transport.abort()


async def _read(
    reader: asyncio.StreamReader, on_message: OnMessage, closed: asyncio.Future[int | None]
) -> None:
    try:
        while data := await reader.read(65536):
            on_message(data)
    except (ConnectionError, OSError):
        pass
    finally:
        if not closed.done():
            closed.set_result(None)


class TcpTransport:
    """IRC connections over TCP or TLS (``verify=False`` only against a local simulator)."""

    def __init__(self, *, verify: bool = True) -> None:
        self.verify = verify

    async def connect(self, url: str, on_message: OnMessage, *, timeout: float = 10.0) -> Connection:
        parts = urlsplit(url)
        if parts.scheme not in ("irc", "ircs") or not parts.hostname:
            raise TransportError(f"{url!r} is not an irc:// or ircs:// address")
        tls: ssl.SSLContext | None = None
        if parts.scheme == "ircs":
            tls = ssl.create_default_context()
            if not self.verify:
                tls.check_hostname = False
                tls.verify_mode = ssl.CERT_NONE
        port = parts.port or (6697 if tls else 6667)
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(parts.hostname, port, ssl=tls), timeout
            )
        except (TimeoutError, OSError) as exc:
            raise TransportError(f"cannot connect to {parts.hostname}:{port}: {exc}") from None
        closed: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        conn = TcpConnection(writer, closed)
        conn._reader_task = asyncio.ensure_future(_read(reader, on_message, closed))
        closed.add_done_callback(lambda _: _shut(writer))
        return conn


def _shut(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.close()
