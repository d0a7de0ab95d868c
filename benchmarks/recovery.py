"""Measures two recoveries under a steady load: a bot killed and restarted later, and a worker killed.

What: a replay-mode simulator (its own process) sends each of 4 shards ~1 KB MESSAGE_CREATEs
(zlib-stream) at a fixed rate (--rate per shard, 2,000/s by default: 8,000/s in all); `shardrunner
start` runs the shards on 2 workers with a durable consumer group declared up front (`--groups
bench`) and a queue large enough for the outage (`--queue-events`); bots are processes of their own
(benchmarks/botproc.py, member id ``bench-bot``) that record every (session, seq) they get with its
receive time, in a file that survives SIGKILL. A background task samples the simulator's newest seq
per session every 50 ms, which dates every event (when the gateway produced it): an event's age is
its receive time minus that.

1. Bot down then back: the bot consumes for a warm-up, is killed (SIGKILL), stays down --down
   seconds (30 s full, 5 s quick), then a new bot process starts (same member id: it takes over at
   once). Figures: backlog at restart (events produced before the new bot started that it received:
   what the group held for it; the status command's count is in the data too), time to catch up
   (from its first event to the live edge: the first event after which every event it gets is at
   most 0.25 s old), the replay rate (events per second it received until then), start-up (spawn to
   first event), and the pauses of 0.5 s or more while it caught up (there should be none: this
   benchmark found ~1 s pauses caused by ZeroMQ wake-ups that a send had swallowed, since fixed in
   the client and the worker's bus).
2. Worker killed: while the bot consumes, one of the 2 workers is killed (SIGKILL). Figures: time
   from the kill until the status command (polled every 25 ms) shows a new worker in that slot with
   all its shards ready; when the RESUMEs reached the gateway; identifies and resumes the simulator
   recorded after the kill (resumes only, expected), the largest resume replay against the replay
   buffer; how long the bot got those shards' events late.

Both end the same way: the traffic stops (rate 0), the bots drain until they hold every seq from 1
to the last of every session the run's shards had (the simulator's stats, so a session that had to
identify anew counts too), then loss = expected - unique (session, seq) over every bot of the run.
It must be 0. Duplicates are reported: across the two bot processes (a SIGKILL leaves up to 50 ms of
processed events unacknowledged; they come again, marked redelivered), and those the client's dedupe
dropped (a worker crash makes the gateway replay what the bot already had). Each run has a fresh
cluster (fresh sessions, whose scripts start at the beginning); medians of --repeat runs.

The simulator's replay buffer (--replay-buffer, 10,000 dispatches per session by default, kept):
after a worker crash the replacement resumes each shard from min(its last reported seq, the oldest
seq a group had not acknowledged - 1; workers report every 0.5 s); the gateway replays from there,
including what it produced while the shard had no connection (the supervisor's 1 s backoff, the
worker's start, the connect: about 1.7 s). At 2,000/s per shard that is about 4,000 dispatches, well
within 10,000; the largest replay is reported against the buffer, and a warning is printed past
half of it. (The simulator checks a scripted session's RESUME against the last seq it sent, so the
outage itself does not count there; a gateway that counts what it produced, as the simulator's live
sessions do, would need more than 10,000 from about 5,000/s per shard.) The bot-down scenario
resumes nothing, so its backlog lives in the group's queue, not in the gateway's buffer. The script
per shard lasts the longest run: rate x (warm-up + down + 30 s or more of catch-up + margin); a
session that reaches its end is flagged (nothing more would be sent).

Run: python -m benchmarks.recovery [--scale quick|full] [--repeat 3] [--rate 2000] [--down 30]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import math
import signal
import tempfile
import time
from array import array
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from benchmarks.botproc import HEADER, HEADER_SIZE, RECORD
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
from benchmarks.simproc import running_simulator
from harness.bots import BotProcess
from harness.cluster import ClusterProcess
from harness.procs import cpu_of, own_cpu
from shardrunner.control import CommandError

SHARDS = 4
WORKERS = 2
GROUP = "bench"
MEMBER = "bench-bot"
#: An event at most this old (receive time - the time the gateway produced it) is at the live edge.
LIVE_AGE_S = 0.25
SAMPLE_EVERY_S = 0.05
STATUS_EVERY_S = 0.025
REPLAY_BUFFER = 10_000
#: The first seq of a script: READY is 1, the shard's one GUILD_CREATE 2.
SCRIPT_FIRST_SEQ = 3


@dataclass(frozen=True)
class Plan:
    rate: float  # events per second per shard
    down: float  # seconds the bot is down
    warmup: float  # seconds of live traffic before a kill
    settle: float  # seconds of live traffic after the bot caught up
    post: float  # seconds of live traffic after the worker's shards are ready again
    catch_up_cap: float  # longest wait for the restarted bot to catch up
    replay_buffer: int
    repeat: int

    @property
    def traffic_s(self) -> float:
        """The longest a run sends: what the script per shard must last."""
        return self.warmup + self.down + self.catch_up_cap + self.settle + 10.0

    @property
    def events(self) -> int:
        """Script length per shard."""
        return int(self.rate * self.traffic_s) + 1000

    @property
    def queue_events(self) -> int:
        """Per group per worker: every shard's traffic for the outage and a margin, as if on one worker."""
        return int(self.rate * SHARDS * (self.down + 30))

    @classmethod
    def of(cls, scale: Scale, rate: float | None, down: float | None, replay_buffer: int) -> Plan:
        quick = scale.name == "quick"
        down = down if down is not None else (5.0 if quick else 30.0)
        return cls(
            rate=rate if rate is not None else 2000.0,
            down=down,
            warmup=2.0 if quick else 5.0,
            settle=1.0 if quick else 2.0,
            post=2.0 if quick else 5.0,
            catch_up_cap=max(20.0, down),
            replay_buffer=replay_buffer,
            repeat=scale.repeat,
        )


# -- what a bot recorded -----------------------------------------------------------------------------
class Records:
    """Reads a bot's record file (benchmarks/botproc.py) as it grows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = HEADER_SIZE
        self.pending: bytes | None = None  # the newest record, read once: accepted when read again unchanged
        self.t = array("d")
        self.seq = array("I")
        self.shard = array("H")
        self.sid = array("H")
        self.redelivered = bytearray()
        self.sessions: dict[int, str] = {}
        self.by_session: dict[str, set[int]] = {}
        self.last_by_shard: dict[int, int] = {}  # shard -> index of its newest record
        self.repeated = 0  # records of a (session, seq) this bot had already recorded
        self.torn = 0

    def __len__(self) -> int:
        return len(self.t)

    def session(self, index: int) -> str:
        if index not in self.sessions:
            with contextlib.suppress(OSError), open(str(self.path) + ".sessions") as f:
                for line in f:
                    i, _, sid = line.strip().partition(" ")
                    self.sessions[int(i)] = sid
        return self.sessions.get(index, f"?{index}")

    def dropped_duplicates(self) -> int:
        with open(self.path, "rb") as f:
            _magic, dups, _cap = HEADER.unpack(f.read(HEADER.size))
        return int(dups)

    def read(self, *, final: bool = False) -> int:
        """Take in the records written since the last read; ``final`` once the writer is gone."""
        size = RECORD.size
        added = 0
        with open(self.path, "rb") as f:
            while True:
                f.seek(self.offset)
                data = f.read(size * 65536)
                n = len(data) // size
                valid = 0
                for rec in RECORD.iter_unpack(data[: n * size]):
                    if rec[0] == 0.0:
                        break
                    valid += 1
                stopped = valid < n or n == 0
                if stopped and not final and valid:
                    # The writer may be in the middle of the newest record (its time is written first).
                    last = data[(valid - 1) * size : valid * size]
                    if last != self.pending:
                        self.pending = last
                        valid -= 1
                    else:
                        self.pending = None
                for t, seq, shard, sid, redelivered in RECORD.iter_unpack(data[: valid * size]):
                    if seq == 0:  # killed in the middle of writing it
                        self.torn += 1
                        continue
                    session = self.session(sid)
                    seen = self.by_session.setdefault(session, set())
                    if seq in seen:
                        self.repeated += 1
                    seen.add(seq)
                    self.last_by_shard[shard] = len(self.t)
                    self.t.append(t)
                    self.seq.append(seq)
                    self.shard.append(shard)
                    self.sid.append(sid)
                    self.redelivered.append(redelivered)
                self.offset += valid * size
                added += valid
                if stopped:
                    return added


class BotProc(BotProcess):
    """A bot process (benchmarks/botproc.py) and what it printed."""

    def __init__(self, run_dir: Path, out: Path, capacity: int) -> None:
        self.records = Records(out)
        self.errors: list[str] = []
        self.done: dict[str, Any] | None = None
        args = ["--out", str(out), "--capacity", str(capacity), "--group", GROUP, "--member", MEMBER]
        super().__init__("benchmarks.botproc", run_dir, *args)

    def on_record(self, record: dict[str, Any]) -> None:
        if "error" in record:
            self.errors.append(record["error"])
        elif record.get("done"):
            self.done = record
        else:
            super().on_record(record)


# -- the simulator's clock -----------------------------------------------------------------------------
class Sampler:
    """Polls /_sim/stats: the newest seq produced for each session of this run, over time.

    A run's sessions are those identified since it started. ``produced_at(session, seq)`` dates an
    event by interpolating between the samples (monotonic clock, the midpoint of each request).
    """

    def __init__(self, port: int, since_wall: float) -> None:
        self.port = port
        self.since_wall = since_wall
        self.points: dict[str, tuple[list[float], list[int]]] = {}
        self._task: asyncio.Future[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def run_sessions(self, stats: dict[str, Any]) -> dict[str, int]:
        """session id -> shard, for the sessions identified since the run started."""
        return {
            r["session_id"]: int(r["shard"][0])
            for r in stats["identifies"]
            if r["accepted"] and r["time"] >= self.since_wall
        }

    async def sample(self, http: Any) -> None:
        t0 = time.monotonic()
        async with http.get(f"http://127.0.0.1:{self.port}/_sim/stats") as r:
            r.raise_for_status()
            stats = await r.json()
        t = (t0 + time.monotonic()) / 2
        mine = self.run_sessions(stats)
        for s in stats["sessions"]:
            if s["session_id"] in mine and s["ended"] is None:
                ts, seqs = self.points.setdefault(s["session_id"], ([], []))
                seq = int(s["last_seq"])
                if seqs and seq < seqs[-1]:
                    continue
                ts.append(t)
                seqs.append(seq)

    async def _loop(self) -> None:
        import aiohttp

        async with aiohttp.ClientSession() as http:
            while True:
                with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                    await self.sample(http)
                await asyncio.sleep(SAMPLE_EVERY_S)

    def latest(self) -> dict[str, int]:
        return {sid: seqs[-1] for sid, (_ts, seqs) in self.points.items() if seqs}

    def produced_at(self, session: str, seq: int) -> float:
        ts, seqs = self.points.get(session, ([], []))
        if not ts:
            return math.nan
        i = bisect.bisect_left(seqs, seq)
        if i == 0:
            return ts[0]
        if i == len(seqs):
            return ts[-1]
        s0, s1, t0, t1 = seqs[i - 1], seqs[i], ts[i - 1], ts[i]
        return t0 + (seq - s0) / (s1 - s0) * (t1 - t0)


# -- common steps ----------------------------------------------------------------------------------
def cluster_extra(plan: Plan) -> list[str]:
    return [
        "--groups", GROUP, "--queue-events", str(plan.queue_events),
        "--queue-bytes", str(plan.queue_events * 4096),
    ]  # fmt: skip


async def start_traffic(port: int, plan: Plan, bot: BotProc, sampler: Sampler) -> float:
    await bot.wait_ready()
    sampler.start()
    await sim_config(port, rate=plan.rate)
    return time.monotonic()


async def drain(port: int, sampler: Sampler, bots: list[BotProc], timeout: float = 60) -> dict[str, Any]:
    """Stop the traffic and wait until the bots hold every seq of every session of the run."""
    await sim_config(port, rate=0)
    stopped = time.monotonic()
    await asyncio.sleep(0.1)  # the simulator's ticker runs every 10 ms
    await sampler.stop()
    deadline = time.monotonic() + timeout
    missing = -1
    while True:
        stats = await sim_get(port, "stats")
        sessions = {s["session_id"]: s for s in stats["sessions"]}
        mine = sampler.run_sessions(stats)
        expected = {sid: int(sessions[sid]["last_seq"]) for sid in mine if sid in sessions}
        for bot in bots:
            bot.records.read(final=bot.proc.poll() is not None)
        missing = 0
        for sid, last in expected.items():
            got: set[int] = set()
            for bot in bots:
                got |= bot.records.by_session.get(sid, set())
            missing += last - sum(1 for s in got if 1 <= s <= last)
        if missing == 0 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.25)
    return {
        "stats": stats,
        "sessions": mine,
        "expected": expected,
        "drain_s": time.monotonic() - stopped,
        "drained": missing == 0,
    }


def account(end: dict[str, Any], bots: list[BotProc], plan: Plan) -> dict[str, Any]:
    """Loss and duplicates, exactly, from the simulator's stats and what the bots recorded."""
    stats, expected, shard_of = end["stats"], end["expected"], end["sessions"]
    sessions = {s["session_id"]: s for s in stats["sessions"]}
    lost: dict[str, list[int]] = {}
    lost_total = 0
    for sid, last in expected.items():
        got: set[int] = set()
        for bot in bots:
            got |= bot.records.by_session.get(sid, set())
        miss = [s for s in range(1, last + 1) if s not in got]
        if miss:
            lost[sid] = miss
            lost_total += len(miss)
    across = 0
    across_marked = 0
    for i, later in enumerate(bots):
        earlier_seen: dict[str, set[int]] = {}
        for bot in bots[:i]:
            for sid, seqs in bot.records.by_session.items():
                earlier_seen.setdefault(sid, set()).update(seqs)
        if not earlier_seen:
            continue
        r = later.records
        counted: set[tuple[int, int]] = set()
        for k in range(len(r)):
            sid = r.session(r.sid[k])
            if r.seq[k] in earlier_seen.get(sid, ()) and (r.sid[k], r.seq[k]) not in counted:
                counted.add((r.sid[k], r.seq[k]))
                across += 1
                across_marked += r.redelivered[k]
    by_shard: dict[int, list[str]] = {}
    for sid, shard in shard_of.items():
        by_shard.setdefault(shard, []).append(sid)
    script_end = SCRIPT_FIRST_SEQ + plan.events - 1
    return {
        "expected": sum(expected.values()),
        "received_unique": sum(expected.values()) - lost_total,
        "lost": lost_total,
        "lost_seqs": {sid: _ranges(seqs)[:20] for sid, seqs in lost.items()},
        "duplicates_across_bots": across,
        "duplicates_across_bots_marked_redelivered": across_marked,
        "duplicates_within_a_bot": sum(b.records.repeated for b in bots),
        "duplicates_dropped_by_client": sum(
            (b.done or {}).get("duplicates", b.records.dropped_duplicates()) for b in bots
        ),
        "redelivered_marked": sum(sum(b.records.redelivered) for b in bots),
        "gaps": [g for b in bots for g in b.gaps],
        "bot_errors": [e for b in bots for e in b.errors],
        "torn_records": sum(b.records.torn for b in bots),
        "sessions": len(expected),
        "session_changes": sum(len(v) - 1 for v in by_shard.values()),
        "ended_sessions": {sid: sessions[sid]["ended"] for sid in expected if sessions[sid]["ended"]},
        "unsent": {
            sid: int(sessions[sid]["last_seq"]) - int(sessions[sid]["last_sent_seq"])
            for sid in expected
            if sessions[sid]["last_seq"] != sessions[sid]["last_sent_seq"]
        },
        "script_ran_out": [sid for sid, last in expected.items() if last >= script_end],
        "drain_s": round(end["drain_s"], 2),
        "drained": end["drained"],
    }


def _ranges(seqs: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s in seqs:
        if out and s == out[-1][1] + 1:
            out[-1] = (out[-1][0], s)
        else:
            out.append((s, s))
    return out


def ages(records: Records, sampler: Sampler, indices: range | list[int]) -> list[float]:
    return [
        records.t[k] - sampler.produced_at(records.session(records.sid[k]), records.seq[k]) for k in indices
    ]


def cpu_snapshot(cluster: ClusterProcess, procs: dict[str, psutil.Process]) -> dict[str, float]:
    """CPU seconds so far: the workers (summed), the supervisor, the named processes, this process."""
    by_pid = cluster.cpu()
    out = {
        "workers": sum(v for pid, v in by_pid.items() if pid != cluster.supervisor.pid),
        "supervisor": by_pid.get(cluster.supervisor.pid, 0.0),
        "harness": own_cpu(),
    }
    for name, proc in procs.items():
        with contextlib.suppress(psutil.Error):
            out[name] = cpu_of(proc)
    return out


# -- 1. bot down, then back ---------------------------------------------------------------------------
async def wait_caught_up(bot: BotProc, sampler: Sampler, deadline: float) -> float | None:
    """Until the newest event of every shard the bot got is at most LIVE_AGE_S old (approximate: the
    figure is computed afterwards from every record)."""
    r = bot.records
    while time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        r.read()
        if len(r.last_by_shard) < SHARDS:
            continue
        newest = [r.last_by_shard[s] for s in range(SHARDS)]
        if all(a <= LIVE_AGE_S for a in ages(r, sampler, newest)):
            return time.monotonic()
    return None


@dataclass
class Scenario:
    """A cluster under steady traffic with one bot past its warm-up (see `scenario`)."""

    cluster: ClusterProcess
    sampler: Sampler
    bots: list[BotProc]
    traffic: float  # when the traffic started (time.monotonic())
    capacity: int  # records a bot's file holds


@contextlib.asynccontextmanager
async def scenario(port: int, plan: Plan, first_file: Path) -> AsyncIterator[Scenario]:
    """A fresh cluster, a first bot, the traffic on, and the warm-up done; every bot and the
    sampler stopped on the way out."""
    await sim_config(port, rate=0)
    sampler = Sampler(port, time.time())
    capacity = SHARDS * (plan.events + 100)
    bots: list[BotProc] = []
    async with running_cluster(port, workers=WORKERS, shards=SHARDS, extra=cluster_extra(plan)) as cluster:
        try:
            await cluster.wait_ready(timeout=120)
            bots.append(BotProc(cluster.run_dir, first_file, capacity))
            traffic = await start_traffic(port, plan, bots[0], sampler)
            await asyncio.sleep(plan.warmup)
            bots[0].records.read()
            if not len(bots[0].records):
                raise SystemExit("the bot got no events during the warm-up")
            yield Scenario(cluster, sampler, bots, traffic, capacity)
        finally:
            for bot in bots:
                bot.kill()
            await sampler.stop()


async def bot_down_run(port: int, sim: psutil.Process, plan: Plan, tmp: Path) -> dict[str, Any]:
    async with scenario(port, plan, tmp / "first.bin") as sc:
        cluster, sampler, bots, traffic = sc.cluster, sc.sampler, sc.bots, sc.traffic
        first = bots[0]
        first.kill()
        assert first.killed_at is not None
        await asyncio.sleep(max(0.0, plan.down - (time.monotonic() - first.killed_at)))
        status = await cluster.status()
        group = next((g for g in status["groups"] if g["group"] == GROUP), {})
        at_restart = sampler.latest()
        bots.append(BotProc(cluster.run_dir, tmp / "second.bin", sc.capacity))
        second = bots[1]
        down_s = second.spawned - first.killed_at
        await second.wait_ready()
        procs = {"bot": psutil.Process(second.proc.pid), "simulator": sim}
        cpu0, t0 = cpu_snapshot(cluster, procs), time.monotonic()
        deadline = traffic + plan.traffic_s - plan.settle - 5.0
        await wait_caught_up(second, sampler, deadline)
        cpu1, t1 = cpu_snapshot(cluster, procs), time.monotonic()
        await asyncio.sleep(plan.settle)
        end = await drain(port, sampler, bots)
        await second.terminate()
        first.records.read(final=True)
        second.records.read(final=True)
    out = account(end, bots, plan)
    r = second.records
    n = len(r)
    if n == 0:
        raise SystemExit("the restarted bot got no events")
    age = ages(r, sampler, range(n))
    late = [k for k in range(n) if age[k] > LIVE_AGE_S]
    last_late = late[-1] if late else -1
    t_first = r.t[0]
    caught_up = last_late + 1 < n
    t_live = r.t[last_late + 1] if caught_up else r.t[n - 1]
    catch_up_s = t_live - t_first
    replay_n = last_late + 1
    replay_rate = (
        (replay_n - 1) / (r.t[last_late] - t_first) if replay_n > 1 and r.t[last_late] > t_first else 0.0
    )
    # What the restarted bot got, per 100 ms from its spawn: [seconds, events, oldest age], until 1 s
    # after it caught up.
    timeline: list[list[float]] = []
    for k in range(n):
        if r.t[k] > t_live + 1.0:
            break
        slot = round(math.floor((r.t[k] - second.spawned) * 10) / 10, 1)
        if not timeline or timeline[-1][0] != slot:
            timeline.append([slot, 0, 0.0])
        timeline[-1][1] += 1
        timeline[-1][2] = round(max(timeline[-1][2], age[k]), 3)
    # Pauses of half a second or more while it was catching up (it had a backlog the whole time).
    stalls = [
        [round(r.t[k - 1] - second.spawned, 2), round(r.t[k] - r.t[k - 1], 2)]
        for k in range(1, last_late + 1)
        if r.t[k] - r.t[k - 1] >= 0.5
    ]
    backlog = sum(
        1
        for sid, seqs in r.by_session.items()
        for s in seqs
        if s <= at_restart.get(sid, 0) and sid in at_restart
    )
    out.update(
        {
            "down_s": round(down_s, 2),
            "backlog": backlog,
            "status_held_at_restart": group.get("held_events"),
            "status_inflight_at_restart": group.get("inflight"),
            "status_held_mib_at_restart": round(group.get("held_bytes", 0) / 2**20, 1),
            "status_dropped": group.get("dropped"),
            "startup_s": round(t_first - second.spawned, 2),
            "caught_up": caught_up,
            "catch_up_s": round(catch_up_s, 2),
            "replayed_events": replay_n,
            "replay_rate": round(replay_rate),
            "max_age_s": round(max(age), 2),
            # CPU used per wall second from the restarted bot's join until it was seen caught up.
            "catch_up_cpu_share": {k: round((cpu1.get(k, v) - v) / (t1 - t0), 2) for k, v in cpu0.items()},
            "catch_up_stalls": stalls,
            "second_bot_timeline": timeline,
            "first_bot_events": len(first.records),
            "second_bot_events": n,
        }
    )
    return out


# -- 2. a worker killed -----------------------------------------------------------------------------
async def watch_recovery(
    cluster: ClusterProcess, slot: int, pid: int, shards: list[int], killed: float, timeout: float
) -> tuple[float | None, list[tuple[float, str]]]:
    """Poll the status command until a new worker holds the slot and every one of its shards is ready.

    Returns the seconds from the kill, and the timeline of states seen (seconds, states)."""
    timeline: list[tuple[float, str]] = []
    last = ""
    deadline = killed + timeout
    while time.monotonic() < deadline:
        try:
            status = await cluster.status()
        except CommandError:
            await asyncio.sleep(STATUS_EVERY_S)
            continue
        now = time.monotonic() - killed
        states = {s["id"]: s["state"] for s in status["shards"]}
        pids = [w["pid"] for w in status["workers"] if w["slot"] == slot]
        seen = f"pid {pids} " + " ".join(f"{s}:{states.get(s)}" for s in shards)
        if seen != last:
            timeline.append((round(now, 3), seen))
            last = seen
        if pids and pid not in pids and all(states.get(s) == "ready" for s in shards):
            return now, timeline
        await asyncio.sleep(STATUS_EVERY_S)
    return None, timeline


async def worker_kill_run(port: int, plan: Plan, tmp: Path) -> dict[str, Any]:
    async with scenario(port, plan, tmp / "bot.bin") as sc:
        cluster, sampler, bots, traffic = sc.cluster, sc.sampler, sc.bots, sc.traffic
        bot = bots[0]
        status = await cluster.status()
        victim = min(status["workers"], key=lambda w: w["slot"])
        slot, pid = int(victim["slot"]), int(victim["pid"])
        shards = [int(s["id"]) for s in status["shards"] if s["worker"] == slot]
        procs = {p.pid: p for p in cluster.workers()}
        if pid not in procs:
            raise SystemExit(f"worker {pid} of slot {slot} is not among the cluster's processes")
        killed_wall = time.time()
        killed = time.monotonic()
        procs[pid].send_signal(signal.SIGKILL)
        deadline = traffic + plan.traffic_s - plan.post - 5.0 - killed
        ready_s, timeline = await watch_recovery(cluster, slot, pid, shards, killed, max(10.0, deadline))
        await asyncio.sleep(plan.post)
        end = await drain(port, sampler, bots)
        await bot.terminate()
        bot.records.read(final=True)
    out = account(end, bots, plan)
    stats, mine = end["stats"], end["sessions"]
    resumes = [r for r in stats["resumes"] if r["time"] >= killed_wall and r["session_id"] in mine]
    identifies = [r for r in stats["identifies"] if r["time"] >= killed_wall and r["accepted"]]
    accepted = [r for r in resumes if r["accepted"]]
    # The bot's view of the victim's shards: the events that came late because of the crash.
    r = bot.records
    theirs = [k for k in range(len(r)) if r.shard[k] in shards and r.t[k] >= killed]
    age = ages(r, sampler, theirs)
    late = [k for k, a in zip(theirs, age, strict=True) if a > LIVE_AGE_S]
    before = [r.seq[k] for k in range(len(r)) if r.shard[k] in shards and r.t[k] < killed]
    out.update(
        {
            "victim": {"slot": slot, "pid": pid, "shards": shards},
            "ready_s": None if ready_s is None else round(ready_s, 3),
            "status_timeline": timeline,
            "resumes_accepted": len(accepted),
            "resumes_refused": [
                {"shard": x.get("shard"), "reason": x["reason"]} for x in resumes if not x["accepted"]
            ],
            "identifies_after_kill": len(identifies),
            "resume_at_s": sorted(round(x["time"] - killed_wall, 3) for x in accepted),
            "resume_replayed": sorted(int(x["replayed"]) for x in accepted),
            "replay_buffer": plan.replay_buffer,
            "bot_late_until_s": round(r.t[late[-1]] - killed, 3) if late else 0.0,
            "bot_max_age_s": round(max(age), 3) if age else None,
            "bot_events_before_kill": len(before),
            "bot_events": len(r),
        }
    )
    return out


# -- the suite's interface ---------------------------------------------------------------------------
async def run(
    scale: Scale,
    *,
    rate: float | None = None,
    down: float | None = None,
    replay_buffer: int = REPLAY_BUFFER,
    verbose: bool = True,
) -> Result:
    started = time.monotonic()
    plan = Plan.of(scale, rate, down, replay_buffer)

    def say(text: str) -> None:
        if verbose:
            print(text, flush=True)

    bot_runs: list[dict[str, Any]] = []
    worker_runs: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="sr-recovery-") as tmpdir,
        running_simulator(
            shards=SHARDS,
            events=plan.events,
            compress=["zlib-stream"],
            extra=["--mix", "MESSAGE_CREATE=1", "--replay-buffer", str(plan.replay_buffer)],
            rate="0",  # each run sets the rate once its bot has joined
        ) as (port, sim),
    ):
        tmp = Path(tmpdir)
        for i in range(plan.repeat):
            tag = f"run {i + 1}/{plan.repeat}"
            b = await bot_down_run(port, sim, plan, tmp)
            bot_runs.append(b)
            say(
                f"{tag} bot down {b['down_s']:.1f} s: backlog {b['backlog']:,} events (status: "
                f"{b['status_held_at_restart']} held + {b['status_inflight_at_restart']} in flight), first "
                f"event {b['startup_s']:.2f} s after the spawn, replayed at {b['replay_rate']:,}/s, "
                f"{'caught up' if b['caught_up'] else 'NOT caught up'} in {b['catch_up_s']:.2f} s; "
                f"{len(b['catch_up_stalls'])} pauses of 0.5 s or more "
                f"({sum(x[1] for x in b['catch_up_stalls']):.1f} s in all); "
                f"lost {b['lost']}, duplicates {b['duplicates_across_bots']} across the bots "
                f"({b['duplicates_across_bots_marked_redelivered']} marked), {len(b['gaps'])} gaps"
            )
            w = await worker_kill_run(port, plan, tmp)
            worker_runs.append(w)
            say(
                f"{tag} worker {w['victim']['pid']} killed: shards {w['victim']['shards']} ready after "
                f"{w['ready_s']} s (RESUMEs at {w['resume_at_s']} s, replaying {w['resume_replayed']}), "
                f"{w['identifies_after_kill']} identifies, {w['resumes_accepted']} resumes; bot late until "
                f"{w['bot_late_until_s']} s (max age {w['bot_max_age_s']} s); lost {w['lost']}, "
                f"{w['duplicates_dropped_by_client']} duplicates dropped by the client's dedupe"
            )
            if max(w["resume_replayed"], default=0) > plan.replay_buffer / 2:
                say(
                    f"{tag} WARNING: a resume replayed {max(w['resume_replayed']):,} dispatches, "
                    f"the replay buffer is {plan.replay_buffer:,}"
                )
            for run_ in (b, w):
                for problem in (
                    "lost_seqs",
                    "gaps",
                    "bot_errors",
                    "script_ran_out",
                    "unsent",
                    "ended_sessions",
                ):
                    if run_[problem]:
                        say(f"{tag} {problem}: {run_[problem]}")

    result = Result(name="recovery", title="Recovery")
    lost_b = sum(b["lost"] for b in bot_runs)
    lost_w = sum(w["lost"] for w in worker_runs)
    dups_b = median([b["duplicates_across_bots"] for b in bot_runs])
    dups_w = median([w["duplicates_dropped_by_client"] for w in worker_runs])
    backlog = median([b["backlog"] for b in bot_runs])
    replay_rate = median([b["replay_rate"] for b in bot_runs])
    catch_up = median([b["catch_up_s"] for b in bot_runs])
    ready = [w["ready_s"] for w in worker_runs if w["ready_s"] is not None]
    identifies = sum(w["identifies_after_kill"] for w in worker_runs)
    not_caught = sum(not b["caught_up"] for b in bot_runs)
    paused = sum(bool(b["catch_up_stalls"]) for b in bot_runs)
    resume_at = median([max(w["resume_at_s"], default=math.nan) for w in worker_runs])
    victim_shards = len(worker_runs[0]["victim"]["shards"]) if worker_runs else 0
    result.rows.append(
        Row(
            f"bot down {plan.down:g} s, then back",
            f"backlog {backlog:,.0f} events replayed at {replay_rate:,.0f}/s, caught up in {catch_up:.1f} s"
            + (f" ({not_caught} runs did not catch up)" if not_caught else "")
            + (f" (pauses of 0.5 s or more in {paused} of {len(bot_runs)} runs)" if paused else ""),
            f"lost {lost_b} (must be 0); {dups_b:,.0f} duplicates across the two bots, marked redelivered",
        )
    )
    result.rows.append(
        Row(
            "worker killed (SIGKILL)",
            f"its {victim_shards} shards resumed after {median(ready):.1f} s (RESUME at the gateway after "
            f"{resume_at:.1f} s), {identifies} identifies"
            + (
                ""
                if len(ready) == len(worker_runs)
                else f" ({len(worker_runs) - len(ready)} runs never ready)"
            ),
            f"lost {lost_w} (must be 0); {dups_w:,.0f} replayed duplicates dropped by the client",
        )
    )
    result.data = {
        "machine": machine(),
        "settings": {
            "shards": SHARDS,
            "workers": WORKERS,
            "rate_per_shard": plan.rate,
            "offered_per_s": plan.rate * SHARDS,
            "down_s": plan.down,
            "warmup_s": plan.warmup,
            "script_events_per_shard": plan.events,
            "queue_events": plan.queue_events,
            "replay_buffer": plan.replay_buffer,
            "live_age_s": LIVE_AGE_S,
            "compression": "zlib-stream",
            "mix": "MESSAGE_CREATE=1",
            "repeat": plan.repeat,
        },
        "bot_down": {
            "backlog": backlog,
            "replay_rate": replay_rate,
            "catch_up_s": catch_up,
            "startup_s": median([b["startup_s"] for b in bot_runs]),
            "lost": lost_b,
            "duplicates_across_bots": dups_b,
            "runs": bot_runs,
        },
        "worker_killed": {
            "ready_s": median(ready),
            "resume_at_s": resume_at,
            "identifies": identifies,
            "resumes": sum(w["resumes_accepted"] for w in worker_runs),
            "max_resume_replayed": max(
                (max(w["resume_replayed"], default=0) for w in worker_runs), default=0
            ),
            "bot_late_until_s": median([w["bot_late_until_s"] for w in worker_runs]),
            "lost": lost_w,
            "duplicates_dropped_by_client": dups_w,
            "runs": worker_runs,
        },
    }
    result.seconds = time.monotonic() - started
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--scale", choices=["quick", "full"], default="full")
    parser.add_argument("--repeat", type=int, help="runs per figure (default: by scale)")
    parser.add_argument("--rate", type=float, help="events per second per shard (default 2000)")
    parser.add_argument("--down", type=float, help="seconds the bot is down (default: 30 full, 5 quick)")
    parser.add_argument(
        "--replay-buffer", type=int, default=REPLAY_BUFFER, help="the simulator's, per session"
    )
    parser.add_argument("--json", action="store_true", help="print the result's data as JSON at the end")
    args = parser.parse_args(argv)
    if args.rate is not None and args.rate <= 0:
        parser.error("--rate must be above 0")
    if args.down is not None and args.down < 0:
        parser.error("--down must not be negative")
    scale = Scale.named(args.scale, repeat=args.repeat)
    m = machine()
    print(f"machine: {m['cpus']} CPUs, {m['memory_gib']} GiB, Python {m['python']}")
    result = asyncio.run(run(scale, rate=args.rate, down=args.down, replay_buffer=args.replay_buffer))
    s = result.data["settings"]
    heading = (
        f"{SHARDS} shards on {WORKERS} workers, {s['offered_per_s']:,.0f} events/s offered; "
        f"medians of {scale.repeat}"
    )
    print_result(result, heading, args.json)


if __name__ == "__main__":
    main()
