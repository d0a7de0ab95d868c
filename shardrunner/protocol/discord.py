"""Discord Gateway v10 constants: opcodes, close codes and what each close code allows.

The tables follow ../shared/PROTOCOL.md. The simulator uses them to decide how to close and what a
close does to a session; the shard uses the same table to decide whether to resume, identify anew or
stop, so both sides can never disagree.
"""

from __future__ import annotations

import enum
from typing import Final

API_VERSION: Final = 10
#: A client payload larger than this is refused (close 4002 on the gateway, refused locally by the shard).
MAX_PAYLOAD_BYTES: Final = 4096
#: Gateway commands allowed per connection per window (heartbeats included).
COMMANDS_PER_WINDOW: Final = 120
COMMAND_WINDOW_S: Final = 60.0
#: One identify per ``shard_id % max_concurrency`` bucket per this many seconds.
IDENTIFY_WINDOW_S: Final = 5.0
MAX_GUILDS_PER_SHARD: Final = 2500


class Op(enum.IntEnum):
    DISPATCH = 0
    HEARTBEAT = 1
    IDENTIFY = 2
    PRESENCE_UPDATE = 3
    VOICE_STATE_UPDATE = 4
    RESUME = 6
    RECONNECT = 7
    REQUEST_GUILD_MEMBERS = 8
    INVALID_SESSION = 9
    HELLO = 10
    HEARTBEAT_ACK = 11
    REQUEST_SOUNDBOARD_SOUNDS = 31


class CloseAction(enum.Enum):
    """What a client may do after the gateway closed with a code."""

    RESUME = "resume"
    NEW_SESSION = "new_session"
    FATAL = "fatal"


class CloseCode(enum.IntEnum):
    UNKNOWN_ERROR = 4000
    UNKNOWN_OPCODE = 4001
    DECODE_ERROR = 4002
    NOT_AUTHENTICATED = 4003
    AUTHENTICATION_FAILED = 4004
    ALREADY_AUTHENTICATED = 4005
    INVALID_SEQ = 4007
    RATE_LIMITED = 4008
    SESSION_TIMED_OUT = 4009
    INVALID_SHARD = 4010
    SHARDING_REQUIRED = 4011
    INVALID_API_VERSION = 4012
    INVALID_INTENTS = 4013
    DISALLOWED_INTENTS = 4014


CLOSE_REASONS: Final[dict[int, str]] = {
    CloseCode.UNKNOWN_ERROR: "Unknown error.",
    CloseCode.UNKNOWN_OPCODE: "Unknown opcode.",
    CloseCode.DECODE_ERROR: "Error while decoding payload.",
    CloseCode.NOT_AUTHENTICATED: "Not authenticated.",
    CloseCode.AUTHENTICATION_FAILED: "Authentication failed.",
    CloseCode.ALREADY_AUTHENTICATED: "Already authenticated.",
    CloseCode.INVALID_SEQ: "Invalid seq.",
    CloseCode.RATE_LIMITED: "Rate limited.",
    CloseCode.SESSION_TIMED_OUT: "Session timed out.",
    CloseCode.INVALID_SHARD: "Invalid shard.",
    CloseCode.SHARDING_REQUIRED: "Sharding required.",
    CloseCode.INVALID_API_VERSION: "Invalid API version.",
    CloseCode.INVALID_INTENTS: "Invalid intent(s).",
    CloseCode.DISALLOWED_INTENTS: "Disallowed intent(s).",
}

_NEW_SESSION: Final = frozenset({CloseCode.INVALID_SEQ, CloseCode.SESSION_TIMED_OUT})
_FATAL: Final = frozenset(
    {
        CloseCode.AUTHENTICATION_FAILED,
        CloseCode.INVALID_SHARD,
        CloseCode.SHARDING_REQUIRED,
        CloseCode.INVALID_API_VERSION,
        CloseCode.INVALID_INTENTS,
        CloseCode.DISALLOWED_INTENTS,
    }
)


def close_action(code: int | None) -> CloseAction:
    """What a client may do after the *gateway* closed the connection with ``code``.

    Codes outside Discord's table (1000-range codes sent by the server, 1006 for a dropped connection,
    ``None`` for no close frame at all) leave the session resumable.
    """
    if code in _FATAL:
        return CloseAction.FATAL
    if code in _NEW_SESSION:
        return CloseAction.NEW_SESSION
    return CloseAction.RESUME


def client_close_ends_session(code: int | None) -> bool:
    """A client that closes with 1000 or 1001 ends its session; any other way keeps it resumable."""
    return code in (1000, 1001)


#: Privileged intents: GUILD_MEMBERS (1 << 1), GUILD_PRESENCES (1 << 8), MESSAGE_CONTENT (1 << 15).
PRIVILEGED_INTENTS: Final = (1 << 1) | (1 << 8) | (1 << 15)
#: Every intent bit Discord defines today (0..25, without the unused 17..19 and 22).
ALL_INTENTS: Final = sum(1 << b for b in (*range(0, 17), 20, 21, 24, 25))


def shard_for_guild(guild_id: int, num_shards: int) -> int:
    """``(guild_id >> 22) % num_shards``: the shard that receives a guild's events."""
    return (guild_id >> 22) % num_shards
