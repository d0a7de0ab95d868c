"""The sections of ``shardrunner start``: the cluster and the bus (Discord: :mod:`.discord`, Twitch:
:mod:`.twitch`, several hosts: :mod:`.hosts`).

Their environment variables are ``SHARDRUNNER_<NAME>`` and their names are unique across the three,
so that :class:`shardrunner.settings.Settings` reads them as flat attributes (``settings.token``,
``settings.workers``) whichever section declares them.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Final

from shardrunner.rundir import default_run_dir
from shardrunner.settings.discord import DISCORD
from shardrunner.settings.hosts import HOSTS
from shardrunner.settings.registry import (
    Section,
    Setting,
    to_bool,
    to_float,
    to_int,
    to_names,
    to_path,
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
            "metrics_port",
            to_int,
            0,
            "serve Prometheus metrics on this TCP port at /metrics (0: no endpoint)",
            minimum=0,
            maximum=65535,
            metavar="PORT",
        ),
        Setting(
            "metrics_bind",
            str,
            "127.0.0.1",
            "the address the metrics endpoint listens on (0.0.0.0 exposes it to every network)",
            metavar="ADDR",
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

START_SECTIONS: Final = (CLUSTER, DISCORD, TWITCH, BUS, HOSTS)
