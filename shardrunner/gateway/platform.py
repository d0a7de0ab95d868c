"""Where a platform plugs in: what the supervisor and the worker ask of it.

A platform's package provides two objects. :class:`PlatformPlan` is the supervisor's: made once at
start by the platform's discovery (Discord: ``GET /gateway/bot``), it names the connections to run,
the limits their starts count against, and the opaque config each worker's part carries.
:class:`Platform` is the worker's: it builds the connections of a part and maps a routing key to
the connection that owns it. Platforms are found by name in :data:`PLATFORMS`, imported on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

from shardrunner.gateway.connection import GatewayConnection, Sink, StartHook
from shardrunner.identify.budget import Budgets
from shardrunner.identify.protocol import IdentifyQueue, StartLimit
from shardrunner.protocol.envelope import Event, RoutingKey, SessionSnapshot
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


@dataclass(frozen=True, slots=True)
class ResizePolicy:
    """How the supervisor runs a platform's resizes (a reshard, on Discord)."""

    #: Resize on its own when the platform says one is due (:meth:`ResizablePlan.propose` ``auto``).
    auto: bool = False
    #: Seconds between two checks of whether a resize is due.
    check_every: float = 300.0
    #: Seconds each step of the switch lasts (the margin for one set lagging the other).
    overlap: float = 1.0
    #: Seconds the new set may take to be ready before the resize is aborted (0: twice the start
    #: limit's ideal time for the new set, plus five minutes).
    timeout: float = 0.0
    #: Seconds the old set's workers keep what durable groups have not acknowledged, after the switch.
    drain: float = 600.0


@dataclass(frozen=True, slots=True)
class Resize:
    """A resize of one platform's connection set as the platform judges it: the plan that
    ``shardrunner reshard --dry-run`` prints, refused (``refused`` says why) or not."""

    platform: str
    #: Connections in the set now, and in the new set.
    current: int
    count: int
    #: Routing keys the set serves now, and how many one connection may serve.
    keys: int
    capacity: int
    #: keys / (connections x capacity), now and with the new count.
    fill: float
    new_fill: float
    #: New sessions the new set needs, the platform's budget of them, and what is kept back.
    starts_needed: int
    starts_remaining: int
    reserve: int
    #: Seconds the platform's start limit needs at best to start the new set.
    seconds: float
    #: Why this count (one sentence).
    reason: str
    #: One sentence when the resize cannot be done, else None.
    refused: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class ResizablePlan(PlatformPlan, Protocol):
    """A plan whose connection set can be replaced by a set of another size while it runs."""

    #: The set's generation (``ConnKey.generation``); a resize's new set is the next one.
    generation: int
    policy: ResizePolicy

    def resize(self, count: int, generation: int | None = None) -> ResizablePlan:
        """The plan of a set of ``count`` connections (generation: the next one unless given)."""

    async def refresh(self) -> None:
        """Ask the platform again what it recommends and allows (raises :class:`PlatformError`)."""

    def propose(self, count: int | None, keys: int, *, auto: bool = False) -> Resize | None:
        """The resize to ``count`` connections (None: the count the platform would choose) for a set
        serving ``keys`` routing keys. With ``auto``, None when no resize is due."""


@runtime_checkable
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
        budgets: Budgets | None = None,
    ) -> list[GatewayConnection]:
        """The connections of one part, resuming the given sessions where they fit. ``identify`` is
        the cluster's identify queue, ``budgets`` its budgets per key (Twitch's JOINs and logins)."""

    def owner(self, key: RoutingKey, conns: list[ConnKey]) -> ConnKey | None:
        """The connection among ``conns`` that owns routing key ``key``."""


@runtime_checkable
class Reconfigurable(Platform, Protocol):
    """A platform whose part config can change while its connections run (Twitch: channels added
    or removed)."""

    def reconfigure(self, config: bytes, running: Mapping[ConnKey, GatewayConnection]) -> None:
        """Apply the part's new ``config`` to its running connections."""


@runtime_checkable
class StatefulPlatform(Platform, Protocol):
    """A platform that can say what rebuilds a consumer's view of a connection (Discord, with
    ``state_cache``): a bot that starts late fetches it (``Client.fetch_state``)."""

    def state_events(self, conn: ConnKey) -> list[Event]:
        """The events that rebuild a consumer's view of this connection's session, in order."""

    def state_mark(self, conn: ConnKey) -> tuple[str, int] | None:
        """The ``(session, seq)`` those events reflect: every event of it up to that seq
        (``("", 0)``: kept, but no session start seen; None: this connection keeps no state)."""


@runtime_checkable
class Startable(Platform, Protocol):
    """A platform whose connections let a controller change what they send to start (Discord's
    IDENTIFY, Twitch's login): the worker sets :attr:`start_hook` before any build."""

    start_hook: StartHook | None


@runtime_checkable
class KeyedPlan(PlatformPlan, Protocol):
    """A plan whose routing keys are configured, and can be added or removed while it runs (Twitch:
    its channels), without a new connection set."""

    version: int

    def channels(self) -> list[str]:
        """The routing keys served now."""

    def restore(
        self, added: Iterable[str], removed: Iterable[str], rates: dict[str, float] | None = None
    ) -> None:
        """Apply the changes kept from an earlier run, before any connection starts, and the keys'
        traffic measured then (lines per second)."""

    def add_channels(self, names: Iterable[str]) -> dict[str, Any]:
        """Serve these keys too (PlatformError, changing nothing, when they cannot be placed)."""

    def remove_channels(self, names: Iterable[str]) -> dict[str, Any]:
        """Stop serving these keys."""


#: Platform name -> ``module:attribute`` of its :class:`Platform` factory (called with no arguments).
PLATFORMS: Mapping[str, str] = {
    "discord": "shardrunner.gateway.discord.platform:DiscordPlatform",
    "twitch": "shardrunner.gateway.twitch.platform:TwitchPlatform",
}


#: Platform name -> ``module:attribute`` of its discovery: ``async (settings) -> PlatformPlan``,
#: reading its own section of the settings (the supervisor's side).
DISCOVERIES: Mapping[str, str] = {
    "discord": "shardrunner.gateway.discord.platform:discover_from",
    "twitch": "shardrunner.gateway.twitch.discovery:discover_from",
}


class DetailMetrics(Protocol):
    """A platform's metric families from its connections' ``describe()`` (``ConnReport.detail``):
    made once per scrape of the supervisor's metrics (docs/metrics.md), fed every connection's
    labels (generation, shard) and detail, then asked for its families (prometheus_client's)."""

    def add(self, labels: list[str], detail: dict[str, Any]) -> None: ...
    def families(self) -> Iterable[Any]: ...


#: Platform name -> ``module:attribute`` of its :class:`DetailMetrics` factory, for the platforms
#: whose details are worth metrics of their own.
DETAIL_METRICS: Mapping[str, str] = {
    "twitch": "shardrunner.gateway.twitch.metrics:TwitchMetrics",
}


def detail_metrics() -> dict[str, DetailMetrics]:
    """A fresh :class:`DetailMetrics` of every platform that has one."""
    out = {}
    for name, target in DETAIL_METRICS.items():
        module, _, attr = target.partition(":")
        out[name] = getattr(importlib.import_module(module), attr)()
    return out


def range_sizes(count: int, workers: int) -> list[int]:
    """How the cluster spreads a platform's ``count`` connections on ``workers``: consecutive ranges
    of these sizes, in order (10 on 3 -> 4, 3, 3; never more ranges than connections, at least one).
    A plan may order its connections for where they land (:func:`shardrunner.cluster.plan.plan`)."""
    workers = max(1, min(workers, count))
    base, extra = divmod(count, workers)
    return [base + (1 if i < extra else 0) for i in range(workers)]


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
