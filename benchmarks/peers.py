"""Measures how many MESSAGE_CREATE events per second the peer gateway libraries sustain, as their users
run them: 4 shards in one process, zlib-stream, on the same simulated traffic.

What: MESSAGE_CREATE events per second counted by the library's own event API, and the CPU
microseconds per event of the library's process (psutil, user + system), for three peers:

- discord.py: `discord.AutoShardedClient(shard_count=4)`, counted in `on_message` (so each event is
  built into a `discord.Message`), `client.run()` on stock asyncio; intents guilds + guild_messages;
- hikari: `hikari.GatewayBot`, `run(shard_count=4)` on stock asyncio, counted by a listener of
  `hikari.GuildMessageCreateEvent`; default cache;
- discord.js: `@discordjs/ws` 2.0.4 `WebSocketManager` (shardCount 4, the default
  SimpleShardingStrategy: every shard in one Node process, `CompressionMethod.ZlibNative`), counting
  `WebSocketShardEvents.Dispatch` with `t === "MESSAGE_CREATE"`. Installed from npm by the benchmark
  (`npm ci` in benchmarks/peers/discordjs/ when node_modules is missing or stale).

The peer programs are benchmarks/peers/dpy_bench.py, hikari_bench.py and discordjs/bench.mjs; the
Python ones only point the library at the simulator and make it ask for zlib-stream (discord.py 2.7
and hikari 2.7 ask for zstd-stream when a zstd module is importable), and discord.py's
before_identify_hook does not wait 5 s per shard (start-up is not measured).

shardrunner runs on the same simulator and traffic in the same session, as its users run it:
`shardrunner start` with its default of one worker per CPU core, 4 shards, and a bot using
`shardrunner.client` (this process) counting every event; its CPU per event is the sum over the
workers, the supervisor and the bot. The report gives shardrunner's events per second and CPU per
event as ratios to each peer's (goal: at least 4 times the fastest peer's events per second).

The simulator (its own process, replay mode, `--mix MESSAGE_CREATE=1 --dm-ratio 0`, about 1 KB per
event, every message in a guild) sends each of the 4 shards N prepared MESSAGE_CREATEs. Each run
starts a fresh peer process; the replay is held (rate 0) until the peer says every shard is ready,
then released at full speed (`rate max`); the window runs from that release to the peer's last
event (`time.monotonic()` in the peer, system-wide comparable). Runs are interleaved across peers,
one simulator serves them all (each new session replays its shard's script from the start; the rate
goes back to 0 before the next peer starts). Figures are medians of `--repeat` runs. The simulator's
CPU share over each window is kept in the data: near 100% it, not the peer, would be the bottleneck.

Run: python -m benchmarks.peers [--scale quick|full] [--repeat N] [--peers discord.py,hikari,discord.js]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psutil

from benchmarks.harness import TOKEN, Result, Row, Scale, machine, median, sim_config
from benchmarks.simproc import running_simulator
from harness.procs import cpu_of

PEERS = ("discord.py", "hikari", "discord.js")
#: shardrunner itself, run on the same simulator and traffic in the same session, for the ratios.
OURS = "shardrunner"
#: `shardrunner start`'s default: one worker per CPU core.
OURS_WORKERS = os.cpu_count() or 1
SHARDS = 4
HERE = Path(__file__).resolve().parent / "peers"
NODE_DIR = HERE / "discordjs"
#: Rough figures on the 2-CPU machine of the issue, for the report's comparison column.
EXPECTED_PER_S = {"discord.py": 11_000, "hikari": 11_000, "discord.js": 25_000}
READY_TIMEOUT = 90.0  # peer start to every shard ready (hikari waits for the guilds, discord.py 2 s more)
NPM_TIMEOUT = 300.0


def events_per_shard(scale: Scale) -> int:
    """Each run a few seconds at 10-25k events/s: 10,000 per shard at quick scale, 50,000 at full."""
    return max(5000, int(50_000 * scale.factor))


# -- the peers' programs ---------------------------------------------------------------------------
def _npm_stale() -> bool:
    """True unless node_modules holds a completed install of exactly the locked packages."""
    # npm writes node_modules/.package-lock.json last, listing what it installed.
    installed = NODE_DIR / "node_modules" / ".package-lock.json"
    if not installed.is_file():
        return True
    try:
        want = json.loads((NODE_DIR / "package-lock.json").read_text())["packages"]
        have = json.loads(installed.read_text())["packages"]
    except (OSError, ValueError, KeyError):
        return True
    versions = {path: meta.get("version") for path, meta in want.items() if path}
    return versions != {path: meta.get("version") for path, meta in have.items() if path}


def ensure_discordjs() -> tuple[str, str]:
    """`npm ci` the pinned @discordjs/ws unless installed; return (node, "@discordjs/ws <version>")."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing = " and ".join(name for name, path in (("node", node), ("npm", npm)) if path is None)
        raise SystemExit(f"the discord.js peer needs Node.js >= 20 with npm, and {missing} is not on PATH")
    if _npm_stale():
        print(f"installing @discordjs/ws with npm ci in {NODE_DIR}", flush=True)
        try:
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"],
                cwd=NODE_DIR,
                capture_output=True,
                text=True,
                timeout=NPM_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            raise SystemExit(f"npm ci in {NODE_DIR} did not finish within {NPM_TIMEOUT:.0f} s") from None
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip().splitlines()[-10:]
            raise SystemExit(f"npm ci in {NODE_DIR} failed with {done.returncode}: " + " | ".join(tail))
    meta = json.loads((NODE_DIR / "node_modules" / "@discordjs" / "ws" / "package.json").read_text())
    node_version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    return node, f"@discordjs/ws {meta['version']} (Node {node_version})"


def python_peer_version(peer: str) -> str:
    dist = {"discord.py": "discord.py", "hikari": "hikari"}[peer]
    try:
        return f"{dist} {importlib.metadata.version(dist)} (Python {sys.version.split()[0]})"
    except importlib.metadata.PackageNotFoundError:
        raise SystemExit(f"the {peer} peer needs the {dist} package in this Python environment") from None


def peer_command(peer: str, node: str | None, base: str, expected: int) -> tuple[list[str], Path]:
    """The command line of one peer process and its working directory."""
    args = [base, TOKEN, str(SHARDS), str(expected)]
    if peer == "discord.py":
        return [sys.executable, str(HERE / "dpy_bench.py"), *args], HERE
    if peer == "hikari":
        return [sys.executable, str(HERE / "hikari_bench.py"), *args], HERE
    if peer == "discord.js":
        assert node is not None
        return [node, str(NODE_DIR / "bench.mjs"), *args], NODE_DIR
    raise SystemExit(f"unknown peer {peer!r}; choose from {', '.join(PEERS)}")


# -- one run ---------------------------------------------------------------------------------------
@dataclass
class PeerProc:
    """A running peer: every JSON line it printed, the latest count, its stderr in a file."""

    peer: str
    proc: asyncio.subprocess.Process
    stderr: IO[bytes]
    lines: list[dict[str, Any]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    reader: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, peer: str, cmd: list[str], cwd: Path) -> PeerProc:
        stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        try:
            proc = await asyncio.create_subprocess_exec(
                *cmd,
                cwd=cwd,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                env={**os.environ, "NODE_NO_WARNINGS": "1", "PYTHONUNBUFFERED": "1"},
            )
        except BaseException:
            stderr.close()
            raise
        self = cls(peer, proc, stderr)
        self.reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            with contextlib.suppress(ValueError):
                record = json.loads(raw)
                if isinstance(record, dict):
                    self.lines.append(record)
            self.changed.set()
        self.changed.set()  # EOF: the process is ending

    def last(self, *events: str) -> dict[str, Any] | None:
        return next((r for r in reversed(self.lines) if r.get("event") in events), None)

    def stderr_tail(self, lines: int = 15) -> str:
        self.stderr.seek(0)
        text = self.stderr.read().decode(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:])

    def failure(self) -> str | None:
        """Why the peer cannot go on, if it exited or reported an error."""
        error = self.last("error")
        if error is not None:
            return f"reported {str(error.get('message'))[:500]}"
        if self.proc.returncode is not None or (self.reader is not None and self.reader.done()):
            return f"exited with {self.proc.returncode}; stderr: {self.stderr_tail()}"
        return None

    async def wait_for(self, events: tuple[str, ...], deadline: float) -> dict[str, Any] | None:
        """The first line of one of ``events``; None at the deadline. SystemExit if the peer fails."""
        while True:
            found = self.last(*events)
            if found is not None:
                return found
            why = self.failure()
            if why is not None:
                raise SystemExit(f"the {self.peer} peer {why}")
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(left, 1.0))

    async def stop(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()
        if self.reader is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self.reader, 5)
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.stderr.close()


async def one_run(peer: str, node: str | None, port: int, sim: psutil.Process, events: int) -> dict[str, Any]:
    """Start the peer, release the replay once it is ready, time it until the last MESSAGE_CREATE."""
    expected = SHARDS * events
    await sim_config(port, rate=0)  # hold the scripts of the sessions this peer starts
    cmd, cwd = peer_command(peer, node, f"http://127.0.0.1:{port}", expected)
    started = time.monotonic()
    p = await PeerProc.start(peer, cmd, cwd)
    try:
        ready = await p.wait_for(("ready",), started + READY_TIMEOUT)
        if ready is None:
            raise SystemExit(
                f"the {peer} peer did not have its {SHARDS} shards ready within {READY_TIMEOUT:.0f} s; "
                f"stderr: {p.stderr_tail()}"
            )
        startup = time.monotonic() - started
        proc = psutil.Process(p.proc.pid)
        cpu0, sim0 = cpu_of(proc), cpu_of(sim)
        released = time.monotonic()
        await sim_config(port, rate="max")
        # A deadline far beyond any sensible run: 10 s plus 1,000 events/s.
        deadline = released + 10 + expected / 1000
        done = await p.wait_for(("done",), deadline)
        cpu1, sim1 = cpu_of(proc), cpu_of(sim)
        end = time.monotonic()
        record = done or p.last("progress")
        count = int(record["count"]) if record else 0
        if count == 0:
            raise SystemExit(
                f"the {peer} peer counted no MESSAGE_CREATE within {deadline - released:.0f} s of the "
                f"release; stderr: {p.stderr_tail()}"
            )
        assert record is not None
        window = float(record["last"]) - released
        return {
            "events": count,
            "complete": done is not None,
            "seconds": window,
            "per_s": count / window,
            "cpu_us_per_event": (cpu1 - cpu0) / count * 1e6,
            "first_event_after_s": float(record["first"]) - released,
            "sim_cpu_share": (sim1 - sim0) / (end - released),
            "startup_s": startup,
        }
    finally:
        await p.stop()


async def ours_run(port: int, sim: psutil.Process, events: int, workers: int) -> dict[str, Any]:
    """shardrunner on the same traffic, as its users run it: `shardrunner start` (4 shards, one
    worker per core by default) and a bot in this process counting events with
    `shardrunner.client`; CPU of every process involved."""
    from benchmarks import throughput

    expected = SHARDS * events
    await sim_config(port, rate=0)
    started = time.monotonic()
    async with throughput.rig((port, sim), workers=workers, shards=SHARDS) as r:
        startup = time.monotonic() - started
        a = r.snapshot()
        released = time.monotonic()
        await sim_config(port, rate="max")
        complete = await r.bot.wait_count(expected, timeout=10 + expected / 1000)
        end = time.monotonic()
        b = r.snapshot()
        count = r.bot.count
        if count == 0:
            raise SystemExit("shardrunner's bot counted no event after the release")
        cpu = {k: (b[k] - a[k]) / count * 1e6 for k in ("workers", "supervisor", "bot")}
        return {
            "events": count,
            "complete": complete,
            "seconds": end - released,
            "per_s": count / (end - released),
            "cpu_us_per_event": sum(cpu.values()),
            "cpu_us_by_process": cpu,
            "first_event_after_s": None,
            "sim_cpu_share": (b["sim"] - a["sim"]) / (end - released),
            "startup_s": startup,
        }


# -- the benchmark ---------------------------------------------------------------------------------
async def run(scale: Scale, peers: Sequence[str] = (OURS, *PEERS)) -> Result:
    unknown = [p for p in peers if p not in (OURS, *PEERS)]
    if unknown:
        raise SystemExit(f"unknown peer {unknown[0]!r}; choose from {', '.join((OURS, *PEERS))}")
    events = events_per_shard(scale)
    versions: dict[str, str] = {}
    node: str | None = None
    for peer in peers:  # everything installed and importable before the simulator starts
        if peer == "discord.js":
            node, versions[peer] = await asyncio.to_thread(ensure_discordjs)
        elif peer == OURS:
            versions[peer] = importlib.metadata.version("shardrunner")
        else:
            versions[peer] = python_peer_version(peer)
    runs: dict[str, list[dict[str, Any]]] = {peer: [] for peer in peers}
    started = time.monotonic()
    with running_simulator(
        shards=SHARDS,
        events=events,
        compress=["zlib-stream"],
        extra=["--mix", "MESSAGE_CREATE=1", "--dm-ratio", "0"],
        rate="0",  # held until each peer is ready
    ) as (port, sim):
        for i in range(scale.repeat):
            for peer in peers:
                if peer == OURS:
                    r = await ours_run(port, sim, events, OURS_WORKERS)
                else:
                    r = await one_run(peer, node, port, sim, events)
                runs[peer].append(r)
                print(
                    f"run {i + 1}/{scale.repeat} {peer}: {r['per_s']:,.0f} MESSAGE_CREATE/s, "
                    f"CPU {r['cpu_us_per_event']:.1f} us/event, {r['events']:,} events in "
                    f"{r['seconds']:.2f} s{'' if r['complete'] else ' (INCOMPLETE: deadline passed)'}, "
                    f"simulator CPU {r['sim_cpu_share']:.0%}",
                    flush=True,
                )
    rows = []
    data: dict[str, Any] = {"peers": {}, "events_per_shard": events, "shards": SHARDS, "machine": machine()}
    for peer in peers:
        per_s = median([r["per_s"] for r in runs[peer]])
        cpu = median([r["cpu_us_per_event"] for r in runs[peer]])
        incomplete = sum(not r["complete"] for r in runs[peer])
        data["peers"][peer] = {
            "per_s": per_s,
            "cpu_us_per_event": cpu,
            "runs": runs[peer],
            "version": versions[peer],
            "sim_cpu_share": median([r["sim_cpu_share"] for r in runs[peer]]),
        }
        value = f"{per_s:,.0f} /s (CPU {cpu:.0f} µs/event)"
        if incomplete:
            value += f", {incomplete} of {len(runs[peer])} runs incomplete"
        if peer == OURS:
            by = median([r["cpu_us_by_process"]["workers"] for r in runs[peer]])
            value += f"; {OURS_WORKERS} worker(s) {by:.1f} µs + supervisor + bot"
            target = ""
        else:
            expected = EXPECTED_PER_S[peer]
            target = f"about {expected:,} /s expected: {per_s / expected:.2f}x"
        rows.append(Row(what=f"{peer}: MESSAGE_CREATE per second", value=value, target=target))
    if OURS in peers and len(peers) > 1:
        ours = data["peers"][OURS]
        others = [p for p in peers if p != OURS]
        for peer in others:
            theirs = data["peers"][peer]
            rows.append(
                Row(
                    what=f"shardrunner / {peer}",
                    value=f"{ours['per_s'] / theirs['per_s']:.1f}x the events per second, "
                    f"{theirs['cpu_us_per_event'] / ours['cpu_us_per_event']:.1f}x less CPU per event",
                    target="",
                )
            )
        fastest = max(others, key=lambda p: data["peers"][p]["per_s"])
        ratio = ours["per_s"] / data["peers"][fastest]["per_s"]
        data["ratio_to_fastest"] = {"peer": fastest, "ratio": ratio}
        rows.append(
            Row(
                what=f"shardrunner against the fastest peer ({fastest})",
                value=f"{ratio:.1f}x the events per second",
                target=f">= 4x: {ratio / 4:.2f}x",
            )
        )
    return Result(
        name="peers",
        title="Peer libraries, 4 shards in one process, zlib-stream",
        rows=rows,
        data=data,
        seconds=time.monotonic() - started,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--scale", choices=("quick", "full"), default="full")
    parser.add_argument("--repeat", type=int, default=None, help="runs per peer (default: the scale's)")
    parser.add_argument(
        "--peers",
        default=",".join((OURS, *PEERS)),
        help="comma-separated subset of " + ",".join((OURS, *PEERS)),
    )
    args = parser.parse_args(argv)
    scale = Scale.named(args.scale, repeat=args.repeat)
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    m = machine()
    print(f"machine: {m['cpus']} CPUs, {m['cpu_model']}, Python {m['python']}")
    print(
        f"{SHARDS} shards x {events_per_shard(scale):,} MESSAGE_CREATEs per run, "
        f"median of {scale.repeat} runs per peer"
    )
    import uvloop

    result = uvloop.run(run(scale, peers))
    for name, info in result.data["peers"].items():
        print(f"{name}: {info['version']}")
    for row in result.rows:
        print(f"{row.what}: {row.value}  [{row.target}]")


if __name__ == "__main__":
    main()
