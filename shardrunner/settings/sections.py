"""The sections of ``shardrunner start``: the cluster, the bus and Discord (Twitch: :mod:`.twitch`).

Their environment variables are ``SHARDRUNNER_<NAME>`` and their names are unique across the three,
so that :class:`shardrunner.settings.Settings` reads them as flat attributes (``settings.token``,
``settings.workers``) whichever section declares them.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Final

from shardrunner.protocol.compression import Compression
from shardrunner.protocol.discord import ALL_INTENTS, IDENTIFY_WINDOW_S, PRIVILEGED_INTENTS
from shardrunner.rundir import default_run_dir
from shardrunner.settings.hosts import HOSTS
from shardrunner.settings.registry import (
    Section,
    Setting,
    to_auto_int,
    to_bool,
    to_bot_token,
    to_compression,
    to_float,
    to_int,
    to_names,
    to_path,
    to_shards,
    to_url,
)
from shardrunner.settings.remote import REMOTE
from shardrunner.settings.twitch import TWITCH

#: The platforms ``--platforms`` may name.
PLATFORM_NAMES: Final = ("discord", "twitch")


def to_platforms(value: object) -> str:
    """``auto``, or platform names separated by commas."""
    text = to_names(value).lower()
    if text in ("", "auto"):
        return "auto"
    names = text.split(",")
    unknown = [n for n in names if n not in PLATFORM_NAMES]
    if unknown:
        raise ValueError(f"must be auto or names among {', '.join(PLATFORM_NAMES)}")
    return ",".join(dict.fromkeys(names))


def to_controller(value: object) -> str:
    """``module:Class`` or ``path/file.py:Class`` (loaded at start: :mod:`shardrunner.controller`);
    empty or ``none`` for no controller."""
    text = str(value).strip() if value is not None else ""
    if text.lower() in ("", "none"):
        return ""
    target, sep, attr = text.rpartition(":")
    if not sep or not target or not attr.isidentifier():
        raise ValueError("must be module:Class or path/file.py:Class")
    return text


LOG_LEVELS: Final = ("debug", "info", "warning", "error")
_PROGRESS: Final = ("auto", "always", "never")
_LOG_FORMATS: Final = ("text", "json")
_SECONDS: Final = "SECONDS"
DEFAULT_INTENTS: Final = ALL_INTENTS & ~PRIVILEGED_INTENTS


def available_cpus(root: Path = Path("/")) -> int:
    """CPUs this process may use: its affinity, capped by a cgroup CPU quota (a container's
    ``--cpus``), rounded up; at least 1. ``root`` is for tests."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    quota = _cgroup_quota(root)
    if quota is not None:
        count = min(count, max(1, math.ceil(quota)))
    return max(1, count)


def _cgroup_quota(root: Path) -> float | None:
    """The CPU quota in CPUs, from cgroup v2 ``cpu.max`` or v1 ``cpu.cfs_*``; None when unlimited."""
    cgroup = root / "sys" / "fs" / "cgroup"
    try:
        quota, _, period = (cgroup / "cpu.max").read_text().strip().partition(" ")
        if quota != "max":
            return int(quota) / int(period or "100000")
        return None
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


#: The supervisor and its workers.
CLUSTER: Final = Section(
    "cluster",
    (
        Setting(
            "workers",
            to_int,
            available_cpus,
            "worker processes (cores: those this process may use, within a container's CPU quota)",
            minimum=1,
            metavar="N",
            default_text="one per CPU core",
        ),
        Setting(
            "sim",
            to_bool,
            False,
            "start the built-in simulators (Discord's; Twitch's too when Twitch runs) as child "
            "processes and run against them",
        ),
        Setting(
            "platforms",
            to_platforms,
            "auto",
            "the platforms to run, separated by commas: discord, twitch (auto: discord when a token is "
            "set or --sim, twitch when accounts or channels are configured)",
            metavar="auto|NAME,...",
        ),
        Setting(
            "run_dir",
            to_path,
            default_run_dir,
            "directory of the control socket, state file and logs",
            metavar="DIR",
            default_text="$XDG_RUNTIME_DIR/shardrunner, else /tmp/shardrunner-UID",
        ),
        Setting(
            "resume_window",
            to_float,
            120.0,
            "a start within this many seconds of a stop resumes the saved sessions",
            minimum=0,
            exclusive_minimum=True,
            metavar=_SECONDS,
        ),
        Setting(
            "ready_timeout",
            to_float,
            60.0,
            "how long a reload waits for a replacement worker's shards to resume",
            minimum=0,
            exclusive_minimum=True,
            metavar=_SECONDS,
        ),
        Setting(
            "worker_backoff",
            to_float,
            1.0,
            "first delay before restarting a crashed worker (doubles, max 60 s)",
            minimum=0,
            exclusive_minimum=True,
            metavar=_SECONDS,
        ),
        Setting(
            "hung_after",
            to_float,
            10.0,
            "a worker that answers no ping for this long is killed and replaced",
            minimum=0,
            exclusive_minimum=True,
            metavar=_SECONDS,
        ),
        Setting("log_level", str, "info", "log level", choices=LOG_LEVELS),
        Setting(
            "log_format",
            str,
            "text",
            "log lines as text for people, or one JSON object per line for log shippers (the "
            "supervisor's and the workers')",
            choices=_LOG_FORMATS,
        ),
        Setting(
            "progress",
            str,
            "auto",
            "start-up progress display (auto: when stderr is a terminal)",
            choices=_PROGRESS,
        ),
        Setting(
            "controller",
            to_controller,
            "",
            "the controller to load in the supervisor and every worker: a subclass of "
            "shardrunner.controller.Controller, as module:Class or path/file.py:Class (docs/controllers.md)",
            metavar="MODULE:CLASS",
            default_text="none",
        ),
    ),
    help="the supervisor and its workers",
)

#: The event bus: consumer groups and their queues, and (:mod:`.remote`) its TCP endpoints.
BUS: Final = Section(
    "bus",
    (
        Setting(
            "groups",
            to_names,
            "",
            "consumer groups (comma-separated) to keep every event for from the start, before any of "
            "their bots has joined",
            metavar="NAMES",
        ),
        Setting(
            "queue_events",
            to_int,
            100_000,
            "events a consumer group's queue holds (per worker) while its bots are away or slow; past it "
            "the oldest are dropped and the group is told",
            minimum=1,
            metavar="N",
        ),
        Setting(
            "queue_bytes",
            to_int,
            256 * 1024 * 1024,
            "bytes a consumer group's queue holds (per worker), the same way",
            minimum=1024,
            metavar="BYTES",
        ),
        *REMOTE,
    ),
    help="the event bus: consumer groups and their queues, and its TCP endpoints for bots elsewhere",
)

#: The Discord platform: the bot, its gateway connections and their shard set.
DISCORD: Final = Section(
    "discord",
    (
        Setting(
            "token",
            to_bot_token,
            None,
            "the bot token (never printed)",
            secret=True,
            metavar="TOKEN",
            default_text="none, required unless --sim",
        ),
        Setting(
            "api_url",
            to_url,
            "https://discord.com/api/v10",
            "REST base URL (for proxies and tests)",
            metavar="URL",
        ),
        Setting(
            "shards",
            to_shards,
            "auto",
            "shard count, or auto for Discord's recommendation from /gateway/bot",
            minimum=1,
            metavar="N|auto",
        ),
        Setting(
            "intents",
            to_int,
            DEFAULT_INTENTS,
            "gateway intents bitmask",
            minimum=0,
            metavar="BITS",
            default_text=f"{DEFAULT_INTENTS}, every non-privileged intent",
        ),
        Setting(
            "compression",
            to_compression,
            Compression.ZLIB_STREAM,
            "gateway transport compression",
            choices=tuple(
                c.value for c in (Compression.ZLIB_STREAM, Compression.ZSTD_STREAM, Compression.NONE)
            ),
        ),
        Setting(
            "large_threshold",
            to_int,
            250,
            "members above which a guild is large (its offline members are not sent)",
            minimum=50,
            maximum=250,
            metavar="N",
        ),
        Setting(
            "max_concurrency",
            to_auto_int,
            None,
            "identify buckets",
            minimum=1,
            metavar="N|auto",
            default_text="session_start_limit.max_concurrency from /gateway/bot",
        ),
        Setting(
            "identify_window",
            to_float,
            IDENTIFY_WINDOW_S,
            "seconds between identifies of one bucket (Discord: 5; lower only against the simulator)",
            minimum=0,
            metavar=_SECONDS,
        ),
        Setting(
            "auto_reshard",
            to_bool,
            True,
            "reshard by itself when the shards' fill reaches --reshard-at (checked every --reshard-check)",
        ),
        Setting(
            "reshard_at",
            to_float,
            0.8,
            "the fill (guilds / (shards x max guilds per shard)) at which a reshard is due",
            minimum=0,
            maximum=1,
            exclusive_minimum=True,
            metavar="FRACTION",
        ),
        Setting(
            "reshard_target",
            to_float,
            0.5,
            "the fill a reshard brings the shards down to (or /gateway/bot's count, if larger)",
            minimum=0,
            maximum=1,
            exclusive_minimum=True,
            metavar="FRACTION",
        ),
        Setting(
            "reshard_check",
            to_float,
            300.0,
            "seconds between two asks of /gateway/bot and checks of the fill",
            minimum=1,
            metavar=_SECONDS,
        ),
        Setting(
            "reshard_reserve",
            to_int,
            10,
            "session starts a reshard leaves for the running shards' reconnects; it is refused "
            "when session_start_limit.remaining is below the new count plus this",
            minimum=0,
            metavar="N",
        ),
        Setting(
            "reshard_overlap",
            to_float,
            1.0,
            "seconds each step of a reshard's switch lasts: the most one shard set may lag the "
            "other without a loss or a duplicate",
            minimum=0.05,
            maximum=30,
            metavar=_SECONDS,
        ),
        Setting(
            "reshard_timeout",
            to_float,
            0.0,
            "seconds the new shards may take to be ready before the reshard is aborted (0: twice "
            "the identify limit's time for them, plus 5 minutes)",
            minimum=0,
            metavar=_SECONDS,
        ),
        Setting(
            "reshard_drain",
            to_float,
            600.0,
            "seconds the old shards' workers keep, after the switch, the events durable groups "
            "have not acknowledged (a bot down through a reshard gets them when it returns)",
            minimum=0,
            metavar=_SECONDS,
        ),
        Setting(
            "max_guilds_per_shard",
            to_int,
            2500,
            "guilds one shard may hold (Discord: 2500, closing 4011 beyond; lower only against "
            "the simulator)",
            minimum=1,
            metavar="N",
        ),
    ),
    help="the Discord bot and its shards",
)

#: The sections of ``shardrunner start``, in the order of ``--help`` and the example config.
START_SECTIONS: Final = (CLUSTER, DISCORD, TWITCH, BUS, HOSTS)
