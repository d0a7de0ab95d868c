"""Measures a reshard from 16 to 32 shards while a bot consumes a steady stream.

What: a live-mode simulator (its own process) lays out 16 shards of 20 small guilds (320 guilds),
with one identify bucket (max_concurrency 1) and an identify window of 0.25 s instead of Discord's
5 s, so that a run takes well under a minute (the reshard's ideal is 31 windows: 7.75 s here, 155 s
against Discord). It tracks the dispatch id of every seq of every session (--track-dispatches): one
id per world dispatch, the same in the old set's session and the new set's. `shardrunner start
--workers 2 --shards 16 --groups bench --no-auto-reshard` runs the shards; a bot process
(benchmarks/botproc.py) records every event it gets from `shardrunner.client`, after the client's
dedupe, with its receive time. Traffic: 100 dispatches per second per shard of the 16-shard layout
(1,600/s in all; the default mix, 2% DMs), whatever the number of sessions they reach: a small
fraction of what 2 workers carry (see the throughput benchmark), so that the machine's 2 cores
keep up with both sets at once; the run prints the generated and received rates to show it.

A run: the cluster is ready, the bot has joined, the traffic starts; after a warm-up, a baseline
window as long as the reshard should take (the ideal + 4 switch steps + 3 s) without a reshard;
then `shardrunner reshard --shards 32 --no-wait`, until the reshard is done (its old workers have
drained and exited); 1 s more of traffic; the traffic stops and the bot drains until it holds every
dispatch id any session received. The status command and the CPU times are sampled every 50 ms
throughout, the baseline included, so that both windows pay the same for being watched.

Figures (each a median of --repeat runs, each run with a fresh simulator and cluster):
- time to switch: from the reshard's start (the supervisor's clock, from the status command's
  `elapsed_s`) until every new shard was ready with all its guilds (the phase leaves `warming`;
  within 50 ms), against the plan's `ideal_s`, (ceil(32 / max_concurrency) - 1) x identify window.
  Beside it: the first to the last IDENTIFY of the new set at the simulator, the IDENTIFYs it refused
  (with a window this short, one that reaches it inside the window is refused with op 9 and retried
  seconds later; each is printed), and the time until the switch was over (phase `draining`: the
  new set alone; its 4 steps of --reshard-overlap add about 3 s more).
- lost: dispatch ids some session received that the bot never got. Must be 0.
- duplicates: dispatch ids the bot got more than once, after the client's dedupe. Must be 0. The
  copies the client's dedupe dropped are counted beside.
- the worst delivery gap at the bot (between two consecutive receive times) from the reshard's
  start until it was done, against the worst in an equally long window just before the reshard in
  the same run; both over the bot's whole stream and within one old shard's stream (the guilds of
  old shard k are those of new shards k and k + 16, so an event of shard s is in stream s % 16;
  each stream carries 100 events/s).
- CPU during the overlap: the supervisor's and all workers' CPU seconds per second from the
  reshard's start until the old set was closed (`draining`), against the baseline window. The bot's,
  the simulator's and the whole machine's (to show whether anything else ran) are printed too.

A loss or a duplicate is printed with its dispatch ids, the sessions and seqs that carried them,
and the reshard's phase when it happened.

Run: python -m benchmarks.reshard [--scale quick|full] [--repeat 3] [--rate 100] [--overlap 1]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import math
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from benchmarks.harness import (
    Result,
    Row,
    Scale,
    machine,
    median,
    print_result,
    running_cluster,
    sim_config,
    sim_get,
)
from benchmarks.recovery import GROUP, BotProc
from benchmarks.simproc import Sim, live_simulator
from harness.cluster import ClusterProcess
from harness.procs import REPO, cpu_of
from shardrunner.control import CommandError

SHARDS = 16
NEW_SHARDS = 32
WORKERS = 2
GUILDS_PER_SHARD = 20
MAX_CONCURRENCY = 1
RATE = 100.0  # dispatches per second per shard of the 16-shard layout
IDENTIFY_WINDOW = 0.25
OVERLAP = 1.0  # --reshard-overlap, the cluster's default
POLL_S = 0.05
CPU_KEYS = ("supervisor", "workers", "cluster", "bot", "sim", "machine")
DRAIN_TIMEOUT_S = 60.0
#: The most lost or doubled ids a run lists in detail.
SHOW = 20


@dataclass(frozen=True)
class Plan:
    rate: float
    identify_window: float
    overlap: float
    warmup: float
    post: float
    repeat: int

    @property
    def ideal(self) -> float:
        """The identify limit's time for the new set: the plan's ``ideal_s``."""
        return (math.ceil(NEW_SHARDS / MAX_CONCURRENCY) - 1) * self.identify_window

    @property
    def baseline(self) -> float:
        """Seconds of traffic without a reshard, before it: at least as long as the reshard."""
        return self.ideal + 4 * self.overlap + 3.0

    @property
    def capacity(self) -> int:
        """Records the bot's file holds: the whole run's traffic, many times over."""
        seconds = self.warmup + self.baseline + 4 * (self.ideal + 4 * self.overlap) + self.post + 120
        return int(self.rate * SHARDS * seconds) + 100_000

    @classmethod
    def of(cls, scale: Scale, rate: float | None, overlap: float | None, window: float | None) -> Plan:
        quick = scale.name == "quick"
        return cls(
            rate=rate if rate is not None else RATE,
            identify_window=window if window is not None else IDENTIFY_WINDOW,
            overlap=overlap if overlap is not None else OVERLAP,
            warmup=1.0 if quick else 2.0,
            post=1.0,
            repeat=scale.repeat,
        )


# -- what is sampled every 50 ms --------------------------------------------------------------------
@dataclass
class Sample:
    t: float  # monotonic, the midpoint of the status call
    reshard: dict[str, Any] | None
    cpu: dict[int, float]  # CPU seconds so far of every cluster process seen (exited ones: last seen)
    bot_cpu: float
    sim_cpu: float
    busy: float  # the whole machine's CPU seconds so far, every process (not idle, not iowait)


@dataclass
class Monitor:
    """Polls the status command and the CPU times of the cluster, the bot and the simulator."""

    cluster: ClusterProcess
    bot: psutil.Process
    sim: psutil.Process
    samples: list[Sample] = field(default_factory=list)
    known: dict[int, float] = field(default_factory=dict)
    task: asyncio.Future[None] | None = None

    def start(self) -> None:
        self.task = asyncio.ensure_future(self._loop())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def _loop(self) -> None:
        while True:
            await self.sample()
            await asyncio.sleep(POLL_S)

    async def sample(self) -> None:
        t0 = time.monotonic()
        try:
            status = await self.cluster.status()
        except CommandError:
            return
        t = (t0 + time.monotonic()) / 2
        self.known.update(self.cluster.cpu())
        bot = sim = math.nan
        with contextlib.suppress(psutil.Error):
            bot = cpu_of(self.bot)
        with contextlib.suppress(psutil.Error):
            sim = cpu_of(self.sim)
        self.samples.append(Sample(t, status.get("reshard"), dict(self.known), bot, sim, machine_busy()))

    @property
    def latest(self) -> dict[str, Any]:
        for s in reversed(self.samples):
            if s.reshard:
                return s.reshard
        return {}

    def at(self, t: float) -> Sample:
        """The last sample at or before ``t`` (the first one if none)."""
        i = bisect.bisect_right([s.t for s in self.samples], t) - 1
        return self.samples[max(i, 0)]

    def cpu_share(self, a: float, b: float) -> dict[str, float]:
        """CPU seconds per wall second between the samples at ``a`` and ``b``: the supervisor, the
        workers (a worker that started meanwhile counts from 0, one that exited up to its last
        sample), the two together, the bot and the simulator."""
        s, e = self.at(a), self.at(b)
        seconds = e.t - s.t
        if seconds <= 0:
            return {}
        sup = self.cluster.supervisor.pid
        workers = sum(v - s.cpu.get(pid, 0.0) for pid, v in e.cpu.items() if pid != sup)
        supervisor = e.cpu.get(sup, 0.0) - s.cpu.get(sup, 0.0)
        return {
            "supervisor": round(supervisor / seconds, 4),
            "workers": round(workers / seconds, 4),
            "cluster": round((supervisor + workers) / seconds, 4),
            "bot": round((e.bot_cpu - s.bot_cpu) / seconds, 4),
            "sim": round((e.sim_cpu - s.sim_cpu) / seconds, 4),
            # Everything the machine ran, this benchmark's processes and any other.
            "machine": round((e.busy - s.busy) / seconds, 4),
            "seconds": round(seconds, 3),
        }

    def phases(self) -> list[tuple[float, float, str]]:
        """(first sample's time, the last earlier sample's time, phase/step) at each change."""
        out: list[tuple[float, float, str]] = []
        last, prev_t = "", math.nan
        for s in self.samples:
            r = s.reshard or {}
            label = r.get("phase", "")
            if label == "switching":
                label = f"switching step {r.get('step')}"
            if label and label != last:
                out.append((s.t, prev_t, label))
                last = label
            prev_t = s.t
        return out

    def phase_at(self, t: float) -> str:
        label = "before the reshard"
        for first, _prev, name in self.phases():
            if first > t:
                break
            label = name
        return label


def machine_busy() -> float:
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


# -- the bot's record, by dispatch id ---------------------------------------------------------------
def ids_by_seq(dispatches: dict[str, Any]) -> tuple[dict[tuple[str, int], int], dict[int, list[str]]]:
    """(session, seq) -> dispatch id; and for each id, where it went ("session[:8] shard/count seq")."""
    by_seq: dict[tuple[str, int], int] = {}
    where: dict[int, list[str]] = {}
    for track in dispatches["sessions"]:
        sid, first = track["session_id"], int(track["first_seq"])
        shard, count = track["shard"]
        for i, ident in enumerate(track["ids"]):
            if ident:
                by_seq[(sid, first + i)] = ident
                where.setdefault(ident, []).append(f"{sid[:8]} {shard}/{count} seq {first + i}")
    return by_seq, where


def worst_gap(times: list[float], a: float, b: float) -> tuple[float, float]:
    """The longest time between two consecutive receive times, the second one in [a, b]; and when
    the first of the two was."""
    lo = max(bisect.bisect_left(times, a), 1)
    hi = bisect.bisect_right(times, b)
    best, at = 0.0, math.nan
    for k in range(lo, hi):
        d = times[k] - times[k - 1]
        if d > best:
            best, at = d, times[k - 1]
    return best, at


def gaps(times: list[float], streams: dict[int, list[float]], a: float, b: float) -> dict[str, Any]:
    whole, whole_at = worst_gap(times, a, b)
    per = {k: worst_gap(v, a, b) for k, v in streams.items()}
    k_max = max(per, key=lambda k: per[k][0]) if per else -1
    stream, stream_at = per.get(k_max, (0.0, math.nan))
    return {
        "whole_ms": round(whole * 1000, 1),
        "whole_at": whole_at,
        "stream_ms": round(stream * 1000, 1),
        "stream_at": stream_at,
        "stream": k_max,
    }


# -- one run ----------------------------------------------------------------------------------------
async def reshard_command(run_dir: Path) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "shardrunner", "reshard", "--shards", str(NEW_SHARDS), "--no-wait",
        "--run-dir", str(run_dir),
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise SystemExit("shardrunner reshard did not return within 60 s") from None
    return int(proc.returncode or 0), out.decode(errors="replace")


async def generated(port: int) -> int:
    return int((await sim_get(port, "stats"))["dispatches_generated"])


async def one_run(plan: Plan, tmp: Path) -> dict[str, Any]:
    extra = ["--track-dispatches", "--session-start-remaining", "1000000"]
    with live_simulator(
        SHARDS,
        max_concurrency=MAX_CONCURRENCY,
        identify_window=plan.identify_window,
        guilds_per_shard=GUILDS_PER_SHARD,
        extra=extra,
    ) as sim:
        cluster_args = ["--groups", GROUP, "--no-auto-reshard", "--reshard-overlap", str(plan.overlap)]
        async with running_cluster(
            sim.port, workers=WORKERS, shards=SHARDS, identify_window=plan.identify_window, extra=cluster_args
        ) as cluster:
            await cluster.wait_ready(timeout=120)
            bot = BotProc(cluster.run_dir, tmp / "bot.bin", plan.capacity)
            try:
                return await measured(plan, sim, cluster, bot)
            finally:
                bot.stop()


async def measured(plan: Plan, sim: Sim, cluster: ClusterProcess, bot: BotProc) -> dict[str, Any]:
    port = sim.port
    await bot.wait_ready()
    monitor = Monitor(cluster, psutil.Process(bot.proc.pid), sim.proc)
    monitor.start()
    wall_offset = time.time() - time.monotonic()
    try:
        await sim_config(port, rate=plan.rate)
        await asyncio.sleep(plan.warmup)
        g0, t_b0 = await generated(port), time.monotonic()
        await asyncio.sleep(plan.baseline)
        g1, t_b1 = await generated(port), time.monotonic()
        code, output = await reshard_command(cluster.run_dir)
        if code != 0:
            raise SystemExit(f"shardrunner reshard failed ({code}):\n{output}")
        deadline = time.monotonic() + 4 * plan.ideal + 120
        while monitor.latest.get("phase") not in ("done", "aborted"):
            if time.monotonic() > deadline:
                raise SystemExit(f"the reshard did not end within {deadline - t_b1:.0f} s: {monitor.latest}")
            if cluster.proc.poll() is not None:
                raise SystemExit(f"the cluster stopped ({cluster.proc.returncode}) during the reshard")
            await asyncio.sleep(POLL_S)
        t_end = time.monotonic()
        await asyncio.sleep(plan.post)
        await sim_config(port, rate=0)
        t_stop = time.monotonic()
        await asyncio.sleep(0.1)  # the generator ticks every 10 ms
    finally:
        await monitor.stop()

    # Drain: until the bot holds every id that some session received.
    records = bot.records
    missing: set[int] = set()
    while True:
        dispatches = await sim_get(port, "dispatches")
        by_seq, where = ids_by_seq(dispatches)
        records.read()
        got = {
            by_seq.get((records.session(sid), seq)) for sid, seq in zip(records.sid, records.seq, strict=True)
        }
        missing = set(where) - got
        if not missing or time.monotonic() > t_stop + DRAIN_TIMEOUT_S:
            break
        await asyncio.sleep(0.5)
    drained_s = time.monotonic() - t_stop
    await asyncio.sleep(0.5)  # a late second copy would come now
    stats = await sim_get(port, "stats")
    await bot.terminate()
    records.read(final=True)
    dispatches = await sim_get(port, "dispatches")
    by_seq, where = ids_by_seq(dispatches)
    return account(plan, monitor, records, bot, by_seq, where, stats, (t_b0, t_b1, g0, g1, t_end), output,
                   wall_offset, drained_s)  # fmt: skip


def account(
    plan: Plan,
    monitor: Monitor,
    records: Any,
    bot: BotProc,
    by_seq: dict[tuple[str, int], int],
    where: dict[int, list[str]],
    stats: dict[str, Any],
    marks: tuple[float, float, int, int, float],
    command_output: str,
    wall_offset: float,
    drained_s: float,
) -> dict[str, Any]:
    t_b0, t_b1, g0, g1, t_end = marks
    final = monitor.latest
    first = next((s for s in monitor.samples if s.reshard), None)
    if first is None or not final:
        raise SystemExit("the status command never showed the reshard")
    assert first.reshard is not None
    started = first.t - float(first.reshard["elapsed_s"])
    phases = monitor.phases()

    def when(label: str) -> float:
        """Seconds from the start until the phase was first seen (the midpoint with the sample before)."""
        for t, prev, name in phases:
            if name.startswith(label):
                return (t + prev) / 2 - started if not math.isnan(prev) else t - started
        return math.nan

    to_switch = when("switching")
    to_switched = when("draining")
    to_done = when("done")
    aborted = final.get("phase") == "aborted"

    # The bot's events: receive times, and each dispatch id's copies.
    n = len(records)
    times = list(records.t)
    streams: dict[int, list[float]] = {}
    copies: dict[int, list[int]] = {}
    unknown = 0
    for k in range(n):
        streams.setdefault(records.shard[k] % SHARDS, []).append(records.t[k])
        ident = by_seq.get((records.session(records.sid[k]), records.seq[k]))
        if ident is None:
            unknown += 1  # a session's own dispatch (READY, GUILD_CREATE of its start): id 0
            continue
        copies.setdefault(ident, []).append(k)
    lost = sorted(set(where) - set(copies))
    doubled = sorted(i for i, ks in copies.items() if len(ks) > 1)
    delivered_ids = sorted(copies)
    first_t = {i: records.t[ks[0]] for i, ks in copies.items()}

    def dated(ident: int) -> float:
        """When a lost id's neighbours reached the bot (the nearest delivered ids below and above)."""
        j = bisect.bisect_left(delivered_ids, ident)
        near = [first_t[delivered_ids[x]] for x in (j - 1, j) if 0 <= x < len(delivered_ids)]
        return sum(near) / len(near) if near else math.nan

    lost_detail = [
        {
            "id": i,
            "sessions": where[i],
            "about_s": round(dated(i) - started, 3),
            "phase": monitor.phase_at(dated(i)),
        }
        for i in lost[:SHOW]
    ]
    doubled_detail = [
        {
            "id": i,
            "copies": [
                {
                    "session": records.session(records.sid[k])[:8],
                    "shard": records.shard[k],
                    "seq": records.seq[k],
                    "at_s": round(records.t[k] - started, 3),
                    "phase": monitor.phase_at(records.t[k]),
                    "redelivered": bool(records.redelivered[k]),
                }
                for k in copies[i]
            ],
            "sessions": where[i],
        }
        for i in doubled[:SHOW]
    ]

    # Gaps: the reshard's window against as long a one just before it.
    window = (t_end if math.isnan(to_done) else started + to_done) - started
    length = min(window, t_b1 - t_b0)
    during = gaps(times, streams, started, started + window)
    before = gaps(times, streams, t_b1 - length, t_b1)
    for g, base in ((during, started), (before, started)):
        for key in ("whole_at", "stream_at"):
            g[key] = round(g[key] - base, 3) if not math.isnan(g[key]) else None
    during["whole_phase"] = monitor.phase_at(started + (during["whole_at"] or 0.0))
    during["stream_phase"] = monitor.phase_at(started + (during["stream_at"] or 0.0))

    # CPU: the overlap (start until the old set closed) against the baseline window.
    overlap_end = started + (to_switched if not math.isnan(to_switched) else window)
    cpu_overlap = monitor.cpu_share(started, overlap_end)
    cpu_before = monitor.cpu_share(t_b0, t_b1)
    cpu_warming = monitor.cpu_share(started, started + to_switch) if not math.isnan(to_switch) else {}
    cpu_switch = (
        monitor.cpu_share(started + to_switch, overlap_end)
        if not (math.isnan(to_switch) or math.isnan(to_switched))
        else {}
    )

    # Did the machine keep up? Generated and received per second in the baseline.
    in_base = bisect.bisect_right(times, t_b1) - bisect.bisect_left(times, t_b0)
    generated_per_s = (g1 - g0) / (t_b1 - t_b0)
    received_per_s = in_base / (t_b1 - t_b0)

    # The simulator's view of the identifies.
    ids_new = sorted(
        r["time"] for r in stats["identifies"] if r["accepted"] and int(r["shard"][1]) == NEW_SHARDS
    )
    ids_old = [r for r in stats["identifies"] if r["accepted"] and int(r["shard"][1]) == SHARDS]
    refused = [r for r in stats["identifies"] if not r["accepted"]]
    first_identify = ids_new[0] - wall_offset - started if ids_new else math.nan
    identifies = [
        [round(r["time"] - wall_offset - started, 3), f"{r['shard'][0]}/{r['shard'][1]}", r["reason"]]
        for r in stats["identifies"]
        if int(r["shard"][1]) == NEW_SHARDS or not r["accepted"]
    ]
    return {
        "phase": final.get("phase"),
        "outcome": final.get("outcome"),
        "aborted": aborted,
        "ideal_s": float(final.get("ideal_s", math.nan)),
        "to_switch_s": round(to_switch, 3),
        "to_switched_s": round(to_switched, 3),
        "to_done_s": round(to_done, 3),
        "ratio": round(to_switch / float(final.get("ideal_s") or math.nan), 3),
        "first_identify_at_s": round(first_identify, 3),
        "identify_span_s": round(ids_new[-1] - ids_new[0], 3) if len(ids_new) > 1 else None,
        "identifies_new": len(ids_new),
        "identifies_old": len(ids_old),
        "identifies_refused": len(refused),
        "identifies": identifies,
        "resumes": len(stats["resumes"]),
        "violations": stats["violations"],
        "withheld": final.get("withheld"),
        "phases": [[round(t - started, 3), name] for t, _p, name in phases],
        "dispatches": len(where),
        # Every id the world made reached some session (else it fell between the sets at the gateway).
        "generated": int(stats["dispatches_generated"]),
        "bot_events": n,
        "bot_session_only_events": unknown,
        "lost": len(lost),
        "lost_ids": lost_detail,
        "duplicates": len(doubled),
        "duplicate_ids": doubled_detail,
        "redelivered": int(sum(records.redelivered)),
        "dedupe_dropped": (bot.done or {}).get("cross_duplicates"),
        "dedupe_dropped_same_set": records.dropped_duplicates(),
        "client_gaps": bot.gaps,
        "bot_errors": bot.errors,
        "drained_s": round(drained_s, 2),
        "window_s": round(window, 3),
        "baseline_window_s": round(length, 3),
        "gap_during": during,
        "gap_before": before,
        "cpu_overlap": cpu_overlap,
        "cpu_before": cpu_before,
        "cpu_warming": cpu_warming,
        "cpu_switch": cpu_switch,
        "generated_per_s": round(generated_per_s, 1),
        "received_per_s": round(received_per_s, 1),
        "command_output": command_output.strip().splitlines(),
    }


# -- the suite's interface ---------------------------------------------------------------------------
async def run(
    scale: Scale,
    *,
    rate: float | None = None,
    overlap: float | None = None,
    identify_window: float | None = None,
    verbose: bool = True,
) -> Result:
    started = time.monotonic()
    plan = Plan.of(scale, rate, overlap, identify_window)

    def say(text: str) -> None:
        if verbose:
            print(text, flush=True)

    say(
        f"reshard: {SHARDS} -> {NEW_SHARDS} shards on {WORKERS} + {WORKERS} workers, "
        f"{plan.rate:g} dispatches/s per shard ({plan.rate * SHARDS:,.0f}/s), identify window "
        f"{plan.identify_window:g} s, max_concurrency {MAX_CONCURRENCY} (ideal {plan.ideal:.2f} s), "
        f"overlap {plan.overlap:g} s, baseline {plan.baseline:.2f} s"
    )
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="sr-reshard-") as tmpdir:
        for i in range(plan.repeat):
            tag = f"run {i + 1}/{plan.repeat}"
            r = await one_run(plan, Path(tmpdir))
            runs.append(r)
            d, b, co, cb = r["gap_during"], r["gap_before"], r["cpu_overlap"], r["cpu_before"]
            say(
                f"{tag} {r['phase']}: switch began {r['to_switch_s']:.2f} s after the start (ideal "
                f"{r['ideal_s']:.2f} s: {r['ratio']:.2f}x; new identifies {r['first_identify_at_s']:.2f} s "
                f"to +{r['identify_span_s']} s), new set alone at {r['to_switched_s']:.2f} s, done at "
                f"{r['to_done_s']:.2f} s; {r['withheld']:,} events held back"
            )
            say(
                f"{tag} {r['dispatches']:,} dispatches ({r['generated']:,} generated): lost {r['lost']}, "
                f"duplicates {r['duplicates']} (the client's dedupe dropped {r['dedupe_dropped']:,} copies); "
                f"generated {r['generated_per_s']:,.0f}/s, bot received {r['received_per_s']:,.0f}/s in the "
                f"baseline; drained {r['drained_s']:.2f} s after the traffic stopped"
            )
            say(
                f"{tag} worst gap during the reshard {d['whole_ms']:.0f} ms (at {d['whole_at']} s, "
                f"{d['whole_phase']}), in one stream {d['stream_ms']:.0f} ms (stream {d['stream']}, at "
                f"{d['stream_at']} s, {d['stream_phase']}); before, over {r['baseline_window_s']:.1f} s: "
                f"{b['whole_ms']:.0f} ms, in one stream {b['stream_ms']:.0f} ms"
            )
            say(
                f"{tag} CPU during the overlap ({co.get('seconds', 0):.1f} s): supervisor "
                f"{co.get('supervisor', math.nan):.3f} + workers {co.get('workers', math.nan):.3f} = "
                f"{co.get('cluster', math.nan):.3f} CPU-s/s, before {cb.get('supervisor', math.nan):.3f} + "
                f"{cb.get('workers', math.nan):.3f} = {cb.get('cluster', math.nan):.3f}; bot "
                f"{co.get('bot', math.nan):.3f} / {cb.get('bot', math.nan):.3f}, simulator "
                f"{co.get('sim', math.nan):.3f} / {cb.get('sim', math.nan):.3f}; the whole machine "
                f"{co.get('machine', math.nan):.2f} / {cb.get('machine', math.nan):.2f} of "
                f"{psutil.cpu_count()} cores"
            )
            for problem in ("lost_ids", "duplicate_ids", "client_gaps", "bot_errors"):
                if r[problem]:
                    say(f"{tag} {problem}: {r[problem]}")
            for v in r["violations"]:
                say(f"{tag} simulator violation {v['kind']}: {v['detail']}")
            if r["identifies_refused"] or r["resumes"]:
                refused = [f"{shard} at {t} s ({why})" for t, shard, why in r["identifies"] if why]
                say(
                    f"{tag} {r['identifies_refused']} identifies refused ({', '.join(refused)}), "
                    f"{r['resumes']} resumes"
                )

    def med(key: str, sub: str | None = None) -> float:
        values = [(r[key] or {}).get(sub) if sub else r[key] for r in runs]
        return median([float(v) for v in values if v is not None and not math.isnan(float(v))])

    ideal = med("ideal_s")
    to_switch = med("to_switch_s")
    lost = sum(r["lost"] for r in runs)
    dups = sum(r["duplicates"] for r in runs)
    aborted = sum(r["aborted"] for r in runs)
    each = ", ".join(f"{r['to_switch_s']:.2f}" for r in runs)
    result = Result(name="reshard", title=f"Resharding {SHARDS} -> {NEW_SHARDS} shards under traffic")
    result.rows.append(
        Row(
            f"time from start to switch ({plan.rate * SHARDS:,.0f} events/s, identify window "
            f"{plan.identify_window:g} s, max_concurrency {MAX_CONCURRENCY})",
            f"{to_switch:.2f} s (runs: {each}); new set "
            f"alone after {med('to_switched_s'):.2f} s, done after {med('to_done_s'):.2f} s"
            + (f" ({aborted} runs aborted)" if aborted else ""),
            f"ideal {ideal:.2f} s: {to_switch / ideal:.2f}x",
        )
    )
    refused = sum(r["identifies_refused"] for r in runs)
    result.rows.append(
        Row(
            "the new set's identifies, first to last (simulator)",
            f"{med('identify_span_s'):.2f} s for {NEW_SHARDS}, the first {med('first_identify_at_s'):.2f} s "
            f"after the start; {refused} refused for the rate limit in {len(runs)} runs",
            f"floor {ideal:.2f} s: {med('identify_span_s') / ideal:.3f}x",
        )
    )
    result.rows.append(
        Row(
            "events lost / delivered twice, by dispatch id",
            f"lost {lost}, duplicates {dups} of {med('dispatches'):,.0f} dispatches a run; the client's "
            f"dedupe dropped {med('dedupe_dropped'):,.0f} cross-set copies",
            "must be 0 and 0",
        )
    )
    result.rows.append(
        Row(
            "worst delivery gap at the bot, during the reshard / as long a window before",
            f"{med('gap_during', 'whole_ms'):.0f} ms / {med('gap_before', 'whole_ms'):.0f} ms; within one "
            f"old shard's stream {med('gap_during', 'stream_ms'):.0f} ms / "
            f"{med('gap_before', 'stream_ms'):.0f} ms",
            "",
        )
    )
    result.rows.append(
        Row(
            "CPU of the supervisor + workers, during the overlap / before",
            f"{med('cpu_overlap', 'cluster'):.3f} / {med('cpu_before', 'cluster'):.3f} CPU-s per s "
            f"(supervisor {med('cpu_overlap', 'supervisor'):.3f} / {med('cpu_before', 'supervisor'):.3f})",
            f"{med('cpu_overlap', 'cluster') / med('cpu_before', 'cluster'):.2f}x",
        )
    )
    result.data = {
        "machine": machine(),
        "settings": {
            "shards": SHARDS,
            "new_shards": NEW_SHARDS,
            "workers": WORKERS,
            "guilds": SHARDS * GUILDS_PER_SHARD,
            "rate_per_shard": plan.rate,
            "offered_per_s": plan.rate * SHARDS,
            "identify_window_s": plan.identify_window,
            "max_concurrency": MAX_CONCURRENCY,
            "overlap_s": plan.overlap,
            "warmup_s": plan.warmup,
            "baseline_s": plan.baseline,
            "repeat": plan.repeat,
        },
        "ideal_s": ideal,
        "to_switch_s": to_switch,
        "ratio": to_switch / ideal,
        "to_switched_s": med("to_switched_s"),
        "to_done_s": med("to_done_s"),
        "identify_span_s": med("identify_span_s"),
        "first_identify_at_s": med("first_identify_at_s"),
        "identifies_refused": refused,
        "lost": lost,
        "duplicates": dups,
        "dedupe_dropped": med("dedupe_dropped"),
        "gap_during_ms": med("gap_during", "whole_ms"),
        "gap_before_ms": med("gap_before", "whole_ms"),
        "stream_gap_during_ms": med("gap_during", "stream_ms"),
        "stream_gap_before_ms": med("gap_before", "stream_ms"),
        "cpu_overlap": {k: med("cpu_overlap", k) for k in CPU_KEYS},
        "cpu_before": {k: med("cpu_before", k) for k in CPU_KEYS},
        "cpu_warming": {k: med("cpu_warming", k) for k in ("supervisor", "workers", "cluster")},
        "cpu_switch": {k: med("cpu_switch", k) for k in ("supervisor", "workers", "cluster")},
        "generated_per_s": med("generated_per_s"),
        "received_per_s": med("received_per_s"),
        "runs": runs,
    }
    result.seconds = time.monotonic() - started
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--scale", choices=["quick", "full"], default="full")
    parser.add_argument("--repeat", type=int, help="runs per figure (default: by scale)")
    parser.add_argument("--rate", type=float, help=f"dispatches per second per shard (default {RATE:g})")
    parser.add_argument("--overlap", type=float, help=f"--reshard-overlap (default {OVERLAP:g} s)")
    parser.add_argument(
        "--identify-window",
        type=float,
        help=f"seconds, the simulator's and the cluster's (default {IDENTIFY_WINDOW:g})",
    )
    parser.add_argument("--json", action="store_true", help="print the result's data as JSON at the end")
    args = parser.parse_args(argv)
    if args.rate is not None and args.rate <= 0:
        parser.error("--rate must be above 0")
    if args.overlap is not None and args.overlap <= 0:
        parser.error("--overlap must be above 0")
    if args.identify_window is not None and args.identify_window <= 0:
        parser.error("--identify-window must be above 0")
    scale = Scale.named(args.scale, repeat=args.repeat)
    m = machine()
    print(f"machine: {m['cpus']} CPUs, {m['memory_gib']} GiB, Python {m['python']}")
    import uvloop

    result = uvloop.run(
        run(scale, rate=args.rate, overlap=args.overlap, identify_window=args.identify_window)
    )
    print_result(result, f"medians of {scale.repeat}", args.json)


if __name__ == "__main__":
    main()
