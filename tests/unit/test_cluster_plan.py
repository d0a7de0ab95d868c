"""The shard plan and the session table, without processes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from shardrunner.cluster import statefile
from shardrunner.cluster.plan import plan, span
from shardrunner.protocol.envelope import SessionSnapshot


@pytest.mark.parametrize(
    ("shards", "workers", "expected"),
    [
        (10, 3, ["0-3", "4-6", "7-9"]),
        (8, 2, ["0-3", "4-7"]),
        (2, 4, ["0", "1"]),
        (1, 1, ["0"]),
    ],
)
def test_plan_when_shards_do_not_divide_evenly_gives_consecutive_near_equal_ranges(
    shards: int, workers: int, expected: list[str]
) -> None:
    ranges = plan(shards, workers)
    assert [span(r) for r in ranges] == expected
    assert [i for r in ranges for i in r] == list(range(shards))


TOKEN = "secret-token-value"


def snap(shard: int) -> SessionSnapshot:
    return SessionSnapshot(
        platform="discord",
        shard_id=shard,
        num_shards=2,
        session_id=f"s{shard}",
        seq=9,
        resume_url="ws://r",
        keys=[1],
    )


def test_statefile_when_fresh_and_matching_returns_the_sessions(tmp_path: Path) -> None:
    path = statefile.write(tmp_path, 2, TOKEN, [snap(1), snap(0)])
    assert path.stat().st_mode & 0o777 == 0o600
    assert TOKEN.encode() not in path.read_bytes()
    loaded, why = statefile.load(tmp_path, 2, TOKEN, 60)
    assert [s.shard_id for s in loaded] == [0, 1]
    assert loaded[0].keys == [1]
    assert why.startswith("resuming 2 saved sessions")


@pytest.mark.parametrize(
    ("num_shards", "token", "age", "reason"),
    [
        (3, TOKEN, 0, "for 2 shards, not 3"),
        (2, "other", 0, "belong to another token"),
        (2, TOKEN, 120, "beyond the 60 s resume window"),
    ],
)
def test_statefile_when_stale_or_foreign_is_ignored_with_the_reason(
    tmp_path: Path, num_shards: int, token: str, age: float, reason: str
) -> None:
    path = statefile.write(tmp_path, 2, TOKEN, [snap(0)])
    if age:
        old = time.time() - age
        data = path.read_bytes().replace(b'"written_at":', b'"written_at":%f,"x":' % old, 1)
        path.write_bytes(data)
        os.utime(path)
    loaded, why = statefile.load(tmp_path, num_shards, token, 60)
    assert loaded == []
    assert reason in why


def test_statefile_when_missing_or_corrupt_starts_fresh(tmp_path: Path) -> None:
    assert statefile.load(tmp_path, 2, TOKEN, 60) == ([], "no saved sessions")
    (tmp_path / statefile.STATE_FILE).write_text("{broken")
    loaded, why = statefile.load(tmp_path, 2, TOKEN, 60)
    assert loaded == []
    assert "unreadable" in why


def test_statefile_when_groups_are_saved_the_next_start_knows_them(tmp_path: Path) -> None:
    statefile.write(tmp_path, 2, TOKEN, [snap(0)], [("bot", ["MESSAGE_CREATE"]), ("all", None)])
    assert statefile.load_groups(tmp_path) == [("bot", ["MESSAGE_CREATE"]), ("all", None)]
    assert statefile.load_groups(tmp_path / "nowhere") == []
