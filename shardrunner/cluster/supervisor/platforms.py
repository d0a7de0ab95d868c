"""How the supervisor gets its platform plans: each platform's discovery, behind a seam.

Discord's discovery (``shardrunner.gateway.discord.platform.discover``) asks
``GET /gateway/bot`` for the shard count, the gateway URL and the start limits. It is imported by
name when a cluster starts, so that tests (and the layering) can give the supervisor plans without
it.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from shardrunner.gateway.platform import PlatformPlan

if TYPE_CHECKING:
    from shardrunner.cluster.supervisor.model import SupervisorSettings

#: Makes the plans of one cluster from its settings (raises PlatformError with one sentence).
Discover = Callable[["SupervisorSettings"], Awaitable[list[PlatformPlan]]]

DISCORD_DISCOVERY = "shardrunner.gateway.discord.platform"


async def discover_platforms(settings: SupervisorSettings) -> list[PlatformPlan]:
    """The plans of every platform the settings run (Discord, for now)."""
    discover = importlib.import_module(DISCORD_DISCOVERY).discover
    compression = settings.compression
    plan: PlatformPlan = await discover(
        api_url=settings.api_url,
        token=settings.token or "",
        shards=settings.shards,
        max_concurrency=settings.max_concurrency,
        identify_window=settings.identify_window,
        intents=settings.intents,
        compression=str(getattr(compression, "value", compression)),
        large_threshold=settings.large_threshold,
    )
    return [plan]
