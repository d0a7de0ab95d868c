"""The session table a stopping cluster leaves behind, so the next start resumes instead of identifying.

Sessions are keyed by :class:`~shardrunner.protocol.keys.ConnKey`, and the table names the
connection sets it holds (platform, generation, count): a start resumes the saved sessions of the
sets its plan runs, whatever else the table holds (what a reshard needs: the old set and the new).
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import msgspec

from shardrunner.protocol.envelope import SessionSnapshot
from shardrunner.protocol.keys import ConnKey
from shardrunner.rundir import RunDir

#: One connection set: (platform, generation, count).
ConnSet = tuple[str, int, int]


class SessionTable(msgspec.Struct):
    written_at: float
    #: A fingerprint of the token (never the token): sessions of another bot are not resumed.
    token_fingerprint: str
    #: The connection sets the cluster ran when it stopped.
    sets: list[ConnSet]
    snapshots: list[SessionSnapshot]
    #: Durable consumer groups (name, event names or None): the next start keeps their events from
    #: the first one, before their bots reconnect.
    groups: list[tuple[str, list[str] | None]] = []


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def sets_of(conns: list[ConnKey]) -> list[ConnSet]:
    return sorted({(c.platform, c.generation, c.count) for c in conns})


def describe_sets(sets: list[ConnSet]) -> str:
    """``4 discord shards`` or ``4 discord shards (set 0) and 8 discord shards (set 1)``, for people."""
    if not sets:
        return "no connections"
    many = len(sets) > 1
    return " and ".join(f"{n} {p} shards" + (f" (set {g})" if many else "") for p, g, n in sets)


def write(
    run_dir: Path,
    token: str,
    conns: list[ConnKey],
    snapshots: list[SessionSnapshot],
    groups: list[tuple[str, list[str] | None]] | None = None,
) -> Path:
    """Write the table atomically, readable by the owner only (session ids are worth protecting)."""
    path = RunDir(run_dir).state_file
    tmp = path.with_suffix(".tmp")
    table = SessionTable(
        time.time(),
        fingerprint(token),
        sets_of(conns),
        sorted(snapshots, key=lambda s: s.conn),
        groups or [],
    )
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(msgspec.json.encode(table))
    os.replace(tmp, path)
    return path


def _read(run_dir: Path) -> SessionTable:
    return msgspec.json.decode(RunDir(run_dir).state_file.read_bytes(), type=SessionTable)


def load_groups(run_dir: Path) -> list[tuple[str, list[str] | None]]:
    """The consumer groups the last run knew (whatever the age of its sessions)."""
    try:
        return _read(run_dir).groups
    except (OSError, msgspec.DecodeError):
        return []


def saved_sets(run_dir: Path, token: str, window: float) -> list[ConnSet]:
    """The connection sets of a table still worth resuming (this token, within the window), or none."""
    try:
        table = _read(run_dir)
    except (OSError, msgspec.DecodeError):
        return []
    if time.time() - table.written_at > window or table.token_fingerprint != fingerprint(token):
        return []
    return sorted({(s.conn.platform, s.conn.generation, s.conn.count) for s in table.snapshots})


def load(run_dir: Path, conns: list[ConnKey], token: str, window: float) -> tuple[list[SessionSnapshot], str]:
    """The saved sessions of the connections in ``conns`` still worth resuming, and one line saying
    why there are (or are none)."""
    path = RunDir(run_dir).state_file
    try:
        table = _read(run_dir)
    except FileNotFoundError:
        return [], "no saved sessions"
    except (OSError, msgspec.DecodeError) as exc:
        return [], f"saved sessions in {path} are unreadable ({exc}); identifying"
    age = time.time() - table.written_at
    if age > window:
        return [], f"saved sessions are {age:.0f} s old, beyond the {window:.0f} s resume window; identifying"
    if table.token_fingerprint != fingerprint(token):
        return [], "saved sessions belong to another token; identifying"
    wanted = set(conns)
    matching = [s for s in table.snapshots if s.conn in wanted]
    if not matching:
        saved, planned = describe_sets(table.sets), describe_sets(sets_of(conns))
        return [], f"saved sessions are for {saved}, not {planned}; identifying"
    return matching, f"resuming {len(matching)} saved sessions ({age:.0f} s old)"
