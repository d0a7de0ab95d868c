"""Discord as the cluster runs it: discovery and the plan (supervisor side), the platform (worker side).

:func:`discover` asks ``GET /gateway/bot`` once at start and returns a :class:`DiscordPlan`: the
shard set to run as :class:`~shardrunner.protocol.keys.ConnKey`\\ s, Discord's identify limit
(``max_concurrency`` buckets of ``identify_window`` seconds for the whole token, whatever the shard
set), and the part config every worker gets. :class:`DiscordPlatform` builds a worker's shards from
its part and maps a guild id to the shard that owns it (:func:`shardrunner.protocol.routing.owner`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal, Protocol

from shardrunner.gateway.connection import GatewayConnection, Sink
from shardrunner.gateway.discord.options import PartConfig
from shardrunner.gateway.discord.rest import SessionStartLimit, fetch_gateway_bot
from shardrunner.gateway.discord.shard import DiscordShard
from shardrunner.gateway.platform import PlatformError
from shardrunner.identify.protocol import IdentifyQueue, StartLimit
from shardrunner.protocol import routing
from shardrunner.protocol.envelope import RoutingKey, SessionSnapshot
from shardrunner.protocol.keys import ConnKey

log = logging.getLogger("shardrunner.discord")

NAME = "discord"
IDENTIFY_LIMIT = "discord.identify"


class DiscordPlan:
    """One Discord shard set as the supervisor runs it: a :class:`~shardrunner.gateway.platform.PlatformPlan`.

    Never shows the token: it lives only in :meth:`part_config`'s bytes.
    """

    name = NAME

    def __init__(
        self,
        *,
        token: str,
        gateway_url: str,
        num_shards: int,
        max_concurrency: int,
        identify_window: float,
        session_start_limit: SessionStartLimit,
        intents: int,
        compression: str,
        large_threshold: int,
        generation: int = 0,
    ) -> None:
        if num_shards < 1:
            raise PlatformError(f"the shard count must be at least 1, not {num_shards}")
        if max_concurrency < 1:
            raise PlatformError(f"max_concurrency must be at least 1, not {max_concurrency}")
        self.gateway_url = gateway_url
        self.num_shards = num_shards
        self.max_concurrency = max_concurrency
        self.identify_window = identify_window
        self.session_start_limit = session_start_limit
        self.generation = generation
        self.conns = [ConnKey(NAME, generation, shard, num_shards) for shard in range(num_shards)]
        self.limits = [StartLimit(IDENTIFY_LIMIT, max_concurrency, identify_window)]
        self._config = PartConfig(
            token=token,
            gateway_url=gateway_url,
            intents=intents,
            compression=compression,
            large_threshold=large_threshold,
        )

    def __repr__(self) -> str:
        return f"DiscordPlan({self.num_shards} shards, max_concurrency {self.max_concurrency})"

    def bucket_of(self, conn: ConnKey) -> tuple[str, int]:
        # One bucket per shard % max_concurrency for the whole token: two shard sets share them.
        return (IDENTIFY_LIMIT, conn.shard % self.max_concurrency)

    def part_config(self) -> bytes:
        return self._config.encode()

    def check_starts(self, to_identify: int) -> None:
        limit = self.session_start_limit
        remaining = limit.remaining
        if remaining < to_identify:
            raise PlatformError(
                f"Discord allows {remaining} more session starts today (session_start_limit.remaining) but "
                f"{to_identify} shards must identify; "
                f"wait {limit.reset_after // 1000} s "
                "for the limit to reset, or start fewer shards"
            )
        if remaining < 2 * to_identify or remaining < limit.total // 10:
            log.warning(
                "only %d session starts left today (of %d); %d shards will identify now",
                remaining,
                limit.total,
                to_identify,
            )

    def describe(self) -> dict[str, Any]:
        return {
            "gateway_url": self.gateway_url,
            "num_shards": self.num_shards,
            "max_concurrency": self.max_concurrency,
            "identify_window": self.identify_window,
            "generation": self.generation,
            "session_starts_remaining": self.session_start_limit.remaining,
            "session_starts_total": self.session_start_limit.total,
        }


class DiscordSettings(Protocol):
    """The settings Discord's discovery reads (the ``discord`` section of shardrunner's settings)."""

    api_url: str
    token: str | None
    shards: int | Literal["auto"]
    max_concurrency: int | None
    identify_window: float
    intents: int
    compression: Any  # a Compression, or its value
    large_threshold: int


async def discover_from(settings: DiscordSettings) -> DiscordPlan:
    """:func:`discover` with the values of the settings' ``discord`` section."""
    compression = settings.compression
    return await discover(
        api_url=settings.api_url,
        token=settings.token or "",
        shards=settings.shards,
        max_concurrency=settings.max_concurrency,
        identify_window=settings.identify_window,
        intents=settings.intents,
        compression=str(getattr(compression, "value", compression)),
        large_threshold=settings.large_threshold,
    )


async def discover(
    *,
    api_url: str,
    token: str,
    shards: int | Literal["auto"],
    max_concurrency: int | None,
    identify_window: float,
    intents: int,
    compression: str,
    large_threshold: int,
    generation: int = 0,
) -> DiscordPlan:
    """The plan for this token: ``GET /gateway/bot``, then the shard count and limits as configured.

    Raises :class:`~shardrunner.gateway.platform.PlatformError` (one sentence) when Discord cannot
    be asked or refuses the token.
    """
    gateway = await fetch_gateway_bot(api_url, token)
    return DiscordPlan(
        token=token,
        gateway_url=gateway.url,
        num_shards=gateway.shards if shards == "auto" else int(shards),
        max_concurrency=max_concurrency or gateway.session_start_limit.max_concurrency,
        identify_window=identify_window,
        session_start_limit=gateway.session_start_limit,
        intents=intents,
        compression=compression,
        large_threshold=large_threshold,
        generation=generation,
    )


class DiscordPlatform:
    """Discord as a worker runs it (a :class:`~shardrunner.gateway.platform.Platform`)."""

    name = NAME

    def build(
        self,
        conns: list[ConnKey],
        config: bytes,
        snapshots: Mapping[ConnKey, SessionSnapshot],
        sink: Sink,
        identify: IdentifyQueue,
    ) -> list[GatewayConnection]:
        part = PartConfig.decode(config)
        options = part.options()
        return [
            DiscordShard(
                conn,
                options,
                sink,
                gateway_url=part.gateway_url,
                identify_queue=identify,
                snapshot=snapshots.get(conn),
            )
            for conn in conns
        ]

    def owner(self, key: RoutingKey, conns: list[ConnKey]) -> ConnKey | None:
        return routing.owner(NAME, key, conns)
