"""Twitch chat: messages per CPU-second of shardrunner, tmi.js and twitchio reading the same traffic,
and the time to join 2,000 channels under Twitch's JOIN limit (and again after a mass reconnect).

**Throughput** (`run_throughput`). Each run starts a fresh `shardrunner sim twitch` process (its own
process, like benchmarks/simproc.py for Discord; the same seed every run, so every runner gets the
same traffic): C channels (`chan0`...; 200 by default), generated rate 0 until the runner has
joined every channel (the simulator's per-channel `members`), then a fixed total rate R (lines per
second over all channels, split 1/(i+1)^1.1 as the simulator does, 90% PRIVMSG and 6% USERNOTICE,
each with an `id` tag; 0.1% of lines sent twice, as the real server does now and then) for T
seconds, then rate 0. What counts is the simulator's `GET /_sim/stats` per-channel `ids` (every
generated PRIVMSG/USERNOTICE) against the ids the runner received: lost (generated, never
received), duplicates delivered (an id received twice), and messages (distinct ids) per CPU-second
of the receiving side: psutil cpu_times (user + system) of the runner's processes, from the release
of the traffic until the runner has every generated id (or it stops making progress). The runners,
all anonymous readers (`justinfan`, read-only) over WebSocket:

- **tmi.js** 1.8.5 (benchmarks/twitch_peers/tmi_bench.mjs, Node; `npm ci` from the committed
  lockfile when node_modules is missing or stale): one `tmi.Client` joining every channel;
- **twitchio** 2.x (benchmarks/twitch_peers/twitchio_bench.py, stock asyncio): one `Client`;
- **shardrunner**: `python -m shardrunner start --platforms twitch --twitch-url ws://127.0.0.1:PORT/
  --twitch-channels-file FILE --twitch-anonymous --workers 2 --run-dir DIR --log-level warning
  --groups bench` (50 channels per reading connection by default), and one bot process
  (benchmarks/twitch_bot.py, `shardrunner.client.Client`) counting PRIVMSG/USERNOTICE ids from
  `event.data`. The workers' CPU is the figure; the supervisor's and the bot's are reported
  beside it.

In the throughput runs the simulator's JOIN limit is lifted (`--join-limit 1000000`) and the peers
send their JOINs at once (tmi.js `client.join()` per channel, twitchio its websocket's
`_join_channel`), because their own join timers would take minutes for 200 channels (tmi.js one
channel per 2 s, twitchio 20 per 11 s) and joining is not what these runs measure; shardrunner joins
under its own budget (20 per 10 s per login). Nothing is timed before the release.

**Join time** (`run_join`). A simulator with 2,000 channels, Twitch's default limits (20 JOINs and
20 logins per 10 s per login, a JOIN over the limit closes the connection) and no traffic; a
cluster (`--workers 2`, anonymous readers, 50 channels per connection) reading all of them, timed
from its launch until every channel has a member, and per login from its login to its last JOIN.
The ideal comes from the placement (`shardrunner.gateway.twitch.placement.place`, the cluster's
own): for each login (an anonymous connection is a login of its own; an account's connections share
its budget), (ceil(channels / 20) - 1) windows of 10 s; the ideal is the largest, plus the login.
The simulator's `violations` must stay empty. Then `POST /_sim/fault {"kind": "reconnect"}` to
every connection at once, and the time until every channel is joined again on a connection opened
after it, with no violation. A variant adds one normal account (`--twitch-accounts`) besides the
anonymous readers. tmi.js (its join timer, at its default 2,000 ms and at its minimum 300 ms) and
twitchio (`initial_channels`: 20 channels every 11 s) join the same 2,000 channels for a bounded
window: the channels they joined in it, what their pace projects for all 2,000, and the
violations they caused.

Run: python -m benchmarks.twitch [--scale quick|full] [--only throughput,join]
     [--runners shardrunner,tmi.js,twitchio] [--channels 200] [--rate 2000] [--seconds 10] [--repeat N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from benchmarks.harness import Result, Row, Scale, machine, median, print_result
from benchmarks.peers import PeerProc
from benchmarks.simproc import stop_process
from harness.cluster import ClusterProcess
from harness.procs import REPO, cpu_of

OURS = "shardrunner"
PEERS = ("tmi.js", "twitchio")
RUNNERS = (OURS, *PEERS)
HERE = Path(__file__).resolve().parent / "twitch_peers"
#: Workers of the shardrunner cluster (the brief's command line; one per core here).
WORKERS = 2
#: Twitch's JOIN budget per login, and its window (the simulator's and the cluster's defaults).
JOIN_COUNT = 20
JOIN_WINDOW_S = 10.0
PER_CONN = 50
#: Share of generated lines the simulator sends twice (the real server "may send a message
#: multiple times").
DUPLICATE_RATE = 0.001
SEED = 7
NPM_TIMEOUT = 300.0


@dataclass(frozen=True)
class Setup:
    """How big: the throughput runs and the join runs."""

    channels: int = 200
    rate: float = 5000.0
    seconds: float = 10.0
    repeat: int = 3
    join_channels: int = 2000
    #: How long the peers get to join the 2,000 channels (their pace is projected from it).
    peer_join_window: float = 30.0
    join_timeout: float = 300.0

    @classmethod
    def of(cls, scale: Scale) -> Setup:
        if scale.name == "quick":
            return cls(50, 1000.0, 3.0, scale.repeat, 400, 10.0, 180.0)
        return cls(repeat=scale.repeat)


# -- the simulator process -------------------------------------------------------------------------
@dataclass
class Sim:
    port: int
    irc_port: int
    proc: psutil.Process
    log: Path

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def errors(self) -> int:
        with contextlib.suppress(OSError), open(self.log, errors="replace") as f:
            return sum(" ERROR " in line for line in f)
        return 0


@contextlib.contextmanager
def twitch_simulator(channels: int, *extra: str) -> Iterator[Sim]:
    """`shardrunner sim twitch` on free ports, rate 0, its stderr in a log file; stopped on exit."""
    cmd = [
        sys.executable, "-m", "shardrunner", "sim", "twitch", "--host", "127.0.0.1", "--port", "0",
        "--irc-port", "0", "--channels", str(channels), "--rate", "0", "--seed", str(SEED),
        "--slow-kill", "0", "--log-level", "warning", *extra,
    ]  # fmt: skip
    log = Path(tempfile.mkdtemp(prefix="sr-bench-twsim-")) / "sim.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = re.search(r"listening on ws://[^:]+:(\d+).* and [^ ]+:(\d+) \(IRC", line)
        if found is None:
            tail = log.read_text(errors="replace")[-2000:]
            raise SystemExit(f"the Twitch simulator did not start (exit {proc.poll()}): {line!r}\n{tail}")
        yield Sim(int(found.group(1)), int(found.group(2)), psutil.Process(proc.pid), log)
    finally:
        stop_process(proc, 10)
        if os.path.exists(log) and not _count(log):
            shutil.rmtree(log.parent, ignore_errors=True)


def _count(log: Path) -> int:
    with contextlib.suppress(OSError), open(log, errors="replace") as f:
        return sum(" ERROR " in line for line in f)
    return 0


async def admin(port: int, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """The simulator's admin API under /_sim/; its JSON answer."""
    import aiohttp

    async with (
        aiohttp.ClientSession() as http,
        http.request(method, f"http://127.0.0.1:{port}/_sim/{path}", json=body) as r,
    ):
        r.raise_for_status()
        return await r.json()


async def joined_channels(port: int) -> tuple[int, dict[str, Any]]:
    """How many channels have at least one connection in them, and the stats."""
    stats = await admin(port, "GET", "stats")
    return sum(1 for ch in stats["channels"].values() if ch["members"] > 0), stats


# -- the runners -----------------------------------------------------------------------------------
def _npm_stale(project: Path) -> bool:
    installed = project / "node_modules" / ".package-lock.json"
    if not installed.is_file():
        return True
    try:
        want = json.loads((project / "package-lock.json").read_text())["packages"]
        have = json.loads(installed.read_text())["packages"]
    except (OSError, ValueError, KeyError):
        return True
    versions = {p: m.get("version") for p, m in want.items() if p}
    return versions != {p: m.get("version") for p, m in have.items() if p}


def ensure_tmijs() -> tuple[str, str]:
    """`npm ci` the pinned tmi.js unless installed; (node, "tmi.js <version> (Node ...)")."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise SystemExit("the tmi.js runner needs Node.js >= 20 with npm on PATH")
    if _npm_stale(HERE):
        print(f"installing tmi.js with npm ci in {HERE}", flush=True)
        try:
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, capture_output=True, text=True,
                timeout=NPM_TIMEOUT,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise SystemExit(f"npm ci in {HERE} did not finish within {NPM_TIMEOUT:.0f} s") from None
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip().splitlines()[-10:]
            raise SystemExit(f"npm ci in {HERE} failed with {done.returncode}: " + " | ".join(tail))
    meta = json.loads((HERE / "node_modules" / "tmi.js" / "package.json").read_text())
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    return node, f"tmi.js {meta['version']} (Node {version})"


def runner_version(runner: str) -> str:
    if runner == OURS:
        return f"shardrunner {importlib.metadata.version('shardrunner')} (Python {sys.version.split()[0]})"
    if runner == "twitchio":
        try:
            return f"twitchio {importlib.metadata.version('twitchio')} (Python {sys.version.split()[0]})"
        except importlib.metadata.PackageNotFoundError:
            raise SystemExit("the twitchio runner needs twitchio 2.x (the test extra)") from None
    return ensure_tmijs()[1]


class TwitchCluster(ClusterProcess):
    """`python -m shardrunner start --platforms twitch ...` in a run dir of its own; its workers are
    the supervisor's children running ``shardrunner.cluster.worker``."""

    def __init__(self, sim: Sim, channels_file: Path, run_dir: Path, extra: Sequence[str] = ()) -> None:
        super().__init__(
            None,
            "--platforms", "twitch", "--twitch-url", sim.ws_url, "--twitch-channels-file", str(channels_file),
            "--twitch-anonymous", "--workers", str(WORKERS), "--log-level", "warning", *extra,
            token=None,
            run_dir=run_dir,
        )  # fmt: skip

    def alive(self) -> None:
        if self.proc.poll() is not None:
            raise SystemExit(f"the shardrunner cluster exited with {self.proc.returncode}")


def tree_cpu(procs: Sequence[psutil.Process]) -> float:
    """CPU seconds of these processes and all their descendants."""
    total = 0.0
    seen: set[int] = set()
    for p in procs:
        with contextlib.suppress(psutil.Error):
            for q in [p, *p.children(recursive=True)]:
                if q.pid not in seen:
                    seen.add(q.pid)
                    with contextlib.suppress(psutil.Error):
                        total += cpu_of(q)
    return total


@dataclass
class Running:
    """A runner reading the simulator: the process printing ids (a peer, or shardrunner's bot) and,
    for shardrunner, the cluster."""

    name: str
    reader: PeerProc
    ids_file: Path
    cluster: TwitchCluster | None = None
    tmp: Path | None = None
    finished: dict[str, Any] | None = field(default=None)

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far: ``receiving`` (the figure) and, for shardrunner, each part."""
        reader = psutil.Process(self.reader.proc.pid)
        if self.cluster is None:
            return {"receiving": tree_cpu([reader])}
        workers = tree_cpu(self.cluster.workers())
        supervisor = 0.0
        with contextlib.suppress(psutil.Error):
            supervisor = cpu_of(self.cluster.supervisor)
        return {"receiving": workers, "workers": workers, "supervisor": supervisor, "bot": tree_cpu([reader])}

    def count(self) -> tuple[int, int]:
        """(distinct ids, duplicates) of the latest progress line."""
        last = self.reader.last("progress", "done")
        return (int(last["count"]), int(last["dups"])) if last else (0, 0)

    def check(self) -> None:
        why = self.reader.failure()
        if why is not None:
            raise SystemExit(f"the {self.name} runner {why}")
        if self.cluster is not None:
            self.cluster.alive()

    async def finish(self) -> tuple[dict[str, Any], set[str]]:
        """End of stdin: the runner writes its ids and exits; (its done line, the ids)."""
        stdin = self.reader.proc.stdin
        if stdin is not None:
            stdin.close()
        done = await self.reader.wait_for(("done",), time.monotonic() + 60)
        if done is None:
            raise SystemExit(f"the {self.name} runner did not finish within 60 s of the end of stdin")
        self.finished = done
        return done, set(self.ids_file.read_text().split())

    async def stop(self) -> None:
        await self.reader.stop()
        if self.cluster is not None:
            await self.cluster.stop(grace=30)
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)


async def start_runner(
    name: str, sim: Sim, channels_file: Path, *, join: str = "direct", extra: Sequence[str] = ()
) -> Running:
    tmp = Path(tempfile.mkdtemp(prefix=f"sr-bench-tw-{re.sub(r'[^a-z]', '', name)}-"))
    ids = tmp / "ids.txt"
    if name == "tmi.js":
        node, _ = ensure_tmijs()
        cmd = [
            node,
            str(HERE / "tmi_bench.mjs"),
            "127.0.0.1",
            str(sim.port),
            str(channels_file),
            str(ids),
            join,
        ]
        return Running(name, await PeerProc.start(name, cmd, HERE), ids, tmp=tmp)
    if name == "twitchio":
        cmd = [
            sys.executable,
            str(HERE / "twitchio_bench.py"),
            sim.ws_url,
            str(channels_file),
            str(ids),
            join,
        ]
        return Running(name, await PeerProc.start(name, cmd, HERE), ids, tmp=tmp)
    if name == OURS:
        run_dir = tmp / "run"
        queues = ["--groups", "bench", "--queue-events", str(10_000_000), "--queue-bytes", str(4 << 30)]
        cluster = TwitchCluster(sim, channels_file, run_dir, [*queues, *extra])
        try:
            await _wait_for_control(cluster, run_dir)
            cmd = [
                sys.executable,
                "-m",
                "benchmarks.twitch_bot",
                "--run-dir",
                str(run_dir),
                "--out",
                str(ids),
            ]
            bot = await PeerProc.start("shardrunner bot", cmd, REPO)
        except BaseException:
            await cluster.stop(grace=30)
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return Running(name, bot, ids, cluster=cluster, tmp=tmp)
    raise SystemExit(f"unknown runner {name!r}; choose from {', '.join(RUNNERS)}")


async def _wait_for_control(cluster: TwitchCluster, run_dir: Path, timeout: float = 60) -> None:
    """Until the cluster answers its status command (its bus is up for the bot)."""
    from shardrunner.control import CommandError, call

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cluster.alive()
        with contextlib.suppress(CommandError, OSError):
            await call(run_dir, "status", timeout=5)
            return
        await asyncio.sleep(0.1)
    raise SystemExit(f"the shardrunner cluster did not answer its status command within {timeout:.0f} s")


def channels_file(directory: Path, n: int) -> Path:
    path = directory / f"channels-{n}.txt"
    path.write_text("".join(f"chan{i}\n" for i in range(n)))
    return path


async def wait_all_joined(
    sim: Sim, running: Running | None, n: int, timeout: float
) -> tuple[float, dict[str, Any]]:
    """Seconds until every one of the ``n`` channels has a member; the stats then."""
    started = time.monotonic()
    deadline = started + timeout
    joined = 0
    while True:
        if running is not None:
            running.check()
        joined, stats = await joined_channels(sim.port)
        if joined >= n:
            return time.monotonic() - started, stats
        if time.monotonic() > deadline:
            name = running.name if running else "the runner"
            raise SystemExit(f"{name} joined {joined} of {n} channels in {timeout:.0f} s; "
                             f"violations {stats['violations'][:3]}")  # fmt: skip
        await asyncio.sleep(0.25)


# -- throughput ------------------------------------------------------------------------------------
async def throughput_run(name: str, setup: Setup, directory: Path) -> dict[str, Any]:
    chans = channels_file(directory, setup.channels)
    with twitch_simulator(
        setup.channels, "--join-limit", "1000000", "--duplicate-rate", str(DUPLICATE_RATE)
    ) as sim:
        running = await start_runner(name, sim, chans)
        try:
            join_s, _ = await wait_all_joined(sim, running, setup.channels, setup.join_timeout)
            if await running.reader.wait_for(("ready",), time.monotonic() + 60) is None:
                raise SystemExit(f"the {name} runner did not say it was ready")
            await asyncio.sleep(0.5)  # let whatever the joins started settle
            cpu0, sim0 = running.cpu(), cpu_of(sim.proc)
            released = time.monotonic()
            await admin(sim.port, "POST", "config", {"rate": setup.rate})
            await asyncio.sleep(setup.seconds)
            await admin(sim.port, "POST", "config", {"rate": 0})
            stopped = time.monotonic()
            sim1 = cpu_of(sim.proc)
            stats = await admin(sim.port, "GET", "stats")
            generated = {i for ch in stats["channels"].values() for i in ch["ids"]}
            # Until the runner has them all, or it stops making progress (then some are lost).
            deadline = stopped + 30 + len(generated) / 1000
            progress_at, last_total = time.monotonic(), -1
            while True:
                running.check()
                count, dups = running.count()
                now = time.monotonic()
                if count + dups != last_total:
                    progress_at, last_total = now, count + dups
                if count >= len(generated) or now - progress_at > 3.0 or now > deadline:
                    break
                await asyncio.sleep(0.05)
            cpu1 = running.cpu()
            caught_up = time.monotonic()
            done, ids = await running.finish()
        finally:
            await running.stop()
    received = len(ids & generated)
    cpu = {k: cpu1[k] - cpu0[k] for k in cpu0}
    window = max(float(done["last"]), stopped) - released if done["last"] else caught_up - released
    return {
        "generated": len(generated),
        "received": received,
        "lost": len(generated - ids),
        "unknown": len(ids - generated),
        "duplicates": int(done["dups"]),
        "seconds": window,
        "received_per_s": received / window if window > 0 else 0.0,
        "cpu_s": cpu,
        "per_cpu_s": received / cpu["receiving"] if cpu["receiving"] > 0 else float("nan"),
        "cpu_us_per_msg": {k: v / max(received, 1) * 1e6 for k, v in cpu.items()},
        "caught_up_after_stop_s": caught_up - stopped,
        "sim_cpu_share": (sim1 - sim0) / (stopped - released),
        "join_s": join_s,
    }


async def run_throughput(
    setup: Setup, runners: Sequence[str], directory: Path
) -> tuple[list[Row], dict[str, Any]]:
    runs: dict[str, list[dict[str, Any]]] = {r: [] for r in runners}
    for i in range(setup.repeat):
        for name in runners:  # interleaved, so that a drift of the machine hits every runner alike
            r = await throughput_run(name, setup, directory)
            runs[name].append(r)
            extra = ""
            if name == OURS:
                c = r["cpu_s"]
                extra = (
                    f" (workers {c['workers']:.2f} CPU-s, supervisor {c['supervisor']:.2f}, "
                    f"bot {c['bot']:.2f})"
                )
            print(
                f"run {i + 1}/{setup.repeat} {name}: {r['per_cpu_s']:,.0f} messages per receiving "
                f"CPU-second{extra}; {r['received']:,} of {r['generated']:,} received ({r['lost']} lost, "
                f"{r['duplicates']} duplicates) in {r['seconds']:.2f} s, simulator "
                f"{r['sim_cpu_share']:.0%} of a core; joined in {r['join_s']:.1f} s",
                flush=True,
            )
    rows: list[Row] = []
    figures: dict[str, Any] = {}
    for name in runners:
        rs = runs[name]
        fig = {
            "per_cpu_s": median([r["per_cpu_s"] for r in rs]),
            "received_per_s": median([r["received_per_s"] for r in rs]),
            "lost": sum(r["lost"] for r in rs),
            "duplicates": sum(r["duplicates"] for r in rs),
            "generated": sum(r["generated"] for r in rs),
            "runs": rs,
        }
        what = f"{name}: messages per CPU-second"
        value = f"{fig['per_cpu_s']:,.0f} (runs {_runs([r['per_cpu_s'] for r in rs], '{:,.0f}')})"
        if name == OURS:
            fig["all_per_cpu_s"] = median(
                [r["received"] / sum(r["cpu_s"][k] for k in ("workers", "supervisor", "bot")) for r in rs]
            )
            fig["bot_per_cpu_s"] = median(
                [r["received"] / r["cpu_s"]["bot"] for r in rs if r["cpu_s"]["bot"] > 0]
            )
            what = f"shardrunner ({WORKERS} workers): messages per worker CPU-second"
            value += (f"; the bot (shardrunner.client) {fig['bot_per_cpu_s']:,.0f} per CPU-second; "
                      f"workers + supervisor + bot {fig['all_per_cpu_s']:,.0f}")  # fmt: skip
        rows.append(Row(what, value))
        rows.append(
            Row(
                f"{name}: lost, duplicates delivered",
                f"{fig['lost']} lost, {fig['duplicates']} duplicates of {fig['generated']:,} generated "
                f"in {len(rs)} run(s)",
                "lost must be 0",
            )
        )
        figures[name] = fig
    if OURS in figures:
        ours = figures[OURS]
        for peer in PEERS:
            if peer in figures:
                theirs = figures[peer]
                rows.append(
                    Row(
                        f"shardrunner / {peer}",
                        f"{ours['per_cpu_s'] / theirs['per_cpu_s']:.1f}x the messages per CPU-second "
                        f"(workers only); {ours['all_per_cpu_s'] / theirs['per_cpu_s']:.1f}x counting the "
                        "supervisor and the bot too",
                    )
                )
    return rows, figures


# -- join time -------------------------------------------------------------------------------------
def join_ideal(n: int, accounts: Sequence[str], anonymous: bool) -> dict[str, Any]:
    """The ideal of the placement the cluster computes: per login, (ceil(channels/20) - 1) windows."""
    from shardrunner.gateway.twitch.placement import Account, place

    plan = place(
        [f"chan{i}" for i in range(n)], [Account(a) for a in accounts], anonymous=anonymous, per_conn=PER_CONN
    )
    logins: list[int] = []
    by_account: dict[str, int] = {}
    for conn in plan.conns:
        if conn.reader in accounts:
            by_account[conn.reader] = by_account.get(conn.reader, 0) + len(conn.channels)
        else:
            logins.append(len(conn.channels))  # an anonymous connection is a login of its own
    sizes = logins + list(by_account.values())
    windows = max(math.ceil(s / JOIN_COUNT) - 1 for s in sizes)
    return {
        "connections": len(plan.conns),
        "logins": len(sizes),
        "largest_login_channels": max(sizes),
        "windows": windows,
        "ideal_s": windows * JOIN_WINDOW_S,
    }


def per_login_join(stats: dict[str, Any], since: float) -> dict[str, Any]:
    """From the simulator's records after ``since`` (Unix time): per login, its first successful
    login to its last JOIN; the largest of those, and the first login to the last JOIN overall."""
    first_login: dict[str, float] = {}
    for rec in stats["logins"]:
        if rec["ok"] and rec["time"] >= since:
            first_login.setdefault(rec["account"], rec["time"])
    last_join: dict[str, float] = {}
    for rec in stats["joins"]:
        if rec["time"] >= since:
            last_join[rec["account"]] = max(last_join.get(rec["account"], 0.0), rec["time"])
    spans = {a: last_join[a] - first_login[a] for a in last_join if a in first_login}
    return {
        "logins": len(first_login),
        "joins": sum(1 for r in stats["joins"] if r["time"] >= since),
        "login_to_last_join_s": max(spans.values()) if spans else float("nan"),
        "first_login_to_last_join_s": (max(last_join.values()) - min(first_login.values()))
        if spans
        else float("nan"),
        "first_login_after_s": min(first_login.values()) - since if first_login else float("nan"),
    }


async def join_run(setup: Setup, directory: Path, accounts: Sequence[str] = ()) -> dict[str, Any]:
    n = setup.join_channels
    chans = channels_file(directory, n)
    extra = ["--twitch-accounts", ",".join(f"{a}:benchtoken{a}" for a in accounts)] if accounts else []
    ideal = join_ideal(n, accounts, anonymous=True)
    with twitch_simulator(n, "--reconnect-grace", "2") as sim:
        launched_unix = time.time()
        running = await start_runner(OURS, sim, chans, extra=extra)
        assert running.cluster is not None
        try:
            spawned = running.cluster.started
            await wait_all_joined(sim, running, n, setup.join_timeout)
            joined_s = time.monotonic() - spawned
            stats = await admin(sim.port, "GET", "stats")
            first = per_login_join(stats, launched_unix)
            violations = list(stats["violations"])
            before = max(c["connection"] for c in stats["connections"])
            conns_before = len(stats["connections"])
            fault_unix = time.time()
            fault_at = time.monotonic()
            applied = await admin(sim.port, "POST", "fault", {"kind": "reconnect"})
            deadline = fault_at + setup.join_timeout
            while True:
                running.check()
                stats = await admin(sim.port, "GET", "stats")
                new = {ch for c in stats["connections"] if c["connection"] > before for ch in c["channels"]}
                if len(new) >= n:
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"after the mass reconnect only {len(new)} of {n} channels joined again")
                await asyncio.sleep(0.25)
            rejoined_s = time.monotonic() - fault_at
            again = per_login_join(stats, fault_unix)
            violations_after = [v for v in stats["violations"] if v["time"] >= fault_unix]
            opened = sum(1 for c in stats["connections"] if c["connection"] > before)
        finally:
            await running.stop()
    return {
        "channels": n,
        "accounts": list(accounts),
        "ideal": ideal,
        "launch_to_all_joined_s": joined_s,
        "first": first,
        "violations": violations,
        "reconnected": applied.get("applied"),
        "connections_before": conns_before,
        "connections_opened": opened,
        "reconnect_to_all_joined_s": rejoined_s,
        "again": again,
        "violations_after": violations_after,
    }


async def peer_join_run(name: str, join: str, setup: Setup, directory: Path) -> dict[str, Any]:
    """A peer joining the 2,000 channels by its own timer for a bounded window."""
    n = setup.join_channels
    chans = channels_file(directory, n)
    with twitch_simulator(n) as sim:
        running = await start_runner(name, sim, chans, join=join)
        try:
            # From its first login (twitchio says "ready" only once every initial channel is in).
            deadline = time.monotonic() + 60
            while not any(r["ok"] for r in (await admin(sim.port, "GET", "stats"))["logins"]):
                running.check()
                if time.monotonic() > deadline:
                    raise SystemExit(f"the {name} runner did not log in within 60 s")
                await asyncio.sleep(0.1)
            window_end = time.monotonic() + setup.peer_join_window
            most = 0
            while time.monotonic() < window_end:
                running.check()
                joined, stats = await joined_channels(sim.port)
                most = max(most, joined)
                await asyncio.sleep(0.5)
            joined, stats = await joined_channels(sim.port)
        finally:
            await running.stop()
    logins = sum(1 for r in stats["logins"] if r["ok"])
    # The library's own schedule for all n: tmi.js one channel per interval, twitchio 20 per 11 s.
    if join.startswith("timer:"):
        schedule = (n - 1) * float(join[6:]) / 1000
    else:
        schedule = (math.ceil(n / 20) - 1) * 11.0
    return {
        "runner": name,
        "join": join,
        "window_s": setup.peer_join_window,
        "joined": joined,
        "most_joined": max(most, joined),
        "joins_sent": len(stats["joins"]),
        "logins": logins,
        "violations": len(stats["violations"]),
        "violation_kinds": sorted({v["kind"] for v in stats["violations"]}),
        # Only a schedule that holds: a runner that broke the limit lost its connection and starts
        # over.
        "projected_all_s": schedule if not stats["violations"] else None,
    }


async def run_join(setup: Setup, runners: Sequence[str], directory: Path) -> tuple[list[Row], dict[str, Any]]:
    rows: list[Row] = []
    data: dict[str, Any] = {}
    if OURS in runners:
        for label, accounts in (
            ("anonymous readers", ()),
            ("one normal account + anonymous readers", ("benchbot",)),
        ):
            runs = []
            for i in range(setup.repeat):
                r = await join_run(setup, directory, accounts)
                runs.append(r)
                print(
                    f"join run {i + 1}/{setup.repeat} ({label}): {r['channels']} channels joined "
                    f"{r['launch_to_all_joined_s']:.2f} s after launch, per login "
                    f"{r['first']['login_to_last_join_s']:.2f} s (ideal {r['ideal']['ideal_s']:.0f} s), "
                    f"{len(r['violations'])} violations; mass reconnect of {r['reconnected']} connections: "
                    f"all joined again in {r['reconnect_to_all_joined_s']:.2f} s, "
                    f"{len(r['violations_after'])} violations",
                    flush=True,
                )
            ideal = runs[0]["ideal"]
            launch = median([r["launch_to_all_joined_s"] for r in runs])
            span = median([r["first"]["login_to_last_join_s"] for r in runs])
            first_login = median([r["first"]["first_login_after_s"] for r in runs])
            again = median([r["reconnect_to_all_joined_s"] for r in runs])
            bad = sum(len(r["violations"]) + len(r["violations_after"]) for r in runs)
            n = runs[0]["channels"]
            rows.append(
                Row(
                    f"shardrunner, {n:,} channels, {label}: launch to every channel joined",
                    f"{launch:.1f} s (runs {_runs([r['launch_to_all_joined_s'] for r in runs], '{:.1f}')}); "
                    f"{ideal['connections']} connections, {ideal['logins']} logins; first login "
                    f"{first_login:.2f} s after launch; per login, its login to its last JOIN {span:.2f} s",
                    f"ideal {ideal['windows']} x 10 s = {ideal['ideal_s']:.0f} s + login: "
                    f"{span / ideal['ideal_s']:.3f}x per login, "
                    f"{launch / (ideal['ideal_s'] + first_login):.3f}x from launch"
                    if ideal["ideal_s"]
                    else "",
                )
            )
            rows.append(
                Row(
                    f"shardrunner, {n:,} channels, {label}: mass reconnect (RECONNECT to every connection) "
                    "to every channel joined again",
                    f"{again:.1f} s (runs {_runs([r['reconnect_to_all_joined_s'] for r in runs], '{:.1f}')})",
                    f"ideal {ideal['ideal_s']:.0f} s + login: {again / max(ideal['ideal_s'], 1):.3f}x",
                )
            )
            rows.append(Row(f"shardrunner, {n:,} channels, {label}: limit violations", f"{bad}", "must be 0"))
            data[label] = runs
    peer_modes = [("tmi.js", "timer:2000"), ("tmi.js", "timer:300"), ("twitchio", "library")]
    for name, join in peer_modes:
        if name not in runners:
            continue
        r = await peer_join_run(name, join, setup, directory)
        print(f"peer join {name} {join}: {r}", flush=True)
        data[f"{name} {join}"] = r
        rows.append(
            Row(
                f"{name} ({_join_label(join)}), {setup.join_channels:,} channels",
                f"{r['joined']} joined in {r['window_s']:.0f} s (at most {r['most_joined']}), "
                f"{r['joins_sent']} JOINs, {r['logins']} login(s); "
                + (
                    f"its schedule joins all in {r['projected_all_s']:,.0f} s"
                    if r["projected_all_s"]
                    else "dropped for its JOINs over the limit, it starts again: never all"
                ),
                f"{r['violations']} violations"
                + (f" ({', '.join(r['violation_kinds'])})" if r["violations"] else ""),
            )
        )
    return rows, data


def _runs(values: Sequence[float], fmt: str) -> str:
    return ", ".join(fmt.format(v) for v in values)


def _join_label(join: str) -> str:
    if join.startswith("timer:"):
        return f"its join timer, joinInterval {join[6:]} ms"
    return "initial_channels: 20 every 11 s"


# -- the benchmark ---------------------------------------------------------------------------------
PARTS = ("throughput", "join")


async def run(
    scale: Scale,
    runners: Sequence[str] = RUNNERS,
    parts: Sequence[str] = PARTS,
    setup: Setup | None = None,
) -> Result:
    setup = setup or Setup.of(scale)
    unknown = [r for r in runners if r not in RUNNERS]
    if unknown:
        raise SystemExit(f"unknown runner {unknown[0]!r}; choose from {', '.join(RUNNERS)}")
    versions = {name: await asyncio.to_thread(runner_version, name) for name in runners}
    started = time.monotonic()
    result = Result(
        "twitch", "Twitch chat: messages per CPU-second side by side, and joins under the JOIN limit"
    )
    result.data = {"setup": setup.__dict__, "versions": versions, "machine": machine()}
    directory = Path(tempfile.mkdtemp(prefix="sr-bench-twitch-"))
    try:
        if "throughput" in parts:
            print(
                f"twitch throughput: {setup.channels} channels, {setup.rate:,.0f} lines/s for "
                f"{setup.seconds:.0f} s, runners {', '.join(runners)}, {setup.repeat} run(s) each",
                flush=True,
            )
            rows, data = await run_throughput(setup, runners, directory)
            result.rows += rows
            result.data["throughput"] = data
        if "join" in parts:
            print(f"twitch join: {setup.join_channels:,} channels", flush=True)
            rows, data = await run_join(setup, runners, directory)
            result.rows += rows
            result.data["join"] = data
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    result.seconds = time.monotonic() - started
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--scale", choices=("quick", "full"), default="full")
    parser.add_argument("--repeat", type=int, help="runs per figure (default: the scale's)")
    parser.add_argument(
        "--runners", default=",".join(RUNNERS), help="comma-separated subset of " + ",".join(RUNNERS)
    )
    parser.add_argument(
        "--only", default=",".join(PARTS), help="comma-separated subset of " + ",".join(PARTS)
    )
    parser.add_argument("--channels", type=int, help="channels of the throughput runs")
    parser.add_argument("--rate", type=float, help="generated lines per second over all channels")
    parser.add_argument("--seconds", type=float, help="seconds of traffic per throughput run")
    parser.add_argument("--join-channels", type=int, help="channels of the join runs")
    parser.add_argument("--json", action="store_true", help="print the raw data too")
    args = parser.parse_args(argv)
    scale = Scale.named(args.scale, repeat=args.repeat)
    setup = Setup.of(scale)
    changes = {k: v for k, v in (("channels", args.channels), ("rate", args.rate), ("seconds", args.seconds),
                                 ("join_channels", args.join_channels)) if v is not None}  # fmt: skip
    setup = Setup(**{**setup.__dict__, **changes})
    runners = [r.strip() for r in args.runners.split(",") if r.strip()]
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    bad = [p for p in parts if p not in PARTS]
    if bad:
        parser.error(f"unknown part {bad[0]!r}; choose from {', '.join(PARTS)}")
    m = machine()
    print(f"machine: {m['cpus']} CPUs, {m['cpu_model']}, Python {m['python']}")
    import uvloop

    result = uvloop.run(run(scale, runners, parts, setup))
    for name, version in result.data["versions"].items():
        print(f"{name}: {version}")
    print_result(result, as_json=args.json)


if __name__ == "__main__":
    main()
