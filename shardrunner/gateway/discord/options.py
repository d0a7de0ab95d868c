"""How a Discord shard identifies and connects, and the part config that carries it to a worker."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

from shardrunner.gateway.connection import StartHook
from shardrunner.protocol.compression import MAX_MESSAGE_BYTES, Compression
from shardrunner.protocol.discord import CONNECT_CONCURRENCY

HELLO_TIMEOUT_S: Final = 20.0
CONNECT_TIMEOUT_S: Final = 10.0


@dataclass(slots=True)
class ShardOptions:
    """How a shard identifies and connects. The token is never logged or shown."""

    token: str = field(repr=False)
    intents: int
    compression: Compression = Compression.ZLIB_STREAM
    large_threshold: int = 250
    presence: dict[str, Any] | None = None
    properties: dict[str, str] = field(
        default_factory=lambda: {"os": sys.platform, "browser": "shardrunner", "device": "shardrunner"}
    )
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    hello_timeout: float = HELLO_TIMEOUT_S
    connect_timeout: float = CONNECT_TIMEOUT_S
    #: Command slots kept free for heartbeats in every 60 s window.
    heartbeat_reserve: int = 3
    #: The largest message the shard takes, compressed or inflated; a larger one ends the
    #: connection (the transport closes with 1009, or the shard with 4000) and the shard resumes.
    max_message: int = MAX_MESSAGE_BYTES
    #: A controller's change of the IDENTIFY (``d`` without the token), when it has one.
    start_hook: StartHook | None = None


class PartConfig(msgspec.Struct, kw_only=True):
    """What every worker's Discord part carries (``PlatformPart.config``, msgpack). Holds the token."""

    token: str
    gateway_url: str
    intents: int
    compression: str
    large_threshold: int
    #: Keep what rebuilds a bot's view of each session (``state_cache``; see ``state.py``), and
    #: how many structural events a guild's log holds before it is folded into its GUILD_CREATE.
    state_cache: bool = False
    state_cache_log: int = 64
    #: Handshakes in flight per worker (its shards share one connect gate).
    connect_concurrency: int = CONNECT_CONCURRENCY

    def __repr__(self) -> str:  # never show the token
        return f"PartConfig(gateway_url={self.gateway_url!r}, intents={self.intents})"

    def encode(self) -> bytes:
        return msgspec.msgpack.encode(self)

    @classmethod
    def decode(cls, data: bytes) -> PartConfig:
        return msgspec.msgpack.decode(data, type=cls)

    def options(self) -> ShardOptions:
        return ShardOptions(
            token=self.token,
            intents=self.intents,
            compression=Compression(self.compression),
            large_threshold=self.large_threshold,
        )
