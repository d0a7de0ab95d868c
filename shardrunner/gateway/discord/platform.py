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

from shardrunner.gateway.connection import GatewayConnection, Sink, StartHook
from shardrunner.gateway.discord.options import PartConfig
from shardrunner.gateway.discord.resize import DiscordRules, propose
from shardrunner.gateway.discord.rest import SessionStartLimit, fetch_gateway_bot
from shardrunner.gateway.discord.shard import DiscordShard
from shardrunner.gateway.discord.state import StateCache
from shardrunner.gateway.gate import ConnectGate
from shardrunner.gateway.platform import PlatformError, Resize, ResizePolicy
from shardrunner.identify.budget import Budgets
from shardrunner.identify.protocol import IdentifyQueue, StartLimit
from shardrunner.protocol import routing
from shardrunner.protocol.discord import CONNECT_CONCURRENCY, IDENTIFY_LEAD_S
from shardrunner.protocol.envelope import Event, RoutingKey, SessionSnapshot
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
        api_url: str = "",
        recommended: int | None = None,
        rules: DiscordRules | None = None,
        policy: ResizePolicy | None = None,
        auto_count: bool = False,
        state_cache: bool = False,
        state_cache_log: int = 64,
        identify_lead: float = IDENTIFY_LEAD_S,
        connect_concurrency: int = CONNECT_CONCURRENCY,
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
        self.api_url = api_url
        #: ``/gateway/bot``'s shard count at the last ask.
        self.recommended = num_shards if recommended is None else recommended
        self.rules = rules or DiscordRules()
        self.policy = policy or ResizePolicy()
        #: The count came from Discord (``--shards auto``), not from the settings.
        self.auto_count = auto_count
        self.conns = [ConnKey(NAME, generation, shard, num_shards) for shard in range(num_shards)]
        self.identify_lead = identify_lead
        self.limits = [StartLimit(IDENTIFY_LIMIT, max_concurrency, identify_window, identify_lead)]
        self._token = token
        self._config = PartConfig(
            token=token,
            gateway_url=gateway_url,
            intents=intents,
            compression=compression,
            large_threshold=large_threshold,
            state_cache=state_cache,
            state_cache_log=state_cache_log,
            connect_concurrency=connect_concurrency,
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

    # -- resharding (a ResizablePlan) ------------------------------------------------------------
    def resize(self, count: int, generation: int | None = None) -> DiscordPlan:
        config = self._config
        return DiscordPlan(
            token=self._token,
            gateway_url=self.gateway_url,
            num_shards=count,
            max_concurrency=self.max_concurrency,
            identify_window=self.identify_window,
            session_start_limit=self.session_start_limit,
            intents=config.intents,
            compression=config.compression,
            large_threshold=config.large_threshold,
            generation=self.generation + 1 if generation is None else generation,
            api_url=self.api_url,
            recommended=self.recommended,
            rules=self.rules,
            policy=self.policy,
            auto_count=self.auto_count,
            state_cache=config.state_cache,
            state_cache_log=config.state_cache_log,
            identify_lead=self.identify_lead,
            connect_concurrency=config.connect_concurrency,
        )

    async def refresh(self) -> None:
        if not self.api_url:
            return
        gateway = await fetch_gateway_bot(self.api_url, self._token)
        self.recommended = gateway.shards
        self.session_start_limit = gateway.session_start_limit

    def propose(self, count: int | None, keys: int, *, auto: bool = False) -> Resize | None:
        limit = self.session_start_limit
        return propose(
            rules=self.rules,
            current=self.num_shards,
            requested=count,
            recommended=self.recommended,
            guilds=keys,
            max_concurrency=self.max_concurrency,
            identify_window=self.identify_window,
            remaining=limit.remaining,
            reset_after_ms=limit.reset_after,
            auto=auto,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "gateway_url": self.gateway_url,
            "num_shards": self.num_shards,
            "max_concurrency": self.max_concurrency,
            "identify_window": self.identify_window,
            "generation": self.generation,
            "recommended_shards": self.recommended,
            "max_guilds_per_shard": self.rules.capacity,
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
    auto_reshard: bool
    reshard_at: float
    reshard_target: float
    reshard_check: float
    reshard_reserve: int
    reshard_overlap: float
    reshard_timeout: float
    reshard_drain: float
    max_guilds_per_shard: int
    state_cache: bool
    state_cache_log: int
    identify_lead: float
    connect_concurrency: int


async def discover_from(settings: DiscordSettings) -> DiscordPlan:
    """:func:`discover` with the values of the settings' ``discord`` section."""
    compression = settings.compression
    if settings.reshard_target >= settings.reshard_at:
        raise PlatformError(
            f"--reshard-target ({settings.reshard_target:g}) must be below --reshard-at "
            f"({settings.reshard_at:g}): a reshard must bring the fill down"
        )
    rules = DiscordRules(
        reshard_at=settings.reshard_at,
        target=settings.reshard_target,
        reserve=settings.reshard_reserve,
        capacity=settings.max_guilds_per_shard,
    )
    policy = ResizePolicy(
        auto=settings.auto_reshard,
        check_every=settings.reshard_check,
        overlap=settings.reshard_overlap,
        timeout=settings.reshard_timeout,
        drain=settings.reshard_drain,
    )
    return await discover(
        api_url=settings.api_url,
        token=settings.token or "",
        shards=settings.shards,
        max_concurrency=settings.max_concurrency,
        identify_window=settings.identify_window,
        intents=settings.intents,
        compression=str(getattr(compression, "value", compression)),
        large_threshold=settings.large_threshold,
        rules=rules,
        policy=policy,
        state_cache=settings.state_cache,
        state_cache_log=settings.state_cache_log,
        identify_lead=settings.identify_lead,
        connect_concurrency=settings.connect_concurrency,
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
    rules: DiscordRules | None = None,
    policy: ResizePolicy | None = None,
    state_cache: bool = False,
    state_cache_log: int = 64,
    identify_lead: float = IDENTIFY_LEAD_S,
    connect_concurrency: int = CONNECT_CONCURRENCY,
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
        api_url=api_url,
        recommended=gateway.shards,
        rules=rules,
        policy=policy,
        auto_count=shards == "auto",
        state_cache=state_cache,
        state_cache_log=state_cache_log,
        identify_lead=identify_lead,
        connect_concurrency=connect_concurrency,
    )


class DiscordPlatform:
    """Discord as a worker runs it (a :class:`~shardrunner.gateway.platform.Platform`)."""

    name = NAME
    #: A controller's change of the IDENTIFY (set by the worker; see ``Startable``).
    start_hook: StartHook | None = None

    def __init__(self) -> None:
        #: The worker's handshakes in flight (every shard of the process shares it).
        self.gate = ConnectGate(CONNECT_CONCURRENCY)
        #: Each connection's state cache (``state_cache`` on): kept here, not in the shard, so a
        #: shard rebuilt after a crash (it resumes) keeps it.
        self.caches: dict[ConnKey, StateCache] = {}

    def build(
        self,
        conns: list[ConnKey],
        config: bytes,
        snapshots: Mapping[ConnKey, SessionSnapshot],
        sink: Sink,
        identify: IdentifyQueue,
        budgets: Budgets | None = None,
    ) -> list[GatewayConnection]:
        part = PartConfig.decode(config)
        options = part.options()
        options.start_hook = self.start_hook
        self.gate.resize(part.connect_concurrency)
        return [
            DiscordShard(
                conn,
                options,
                self._cached(conn, sink, part.state_cache_log) if part.state_cache else sink,
                gateway_url=part.gateway_url,
                identify_queue=identify,
                connect_gate=self.gate,
                snapshot=snapshots.get(conn),
            )
            for conn in conns
        ]

    def owner(self, key: RoutingKey, conns: list[ConnKey]) -> ConnKey | None:
        return routing.owner(NAME, key, conns)

    def _cached(self, conn: ConnKey, sink: Sink, max_log: int) -> Sink:
        cache = self.caches.get(conn)
        if cache is None:
            cache = self.caches[conn] = StateCache(conn, max_log)
        observe = cache.observe

        def cached_sink(event: Event) -> None:
            sink(event)
            observe(event)  # after the bus took it: the cache never holds what was not delivered

        return cached_sink

    def state_events(self, conn: ConnKey) -> list[Event]:
        """READY, each guild's GUILD_CREATE, then the structural events since (empty: no cache)."""
        cache = self.caches.get(conn)
        return [] if cache is None else cache.events()

    def state_mark(self, conn: ConnKey) -> tuple[str, int] | None:
        """The ``(session, seq)`` :meth:`state_events` reflects (None: no cache, state_cache off)."""
        cache = self.caches.get(conn)
        return None if cache is None else cache.mark()
