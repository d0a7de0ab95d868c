"""What to tell the user when Discord closes a connection for good (the fatal close codes)."""

from __future__ import annotations

from typing import Final

from shardrunner.gateway.connection import ConnFatalError
from shardrunner.protocol.discord import CLOSE_REASONS, CloseCode
from shardrunner.protocol.keys import ConnKey

_ADVICE: Final[dict[int, str]] = {
    CloseCode.AUTHENTICATION_FAILED: "Discord rejected the token (close 4004, authentication failed): "
    "check the token (--token or SHARDRUNNER_TOKEN); it may have been reset in the Developer Portal",
    CloseCode.INVALID_SHARD: "Discord refused the shard id or count (close 4010, invalid shard): "
    "the shard id must be below the shard count, and large bots must use a multiple of the count "
    "Discord gives",
    CloseCode.SHARDING_REQUIRED: "a shard would hold more than 2,500 guilds (close 4011, sharding required): "
    "raise the shard count (--shards auto uses Discord's recommendation)",
    CloseCode.INVALID_API_VERSION: "Discord refused gateway version 10 (close 4012, invalid API version): "
    "shardrunner only speaks v10",
    CloseCode.INVALID_INTENTS: "the intents value is not valid (close 4013, invalid intents): "
    "check the intents setting",
    CloseCode.DISALLOWED_INTENTS: "the bot asked for privileged intents it is not approved or enabled for "
    "(close 4014, disallowed intents): enable them in the Developer Portal (Bot, Privileged Gateway "
    "Intents) or remove them from the intents setting",
}


def fatal_advice(code: int) -> str:
    """One sentence: what the fatal close ``code`` means and what to do about it."""
    return _ADVICE.get(
        code, f"Discord closed with {code} ({CLOSE_REASONS.get(code, 'unknown')}), which is fatal"
    )


class ShardFatalError(ConnFatalError):
    """Discord closed with a code after which reconnecting cannot help; the message says what to do."""

    def __init__(self, conn: ConnKey, code: int) -> None:
        super().__init__(conn, code, fatal_advice(code))
