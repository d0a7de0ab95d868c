"""The chaos soak's short version (benchmarks/chaos, run as `python -m benchmarks.chaos`, which the
tests do not import): every action kind once, in the order seed 3 fixes, one every 0.8 s, against 3
hosts with both platforms, Redis and 3 bots; then the counts. About 55 s on 2 cores.

Asserted: every kind happened, no Discord event lost (the gateway replays), no duplicate after the
client's dedupe on either platform (Twitch's backup readers included), no identify or JOIN
violation, no crash, no secret in any output. Twitch loss is reported, not asserted: a chat line has
no replay, so when failures overlap (a bot's own host paused while the worker holding that bot's
queued lines is killed, and the line's other reader is fenced) the soak can lose some, depending on
timing; docs/benchmarks.md (Chaos soak) says when."""

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
    kinds = sorted(KINDS)
    command = [sys.executable, "-m", "benchmarks.chaos", "--seconds", str(len(kinds) * 0.8),
               "--interval", "0.8", "--kinds", ",".join(kinds), "--seed", "3", "--out", str(out),
               "--settle-timeout", "30"]  # fmt: skip
    run = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=140)
    assert (out / "result.json").exists(), run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads((out / "result.json").read_text())
    detail = json.dumps({k: result[k] for k in ("groups", "crash_detail", "skipped")}, indent=1)[:4000]
    assert set(result["actions"]) == set(kinds), f"not taken: {set(kinds) - set(result['actions'])}; {detail}"
    assert all(n == 1 for n in result["actions"].values())
    assert result["lost_discord"] == 0, detail
    assert result["duplicates"] == 0, detail
    assert result["identify_violations"] == 0, detail
    assert result["join_violations"] == 0, detail
    assert result["crashes"] == 0, detail
    assert result["secrets_found"] == []
    for group in result["groups"].values():
        assert group["discord_expected"] > 500, "the Discord traffic flowed"
        assert group["twitch_expected"] > 300, "the Twitch traffic flowed"
