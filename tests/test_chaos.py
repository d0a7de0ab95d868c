"""The chaos soak's short version (benchmarks/chaos, run as `python -m benchmarks.chaos`, which the
tests do not import): every action kind once, in the order seed 3 fixes, one a second, against 3
hosts with both platforms, Redis and 3 bots; then the counts. About 50 s on 2 cores."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.procs import REPO

#: Every kind the schedule knows (benchmarks/chaos/actions.py KINDS): each must have happened.
KINDS = {
    "kill_worker", "kill_bot", "kill_supervisor", "kill_redis", "kill_redis_empty",
    "stop_worker_short", "stop_worker_long", "stop_supervisor_short", "stop_supervisor_long", "reload",
    "discord_reconnect", "discord_invalid_resumable", "discord_invalid_not_resumable", "discord_drop",
    "discord_close", "discord_zombie", "discord_stall", "discord_garbage",
    "twitch_reconnect", "twitch_drop", "twitch_stall", "twitch_no_pong", "twitch_server_change",
}  # fmt: skip


@pytest.mark.timeout(150)
def test_chaos_when_every_failure_happens_once_loses_nothing_and_doubles_nothing(tmp_path: Path) -> None:
    out = tmp_path / "chaos"
    command = [sys.executable, "-m", "benchmarks.chaos", "--seconds", str(len(KINDS)), "--interval", "1",
               "--seed", "3", "--out", str(out), "--settle-timeout", "30"]  # fmt: skip
    run = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=140)
    assert (out / "result.json").exists(), run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads((out / "result.json").read_text())
    detail = json.dumps({k: result[k] for k in ("groups", "crash_detail", "skipped")}, indent=1)[:4000]
    assert set(result["actions"]) == KINDS, f"not taken: {KINDS - set(result['actions'])}; {detail}"
    assert all(n == 1 for n in result["actions"].values())
    assert result["lost"] == 0, detail
    assert result["duplicates"] == 0, detail
    assert result["identify_violations"] == 0, detail
    assert result["join_violations"] == 0, detail
    assert result["crashes"] == 0, detail
    assert result["secrets_found"] == []
    for group in result["groups"].values():
        assert group["discord_expected"] > 500, "the Discord traffic flowed"
        assert group["twitch_expected"] > 300, "the Twitch traffic flowed"
    assert run.returncode == 0, run.stdout[-3000:]
