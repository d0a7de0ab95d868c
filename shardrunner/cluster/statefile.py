"""The session table a stopping cluster leaves behind, so the next start resumes instead of identifying.

Sessions are keyed by :class:`~shardrunner.protocol.keys.ConnKey`, and the table names the
connection sets it holds (platform, generation, count): a start resumes the saved sessions of the
sets its plan runs, whatever else the table holds (what a reshard needs: the old set and the new).

A table that cannot be trusted is refused whole, with one line, and the start identifies: one that
does not parse, whose digest (sha256 of its canonical JSON, stored in it) does not match (it was
edited or corrupted since it was written), or that contradicts itself (a connection twice, one
outside the sets it names, a shard beyond its count, an empty session id). The digest is against accidents
and hand edits, not against an attacker: whoever can write the 0700 run dir can recompute it. A
table without a digest (written before it existed) is still resumed, and the line says so.
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
    #: sha256 (hex) of this table's JSON with ``digest`` empty; empty in tables written before it.
    digest: str = ""


class Refused(ValueError):
    """A table that is not resumed; the message says why, in a few words; ``word`` is what the
    start's line calls it (``refused``, or ``unreadable`` when it does not parse)."""

    def __init__(self, message: str, word: str = "refused") -> None:
        super().__init__(message)
        self.word = word


def digest_of(table: SessionTable) -> str:
    return hashlib.sha256(msgspec.json.encode(msgspec.structs.replace(table, digest=""))).hexdigest()


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
    table.digest = digest_of(table)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(msgspec.json.encode(table))
    os.replace(tmp, path)
    return path


def _read(run_dir: Path) -> SessionTable:
    """The table, checked (:class:`Refused` says why not; OSError when it cannot be read)."""
    try:
        table = msgspec.json.decode(RunDir(run_dir).state_file.read_bytes(), type=SessionTable)
    except msgspec.DecodeError as exc:
        raise Refused(f"it does not parse: {str(exc)[:200]}", "unreadable") from None
    check(table)
    return table


def check(table: SessionTable) -> None:
    """Raise :class:`Refused` unless ``table`` is what :func:`write` wrote, and consistent."""
    if table.digest and table.digest != digest_of(table):
        raise Refused("its digest does not match its content: it was edited or corrupted")
    sets = set(table.sets)
    seen: set[ConnKey] = set()
    for s in table.snapshots:
        if s.conn in seen:
            raise Refused(f"it holds {s.conn} twice")
        seen.add(s.conn)
        if (s.conn.platform, s.conn.generation, s.conn.count) not in sets:
            raise Refused(f"it holds {s.conn}, of none of the sets it names")
        if not 0 <= s.conn.shard < s.conn.count or not s.session_id:
            raise Refused(f"its session of {s.conn} is impossible (no such shard, or no session id)")


def load_groups(run_dir: Path) -> list[tuple[str, list[str] | None]]:
    """The consumer groups the last run knew (whatever the age of its sessions)."""
    try:
        return _read(run_dir).groups
    except (OSError, Refused):
        return []


def saved_sets(run_dir: Path, token: str, window: float) -> list[ConnSet]:
    """The connection sets of a table still worth resuming (this token, within the window), or none."""
    try:
        table = _read(run_dir)
    except (OSError, Refused):
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
    except OSError as exc:
        return [], f"saved sessions in {path} are unreadable ({exc.strerror or exc}); identifying"
    except Refused as exc:
        return [], f"saved sessions in {path} are {exc.word} ({exc}); identifying"
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
    old = "" if table.digest else "; the file has no digest: an older version wrote it"
    return matching, f"resuming {len(matching)} saved sessions ({age:.0f} s old{old})"
