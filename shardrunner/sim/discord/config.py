"""Settings of the Discord gateway simulator, validated once at start-up.

The command line, environment (``SHARDRUNNER_SIM_*``) and config file of ``shardrunner sim discord``
are the ``sim.discord`` section of the settings registry (:mod:`shardrunner.settings.sim`);
:func:`sim_config` turns what it resolved into a :class:`SimConfig`, parsing the settings whose format
is the simulator's own (``rate``, ``mix``, ``faults``, ``privileged_intents``, ``replay_compress``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from shardrunner.protocol.compression import Compression
from shardrunner.protocol.discord import (
    IDENTIFY_WINDOW_S,
    MAX_GUILDS_PER_SHARD,
    PRIVILEGED_INTENT_BITS,
    PRIVILEGED_INTENTS,
)
from shardrunner.settings import SIM_DISCORD_SECTIONS, Resolved, resolve
from shardrunner.sim.discord.wsframe import sendable_close_code

#: Faults the simulator can inject (``POST /_sim/fault`` and ``--faults``).
FAULT_KINDS: Final = ("reconnect", "invalid_session", "drop", "close", "zombie", "stall", "garbage")


class ConfigError(ValueError):
    """A setting is invalid; the message is one sentence naming it."""


def parse_mix(text: str) -> dict[str, float]:
    """Parse ``NAME=WEIGHT,NAME=WEIGHT`` into a dispatch mix."""
    mix: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, weight = part.partition("=")
        try:
            value = float(weight) if sep else 1.0
        except ValueError:
            raise ConfigError(f"--mix: weight of {name!r} is not a number: {weight!r}") from None
        if value < 0:
            raise ConfigError(f"--mix: weight of {name!r} must not be negative")
        mix[name.strip().upper()] = value
    return mix


@dataclass(slots=True)
class SimConfig:
    """Everything ``shardrunner sim discord`` can be told; see docs/simulator.md for each setting."""

    host: str = "127.0.0.1"
    port: int = 8900
    #: The bot's recommended shard count; guilds are laid out so that each of these shards gets
    #: ``guilds_per_shard`` of them. Clients may still connect with any other shard count.
    shards: int = 2
    guilds_per_shard: int = 10
    min_members: int = 2
    max_members: int = 1000
    #: Dispatches per second per shard (0 stops the stream).
    rate: float = 10.0
    #: Seconds between two ticks of the dispatch generator (and of a paced replay).
    tick: float = 0.01
    #: Record when each batch of dispatches was written (``GET /_sim/sends``), for latency figures.
    record_sends: bool = False
    mix: dict[str, float] = field(default_factory=dict)
    #: Share of DM-capable dispatches that happen in direct messages (they go to shard 0).
    dm_ratio: float = 0.02
    max_concurrency: int = 1
    identify_window: float = IDENTIFY_WINDOW_S
    session_start_total: int = 1000
    session_start_remaining: int | None = None
    session_start_reset_after: float = 86400.0
    heartbeat_interval_ms: int = 41250
    #: Every this many seconds the gateway asks a connection for a heartbeat (op 1); 0 never.
    #: Off by default: an op 1 request answered resets the heartbeat timeout, so frequent requests
    #: would keep alive a client that never heartbeats on its own (Discord sends op 1 rarely).
    heartbeat_request_interval: float = 0.0
    #: A connection that sends no heartbeat for ``interval * factor`` is closed with 4009.
    heartbeat_timeout_factor: float = 1.5
    resume_window: float = 180.0
    replay_buffer: int = 10000
    #: When set, only this exact token is accepted; otherwise any well-formed bot token is.
    token: str | None = None
    #: Advertised ``resume_gateway_url``; defaults to this server.
    resume_gateway_url: str | None = None
    #: Advertised gateway URL (``/gateway``, ``/gateway/bot``); defaults to this server.
    gateway_url: str | None = None
    seed: int = 1
    #: Random faults per connection per minute (0: none) and the kinds drawn from.
    fault_rate: float = 0.0
    faults: tuple[str, ...] = FAULT_KINDS
    #: Replay mode: this many dispatches per shard, compressed ahead of time (0: live mode).
    replay: int = 0
    replay_compress: tuple[Compression, ...] = (Compression.ZLIB_STREAM,)
    replay_segment: int = 256
    #: The privileged intents the application has enabled (requesting others closes 4014).
    privileged_intents: int = PRIVILEGED_INTENTS
    #: An IDENTIFY whose shard would hold more guilds than this is closed with 4011.
    max_guilds_per_shard: int = MAX_GUILDS_PER_SHARD
    #: ``/gateway/bot`` recommends one shard per this many guilds (never fewer than ``shards``).
    recommend_per: int = 1000
    #: Shard counts must be a multiple of this (when above 1): another count closes 4010, and the
    #: recommended count is rounded up to it.
    shard_multiple: int = 1
    #: Guilds that join per second while the simulator runs (0: none).
    guild_growth: float = 0.0
    #: Record the dispatch id of every seq of every live session (``GET /_sim/dispatches``).
    track_dispatches: bool = False
    #: IDENTIFYs with one of these ``num_shards`` are refused: op 9 false when ``refuse_code`` is
    #: 0, otherwise a close with that code.
    refuse_shard_counts: tuple[int, ...] = ()
    refuse_code: int = 0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid setting."""
        checks: list[tuple[bool, str]] = [
            (0 <= self.port <= 65535, "--port must be between 0 and 65535"),
            (self.shards >= 1, "--shards must be at least 1"),
            (self.guilds_per_shard >= 0, "--guilds-per-shard must not be negative"),
            (
                self.guilds_per_shard <= MAX_GUILDS_PER_SHARD * 4,
                f"--guilds-per-shard above {MAX_GUILDS_PER_SHARD * 4} is not supported",
            ),
            (self.min_members >= 1, "--min-members must be at least 1 (the bot is a member)"),
            (self.max_members >= self.min_members, "--max-members must be at least --min-members"),
            (self.max_members <= 250_000, "--max-members above 250000 is not supported"),
            (self.rate >= 0, "--rate must not be negative"),
            (0.0005 <= self.tick <= 1, "--tick must be between 0.0005 and 1 second"),
            (0 <= self.dm_ratio <= 1, "--dm-ratio must be between 0 and 1"),
            (self.max_concurrency >= 1, "--max-concurrency must be at least 1"),
            (self.identify_window >= 0, "--identify-window must not be negative"),
            (self.session_start_total >= 0, "--session-start-total must not be negative"),
            (
                self.session_start_remaining is None
                or 0 <= self.session_start_remaining <= self.session_start_total,
                "--session-start-remaining must be between 0 and --session-start-total",
            ),
            (self.session_start_reset_after > 0, "--session-start-reset-after must be positive"),
            (self.heartbeat_interval_ms >= 10, "--heartbeat-interval must be at least 10 ms"),
            (self.heartbeat_request_interval >= 0, "--heartbeat-request-interval must not be negative"),
            (self.heartbeat_timeout_factor >= 1, "--heartbeat-timeout-factor must be at least 1"),
            (self.resume_window >= 0, "--resume-window must not be negative"),
            (self.replay_buffer >= 1, "--replay-buffer must be at least 1"),
            (self.fault_rate >= 0, "--fault-rate must not be negative"),
            (self.replay >= 0, "--replay must not be negative"),
            (self.replay_segment >= 1, "--replay-segment must be at least 1"),
            (self.max_guilds_per_shard >= 1, "--max-guilds-per-shard must be at least 1"),
            (self.recommend_per >= 1, "--recommend-per must be at least 1"),
            (self.shard_multiple >= 1, "--shard-multiple must be at least 1"),
            (self.guild_growth >= 0, "--guild-growth must not be negative"),
            (all(n >= 1 for n in self.refuse_shard_counts), "--refuse-shard-counts must be at least 1 each"),
            (
                self.refuse_code == 0 or sendable_close_code(self.refuse_code),
                "--refuse-code must be 0 (op 9) or a code a close frame can carry (1000-4999 but 1004, "
                "1005, 1006 and 1015)",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        unknown = [k for k in self.faults if k not in FAULT_KINDS]
        if unknown:
            raise ConfigError(f"--faults: unknown kind {unknown[0]!r} (known: {', '.join(FAULT_KINDS)})")
        if self.fault_rate > 0 and not self.faults:
            raise ConfigError("--faults must name at least one kind when --fault-rate is set")
        if any(w < 0 for w in self.mix.values()):
            raise ConfigError("--mix weights must not be negative")
        if self.mix and sum(self.mix.values()) <= 0:
            raise ConfigError("--mix needs at least one positive weight")

    @property
    def starts_remaining(self) -> int:
        return (
            self.session_start_total if self.session_start_remaining is None else self.session_start_remaining
        )

    def replace(self, **changes: object) -> SimConfig:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


#: The environment variable that names the simulator's config file when ``--config`` is not given.
CONFIG_ENV: Final = "SHARDRUNNER_SIM_CONFIG"


def parse_privileged(text: str) -> int:
    """``members,presences`` (or ``none``) as intent bits."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if names == ["none"]:
        return 0
    unknown = [n for n in names if n not in PRIVILEGED_INTENT_BITS]
    if unknown:
        known = ", ".join([*PRIVILEGED_INTENT_BITS, "none"])
        raise ConfigError(f"--privileged-intents: {unknown[0]!r} is not one of {known}")
    return sum(PRIVILEGED_INTENT_BITS[n] for n in set(names))


def parse_rate(text: str) -> float:
    """Dispatches per second, or ``max`` (infinity)."""
    if text.strip().lower() in ("max", "inf", "unlimited"):
        return math.inf
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"--rate: {text!r} is not a number or 'max'") from None


def parse_compressions(text: str) -> tuple[Compression, ...]:
    """``zlib-stream,none`` as compressions."""
    try:
        return tuple(Compression.from_query(c.strip()) for c in text.split(",") if c.strip())
    except ValueError as exc:
        raise ConfigError(f"--replay-compress: {exc}") from None


def parse_counts(text: str) -> tuple[int, ...]:
    """``8,16`` as shard counts."""
    counts = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        if not part.isdigit():
            raise ConfigError(f"--refuse-shard-counts: {part!r} is not a whole number")
        counts.append(int(part))
    return tuple(counts)


def sim_config(resolved: Resolved) -> SimConfig:
    """The :class:`SimConfig` of what the ``sim.discord`` section resolved (everything but
    ``log_level``, which the command applies); ConfigError names the first bad setting."""
    values: dict[str, Any] = dict(resolved.values)
    values.pop("log_level", None)
    values["heartbeat_interval_ms"] = values.pop("heartbeat_interval")
    values["rate"] = parse_rate(str(values["rate"]))
    values["mix"] = parse_mix(str(values["mix"]))
    values["faults"] = tuple(f for f in str(values["faults"]).split(",") if f)
    values["privileged_intents"] = parse_privileged(str(values["privileged_intents"]))
    values["replay_compress"] = parse_compressions(str(values["replay_compress"]))
    values["refuse_shard_counts"] = parse_counts(str(values["refuse_shard_counts"]))
    return SimConfig(**values)


def load_sim_config(
    cli: Mapping[str, object], env: Mapping[str, str], config_path: str | None
) -> tuple[SimConfig, Resolved]:
    """Resolve the simulator's settings (command line > ``SHARDRUNNER_SIM_*`` > config file >
    default) and build its config; SettingsError or ConfigError, one sentence each."""
    resolved = resolve(SIM_DISCORD_SECTIONS, cli, env, config_path, config_env=CONFIG_ENV)
    return sim_config(resolved), resolved
