"""Discord Gateway v10 constants: opcodes, close codes and what each close code allows.

The tables follow ../shared/PROTOCOL.md. The simulator uses them to decide how to close and what a
close does to a session; the shard uses the same table to decide whether to resume, identify anew or
stop, so both sides can never disagree.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
from typing import Final

API_VERSION: Final = 10
#: A client payload larger than this is refused (close 4002 on the gateway, refused locally by the shard).
MAX_PAYLOAD_BYTES: Final = 4096
#: Gateway commands allowed per connection per window (heartbeats included).
COMMANDS_PER_WINDOW: Final = 120
COMMAND_WINDOW_S: Final = 60.0
#: One identify per ``shard_id % max_concurrency`` bucket per this many seconds.
IDENTIFY_WINDOW_S: Final = 5.0
#: Seconds before its identify turn a shard connects by default: a couple of handshakes (TCP, TLS,
#: the WebSocket upgrade and HELLO take 100-300 ms against Discord), so that the handshake overlaps
#: the wait and the bucket loses nothing to it.
IDENTIFY_LEAD_S: Final = 1.0
#: Handshakes (connect to HELLO) in flight per worker by default (its connect gate).
CONNECT_CONCURRENCY: Final = 128
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


#: The privileged intents by the name the settings use: GUILD_MEMBERS (1 << 1), GUILD_PRESENCES
#: (1 << 8), MESSAGE_CONTENT (1 << 15). An application uses them only once enabled in the portal.
PRIVILEGED_INTENT_BITS: Final[dict[str, int]] = {
    "members": 1 << 1,
    "presences": 1 << 8,
    "message_content": 1 << 15,
}
#: Every privileged intent bit.
PRIVILEGED_INTENTS: Final = sum(PRIVILEGED_INTENT_BITS.values())
#: Every intent bit Discord defines today (0..25, without the unused 17..19 and 22).
ALL_INTENTS: Final = sum(1 << b for b in (*range(0, 17), 20, 21, 24, 25))


def shard_for_guild(guild_id: int, num_shards: int) -> int:
    """``(guild_id >> 22) % num_shards``: the shard that receives a guild's events."""
    return (guild_id >> 22) % num_shards


#: Every dispatch (op 0 ``t``) the gateway sends to a bot (Discord's "Receive Events" list), RESUMED
#: and READY included: what ``tail --events`` and consumer groups may name.
DISPATCH_EVENTS: Final = frozenset(
    {
        "READY", "RESUMED",
        "APPLICATION_COMMAND_PERMISSIONS_UPDATE",
        "AUTO_MODERATION_RULE_CREATE", "AUTO_MODERATION_RULE_UPDATE", "AUTO_MODERATION_RULE_DELETE",
        "AUTO_MODERATION_ACTION_EXECUTION",
        "CHANNEL_CREATE", "CHANNEL_UPDATE", "CHANNEL_DELETE", "CHANNEL_PINS_UPDATE",
        "THREAD_CREATE", "THREAD_UPDATE", "THREAD_DELETE", "THREAD_LIST_SYNC", "THREAD_MEMBER_UPDATE",
        "THREAD_MEMBERS_UPDATE",
        "ENTITLEMENT_CREATE", "ENTITLEMENT_UPDATE", "ENTITLEMENT_DELETE",
        "GUILD_CREATE", "GUILD_UPDATE", "GUILD_DELETE", "GUILD_AUDIT_LOG_ENTRY_CREATE",
        "GUILD_BAN_ADD", "GUILD_BAN_REMOVE", "GUILD_EMOJIS_UPDATE", "GUILD_STICKERS_UPDATE",
        "GUILD_INTEGRATIONS_UPDATE", "GUILD_MEMBER_ADD", "GUILD_MEMBER_REMOVE", "GUILD_MEMBER_UPDATE",
        "GUILD_MEMBERS_CHUNK", "GUILD_ROLE_CREATE", "GUILD_ROLE_UPDATE", "GUILD_ROLE_DELETE",
        "GUILD_SCHEDULED_EVENT_CREATE", "GUILD_SCHEDULED_EVENT_UPDATE", "GUILD_SCHEDULED_EVENT_DELETE",
        "GUILD_SCHEDULED_EVENT_USER_ADD", "GUILD_SCHEDULED_EVENT_USER_REMOVE",
        "GUILD_SOUNDBOARD_SOUND_CREATE", "GUILD_SOUNDBOARD_SOUND_UPDATE", "GUILD_SOUNDBOARD_SOUND_DELETE",
        "GUILD_SOUNDBOARD_SOUNDS_UPDATE", "SOUNDBOARD_SOUNDS",
        "INTEGRATION_CREATE", "INTEGRATION_UPDATE", "INTEGRATION_DELETE",
        "INTERACTION_CREATE", "INVITE_CREATE", "INVITE_DELETE",
        "MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE", "MESSAGE_DELETE_BULK",
        "MESSAGE_REACTION_ADD", "MESSAGE_REACTION_REMOVE", "MESSAGE_REACTION_REMOVE_ALL",
        "MESSAGE_REACTION_REMOVE_EMOJI", "MESSAGE_POLL_VOTE_ADD", "MESSAGE_POLL_VOTE_REMOVE",
        "PRESENCE_UPDATE",
        "STAGE_INSTANCE_CREATE", "STAGE_INSTANCE_UPDATE", "STAGE_INSTANCE_DELETE",
        "SUBSCRIPTION_CREATE", "SUBSCRIPTION_UPDATE", "SUBSCRIPTION_DELETE",
        "TYPING_START", "USER_UPDATE",
        "VOICE_CHANNEL_EFFECT_SEND", "VOICE_STATE_UPDATE", "VOICE_SERVER_UPDATE",
        "WEBHOOKS_UPDATE",
    }
)  # fmt: skip

#: The dispatches that build a bot's view of a guild beside its GUILD_CREATE: what the worker's
#: state cache (``state_cache``) keeps after each guild's latest GUILD_CREATE, and what an adapter
#: does not parse again when a live copy older than the state it fetched comes.
STATE_EVENTS: Final = frozenset(
    {
        "GUILD_CREATE", "GUILD_UPDATE", "GUILD_DELETE",
        "CHANNEL_CREATE", "CHANNEL_UPDATE", "CHANNEL_DELETE",
        "THREAD_CREATE", "THREAD_UPDATE", "THREAD_DELETE",
        "GUILD_ROLE_CREATE", "GUILD_ROLE_UPDATE", "GUILD_ROLE_DELETE",
        "GUILD_EMOJIS_UPDATE", "GUILD_STICKERS_UPDATE",
        "GUILD_MEMBER_ADD", "GUILD_MEMBER_REMOVE", "GUILD_MEMBER_UPDATE",
    }
)  # fmt: skip

# base64url without padding in each part; the first may keep its padding (some tools add it).
_TOKEN_SHAPE: Final = re.compile(r"([A-Za-z0-9_-]+)={0,2}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def token_bot_id(token: str) -> int | None:
    """The bot user id a bot token names, or None when ``token`` does not have a bot token's shape.

    A bot token is three dot-separated base64url parts, the first the base64 of the bot's numeric
    user id. Nothing here says whether Discord accepts it; it only catches what Discord never would
    (a token pasted with "Bot ", cut short, or a client secret), before it is sent anywhere.
    """
    found = _TOKEN_SHAPE.fullmatch(token)
    if found is None:
        return None
    head = found.group(1)
    try:
        raw = base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))
    except (binascii.Error, ValueError):
        return None
    if not raw.isdigit() or len(raw) > 20:
        return None
    return int(raw)
