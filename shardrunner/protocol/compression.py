"""Gateway transport compression: zlib-stream and zstd-stream, both directions.

Discord compresses a whole connection as one stream: every WebSocket message is one gateway payload,
flushed so that it can be decompressed on arrival (zlib: ``Z_SYNC_FLUSH``, ending in ``00 00 ff ff``;
zstd: a block flush). The receiving side keeps one decompression context per connection.

The compressors here can also *break history* between two messages, so that a segment compressed ahead
of time (the simulator's replay mode) can be spliced into a live stream:

- zlib: a deflate stream is a sequence of blocks whose only link to the past is back-references. A
  segment compressed by a fresh raw-deflate compressor never refers to bytes before its start, and
  every message ends byte-aligned after a sync flush, so it can follow any message. The live side
  switches to a fresh raw compressor after a spliced segment for the same reason.
- zstd: blocks of one frame share more state than back-references (repeat offsets, entropy tables),
  so a splice starts a new frame and the previous frame is ended first with an empty last block.
  Decoders that follow the zstd streaming API (libzstd's ``ZSTD_decompressStream``, Node's zlib,
  shardrunner's own :class:`ZstdStreamDecompressor`) read consecutive frames; live connections
  without splices are a single frame, exactly like Discord's.
"""

from __future__ import annotations

import enum
import importlib
import types
import zlib
from typing import Final, Protocol

import zstandard

# zlib-ng inflates the same streams about 15 % faster per ~1 KB message here (docs/performance.md).
_inflate_lib: types.ModuleType
try:
    _inflate_lib = importlib.import_module("zlib_ng.zlib_ng")
except ImportError:  # pragma: no cover - zlib-ng is a dependency; the standard zlib is the fallback
    _inflate_lib = zlib

ZLIB_SUFFIX: Final = b"\x00\x00\xff\xff"
#: An empty raw zstd block with the last-block bit set: ends the current frame (frames are written
#: without checksum, so nothing else has to follow).
ZSTD_END_FRAME: Final = b"\x01\x00\x00"
ZSTD_LEVEL: Final = 3
ZLIB_LEVEL: Final = 6
#: The largest message a receiving side takes, compressed (buffered until complete) or inflated:
#: Discord's largest payloads (a big guild's GUILD_CREATE, a READY of 2,500 guilds) are a few MiB,
#: so this bounds what a broken or hostile peer can make a connection hold without refusing any.
MAX_MESSAGE_BYTES: Final = 64 * 1024 * 1024
#: A zstd block holds at most 128 KiB and takes at least 4 bytes (an RLE block), so one input byte
#: can make up to 32 KiB: a long message is fed in steps of ``limit >> _ZSTD_RATIO_LOG`` bytes (at
#: least 64), which bounds how far the output can overshoot the limit before it is caught (half).
_ZSTD_RATIO_LOG: Final = 16
_ZSTD_BLOCK_MAX: Final = 128 * 1024
#: The most a deflate stream can inflate per input byte (1,032), with room to spare.
_DEFLATE_MAX_RATIO: Final = 1040


class MessageTooLarge(ValueError):
    """A message, compressed or inflated, is over the receiving side's limit."""


class Compression(enum.Enum):
    """Transport compression of a gateway connection, named as in the ``compress`` query parameter."""

    NONE = "none"
    ZLIB_STREAM = "zlib-stream"
    ZSTD_STREAM = "zstd-stream"

    @classmethod
    def from_query(cls, value: str | None) -> Compression:
        """Parse the ``compress`` query value (absent or empty means none); ValueError if unknown."""
        if not value:
            return cls.NONE
        return cls(value)

    @property
    def binary(self) -> bool:
        """Compressed streams travel in binary WebSocket frames, plain JSON in text frames."""
        return self is not Compression.NONE


class StreamCompressor(Protocol):
    """Compresses one connection's outgoing payloads, one WebSocket message per payload."""

    def compress(self, payload: bytes) -> bytes:
        """Compress one payload into one message that the peer can decompress on arrival."""

    def splice_prefix(self) -> bytes:
        """Bytes to put in front of the first message of a segment compressed elsewhere.

        After this call the compressor forgets its history: the next :meth:`compress` continues after
        the spliced segment.
        """


class PlainCompressor:
    """No compression: payloads go out as they are."""

    __slots__ = ()

    def compress(self, payload: bytes) -> bytes:
        return payload

    def splice_prefix(self) -> bytes:
        return b""


class ZlibStreamCompressor:
    """zlib-stream: one deflate stream per connection, ``Z_SYNC_FLUSH`` after every payload."""

    __slots__ = ("_compressor", "_level", "_started")

    def __init__(self, level: int = ZLIB_LEVEL) -> None:
        self._level = level
        # The first message carries the zlib header; later history breaks use raw deflate (no header).
        self._compressor = zlib.compressobj(level, zlib.DEFLATED, 15)
        self._started = False

    def compress(self, payload: bytes) -> bytes:
        self._started = True
        c = self._compressor
        return c.compress(payload) + c.flush(zlib.Z_SYNC_FLUSH)

    def splice_prefix(self) -> bytes:
        if not self._started:
            # Never happens on a gateway connection (HELLO is always live), but a spliced segment is
            # raw deflate and the stream must still open with a zlib header.
            self._started = True
            header = self._compressor.compress(b"") + self._compressor.flush(zlib.Z_SYNC_FLUSH)
        else:
            header = b""
        self._compressor = zlib.compressobj(self._level, zlib.DEFLATED, -15)
        return header


class ZstdStreamCompressor:
    """zstd-stream: one zstd frame per connection (until a splice), a block flush after every payload."""

    __slots__ = ("_compressor", "_level", "_open", "_prefix")

    def __init__(self, level: int = ZSTD_LEVEL) -> None:
        self._level = level
        self._compressor = self._new()
        self._open = False  # our own frame has started
        self._prefix = b""  # ends a spliced frame before our next output

    def _new(self) -> zstandard.ZstdCompressionObj:
        cctx = zstandard.ZstdCompressor(level=self._level, write_checksum=False, write_content_size=False)
        return cctx.compressobj()

    def compress(self, payload: bytes) -> bytes:
        c = self._compressor
        out = self._prefix + c.compress(payload) + c.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
        self._prefix = b""
        self._open = True
        return out

    def splice_prefix(self) -> bytes:
        prefix = self._prefix
        if self._open:
            prefix += self._compressor.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)
            self._compressor = self._new()
            self._open = False
        # The spliced segment's frame is left open; whatever comes next closes it first.
        self._prefix = ZSTD_END_FRAME
        return prefix


def new_compressor(mode: Compression) -> StreamCompressor:
    """A fresh compressor for one connection."""
    if mode is Compression.ZLIB_STREAM:
        return ZlibStreamCompressor()
    if mode is Compression.ZSTD_STREAM:
        return ZstdStreamCompressor()
    return PlainCompressor()


def compress_segment(mode: Compression, payloads: list[bytes]) -> list[bytes]:
    """Compress ``payloads`` ahead of time as a segment that can be spliced into any live stream.

    The first message of the segment must be sent after the live compressor's :meth:`splice_prefix`;
    for zstd the segment's frame is left open (the next message closes it).
    """
    if mode is Compression.ZLIB_STREAM:
        c = zlib.compressobj(ZLIB_LEVEL, zlib.DEFLATED, -15)
        return [c.compress(p) + c.flush(zlib.Z_SYNC_FLUSH) for p in payloads]
    if mode is Compression.ZSTD_STREAM:
        cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=False, write_content_size=False)
        z = cctx.compressobj()
        block = zstandard.COMPRESSOBJ_FLUSH_BLOCK
        return [z.compress(p) + z.flush(block) for p in payloads]
    return list(payloads)


class ZlibStreamDecompressor:
    """Inflates a zlib-stream: buffers fragments until the sync-flush suffix, then inflates.

    :meth:`feed` returns the complete payload, or ``None`` while a payload is still incomplete. It
    raises :class:`MessageTooLarge` when the buffered message or its payload goes over ``limit``
    bytes, and ``zlib.error`` for a corrupted stream; either way the stream cannot go on.
    """

    __slots__ = ("_buffer", "_inflater", "_unbounded_below", "limit")

    def __init__(self, limit: int = MAX_MESSAGE_BYTES) -> None:
        self._inflater = _inflate_lib.decompressobj()
        self._buffer = bytearray()
        self.limit = limit
        # Deflate makes at most 1,032 bytes of one (a 258-byte match in 2 bits): a message this
        # short is inflated without a bound, which costs about 4 % per message here.
        self._unbounded_below = limit // _DEFLATE_MAX_RATIO

    def feed(self, data: bytes) -> bytes | None:
        if self._buffer or not data.endswith(ZLIB_SUFFIX):
            self._buffer += data
            if len(self._buffer) > self.limit:
                self._buffer.clear()
                raise MessageTooLarge(f"a zlib-stream message over {self.limit} bytes without its suffix")
            if not self._buffer.endswith(ZLIB_SUFFIX):
                return None
            data = bytes(self._buffer)
            self._buffer.clear()
        if len(data) <= self._unbounded_below:  # nearly every message: it cannot go over
            out: bytes = self._inflater.decompress(data)
            return out
        # One byte over the limit is enough to know (the rest stays in the inflater, never used).
        out = self._inflater.decompress(data, self.limit + 1)
        if len(out) > self.limit:
            raise MessageTooLarge(f"a zlib-stream payload inflating to over {self.limit} bytes")
        return out


class ZstdStreamDecompressor:
    """Decompresses a zstd-stream message by message, across frame boundaries.

    Raises :class:`MessageTooLarge` for a payload over ``limit`` bytes and ``zstandard.ZstdError``
    for a corrupted stream; either way the stream cannot go on.
    """

    __slots__ = ("_dctx", "_obj", "_short", "_step", "limit")

    def __init__(self, limit: int = MAX_MESSAGE_BYTES) -> None:
        self._dctx = zstandard.ZstdDecompressor()
        self._obj = self._dctx.decompressobj()
        self.limit = limit
        self._step = max(64, limit >> _ZSTD_RATIO_LOG)
        # A call makes at most 128 KiB per block it ends (one may have begun in the message
        # before), and a block takes at least 4 bytes: a message this short cannot make more
        # than ``limit``, so it needs no check (64 MiB: 2,044 bytes, nearly every message).
        self._short = max(0, (limit // _ZSTD_BLOCK_MAX - 1) * 4)

    def feed(self, data: bytes) -> bytes | None:
        if len(data) <= self._short:
            out = self._obj.decompress(data)
            return self._across(out) if self._obj.eof else out
        parts: list[bytes] = []
        total = 0
        for at in range(0, len(data), self._step):
            part = self._decompress(data[at : at + self._step])
            total += len(part)
            if total > self.limit:
                raise MessageTooLarge(f"a zstd-stream payload decompressing to over {self.limit} bytes")
            parts.append(part)
        return b"".join(parts)

    def _decompress(self, data: bytes) -> bytes:
        out = self._obj.decompress(data)
        return self._across(out) if self._obj.eof else out

    def _across(self, out: bytes) -> bytes:
        """``out`` and what follows the end of its frame (a splice starts a new one)."""
        while self._obj.eof:
            rest = self._obj.unused_data
            self._obj = self._dctx.decompressobj()
            if not rest:
                break
            out += self._obj.decompress(rest)
        return out


class PlainDecompressor:
    """No compression."""

    __slots__ = ()

    def feed(self, data: bytes) -> bytes | None:
        return data


class StreamDecompressor(Protocol):
    def feed(self, data: bytes) -> bytes | None:
        """Return the payload that ``data`` completes, or ``None`` if it is not complete yet."""


def new_decompressor(mode: Compression, limit: int = MAX_MESSAGE_BYTES) -> StreamDecompressor:
    """A fresh decompressor for one connection, refusing messages over ``limit`` bytes."""
    if mode is Compression.ZLIB_STREAM:
        return ZlibStreamDecompressor(limit)
    if mode is Compression.ZSTD_STREAM:
        return ZstdStreamDecompressor(limit)
    return PlainDecompressor()
