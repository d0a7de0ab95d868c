"""Where a platform plugs in: what the supervisor and the worker ask of it.

A platform's package provides two objects. :class:`PlatformPlan` is the supervisor's: made once at
start by the platform's discovery (Discord: ``GET /gateway/bot``), it names the connections to run,
the limits their starts count against, and the opaque config each worker's part carries.
:class:`Platform` is the worker's: it builds the connections of a part and maps a routing key to
the connection that owns it. Platforms are found by name in :data:`PLATFORMS`, imported on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, Protocol

from shardrunner.gateway.connection import GatewayConnection, Sink
from shardrunner.identify.protocol import IdentifyQueue, StartLimit
from shardrunner.protocol.envelope import RoutingKey, SessionSnapshot
from shardrunner.protocol.keys import ConnKey


class PlatformError(RuntimeError):
    """The platform cannot be started as asked; the message is one sentence for the user."""


class PlatformPlan(Protocol):
    """One platform as the supervisor runs it."""

    name: str
    #: The connections to run (one set now; a reshard adds a second).
    conns: list[ConnKey]
    limits: list[StartLimit]

    def bucket_of(self, conn: ConnKey) -> tuple[str, int]:
        """The limit and bucket ``conn``'s identify counts against."""

    def part_config(self) -> bytes:
        """The config every worker's part of this platform carries (it may hold the token)."""

    def check_starts(self, to_identify: int) -> None:
        """Raise :class:`PlatformError` if the platform will not allow ``to_identify`` new sessions."""

    def describe(self) -> dict[str, Any]:
        """What ``status`` shows of the platform (never a secret)."""


class Platform(Protocol):
    """One platform as a worker runs it."""

    name: str

    def build(
        self,
        conns: list[ConnKey],
        config: bytes,
        snapshots: Mapping[ConnKey, SessionSnapshot],
        sink: Sink,
        identify: IdentifyQueue,
    ) -> list[GatewayConnection]:
        """The connections of one part, resuming the given sessions where they fit."""

    def owner(self, key: RoutingKey, conns: list[ConnKey]) -> ConnKey | None:
        """The connection among ``conns`` that owns routing key ``key``."""


#: Platform name -> ``module:attribute`` of its :class:`Platform` factory (called with no arguments).
PLATFORMS: Mapping[str, str] = {"discord": "shardrunner.gateway.discord.platform:DiscordPlatform"}


#: Platform name -> ``module:attribute`` of its discovery: ``async (settings) -> PlatformPlan``,
#: reading its own section of the settings (the supervisor's side).
DISCOVERIES: Mapping[str, str] = {"discord": "shardrunner.gateway.discord.platform:discover_from"}


def import_platforms() -> None:
    """Import every platform's module now (a worker does before it freezes its start-up objects out
    of the garbage collector: imported later, at the first assignment, they would be walked by every
    full collection)."""
    for target in PLATFORMS.values():
        importlib.import_module(target.partition(":")[0])


def load_platform(name: str) -> Platform:
    """The worker's :class:`Platform` object for ``name`` (ValueError for an unknown one)."""
    target = PLATFORMS.get(name)
    if target is None:
        raise ValueError(f"unknown platform {name!r}; known: {', '.join(sorted(PLATFORMS))}")
    module, _, attr = target.partition(":")
    factory = getattr(importlib.import_module(module), attr)
    platform: Platform = factory()
    return platform
