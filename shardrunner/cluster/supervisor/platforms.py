"""How the supervisor gets its platform plans: each platform's discovery, behind a seam.

Each platform's discovery is named in :data:`shardrunner.gateway.platform.DISCOVERIES` and imported
by name when a cluster starts (Discord's asks ``GET /gateway/bot`` for the shard count, the gateway
URL and the start limits), so that tests can give the supervisor plans without it, and the
supervisor knows no platform's settings.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from shardrunner.gateway.platform import DISCOVERIES, PlatformPlan
from shardrunner.settings.values import Settings, enabled_platforms

if TYPE_CHECKING:
    from shardrunner.cluster.supervisor.model import SupervisorSettings

#: Makes the plans of one cluster from its settings (raises PlatformError with one sentence).
Discover = Callable[["SupervisorSettings"], Awaitable[list[PlatformPlan]]]


async def discover_platforms(settings: SupervisorSettings) -> list[PlatformPlan]:
    """The plan of every platform the cluster runs (``--platforms``; see
    :func:`shardrunner.settings.values.enabled_platforms`), each made by the platform's own discovery
    from its section of the settings."""
    plans = []
    names = enabled_platforms(settings) if isinstance(settings, Settings) else ("discord",)
    for name in names:
        target = DISCOVERIES[name]
        module, _, attr = target.partition(":")
        discover = getattr(importlib.import_module(module), attr)
        plan: PlatformPlan = await discover(settings)
        plans.append(plan)
    return plans
