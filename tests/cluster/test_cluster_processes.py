"""`shardrunner start` as real processes against the simulator: start, crash, reload, stop, restart."""

from __future__ import annotations

import itertools
import os
import signal
from pathlib import Path
from typing import Any

import psutil
import pytest

from shardrunner.sim.discord.world import make_token
from tests.cluster.conftest import accepted, shardrunner
from tests.conftest import TOKEN, SimFactory, wait_for

pytestmark = pytest.mark.timeout(120)


async def test_start_when_two_workers_and_8_shards_identifies_every_shard_in_order_and_spaced(
    cluster: Any,
) -> None:
    c = await cluster(None, "--workers", "2", "--shards", "auto")
    status = await c.ready(8)
    assert [w["shards"] for w in status["workers"]] == ["0-3", "4-7"]
    assert all(s["keys"] == 2 for s in status["shards"])
    identifies = accepted(c.sim, "identifies")
    assert [i["shard"] for i in identifies] == [[n, 8] for n in range(8)]
    times = [i["time"] for i in identifies]
    assert all(b - a >= 0.25 for a, b in itertools.pairwise(times))
    assert c.sim.stats()["violations"] == []


async def test_worker_when_killed_is_replaced_and_its_shards_resume_without_identifying(cluster: Any) -> None:
    c = await cluster(None, "--workers", "2")
    status = await c.ready(8)
    victim = status["workers"][0]
    os.kill(victim["pid"], signal.SIGKILL)

    await wait_for(lambda: len(accepted(c.sim, "resumes")) >= 4, 30, "the dead worker's shards resumed")

    async def replaced() -> bool:
        s = await c.status()
        return any(w["slot"] == 0 and w["pid"] != victim["pid"] for w in s["workers"]) and all(
            x["state"] == "ready" for x in s["shards"]
        )

    await wait_for(replaced, 30, "a replacement with every shard ready")
    assert len(accepted(c.sim, "identifies")) == 8, "no shard identified again"
    resumed = {tuple(r["shard"]) for r in accepted(c.sim, "resumes")}
    assert resumed == {(n, 8) for n in range(4)}
    status = await c.status()
    assert all(s["keys"] == 2 for s in status["shards"]), "the guild count survives the crash"


async def test_reload_when_sighup_replaces_every_worker_and_resumes_every_shard(cluster: Any) -> None:
    c = await cluster(None, "--workers", "2")
    before = {w["pid"] for w in (await c.ready(8))["workers"]}
    c.proc.send_signal(signal.SIGHUP)
    await wait_for(lambda: len(accepted(c.sim, "resumes")) >= 8, 40, "every shard resumed")

    async def reloaded() -> bool:
        s = await c.status()
        pids = {w["pid"] for w in s["workers"] if w["state"] == "running"}
        return len(pids) == 2 and not pids & before and all(x["state"] == "ready" for x in s["shards"])

    await wait_for(reloaded, 40, "every worker replaced")
    assert len(accepted(c.sim, "identifies")) == 8
    assert {tuple(r["shard"]) for r in accepted(c.sim, "resumes")} == {(n, 8) for n in range(8)}
    assert c.sim.stats()["violations"] == []


async def test_reload_command_when_done_reports_it(cluster: Any) -> None:
    c = await cluster(None, "--workers", "2")
    await c.ready(8)
    result = await shardrunner("reload", "--run-dir", str(c.run_dir))
    assert result.returncode == 0, result.stderr
    assert "reload done" in result.stdout
    assert len(accepted(c.sim, "identifies")) == 8


async def test_stop_then_start_within_the_window_resumes_every_shard(cluster: Any) -> None:
    first = await cluster(None, "--workers", "2")
    await first.ready(8)
    result = await shardrunner("stop", "--run-dir", str(first.run_dir), timeout=30)
    assert result.returncode == 0, result.stderr
    assert await first.exit_code() == 0
    assert (first.run_dir / "sessions.json").stat().st_mode & 0o777 == 0o600
    second = await cluster(first.sim, "--workers", "2")
    await second.ready(8)
    assert len(accepted(first.sim, "identifies")) == 8, "the second start identified nothing"
    assert len(accepted(first.sim, "resumes")) == 8
    closes = [c for c in first.sim.stats()["closes"] if c["by"] == "client"]
    assert closes
    assert all(c["code"] not in (1000, 1001) for c in closes)


async def test_start_when_token_is_wrong_fails_with_one_sentence(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    # A token of the right shape (a malformed one is refused before anything is sent: tests/cli)
    # that this simulator does not accept.
    sim = await sim_factory(token=TOKEN)
    wrong = make_token(1100000000000000002)
    result = await shardrunner(
        "start", "--api-url", sim.url + "/api/v10", "--token", wrong,
        "--run-dir", str(tmp_path / "run"), timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert "Discord rejected the token (401 from GET /gateway/bot)" in result.stderr
    assert "Traceback" not in result.stderr
    assert wrong not in result.stderr + result.stdout


async def test_start_when_a_worker_cannot_boot_stops_with_the_reason(cluster: Any) -> None:
    c = await cluster(None, "--workers", "2", env={"SHARDRUNNER_WORKER_PRELOAD": "no_such_module_here"})
    code = await c.exit_code()
    out = c.output()
    assert code != 0
    assert "failed to start" in out
    assert "No module named 'no_such_module_here'" in out
    assert "Traceback" not in out
    assert accepted(c.sim, "identifies") == []


async def test_reload_when_replacement_cannot_boot_keeps_the_old_workers_and_says_why(
    cluster: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "refuse-boot"
    env = {"SHARDRUNNER_WORKER_PRELOAD": "tests.cluster.boot_gate", "SHARDRUNNER_TEST_BOOT_GATE": str(marker)}
    c = await cluster(None, "--workers", "2", env=env)
    before = {w["pid"] for w in (await c.ready(8))["workers"]}
    marker.touch()
    result = await shardrunner("reload", "--run-dir", str(c.run_dir), timeout=90)
    assert result.returncode == 1
    assert "reload stopped at worker 0: the replacement did not start" in result.stdout
    assert "boot refused for the test" in result.stdout
    status = await c.status()
    assert {w["pid"] for w in status["workers"]} == before
    assert all(s["state"] == "ready" for s in status["shards"])
    assert len(accepted(c.sim, "identifies")) == 8
    assert accepted(c.sim, "resumes") == [], "the old workers never let go of their shards"


async def test_start_when_progress_always_draws_the_progress_line(cluster: Any) -> None:
    c = await cluster(None, "--workers", "1", "--progress", "always")
    await c.ready(8)
    c.proc.send_signal(signal.SIGTERM)
    assert await c.exit_code() == 0
    out = c.output()
    assert "\rshards ready 0/8" in out.replace("\x1b[2K", "") or "\rshards ready" in out.replace(
        "\x1b[2K", ""
    )
    assert "to identify, ETA" in out
    assert "shards ready 8/8" in out


async def test_start_when_session_starts_are_too_few_refuses_with_the_reset_time(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    sim = await sim_factory(shards=8, session_start_remaining=3)
    result = await shardrunner(
        "start",
        "--api-url",
        sim.url + "/api/v10",
        "--token",
        TOKEN,
        "--run-dir",
        str(tmp_path / "run"),
        timeout=60,
    )
    assert result.returncode != 0
    assert "Discord allows 3 more session starts today" in result.stderr
    assert "8 shards must identify" in result.stderr
    assert sim.stats()["identifies"] == []


async def test_worker_when_hung_is_killed_and_replaced_and_its_shards_resume(
    cluster: Any, sim_factory: SimFactory
) -> None:
    # Heartbeats every 20 s: the gateway keeps the sessions while the worker is frozen (~10 s).
    sim = await sim_factory(
        shards=8, guilds_per_shard=2, rate=50, identify_window=0.25, heartbeat_interval_ms=20000
    )
    # Hung after 3 s without a pong (the other tests': 5 s).
    c = await cluster(sim, "--workers", "2", "--hung-after", "3")
    status = await c.ready(8)
    frozen = status["workers"][1]["pid"]
    os.kill(frozen, signal.SIGSTOP)  # alive, but answers no ping: hung
    await wait_for(
        lambda: not psutil.pid_exists(frozen) or psutil.Process(frozen).status() == "zombie", 30, "killed"
    )
    await wait_for(lambda: len(accepted(c.sim, "resumes")) >= 4, 30, "its shards resumed elsewhere")
    assert {tuple(r["shard"]) for r in accepted(c.sim, "resumes")} == {(n, 8) for n in range(4, 8)}
    assert len(accepted(c.sim, "identifies")) == 8
