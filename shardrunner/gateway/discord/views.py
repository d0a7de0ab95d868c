"""The views of Discord's gateway payloads the shard decodes, and their decoders, built once.

Each view names only the fields the shard reads: msgspec skips the rest of the JSON without
building it, and ``d`` stays the raw bytes it arrived as (:class:`msgspec.Raw`), for the consumer.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec

#: A sequence number: msgspec would take any integer, and one beyond 64 bits (no gateway numbers
#: that far) would leave every later dispatch looking like one already seen.
Seq = Annotated[int, msgspec.Meta(le=2**63 - 1)]


class Envelope(msgspec.Struct):
    """Every gateway payload: ``op``, and for a dispatch its name ``t`` and sequence number ``s``."""

    op: int
    d: msgspec.Raw = msgspec.Raw(b"null")
    s: Seq | None = None
    t: str | None = None


class GuildKey(msgspec.Struct):
    """The routing key of most guild events."""

    guild_id: str | None = None


class GuildSelf(msgspec.Struct):
    """GUILD_CREATE/UPDATE/DELETE: the guild itself (and whether it only went unavailable)."""

    id: str | None = None
    unavailable: bool | None = None


class Hello(msgspec.Struct):
    heartbeat_interval: int


#: The heartbeat intervals a HELLO may give (Discord's is 41,250 ms): at 0 or below a shard would
#: beat without pause, far above it would never find a dead connection.
MIN_HEARTBEAT_MS: Final = 10
MAX_HEARTBEAT_MS: Final = 600_000


class Ready(msgspec.Struct):
    session_id: str
    resume_gateway_url: str
    guilds: list[GuildSelf] = []


decode_envelope = msgspec.json.Decoder(Envelope).decode
decode_guild_key = msgspec.json.Decoder(GuildKey).decode
decode_guild_self = msgspec.json.Decoder(GuildSelf).decode
decode_hello = msgspec.json.Decoder(Hello).decode
decode_ready = msgspec.json.Decoder(Ready).decode
encode = msgspec.json.encode

#: Events whose ``d`` is the guild itself (routing key ``d.id``).
GUILD_SELF_EVENTS: Final = frozenset({"GUILD_CREATE", "GUILD_UPDATE", "GUILD_DELETE"})
#: Events that never carry a guild.
NO_KEY_EVENTS: Final = frozenset(
    {"READY", "RESUMED", "USER_UPDATE", "APPLICATION_COMMAND_PERMISSIONS_UPDATE"}
)
