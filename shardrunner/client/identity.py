"""What makes two events one across connection sets (a reshard's overlap, Twitch's backup readers):
each platform's identity of an event, and the check the client makes of a marked event."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Final

from shardrunner.client.dedupe import CrossDedupe, raw_identity
from shardrunner.client.discord import discord_identity
from shardrunner.client.twitch import twitch_identity
from shardrunner.protocol.envelope import Event

#: Each platform's identity of an event across connection sets (None: the event has no copy on
#: another set); a platform not named here uses the hash of the raw body.
IDENTITIES: Final[dict[str, Callable[[str, bytes], Hashable]]] = {
    "discord": discord_identity,
    "twitch": twitch_identity,
}
#: Platforms whose identity is unique for ever (Twitch's message ids): two copies match whenever
#: their workers received them, not only within the reshard window.
UNIQUE_IDENTITY: Final = frozenset({"twitch"})


def cross_duplicate(cross: CrossDedupe, event: Event, now: float, stamp: int, window: int) -> bool:
    """Whether a marked ``event`` is the other set's copy of one already delivered (``stamp``: when
    its worker received it; ``window``: the milliseconds within which copies match)."""
    conn = event.conn
    platform = conn.platform
    identity = IDENTITIES.get(platform, raw_identity)(event.name, event.data)
    if identity is None:
        return False
    if platform in UNIQUE_IDENTITY:
        # A backup reader's copy comes from another connection of the same set.
        return cross.duplicate(platform, (conn.generation, conn.shard), identity, now, stamp, 0)
    return cross.duplicate(platform, conn.generation, identity, now, stamp, window)
