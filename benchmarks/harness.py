"""Shared pieces of the benchmark suite: scales, results, a `shardrunner start` process (on the
shared `harness` package), the simulator's admin API. Not a benchmark itself.

Every benchmark module exposes ``async def run(scale: Scale) -> Result`` (used by
``python -m benchmarks``) and a ``main()`` for running it alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import psutil

from harness.cluster import ClusterProcess
from harness.procs import NotReady
from shardrunner.sim.discord.world import make_token

#: The bot token every benchmark cluster uses (the simulator accepts any well-formed token).
TOKEN = make_token(1100000000000000001)


@dataclass(frozen=True)
class Scale:
    """How big and how long. ``quick`` checks that everything runs in a few minutes; ``full``
    gives the figures in docs/benchmarks.md."""

    name: str
    repeat: int  # runs per figure; the report gives medians
    duration: float  # seconds per measured step of a stepped benchmark
    factor: float = 1.0  # multiplies event counts and shard counts where a benchmark scales

    @classmethod
    def named(cls, name: str, *, repeat: int | None = None, duration: float | None = None) -> Scale:
        base = {"quick": cls("quick", 1, 1.5, 0.2), "full": cls("full", 3, 3.0, 1.0)}[name]
        return cls(
            base.name,
            repeat if repeat is not None else base.repeat,
            duration if duration is not None else base.duration,
            base.factor,
        )


@dataclass
class Row:
    """One line of the Markdown summary."""

    what: str
    value: str
    target: str = ""  # the target and how the figure compares, e.g. "<= 64 KiB: 0.87x"


@dataclass
class Result:
    """What a benchmark reports: summary rows for the table, and raw data for JSON and plots."""

    name: str
    title: str
    rows: list[Row] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def print_result(result: Result, heading: str = "", as_json: bool = False) -> None:
    """What a benchmark's main() prints at the end: a heading, the summary rows, optionally the data."""
    print(f"\n{result.title}{f' ({heading})' if heading else ''}, {result.seconds:.0f} s:")
    for row in result.rows:
        print(f"  {row.what}: {row.value}" + (f" ({row.target})" if row.target else ""))
    if as_json:
        print(json.dumps(result.data, indent=2, default=str))


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": sys.version.split()[0],
        "platform": sys.platform,
    }


@contextlib.asynccontextmanager
async def running_cluster(
    api_port: int,
    *,
    workers: int,
    shards: int,
    extra: Sequence[str] = (),
    identify_window: float = 0.0,
    max_concurrency: int | None = None,
    log_level: str = "warning",
) -> AsyncIterator[ClusterProcess]:
    """A `shardrunner start` process against a simulator on ``api_port``, in a temporary run dir;
    stopped on the way out with every worker it had. A cluster or bot that does not get ready ends
    the benchmark with the reason (SystemExit), as the suite's other checks do."""
    args = [
        "--workers", str(workers), "--identify-window", str(identify_window), "--log-level", log_level,
        *(["--max-concurrency", str(max_concurrency)] if max_concurrency else []),
        *extra,
    ]  # fmt: skip
    cluster = ClusterProcess(f"http://127.0.0.1:{api_port}/api/v10", *args, token=TOKEN, shards=shards)
    try:
        yield cluster
    except NotReady as e:
        raise SystemExit(str(e)) from None
    finally:
        await cluster.stop()


async def sim_config(port: int, **settings: Any) -> dict[str, Any]:
    """POST /_sim/config: change the simulator's settings at run time (e.g. rate="max")."""
    import aiohttp

    async with (
        aiohttp.ClientSession() as http,
        http.post(f"http://127.0.0.1:{port}/_sim/config", json=settings) as r,
    ):
        r.raise_for_status()
        body: dict[str, Any] = await r.json()
        return body


async def sim_get(port: int, path: str, method: str = "GET", **params: Any) -> Any:
    """GET (or ``method``) /_sim/<path> of the simulator's admin API; the JSON answer."""
    import aiohttp

    async with (
        aiohttp.ClientSession() as http,
        http.request(method, f"http://127.0.0.1:{port}/_sim/{path}", params=params) as r,
    ):
        r.raise_for_status()
        return await r.json()


async def sim_sent(port: int) -> int:
    """Dispatches (READY and GUILD_CREATEs included) sent so far over every connected session."""
    stats = await sim_get(port, "stats")
    return sum(int(s["last_sent_seq"]) for s in stats["sessions"] if s["connected"])
