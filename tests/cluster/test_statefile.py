"""The session table: keyed by ConnKey, by set; 0600, atomic, a token fingerprint only."""

from __future__ import annotations

import os
import time
from pathlib import Path

import msgspec
import pytest

from shardrunner.cluster import statefile
from shardrunner.protocol.envelope import SessionSnapshot
from shardrunner.protocol.keys import ConnKey

TOKEN = "secret-token-value"


def conns(count: int, generation: int = 0) -> list[ConnKey]:
    return [ConnKey("discord", generation, i, count) for i in range(count)]


def snap(shard: int, count: int = 2, generation: int = 0) -> SessionSnapshot:
    return SessionSnapshot(
        conn=ConnKey("discord", generation, shard, count),
        session_id=f"s{shard}/{count}",
        seq=9,
        resume_url="ws://r",
        keys=[1],
    )


def test_statefile_when_fresh_and_matching_returns_the_sessions(tmp_path: Path) -> None:
    path = statefile.write(tmp_path, TOKEN, conns(2), [snap(1), snap(0)])
    assert path.stat().st_mode & 0o777 == 0o600
    assert TOKEN.encode() not in path.read_bytes()
    assert not path.with_suffix(".tmp").exists()
    loaded, why = statefile.load(tmp_path, conns(2), TOKEN, 60)
    assert [s.conn.shard for s in loaded] == [0, 1]
    assert loaded[0].keys == [1]
    assert why.startswith("resuming 2 saved sessions")


@pytest.mark.parametrize(
    ("count", "token", "age", "reason"),
    [
        (3, TOKEN, 0, "for 2 discord shards, not 3 discord shards"),
        (2, "other", 0, "belong to another token"),
        (2, TOKEN, 120, "beyond the 60 s resume window"),
    ],
)
def test_statefile_when_stale_or_foreign_is_ignored_with_the_reason(
    tmp_path: Path, count: int, token: str, age: float, reason: str
) -> None:
    path = statefile.write(tmp_path, TOKEN, conns(2), [snap(0)])
    if age:
        table = statefile._read(tmp_path)
        table.written_at = time.time() - age
        table.digest = statefile.digest_of(table)  # an old table, not an edited one
        path.write_bytes(msgspec.json.encode(table))
        os.utime(path)
    loaded, why = statefile.load(tmp_path, conns(count), token, 60)
    assert loaded == []
    assert reason in why


def test_statefile_when_it_holds_two_sets_resumes_the_set_the_plan_runs(tmp_path: Path) -> None:
    saved = [snap(0, 4), snap(3, 4), snap(0, 8, 1), snap(7, 8, 1)]
    statefile.write(tmp_path, TOKEN, conns(4) + conns(8, 1), saved)
    table = statefile._read(tmp_path)
    assert table.sets == [("discord", 0, 4), ("discord", 1, 8)]
    loaded, why = statefile.load(tmp_path, conns(8, 1), TOKEN, 60)
    assert [str(s.conn) for s in loaded] == ["discord:0/8@1", "discord:7/8@1"]
    assert why.startswith("resuming 2 saved sessions")
    both, _ = statefile.load(tmp_path, conns(4) + conns(8, 1), TOKEN, 60)
    assert len(both) == 4
    none, why = statefile.load(tmp_path, conns(8), TOKEN, 60)
    assert none == []
    assert why == (
        "saved sessions are for 4 discord shards (set 0) and 8 discord shards (set 1), "
        "not 8 discord shards; identifying"
    )


def test_statefile_when_missing_or_corrupt_starts_fresh(tmp_path: Path) -> None:
    assert statefile.load(tmp_path, conns(2), TOKEN, 60) == ([], "no saved sessions")
    (tmp_path / "sessions.json").write_text("{broken")
    loaded, why = statefile.load(tmp_path, conns(2), TOKEN, 60)
    assert loaded == []
    assert "unreadable" in why


def test_statefile_when_groups_are_saved_the_next_start_knows_them(tmp_path: Path) -> None:
    statefile.write(tmp_path, TOKEN, conns(2), [snap(0)], [("bot", ["MESSAGE_CREATE"]), ("all", None)])
    assert statefile.load_groups(tmp_path) == [("bot", ["MESSAGE_CREATE"]), ("all", None)]
    assert statefile.load_groups(tmp_path / "nowhere") == []
