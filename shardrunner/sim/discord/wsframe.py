"""Server-to-client WebSocket frames built by hand.

The simulator writes dispatches straight to the transport so that many frames go out in one
``write`` (and prepared frames need no work at all); aiohttp still does the handshake, reads the
client's frames and writes control frames. Server frames are never masked (RFC 6455, 5.1).
"""

from __future__ import annotations

import struct

TEXT = 0x1
BINARY = 0x2

_pack_short = struct.Struct("!BBH").pack
_pack_long = struct.Struct("!BBQ").pack


def frame(payload: bytes, opcode: int) -> bytes:
    """One final, unmasked frame carrying ``payload``."""
    n = len(payload)
    first = 0x80 | opcode
    if n < 126:
        return bytes((first, n)) + payload
    if n < 65536:
        return _pack_short(first, 126, n) + payload
    return _pack_long(first, 127, n) + payload


def sendable_close_code(code: int) -> bool:
    """Close codes that may appear in a close frame (RFC 6455, 7.4)."""
    return 1000 <= code < 5000 and code not in (1004, 1005, 1006, 1015)
