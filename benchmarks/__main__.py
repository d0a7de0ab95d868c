"""Runs the benchmark suite: `python -m benchmarks [--scale quick|full] [--only NAMES] [--out DIR]`.

Each benchmark runs in turn (nothing else should load the machine meanwhile), prints as it goes,
and the suite writes DIR/results.json, DIR/results.md and PNG plots. See docs/benchmarks.md.
Benchmarks print figures and ratios; they never pass or fail on time.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import shlex
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from benchmarks import hosts, idle_memory, latency, peers, recovery, reshard, startup, throughput, twitch
from benchmarks.harness import Result, Scale, machine
from benchmarks.report import markdown, plots, write_json

#: In running order. Latency uses the highest rate the throughput benchmark found, if it ran.
NAMES = ("throughput", "latency", "peers", "memory", "startup", "recovery", "reshard", "twitch", "hosts")
DEFAULT_OUT = Path("benchmark-results")


def versions() -> dict[str, str]:
    out = {}
    for dist in (
        "uvloop",
        "msgspec",
        "pyzmq",
        "picows",
        "zlib-ng",
        "zstandard",
        "aiohttp",
        "discord.py",
        "hikari",
        "twitchio",
    ):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


async def suite(scale: Scale, names: list[str], out: Path, command: str) -> list[Result]:
    meta: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command,
        "scale": scale.name,
        "repeat": scale.repeat,
        "duration_s": scale.duration,
        "machine": machine(),
        "versions": versions(),
    }
    results: list[Result] = []
    found_rate: float | None = None

    async def run_latency(s: Scale) -> Result:
        return await latency.run(s, max_rate=found_rate)

    runners: dict[str, Callable[[Scale], Awaitable[Result]]] = {
        "throughput": throughput.run,
        "latency": run_latency,
        "peers": peers.run,
        "memory": idle_memory.run,
        "startup": startup.run,
        "recovery": recovery.run,
        "reshard": reshard.run,
        "twitch": twitch.run,
        "hosts": hosts.run,
    }
    started = time.monotonic()
    for i, name in enumerate(names, 1):
        print(
            f"\n=== [{i}/{len(names)}] {name} ({time.monotonic() - started:.0f} s into the suite) ===",
            flush=True,
        )
        result = await runners[name](scale)
        results.append(result)
        if name == "throughput":
            found_rate = float(result.data["by_workers"][next(iter(result.data["by_workers"]))]["max_rate"])
        for row in result.rows:
            print(f"  {row.what}: {row.value}" + (f"  [{row.target}]" if row.target else ""), flush=True)
        # Written after every benchmark, so that a failure later keeps what was measured.
        write_json(out / "results.json", meta, results)
        (out / "results.md").write_text(markdown(meta, results))
    for path in plots(out, results):
        print(f"wrote {path}")
    print(
        f"wrote {out / 'results.json'} and {out / 'results.md'} ({time.monotonic() - started:.0f} s in all)"
    )
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run shardrunner's benchmark suite against the built-in simulator and the peer "
        "libraries, and write results.json, results.md and PNG plots.",
    )
    parser.add_argument(
        "--scale",
        choices=["quick", "full"],
        default="full",
        help="quick: one run of each at small sizes, to check that everything works (about 4 minutes "
        "on 2 cores); full: the figures of docs/benchmarks.md (about 23 minutes on 2 cores)",
    )
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(NAMES)}")
    parser.add_argument("--repeat", type=int, help="runs per figure (default: 1 quick, 3 full)")
    parser.add_argument("--duration", type=float, help="seconds per step of the stepped benchmarks")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output directory (default: {DEFAULT_OUT})"
    )
    args = parser.parse_args(argv)
    names = list(NAMES)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in NAMES]
        if unknown:
            parser.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(NAMES)}")
        names = [n for n in NAMES if n in names]
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.duration is not None and args.duration <= 0:
        parser.error("--duration must be positive")
    scale = Scale.named(args.scale, repeat=args.repeat, duration=args.duration)
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python -m benchmarks " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    import uvloop

    try:
        uvloop.run(suite(scale, names, args.out, command.strip()))
    except KeyboardInterrupt:
        print("interrupted; what was measured so far is in", args.out, file=sys.stderr)
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
