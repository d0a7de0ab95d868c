"""The supervisor's wiring on fakes: the run directory, bus sockets, reload and stop messages,
saved sessions on start, the status and the endpoints."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import msgspec
import psutil
import pytest

from shardrunner.cluster import messages as m
from shardrunner.cluster import statefile
from shardrunner.control import call
from shardrunner.gateway.platform import PlatformError
from shardrunner.protocol.envelope import SessionSnapshot
from shardrunner.protocol.keys import ConnKey
from shardrunner.rundir import RunDir
from tests.cluster.supervisor.conftest import Make
from tests.cluster.supervisor.fakes import TOKEN, FakePlan, conns


@pytest.fixture
def other_cluster() -> subprocess.Popen[bytes]:
    # A living process whose command line says shardrunner, as a running cluster's does.
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "shardrunner"])
    # Popen returns after the fork: until the child's exec its command line is still this one's.
    deadline = time.monotonic() + 10
    while "shardrunner" not in " ".join(psutil.Process(proc.pid).cmdline()):
        assert time.monotonic() < deadline, "the stand-in cluster never started"
        time.sleep(0.01)
    yield proc
    proc.kill()
    proc.wait(5)


async def test_start_when_another_cluster_runs_in_the_run_dir_is_refused_and_touches_nothing(
    rig: Make, other_cluster: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.pid_file.write_text(f"{other_cluster.pid}\n")
    theirs = [run.control_sock, run.workers_sock, run.bus_sock(0, 1), run.state_file]
    for path in theirs:
        path.write_text("theirs")
    r = await rig(run_dir=run.path)
    assert await r.exit_code() == 1
    assert r.sup.error is not None
    assert r.sup.error.startswith(f"a cluster is already running in {run.path} (pid {other_cluster.pid})")
    assert all(p.read_text() == "theirs" for p in theirs), "every file of the running cluster is there"
    assert run.pid_file.read_text() == f"{other_cluster.pid}\n"
    assert r.spawner.spawned == []


async def test_start_when_bus_sockets_are_left_over_removes_them_and_each_gone_workers_own(rig: Make) -> None:
    r = await rig(start=False)
    run = RunDir(r.run_dir)
    run.path.mkdir(parents=True)
    stale = run.bus_sock(3, 17)
    stale.write_text("")
    r.start()
    await r.ready()
    assert not stale.exists()
    victim = r.spawner.of_slot(0)[0]
    run.bus_sock(0, victim.generation).write_text("")  # what the worker binds
    run.bus_sock(1, 2).write_text("")
    victim.exit(-9)
    await r.advance(0.5)
    assert not run.bus_sock(0, victim.generation).exists()
    assert run.bus_sock(1, 2).exists(), "a living worker's socket stays"
    r.sup.request_stop()
    assert await r.exit_code() == 0
    assert run.bus_socks() == []


async def test_reload_when_some_shards_are_still_identifying_says_how_many_resumed(rig: Make) -> None:
    r = await rig()
    # Two connections of slot 0 are ready, the rest have not identified yet.
    await r.until(lambda: len(r.link.grants) >= 2, 10, "two identifies")
    message = await r.reload()
    assert message.startswith("reload done: every worker replaced, ")
    assert "every shard resumed" not in message
    resumed = sum(len(p.resumed) for p in r.spawner.spawned)
    assert 2 <= resumed < 8
    assert message == (
        f"reload done: every worker replaced, {resumed} shards resumed, {8 - resumed} had no session "
        "yet and identify"
    )
    await r.ready()


async def test_stop_when_running_on_the_simulator_says_the_next_start_identifies(rig: Make) -> None:
    r = await rig(sim=True)
    await r.ready()
    assert r.sup.request_stop() == (
        "stopping: the built-in simulator stops too and starts empty, "
        "so the next start identifies every shard"
    )
    assert await r.exit_code() == 0


async def test_start_when_sessions_were_saved_resumes_those_of_the_plans_sets(
    rig: Make, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    old_set = [
        SessionSnapshot(conn=c, session_id=f"old{c.shard}", seq=3, resume_url="ws://r", keys=[])
        for c in conns(4)
    ]
    kept = [
        SessionSnapshot(conn=c, session_id=f"s{c.shard}", seq=9, resume_url="ws://r", keys=[c.shard])
        for c in conns(8)[:3]
    ]
    statefile.write(run, TOKEN, conns(4) + conns(8), old_set + kept)
    r = await rig(run_dir=run)
    await r.ready()
    assert r.plans[0].checked == [5], "three resume, five identify"
    assert [c for p in r.spawner.spawned for c in p.resumed] == conns(8)[:3]
    assert sorted(r.link.grants) == conns(8)[3:]


async def test_start_when_the_platform_refuses_stops_with_its_sentence(rig: Make) -> None:
    class Refusing(FakePlan):
        def check_starts(self, to_identify: int) -> None:
            raise PlatformError("Discord allows 3 more session starts today")

    r = await rig(plans=[Refusing(conns(8))])
    assert await r.exit_code() == 1
    assert r.sup.error == "Discord allows 3 more session starts today"
    assert not (r.run_dir / "supervisor.pid").exists()


async def test_control_when_asked_over_the_socket_answers_status_endpoints_and_stop(rig: Make) -> None:
    r = await rig()
    await r.ready()
    status = await call(r.run_dir, "status", timeout=5)
    assert TOKEN not in msgspec.json.encode(status).decode()
    assert [w["shards"] for w in status["workers"]] == ["0-3", "4-7"]
    assert [s["conn"] for s in status["shards"]] == [f"discord:{i}/8" for i in range(8)]
    assert status["shards"][5] | {"latency_ms": 0, "last_resume_ago_s": 0} == {
        "conn": "discord:5/8", "platform": "discord", "shard": 5, "count": 8, "generation": 0, "id": 5,
        "worker": 1, "state": "ready", "latency_ms": 0, "events_per_s": 0.0, "events": 10, "keys": 1,
        "resumes": 0, "identifies": 1, "crashes": 0, "last_error": None, "last_resume_ago_s": 0,
        "keys_pending": 0, "withheld": 0, "delivery": "live", "detail": None, "decode_errors": 0,
    }  # fmt: skip
    assert status["supervisor"]["num_shards"] == 8
    assert status["supervisor"]["platforms"] == {"discord": {"shards": 8, "sets": [8]}}
    found = await call(r.run_dir, "endpoints", timeout=5)
    assert found["platforms"] == {"discord": {"shards": 8, "sets": [8]}}
    assert [(w["slot"], w["generation"], w["endpoint"]) for w in found["workers"]] == [
        (0, 1, f"ipc://{r.run_dir}/bus-0-1.sock"),
        (1, 2, f"ipc://{r.run_dir}/bus-1-2.sock"),
    ]
    assert [ConnKey.parse(c) for c in found["workers"][1]["conns"]] == conns(8)[4:]
    stopped = await call(r.run_dir, "stop", timeout=5)
    assert stopped["message"].startswith("stopping: the sessions will be saved")
    assert await r.exit_code() == 0


async def test_worker_when_a_connection_fails_fatally_stops_the_cluster_with_its_message(rig: Make) -> None:
    r = await rig()
    await r.ready()
    worker = r.spawner.of_slot(0)[0]
    worker.say(m.ConnFailed(conns(8)[1], 4014, "Discord refused the intents (4014): enable them"))
    assert await r.exit_code() == 1
    assert r.sup.error == "Discord refused the intents (4014): enable them"
