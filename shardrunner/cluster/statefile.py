"""The session table a stopping cluster leaves behind, so the next start resumes instead of identifying."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import msgspec

from shardrunner.protocol.envelope import SessionSnapshot

STATE_FILE = "sessions.json"


class SessionTable(msgspec.Struct):
    written_at: float
    num_shards: int
    #: A fingerprint of the token (never the token): sessions of another bot are not resumed.
    token_fingerprint: str
    snapshots: list[SessionSnapshot]
    #: Durable consumer groups (name, event names or None): the next start keeps their events from
    #: the first one, before their bots reconnect.
    groups: list[tuple[str, list[str] | None]] = []


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def write(
    run_dir: Path,
    num_shards: int,
    token: str,
    snapshots: list[SessionSnapshot],
    groups: list[tuple[str, list[str] | None]] | None = None,
) -> Path:
    """Write the table atomically, readable by the owner only (session ids are worth protecting)."""
    path = run_dir / STATE_FILE
    tmp = path.with_suffix(".tmp")
    table = SessionTable(
        time.time(), num_shards, fingerprint(token), sorted(snapshots, key=lambda s: s.shard_id), groups or []
    )
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(msgspec.json.encode(table))
    os.replace(tmp, path)
    return path


def load_groups(run_dir: Path) -> list[tuple[str, list[str] | None]]:
    """The consumer groups the last run knew (whatever the age of its sessions)."""
    try:
        return msgspec.json.decode((run_dir / STATE_FILE).read_bytes(), type=SessionTable).groups
    except (OSError, msgspec.DecodeError):
        return []


def load(run_dir: Path, num_shards: int, token: str, window: float) -> tuple[list[SessionSnapshot], str]:
    """The sessions still worth resuming, and one line saying why there are (or are none)."""
    path = run_dir / STATE_FILE
    try:
        table = msgspec.json.decode(path.read_bytes(), type=SessionTable)
    except FileNotFoundError:
        return [], "no saved sessions"
    except (OSError, msgspec.DecodeError) as exc:
        return [], f"saved sessions in {path} are unreadable ({exc}); identifying"
    age = time.time() - table.written_at
    if age > window:
        return [], f"saved sessions are {age:.0f} s old, beyond the {window:.0f} s resume window; identifying"
    if table.num_shards != num_shards:
        return [], f"saved sessions are for {table.num_shards} shards, not {num_shards}; identifying"
    if table.token_fingerprint != fingerprint(token):
        return [], "saved sessions belong to another token; identifying"
    return table.snapshots, f"resuming {len(table.snapshots)} saved sessions ({age:.0f} s old)"
