"""Snowflakes, timestamps and the integer hash that derives what an entity looks like from its id."""

from __future__ import annotations

import time
from typing import Any, Final

JSON = dict[str, Any]


EPOCH_MS: int = 1420070400000  # Discord epoch: 2015-01-01T00:00:00Z


#: Where the virtual clock starts: 2025-01-01T00:00:00Z. Fixed so that a seed reproduces a run.
START_MS: Final = 1735689600000


#: Users in generated guilds signed up between these two instants (2016-01-01 and 2024-06-01).
_USER_CREATED_MIN_MS: Final = 1451606400000


_USER_CREATED_MAX_MS: Final = 1717200000000


_DAY_MS: Final = 86_400_000


_LOW_BITS: Final = 22


_LOW_MASK: Final = (1 << _LOW_BITS) - 1


_M64: Final = (1 << 64) - 1


def snowflake(timestamp_ms: int, low: int = 0) -> int:
    """Snowflake for a UNIX ms timestamp; `low` fills the 22 low bits (0 <= low < 2**22)."""
    if not 0 <= low <= _LOW_MASK:
        raise ValueError(f"low must be in [0, 2**22), got {low}")
    if timestamp_ms < EPOCH_MS:
        raise ValueError(f"timestamp_ms {timestamp_ms} is before the Discord epoch")
    return ((timestamp_ms - EPOCH_MS) << _LOW_BITS) | low


def _created_ms(entity_id: int) -> int:
    """UNIX ms at which a snowflake was minted."""
    return (entity_id >> _LOW_BITS) + EPOCH_MS


def _mix(x: int) -> int:
    """A 64-bit integer hash (splitmix64 finalizer): spreads an id's bits over every output bit."""
    x = (x ^ (x >> 31)) * 0x7FB5D329728EA185 & _M64
    x = (x ^ (x >> 27)) * 0x81DADEF4BC2DD44D & _M64
    return x ^ (x >> 33)


def _iso(ms: int) -> str:
    """ISO 8601 the way Discord writes it: microseconds and an explicit +00:00 offset."""
    t = time.gmtime(ms // 1000)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
        f".{ms % 1000:03d}000+00:00"
    )


def _hex32(seed: int) -> str:
    """A 32-hex-digit asset hash (avatars, icons) derived from an integer."""
    return f"{_mix(seed):016x}{_mix(seed ^ 0x5BD1E995):016x}"


def _derived_id(parent_id: int, salt: int) -> int:
    """A stable id for something that belongs to `parent_id` but is not stored in a model.

    Minted at a hashed instant within 200 days after the parent, with hashed low bits. Servers mint
    guild ids densely in time (one per millisecond); spreading derived ids over months keeps the
    chance that one lands on the same millisecond and low bits as a guild id negligible.
    """
    h = _mix(parent_id * 131 + salt)
    return snowflake(_created_ms(parent_id) + 1 + h % (200 * _DAY_MS), (h >> 40) & _LOW_MASK)
