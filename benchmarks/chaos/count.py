"""What a chaos run counts at the end: against the simulators' stats and the bots' records."""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.chaos.world import Bot

#: Violations of the identify limits at the Discord simulator.
IDENTIFY_KINDS = frozenset(("identify_rate", "session_start_limit"))
#: Violations of the JOIN and login limits at the Twitch simulator.
JOIN_KINDS = frozenset(("join_limit", "login_limit", "channel_limit"))
_DIED = re.compile(r"worker \d+ \(pid (\d+)\) died with (signal \d+|status -?\d+)")
_HUNG = re.compile(r"worker \d+ \(pid (\d+)\) is hung")


@dataclass
class Records:
    """One bot incarnation's file: receive times and what each record was."""

    discord: list[tuple[float, str, int, bool]] = field(
        default_factory=list
    )  # time, session, seq, redelivered
    twitch: list[tuple[float, str, bool, str]] = field(default_factory=list)  # time, id, redelivered, channel

    @classmethod
    def read(cls, path: Path) -> Records:
        r = cls()
        if not path.exists():
            return r
        for line in path.read_text(errors="replace").splitlines():
            parts = line.split()
            if len(parts) == 5 and parts[0] == "d":
                r.discord.append((float(parts[1]), parts[2], int(parts[3]), parts[4] == "1"))
            elif len(parts) == 5 and parts[0] == "t":
                r.twitch.append((float(parts[1]), parts[2], parts[3] == "1", parts[4]))
            # else: a line torn by a SIGKILL, which is not an event that was processed
        return r


def sent_seqs(dstats: dict[str, Any], sent_max: dict[str, int]) -> dict[str, int]:
    out = dict(sent_max)
    for s in dstats["sessions"]:
        out[s["session_id"]] = max(out.get(s["session_id"], 0), int(s["last_sent_seq"]))
    return out


def worst_gap(times: list[float], a: float, b: float) -> float:
    """The longest time between consecutive receive times within [a, b] (the edges count)."""
    inside = sorted(t for t in times if a <= t <= b)
    points = [a, *inside, b]
    return max((y - x for x, y in itertools.pairwise(points)), default=0.0)


def account(
    *,
    bots: list[Bot],
    dstats: dict[str, Any],
    dispatches: dict[str, Any],
    sent_max: dict[str, int],
    tstats: dict[str, Any],
    window: tuple[float, float],
    started_wall: float,
) -> dict[str, Any]:
    sent = sent_seqs(dstats, sent_max)
    by_seq: dict[tuple[str, int], int] = {}
    where: dict[int, list[str]] = defaultdict(list)
    shard_of: dict[str, int] = {}
    expected: set[int] = set()
    for track in dispatches["sessions"]:
        sid, first = track["session_id"], int(track["first_seq"])
        shard_of[sid] = int(track["shard"][0])
        upto = sent.get(sid, 0)
        for i, ident in enumerate(track["ids"]):
            if ident:
                by_seq[(sid, first + i)] = ident
                where[ident].append(f"{sid[:8]} shard {shard_of[sid]} seq {first + i}/{upto}")
                if first + i <= upto:
                    expected.add(ident)
    t_expected = {i for ch in tstats["channels"].values() for i in ch["ids"]}
    groups: dict[str, Any] = {}
    for group in sorted({b.group for b in bots}):
        mine = [b for b in bots if b.group == group]
        got: set[int] = set()
        t_got: set[str] = set()
        dups = t_dups = copies = t_copies = redelivered = 0
        times: list[float] = []
        streams: dict[str, list[float]] = defaultdict(list)
        for b in mine:
            rec = Records.read(b.out)
            seen: set[Any] = set()
            for t, sid, seq, again in rec.discord:
                ident = by_seq.get((sid, seq))
                key: Any = ident if ident else (sid, seq)
                if key in seen:
                    dups += 1
                elif ident and ident in got:
                    copies += 1  # in an earlier incarnation or another member: redelivered
                seen.add(key)
                redelivered += again
                if ident:
                    got.add(ident)
                times.append(t)
                streams[f"discord shard {shard_of.get(sid, -1)}"].append(t)
            t_seen: set[str] = set()
            for t, ident, again, channel in rec.twitch:
                if ident in t_seen:
                    t_dups += 1
                elif ident in t_got:
                    t_copies += 1
                t_seen.add(ident)
                redelivered += again
                t_got.add(ident)
                times.append(t)
                streams[f"twitch {channel}"].append(t)
        a, b_ = window
        per = {k: round(worst_gap(v, a, b_), 3) for k, v in streams.items()}
        worst_stream = max(per, key=lambda k: per[k]) if per else ""
        lost = sorted(expected - got)
        t_lost = sorted(t_expected - t_got)
        arrived = sorted(
            (by_seq.get((sid, seq), 0), t) for b in mine for t, sid, seq, _ in Records.read(b.out).discord
        )
        detail = [{"id": i, "where": where[i], "near_s": _near(arrived, i, started_wall)} for i in lost[:20]]
        groups[group] = {
            "bots": sorted({f"{b.name}.{b.incarnation}" for b in mine}),
            "discord_expected": len(expected),
            "discord_lost": len(lost),
            "discord_lost_ids": detail,
            "discord_duplicates": dups,
            "discord_redelivered_copies": copies,
            "twitch_expected": len(t_expected),
            "twitch_lost": len(t_lost),
            "twitch_lost_ids": t_lost[:20],
            "twitch_duplicates": t_dups,
            "twitch_redelivered_copies": t_copies,
            "marked_redelivered": redelivered,
            "gap_whole_s": round(worst_gap(times, a, b_), 3),
            "gap_stream_s": per.get(worst_stream, 0.0),
            "gap_stream": worst_stream,
            "gap_discord_shard_s": max((v for k, v in per.items() if k.startswith("discord")), default=0.0),
        }
    accepted = [r for r in dstats["identifies"] if r["accepted"]]
    wasted = [r for r in accepted if r.get("resumable")]
    violations = dstats["violations"]
    t_violations = tstats["violations"]
    return {
        "groups": groups,
        "lost": sum(g["discord_lost"] + g["twitch_lost"] for g in groups.values()),
        "lost_discord": sum(g["discord_lost"] for g in groups.values()),
        "lost_twitch": sum(g["twitch_lost"] for g in groups.values()),
        "duplicates": sum(g["discord_duplicates"] + g["twitch_duplicates"] for g in groups.values()),
        "identifies": len(accepted),
        "resumes": sum(1 for r in dstats["resumes"] if r["accepted"]),
        "wasted_identifies": len(wasted),
        "wasted_identify_detail": [
            {"shard": r["shard"], "time": round(r["time"] - started_wall, 2)} for r in wasted
        ],
        "identify_violations": sum(1 for v in violations if v["kind"] in IDENTIFY_KINDS),
        "discord_violations": _kinds(violations),
        "join_violations": sum(1 for v in t_violations if v["kind"] in JOIN_KINDS),
        "twitch_violations": _kinds(t_violations),
        "dispatches_generated": int(dstats["dispatches_generated"]),
        "faults_at_sims": {"discord": len(dstats["faults"]), "twitch": len(tstats.get("faults", []))},
    }


def _near(arrived: list[tuple[int, float]], ident: int, since: float) -> float | None:
    """When the delivered id just below ``ident`` arrived, seconds from ``since``."""
    import bisect

    k = bisect.bisect_left(arrived, (ident, 0.0))
    return round(arrived[k - 1][1] - since, 2) if k else None


def _kinds(violations: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for v in violations:
        out[v["kind"]] += 1
    return dict(out)


def crashes(logs: Path, killed_pids: set[int], unexpected_exits: list[str]) -> dict[str, Any]:
    """Worker deaths the schedule did not cause, hung workers, tracebacks in any log, and the
    processes that exited without being killed."""
    deaths: list[str] = []
    hung: list[str] = []
    tracebacks: dict[str, int] = {}
    for log in sorted(logs.glob("*.log")):
        text = log.read_text(errors="replace")
        if n := text.count("Traceback (most recent call last)"):
            tracebacks[log.name] = n
        for m in _DIED.finditer(text):
            if int(m.group(1)) not in killed_pids or m.group(2) != "signal 9":
                deaths.append(f"{log.name}: pid {m.group(1)} died with {m.group(2)}")
        hung += [f"{log.name}: pid {m.group(1)}" for m in _HUNG.finditer(text)]
    return {
        "count": len(deaths) + len(unexpected_exits) + sum(tracebacks.values()),
        "worker_deaths": deaths,
        "hung_workers": hung,
        "tracebacks": tracebacks,
        "exits": unexpected_exits,
    }
